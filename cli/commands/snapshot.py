"""`snapstore snapshot KIND ...`: take a snapshot of files, a stream, a database, an instance."""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import datetime
from typing import Any

import click

import snapstore
from snapstore.cli.options import RepoOptions, repository_options
from snapstore.cli.output import TerminalProgress, human_size, print_json
from snapstore.errors import UsageError

EXIT_INCOMPLETE = 3


def _parse_time(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(f"--time {value!r} is not an ISO 8601 time") from None
    return parsed if parsed.tzinfo else parsed.astimezone()


def snapshot_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """--tag/--host/--time/--json, common to every snapshot kind."""
    func = click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")(func)
    func = click.option("--time", "time_", help="Time to record (ISO 8601), default now.")(func)
    func = click.option("--host", help="Host name to record, default this machine's.")(func)
    func = click.option("--tag", "tags", multiple=True, help="Tag the snapshot (repeatable).")(func)
    return repository_options(func)


def run_snapshot(
    repo_options: RepoOptions,
    source: snapstore.Source,
    tags: tuple[str, ...],
    host: str | None,
    time_: str | None,
    as_json: bool,
) -> int:
    options = snapstore.SnapshotOptions(tags=list(tags), host=host, time=_parse_time(time_))
    with repo_options.open() as repo, TerminalProgress() as progress:
        result = snapstore.take_snapshot(repo, source, options, progress)
    snap = result.snapshot
    summary = snap.summary
    if as_json:
        print_json(
            {
                "snapshot_id": snap.id.hex() if snap.id else None,
                "short_id": snap.short_id,
                "time": snap.time.isoformat(),
                "source": snap.source,
                "paths": snap.paths,
                "tags": snap.tags,
                "files": summary.files,
                "dirs": summary.dirs,
                "bytes_read": summary.bytes_read,
                "bytes_added": summary.bytes_added,
                "blobs_added": summary.blobs_added,
                "errors": [{"path": p, "message": m} for p, m in result.errors],
                "duration_s": summary.duration_s,
            }
        )
    else:
        click.echo(
            f"snapshot {snap.short_id} saved: {summary.files} files, read {human_size(summary.bytes_read)}, "
            f"added {human_size(summary.bytes_added)} in {summary.duration_s:.1f} s",
            err=True,
        )
        click.echo(snap.id.hex() if snap.id else "")
    if result.errors:
        click.echo(f"snapstore: warning: {len(result.errors)} source files could not be read", err=True)
        return EXIT_INCOMPLETE
    return 0


def build() -> click.Group:
    @click.group("snapshot")
    def group() -> None:
        """Take a snapshot of files, a stream, a database or a Mastodon instance."""

    @group.command("files")
    @click.argument("paths", nargs=-1, required=True, type=click.Path())
    @click.option("--exclude", "excludes", multiple=True, help="Glob pattern to skip (repeatable).")
    @snapshot_options
    def files(repo_options: RepoOptions, paths: tuple[str, ...], excludes: tuple[str, ...], **common: Any) -> int:
        """Back up files and directories, recursively."""
        return run_snapshot(repo_options, snapstore.FileSource(list(paths), list(excludes)), **common)

    @group.command("stdin")
    @click.option("--name", required=True, help="File name to store the stream under.")
    @click.option("--database", is_flag=True, help="Chunk as a database dump (smaller chunks).")
    @snapshot_options
    def stdin(repo_options: RepoOptions, name: str, database: bool, **common: Any) -> int:
        """Back up standard input as one file."""
        profile = snapstore.ChunkingProfile.DATABASE if database else snapstore.ChunkingProfile.FILES
        source = snapstore.StreamSource(sys.stdin.buffer, name, profile=profile)
        return run_snapshot(repo_options, source, **common)

    return group


