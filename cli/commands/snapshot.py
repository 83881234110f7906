"""`snapstore snapshot KIND ...`: take a snapshot of files, a stream, a database, an instance."""

from __future__ import annotations

import os
import shlex
import signal
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

import snapstore
from snapstore.cli.options import RepoOptions, repository_options
from snapstore.cli.output import human_size
from snapstore.cli.pg_options import pg_options, renamed_options
from snapstore.cli.progress import Reporter, print_summary
from snapstore.cli.redis_options import redis_options
from snapstore.cli.run import note_snapshot, note_source
from snapstore.cli.snapshot_filter import tag_list_option
from snapstore.errors import DumpFailed, SourceError, UsageError, last_message

EXIT_INCOMPLETE = 3
# How much of a failed producer's stderr `snapshot command` shows.
STDERR_LINES_SHOWN = 10


def _parse_time(value: str | None) -> datetime | None:
    """--time in ISO 8601; one without a UTC offset is this machine's local time, as restic
    takes it. A time a snapshot cannot record (too near year 1 or 9999) is a usage error."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(f"--time {value!r} is not an ISO 8601 time") from None
    try:
        local = parsed if parsed.tzinfo else parsed.astimezone()
        snapstore.Snapshot.check_time(local)
    except (ValueError, OverflowError) as exc:
        raise UsageError(f"--time {value!r} cannot be recorded: {exc}") from None
    return local


def snapshot_options(func: Callable[..., Any], host_flag: str = "--host") -> Callable[..., Any]:
    """--tag/--host/--time/--json, common to every snapshot kind. Where `--host` names a
    database server, the recorded host name is `--snapshot-host` instead."""
    func = click.option("--json", "as_json", is_flag=True,
                        help="Print JSON lines: status while running, then a summary.")(func)
    func = click.option(
        "--parent",
        help="Snapshot to store changes against (id or 'none'); default: the latest snapshot "
        "of the same source, host and paths.",
    )(func)
    func = click.option("--time", "time_", help="Time to record (ISO 8601), default now.")(func)
    func = click.option(host_flag, "host", help="Host name to record (default: this one).")(func)
    func = tag_list_option("--tag", "tags", "Tag the snapshot (repeatable, or a,b).")(func)
    return repository_options(func)


def unchanged_file_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """--force/--ignore-inode/--ignore-ctime, restic's flags, for what reads files from disk:
    a file whose size, mtime, ctime, inode and device are those it had in the parent snapshot
    is not read again."""
    func = click.option("--ignore-ctime", is_flag=True,
                        help="Do not compare ctime to tell an unchanged file.")(func)
    func = click.option("--ignore-inode", is_flag=True,
                        help="Do not compare inode, device nor ctime to tell an unchanged file "
                        "(for filesystems where they change: NFS, SMB, FUSE).")(func)
    func = click.option("--force", is_flag=True,
                        help="Read every file, even one unchanged since the parent snapshot.")(func)
    return func


def database_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """--database/--no-database; without either, databases are recognised by their first
    bytes (a pg_dump, an RDB, a MySQL dump, an SQLite file) and chunked as such."""
    return click.option(
        "--database/--no-database", default=None,
        help="Chunk as a database dump (smaller chunks, deltas against the last copy), or "
             "never; default: recognise databases by their first bytes.",
    )(func)  # fmt: skip


def run_snapshot(
    repo_options: RepoOptions,
    source: snapstore.Source,
    tags: list[str],
    host: str | None,
    time_: str | None,
    as_json: bool,
    parent: str | None = None,
    *,
    force: bool = False,
    ignore_inode: bool = False,
    ignore_ctime: bool = False,
    database: bool | None = None,
) -> int:
    options = snapstore.SnapshotOptions(
        tags=list(tags), host=host, time=_parse_time(time_), use_parent=parent != "none",
        force=force, ignore_inode=ignore_inode, ignore_ctime=ignore_ctime, database=database,
    )
    note_source(source, host)
    with repo_options.open(lock="shared") as repo, Reporter(as_json=as_json) as progress:
        if parent not in (None, "none"):
            options.parent = snapstore.find_snapshot(repo, parent)
        result = snapstore.take_snapshot(repo, source, options, progress)
        note_snapshot(result, repo_options.location(), repo)
    snap = result.snapshot
    summary = snap.summary
    record = {
        "snapshot_id": snap.id.hex() if snap.id else None,
        "short_id": snap.short_id,
        "time": snap.time.isoformat(),
        "source": snap.source,
        "paths": snap.paths,
        "tags": snap.tags,
        "files": summary.files,
        "files_unchanged": summary.files_unchanged,
        "dirs": summary.dirs,
        "bytes_read": summary.bytes_read,
        "bytes_added": summary.bytes_added,
        "blobs_added": summary.blobs_added,
        "deltas_added": summary.deltas_added,
        "parent": snap.parent.hex() if snap.parent else None,
        "errors": [{"path": p, "message": m} for p, m in result.errors],
        "duration_s": summary.duration_s,
    }
    print_summary(record, (
        f"snapshot {snap.short_id} saved: {summary.files} files ({summary.files_unchanged} "
        f"unchanged), read {human_size(summary.bytes_read)}, "
        f"added {human_size(summary.bytes_added)} in {summary.duration_s:.1f} s"
    ), as_json=as_json)  # fmt: skip
    if result.errors:
        click.echo(f"snapstore: warning: snapshot incomplete: {len(result.errors)} source items "
                   "could not be read or stored (see the warnings above)", err=True)
        return EXIT_INCOMPLETE
    return 0


def server_snapshot_options(func: Callable[..., Any]) -> Callable[..., Any]:
    return snapshot_options(func, host_flag="--snapshot-host")


def build() -> click.Group:
    @click.group("snapshot")
    def group() -> None:
        """Take a snapshot of files, a stream, a database or a Mastodon instance."""

    @group.command("files")
    @click.argument("paths", nargs=-1, required=True, type=click.Path())
    @click.option("--exclude", "excludes", multiple=True, help="Glob pattern to skip (repeatable).")
    @click.option("--iexclude", "iexcludes", multiple=True,
                  help="Like --exclude, ignoring case (repeatable).")
    @click.option("--exclude-file", "exclude_files", multiple=True, type=click.Path(dir_okay=False),
                  help="Read --exclude patterns from FILE, one a line, # comments (repeatable).")
    @click.option("--exclude-caches", is_flag=True,
                  help="Skip the contents of directories holding a valid CACHEDIR.TAG (kept).")
    @click.option("--exclude-if-present", "exclude_if_present", multiple=True, metavar="NAME",
                  help="Skip the contents of directories holding a file NAME (kept; repeatable).")
    @click.option("-x", "--one-file-system", is_flag=True,
                  help="Do not cross into other filesystems (mount points are kept empty).")
    @unchanged_file_options
    @database_option
    @snapshot_options
    def files(repo_options: RepoOptions, paths: tuple[str, ...], excludes: tuple[str, ...],
              iexcludes: tuple[str, ...], exclude_files: tuple[str, ...], exclude_caches: bool,
              exclude_if_present: tuple[str, ...], one_file_system: bool, **common: Any) -> int:
        """Back up files and directories, recursively."""
        source = snapstore.FileSource(
            list(paths), list(excludes), iexcludes=list(iexcludes), exclude_files=list(exclude_files),
            exclude_caches=exclude_caches, exclude_if_present=list(exclude_if_present),
            one_file_system=one_file_system,
        )
        return run_snapshot(repo_options, source, **common)

    @group.command("stdin")
    @click.option("--name", required=True, help="File name to store the stream under.")
    @database_option
    @click.option("--allow-empty", is_flag=True, help="Record empty input (refused by default).")
    @snapshot_options
    def stdin(repo_options: RepoOptions, name: str, allow_empty: bool, **common: Any) -> int:
        """Back up standard input as one file; empty input records nothing (exit 1).

        A failed producer in a pipe goes unseen: prefer `snapshot command`."""
        if sys.stdin is None:  # started with standard input closed (`<&-`)
            raise SourceError("standard input is closed: there is nothing to back up")
        # FILES: --database/--no-database or the first bytes decide (SnapshotOptions.database)
        files = snapstore.ChunkingProfile.FILES
        source = snapstore.StreamSource(sys.stdin.buffer, name, profile=files,
                                        allow_empty=allow_empty)  # fmt: skip
        return run_snapshot(repo_options, source, **common)

    @group.command("command", context_settings={"allow_interspersed_args": False})
    @click.option("--name", required=True, help="File name to store the output under.")
    @database_option
    @click.option("--allow-empty", is_flag=True, help="Record empty output (refused by default).")
    @snapshot_options
    @click.argument("argv", nargs=-1, required=True, type=click.UNPROCESSED,
                    metavar="-- PROGRAM [ARGS]...")
    def command(repo_options: RepoOptions, name: str, allow_empty: bool,
                argv: tuple[str, ...], **common: Any) -> int:
        """Run PROGRAM (no shell) and back up its standard output as one file.

        A non-zero exit or a death by signal records no snapshot and exits 1 with the end of
        its standard error; so does empty output, unless --allow-empty. Only the program's
        name is recorded, never its arguments."""
        files = snapstore.ChunkingProfile.FILES  # the flags or the first bytes decide
        source = snapstore.ProgramSource(argv, name, profile=files, allow_empty=allow_empty)
        try:
            return run_snapshot(repo_options, source, **common)
        except DumpFailed as exc:
            raise SourceError(_producer_failed(exc)) from exc

    @group.command("postgres")
    @click.option("--dbname", required=True, help="Database to dump.")
    @pg_options()
    @renamed_options({"--host": "--pg-host", "--port": "--pg-port", "--username": "--pg-user",
                      "--command-prefix": "--pg-command-prefix"})  # fmt: skip
    @click.option("--no-globals", is_flag=True, help="Leave out pg_dumpall --globals-only.")
    @click.option("--no-role-passwords", is_flag=True, help="Globals without role passwords.")
    @click.option("--no-row-counts", is_flag=True, help="Skip the row counts (a full scan).")
    @server_snapshot_options
    def postgres(repo_options: RepoOptions, dbname: str, pg_host: str | None, pg_port: int | None,
                 pg_user: str | None, pg_command_prefix: str | None, pg_run_as: str | None,
                 no_globals: bool, no_role_passwords: bool, no_row_counts: bool,
                 **common: Any) -> int:
        """Dump one PostgreSQL database (pg_dump, streamed) and the globals.

        The password comes from libpq: PGPASSWORD or ~/.pgpass."""
        options = snapstore.PostgresOptions(
            dbname, host=pg_host, port=pg_port, username=pg_user,
            command_prefix=_split(pg_command_prefix), run_as=pg_run_as,
            dump_globals=not no_globals, role_passwords=not no_role_passwords,
            count_rows=not no_row_counts,
        )
        return run_snapshot(repo_options, snapstore.PostgresSource(options), **common)

    @group.command("redis")
    @renamed_options({"--host": "--redis-host", "--port": "--redis-port",
                      "--command-prefix": "--redis-command-prefix"},
                     same_as="snapshot mastodon and restore mastodon")  # fmt: skip
    @redis_options()
    @click.option("--password-env", metavar="VAR", help="Variable holding the password.")
    @click.option("--rdb-file", type=click.Path(dir_okay=False), help="Take this RDB file instead.")
    @server_snapshot_options
    def redis(repo_options: RepoOptions, redis_host: str | None, redis_port: int | None,
              password_env: str | None,
              rdb_file: str | None, redis_command_prefix: str | None, **common: Any) -> int:
        """Take a fresh RDB from a running Redis (or an existing dump file)."""
        if rdb_file is not None:
            return run_snapshot(repo_options, snapstore.RedisSource(rdb_file=rdb_file), **common)
        password = None
        if password_env:
            password = os.environ.get(password_env)
            if password is None:
                raise UsageError(f"--password-env {password_env}: that variable is not set")
        options = snapstore.RedisOptions(redis_host or "127.0.0.1", redis_port or 6379, password=password,
                                         command_prefix=_split(redis_command_prefix))
        return run_snapshot(repo_options, snapstore.RedisSource(options), **common)

    @group.command("mastodon")
    @click.option("--env-file", type=click.Path(dir_okay=False), show_default=True,
                  default="/home/mastodon/live/.env.production", help="The instance's env file.")
    @click.option("--include-media-cache", is_flag=True, help="Also take public/system/cache.")
    @click.option("--no-media", is_flag=True, help="Leave out public/system.")
    @click.option("--no-redis", is_flag=True, help="Leave out the Redis RDB.")
    @click.option("--no-letsencrypt", is_flag=True, help="Leave out the Let's Encrypt directory.")
    @click.option("--letsencrypt-dir", type=click.Path(file_okay=False), default="/etc/letsencrypt",
                  show_default=True,
                  help="Where the TLS certificates are (named here: its absence is an error).")
    @click.option("--nginx-dir", type=click.Path(file_okay=False), default="/etc/nginx",
                  show_default=True, help="Where nginx's sites-available/-enabled are.")
    @click.option("--systemd-dir", type=click.Path(file_okay=False),
                  default="/etc/systemd/system", show_default=True,
                  help="Where the mastodon-*.service units are.")
    @click.option("--role-passwords", is_flag=True, help="Dump role passwords (superuser only).")
    @pg_options("pg_command_prefix", "pg_run_as")  # the server: .env.production's
    @redis_options("redis_command_prefix")
    @unchanged_file_options
    @snapshot_options
    @click.pass_context
    def mastodon(ctx: click.Context, repo_options: RepoOptions, env_file: str,
                 include_media_cache: bool, no_media: bool, no_redis: bool, no_letsencrypt: bool,
                 letsencrypt_dir: str, nginx_dir: str, systemd_dir: str, role_passwords: bool,
                 pg_command_prefix: str | None, pg_run_as: str | None,
                 redis_command_prefix: str | None, tags: list[str], **common: Any) -> int:
        """Database, secrets, media, Redis, certificates and web server files of an instance:
        one snapshot.

        Exit 3 when a part this host has (Redis, local media, globals, a named certificate
        directory) could not be taken: the snapshot is then marked incomplete. A part this
        host lacks (no /etc/letsencrypt, media on S3) is no error. A failed database dump
        leaves no snapshot."""
        # Named on this command line: its absence is an error. The default and the config
        # file's value name where certificates are if the host has them.
        named = ctx.get_parameter_source("letsencrypt_dir") is ParameterSource.COMMANDLINE
        options = snapstore.MastodonOptions(
            env_file=Path(env_file), media=not no_media, include_media_cache=include_media_cache,
            redis=not no_redis, letsencrypt_dir=None if no_letsencrypt else Path(letsencrypt_dir),
            letsencrypt_required=named, nginx_dir=Path(nginx_dir), systemd_dir=Path(systemd_dir),
            pg_command_prefix=_split(pg_command_prefix), pg_run_as=pg_run_as,
            redis_command_prefix=_split(redis_command_prefix), role_passwords=role_passwords,
        )  # fmt: skip
        source = snapstore.MastodonSource(options)
        return run_snapshot(repo_options, source, tags=[*tags, "mastodon"], **common)

    return group


def _producer_failed(exc: DumpFailed) -> str:
    """Shows the end of a failed producer's stderr; returns the one line that says it failed."""
    lines = [line.rstrip() for line in exc.stderr_tail.splitlines() if line.strip()]
    detail = last_message(exc.stderr_tail)
    if lines and lines != [detail]:
        click.echo(f"snapstore: the last lines {exc.command} wrote on standard error:", err=True)
        for line in lines[-STDERR_LINES_SHOWN:]:
            click.echo(f"  {line}", err=True)
    code = exc.returncode
    if code is not None and code < 0:
        try:
            status = f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            status = f"was killed by signal {-code}"
    else:
        status = "did not finish" if code is None else f"exited {code}"
    where = f": {detail}" if detail else ""
    return f"{exc.command} {status}, so no snapshot was recorded{where}"


def _split(command_prefix: str | None) -> list[str]:
    try:
        return shlex.split(command_prefix) if command_prefix else []
    except ValueError as exc:
        raise UsageError(f"cannot split the command prefix {command_prefix!r}: {exc}") from None


