"""`snapstore copy --to REPO [SNAPSHOT...]`: copy snapshots to another repository (3-2-1)."""

from __future__ import annotations

import dataclasses
from typing import Any

import click

import snapstore
from snapstore.cli.options import RepoOptions, repository_options
from snapstore.cli.output import human_size, print_info
from snapstore.cli.progress import Reporter, print_summary
from snapstore.cli.remote_options import pop_s3, s3_decorators
from snapstore.cli.snapshot_filter import snapshot_filter_options
from snapstore.errors import RepositoryLocked, RepositoryNotFound, UsageError, WrongPassword


def _destination(source: RepoOptions, repo: str | None, password_file: str | None,
                 password_command: str | None, s3: dict[str, str]) -> RepoOptions:
    """The destination takes the source's remote options, with --to-s3-* on top."""
    if not repo:
        raise UsageError("copy needs --to REPO (or SNAPSTORE_TO_REPOSITORY)")
    return dataclasses.replace(
        source, repo=repo, password_file=password_file, password_command=password_command,
        remote=source.remote.with_s3(s3), password_env="SNAPSTORE_TO_PASSWORD",
    )  # fmt: skip


def build() -> click.Command:
    @click.command("copy")
    @click.argument("snapshot_names", metavar="[SNAPSHOT]...", nargs=-1)
    @click.option("--to", "to_repo", metavar="REPO", envvar="SNAPSTORE_TO_REPOSITORY",
                  help="Destination repository path or URL (env SNAPSTORE_TO_REPOSITORY).")
    @click.option("--to-password-file", envvar="SNAPSTORE_TO_PASSWORD_FILE",
                  type=click.Path(dir_okay=False),
                  help="Destination password file (env SNAPSTORE_TO_PASSWORD_FILE).")
    @click.option("--to-password-command", envvar="SNAPSTORE_TO_PASSWORD_COMMAND",
                  help="Command printing the destination password "
                       "(env SNAPSTORE_TO_PASSWORD_COMMAND; or set SNAPSTORE_TO_PASSWORD).")
    @click.option("--json", "as_json", is_flag=True,
                  help="Print JSON lines: status while running, then the result.")
    @snapshot_filter_options
    @repository_options
    def copy(repo_options: RepoOptions, selection: snapstore.SnapshotFilter,
             snapshot_names: tuple[str, ...], to_repo: str | None,
             to_password_file: str | None, to_password_command: str | None, as_json: bool,
             **to_s3: Any) -> int:
        """Copy snapshots (default: all) to the repository --to, which has its own keys.
        With --host, --tag or --path and no SNAPSHOT, every snapshot they choose.

        Only the data the destination lacks is stored; snapshots copied before are skipped,
        so running it again after every backup keeps an off-site copy up to date. The
        destination must exist (snapstore init). --to-s3-* options default to the --s3-* ones.
        """
        destination = _destination(repo_options, to_repo, to_password_file,
                                   to_password_command, pop_s3(to_s3, prefix="to_"))
        # the source is only read: a read-only one (a USB disk mounted ro) is read without a lock
        with dataclasses.replace(repo_options, reads_only=True).open(lock="shared") as src:
            try:
                dst_repo = destination.open(lock="shared")
            except (RepositoryNotFound, WrongPassword, RepositoryLocked) as exc:
                raise type(exc)(f"destination {destination.location()}: {exc}") from exc
            with dst_repo as dst, Reporter(as_json=as_json) as progress:
                chosen = snapstore.select_snapshots(src, snapshot_names, selection)
                result = snapstore.copy_snapshots(src, dst, chosen, progress)
        record = {
            "copied": [{"source": s.id.hex() if s.id else None,
                        "copy": c.id.hex() if c.id else None} for s, c in result.copied],
            "skipped": [s.id.hex() if s.id else None for s in result.skipped],
            "blobs_added": result.blobs_added, "deltas_added": result.deltas_added,
            "bytes_added": result.bytes_added,
            "bytes_read": result.bytes_read,
        }  # fmt: skip
        if not as_json:
            for source, made in result.copied:
                print_info(f"copied snapshot {source.short_id} to {made.short_id}")
        print_summary(record, (
            f"{len(result.copied)} snapshots copied, {len(result.skipped)} already there; "
            f"read {human_size(result.bytes_read)}, stored {human_size(result.bytes_added)} new"
        ), as_json=as_json)  # fmt: skip
        return 0

    for decorate in s3_decorators(prefix="to_"):  # each appends to the command's options
        copy = decorate(copy)
    return copy
