"""Restore a snapshot's database dump into PostgreSQL through `pg_restore`.

The dump (`postgres/<db>.dump`, or any custom-format dump named by path) is streamed from
the repository into pg_restore's standard input, blob by blob, with a bounded read-ahead:
no temporary file and constant memory, whatever the size. Parallel restore (`jobs` > 1)
needs a seekable file, so then the dump is first spooled to a temporary file (in
`spool_dir`, default the system temp dir), which `DatabaseRestoreResult.spooled` reports.
A spooled file is invisible to a pg_restore running behind a `command_prefix` (docker
exec), so that combination is refused.

Safety rules, checked before anything is written:
- the target database must exist, or `create` must be asked for (it is then created with
  CREATE DATABASE, and dropped again if the restore fails);
- an existing database holding any relation is refused unless `clean` is asked for, which
  passes `--clean --if-exists` to pg_restore;
- globals (`postgres/globals.sql`: roles, tablespaces) are applied only when asked for, in
  the maintenance database, before the dump. Lines that fail (a role that already exists)
  are reported as warnings, not errors, as with `psql -f globals.sql`.

With one job pg_restore runs `--single-transaction`, so a failed restore changes nothing;
with several it runs `--exit-on-error`. A non-zero exit raises `RestoreFailed` naming
pg_restore with the tail of its stderr.
"""

from __future__ import annotations

import os
import pwd
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from snapstore.errors import PathNotFound, RestoreFailed, SourceError, UsageError
from snapstore.progress import NoProgress, Progress
from snapstore.repository.repository import Repository
from snapstore.restorer.stream import stream_file
from snapstore.snapshot.manifest import Snapshot
from snapstore.snapshot.store import find_node, load_tree
from snapstore.snapshot.tree import Node, NodeType
from snapstore.sources.command import CANNOT_EXECUTE, STDERR_TAIL_BYTES, StderrTail
from snapstore.sources.pg_client import PgConnection

DUMP_DIR = "postgres"
GLOBALS_PATH = "postgres/globals.sql"
STDERR_WAIT_SECONDS = 10.0


@dataclass(frozen=True)
class DatabaseRestoreOptions:
    dbname: str
    create: bool = False
    clean: bool = False
    jobs: int = 1
    globals: bool = False
    # Skip ALTER ... OWNER TO, for a server that lacks the dump's roles.
    no_owner: bool = False
    # The role that owns a database `create` makes (Mastodon's `mastodon`), else the user
    # connecting; and the template it is copied from (template0: no local additions).
    owner: str | None = None
    template: str | None = None
    # Path of the dump inside the snapshot; default the one `postgres/*.dump`.
    dump_path: str | None = None
    spool_dir: Path | None = None


@dataclass
class DatabaseRestoreResult:
    dbname: str
    dump_path: str
    created: bool
    spooled: bool
    bytes_restored: int
    globals_applied: bool
    warnings: list[str] = field(default_factory=list)


def find_dump(repo: Repository, snapshot: Snapshot, path: str | None = None) -> tuple[str, Node]:
    """The dump's path and node: `path`, or the only `postgres/*.dump` in the snapshot."""
    if path is not None:
        node = find_node(repo, snapshot.tree, path)
        if node is None or node.type is not NodeType.FILE:
            raise PathNotFound(f"{path!r} is not a file in snapshot {snapshot.short_id}")
        return path, node
    try:
        folder = find_node(repo, snapshot.tree, DUMP_DIR)
    except PathNotFound:
        folder = None
    if folder is None or folder.subtree is None:
        raise PathNotFound(f"snapshot {snapshot.short_id} holds no database dump ({DUMP_DIR}/)")
    dumps = [
        n for n in load_tree(repo, folder.subtree)
        if n.type is NodeType.FILE and n.name.endswith(b".dump")
    ]  # fmt: skip
    if not dumps:
        raise PathNotFound(f"snapshot {snapshot.short_id} holds no {DUMP_DIR}/*.dump")
    if len(dumps) > 1:
        names = ", ".join(n.name.decode(errors="replace") for n in dumps)
        raise UsageError(f"snapshot {snapshot.short_id} holds several dumps ({names}): name one")
    return f"{DUMP_DIR}/{dumps[0].name.decode('utf-8', 'surrogateescape')}", dumps[0]


def restore_database(
    repo: Repository,
    snapshot: Snapshot,
    connection: PgConnection,
    options: DatabaseRestoreOptions,
    progress: Progress | None = None,
) -> DatabaseRestoreResult:
    """Restore the snapshot's dump into `options.dbname` on the server `connection` names."""
    progress = progress or NoProgress()
    if options.jobs < 1:
        raise UsageError("the number of restore jobs must be at least 1")
    if options.jobs > 1 and connection.command_prefix:
        raise UsageError(
            "parallel restore needs a local file: it cannot run behind a command prefix"
        )
    dump_path, node = find_dump(repo, snapshot, options.dump_path)
    name = options.dbname
    exists = connection.database_exists(name)
    if exists and not options.clean and connection.user_relations(name) > 0:
        raise UsageError(
            f"database {name!r} is not empty: restore into it with --clean, or pick a new name"
        )
    if not exists and not options.create:
        raise UsageError(f"database {name!r} does not exist: add --create to create it")

    result = DatabaseRestoreResult(name, dump_path, False, options.jobs > 1, 0, False)
    if options.globals:
        result.warnings += _apply_globals(repo, snapshot, connection)
        result.globals_applied = True
    if not exists:
        connection.create_database(name, owner=options.owner, template=options.template)
        result.created = True
    argv = _pg_restore_argv(connection, options)
    progress.item("/" + dump_path)
    try:
        chunks = _counted(stream_file(repo, node), progress, result)
        if options.jobs > 1:
            stderr = _restore_spooled(connection, argv, chunks, options.spool_dir)
        else:
            stderr = _restore_streaming(connection, argv, chunks)
    except BaseException:
        if result.created:
            try:
                connection.drop_database(name)
            except SourceError:
                pass  # the restore's own error is the one to report
        raise
    result.warnings += [line for line in stderr.splitlines() if line.strip()]
    return result


def _counted(
    chunks: Iterable[bytes], progress: Progress, result: DatabaseRestoreResult
) -> Iterator[bytes]:
    for chunk in chunks:
        result.bytes_restored += len(chunk)
        progress.advance(len(chunk), 0)
        yield chunk


def _pg_restore_argv(connection: PgConnection, options: DatabaseRestoreOptions) -> list[str]:
    args = ["--no-password", *connection.connection_args(), f"--dbname={options.dbname}"]
    if options.jobs > 1:
        args += [f"--jobs={options.jobs}", "--exit-on-error"]
    else:
        args.append("--single-transaction")
    if options.clean:
        args += ["--clean", "--if-exists"]
    if options.no_owner:
        args.append("--no-owner")
    return connection.command(connection.pg_restore, *args)


def _restore_streaming(connection: PgConnection, argv: list[str], chunks: Iterable[bytes]) -> str:
    """Feed the chunks to pg_restore's stdin; its stderr if it succeeded."""
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=connection.environment(),
        )
    except OSError as exc:
        raise RestoreFailed("pg_restore", CANNOT_EXECUTE, f"cannot execute: {exc}") from exc
    assert proc.stdin is not None and proc.stderr is not None
    stderr = StderrTail(proc.stderr, STDERR_TAIL_BYTES)
    stopped_reading = False
    try:
        for chunk in chunks:
            try:
                proc.stdin.write(chunk)
            except BrokenPipeError:
                stopped_reading = True
                break
        try:
            proc.stdin.close()
        except BrokenPipeError:
            stopped_reading = True
    except BaseException:
        proc.kill()
        proc.wait()
        stderr.text(timeout=STDERR_WAIT_SECONDS)
        raise
    returncode = proc.wait()
    tail = stderr.text(timeout=STDERR_WAIT_SECONDS)
    if returncode != 0:
        raise RestoreFailed("pg_restore", returncode, tail)
    if stopped_reading:
        raise SourceError("pg_restore exited 0 before reading the whole dump")
    return tail


def _restore_spooled(
    connection: PgConnection, argv: list[str], chunks: Iterable[bytes], spool_dir: Path | None
) -> str:
    """Write the dump to a temporary file and run a parallel pg_restore on it."""
    with tempfile.NamedTemporaryFile(prefix="snapstore-", suffix=".dump", dir=spool_dir) as spool:
        for chunk in chunks:
            spool.write(chunk)
        spool.flush()
        if connection.run_as is not None and os.geteuid() == 0:
            # pg_restore runs as that user and must be able to open the spool (mode 0600).
            entry = pwd.getpwnam(connection.run_as)
            os.fchown(spool.fileno(), entry.pw_uid, entry.pw_gid)
        done = _run(argv + [spool.name], connection, None, "pg_restore")
    return done


def _run(argv: list[str], connection: PgConnection, stdin: bytes | None, name: str) -> str:
    try:
        done = subprocess.run(
            argv,
            input=stdin if stdin is not None else b"",
            capture_output=True,
            env=connection.environment(),
            check=False,
        )
    except OSError as exc:
        raise RestoreFailed(name, CANNOT_EXECUTE, f"cannot execute: {exc}") from exc
    tail = done.stderr[-STDERR_TAIL_BYTES:].decode("utf-8", errors="replace")
    if done.returncode != 0:
        raise RestoreFailed(name, done.returncode, tail)
    return tail


def _apply_globals(repo: Repository, snapshot: Snapshot, connection: PgConnection) -> list[str]:
    script = read_globals(repo, snapshot)
    if script is None:
        raise PathNotFound(f"snapshot {snapshot.short_id} holds no {GLOBALS_PATH}")
    warnings = apply_globals_script(connection, script)
    if b" PASSWORD '" not in script:
        warnings.append(
            "globals: the roles have no passwords (dumped with --no-role-passwords): set the "
            "instance's with ALTER ROLE ... PASSWORD, or use `snapstore restore mastodon`, "
            "which takes it from DB_PASS"
        )
    return warnings


def read_globals(repo: Repository, snapshot: Snapshot) -> bytes | None:
    """The snapshot's postgres/globals.sql (roles, tablespaces), or None without one."""
    try:
        node = find_node(repo, snapshot.tree, GLOBALS_PATH)
    except PathNotFound:
        node = None
    if node is None or node.type is not NodeType.FILE:
        return None
    return b"".join(stream_file(repo, node))


def apply_globals_script(connection: PgConnection, script: bytes) -> list[str]:
    """Run globals.sql in the maintenance database, carrying on past failing lines (a role
    that already exists): those come back as warnings, as with `psql -f globals.sql`."""
    argv = connection.command(
        connection.psql, "-X", "-q", "-w", "-v", "ON_ERROR_STOP=0",
        *connection.connection_args(), f"--dbname={connection.maintenance_db}", "-f", "-",
    )  # fmt: skip
    stderr = _run(argv, connection, script, "psql")
    return [f"globals: {line}" for line in stderr.splitlines() if "ERROR:" in line]
