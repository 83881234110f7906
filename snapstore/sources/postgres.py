"""Back up one PostgreSQL database as a pg_dump custom-format stream, plus the globals.

The source yields `postgres/<dbname>.dump` (pg_dump --format=custom --compress=0: left
uncompressed so the chunker can deduplicate day-to-day dumps) and `postgres/globals.sql`
(pg_dumpall --globals-only: roles and tablespaces). Both are streamed through
`CommandStream`, so a dump that exits non-zero raises `DumpFailed` and no snapshot is made.

Row counts for restore drills are taken in the very snapshot pg_dump dumps: a psql session
opens a REPEATABLE READ transaction, exports its snapshot, counts the rows of every table
in the `public` schema, and pg_dump is started with `--snapshot=` that id. The session stays
open until pg_dump ends. So a restored dump must match the recorded counts exactly even on
a busy server. `metadata()` therefore holds the counts only once the dump content has been
read; before that it has the server version (checked when `entries()` starts, so a wrong
host or database fails before anything else is read).

Counting is a full scan of every table; on a large instance set `count_rows=False`.

Nothing here reads the environment: the password reaches the children as PGPASSWORD in
their environment only (never on a command line). With `command_prefix` (for example
`["docker", "exec", "-i", "-e", "PGPASSWORD", "db"]`) every client runs through the prefix.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import BinaryIO, Self

from snapstore.archiver.source import ChunkingProfile, EntryKind, ErrorCallback, SourceEntry
from snapstore.errors import DumpFailed, UsageError
from snapstore.sources.command import (
    CANNOT_EXECUTE,
    CommandStream,
    StderrTail,
    display_name,
    run_command,
)
from snapstore.sources.pg_client import PgConnection

DUMP_FORMAT = "custom"

# One line of JSON: {"table": rows, ...} for ordinary and partitioned tables in `public`.
ROW_COUNTS_SQL = (
    "SELECT coalesce(json_object_agg(c.relname, (xpath('/row/n/text()', query_to_xml("
    "format('SELECT count(*) AS n FROM %I.%I', n.nspname, c.relname), false, true, ''))"
    ")[1]::text::bigint ORDER BY c.relname), '{}') "
    "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p');"
)


@dataclass(frozen=True)
class PostgresOptions:
    """How to reach the database; `None` leaves the choice to libpq's defaults."""

    dbname: str
    host: str | None = None
    port: int | None = None
    username: str | None = None
    password: str | None = None
    command_prefix: Sequence[str] = field(default_factory=list)
    pg_dump: str = "pg_dump"
    pg_dumpall: str = "pg_dumpall"
    psql: str = "psql"
    # The children's base environment; None means they inherit this process's.
    env: Mapping[str, str] | None = None
    connect_timeout: int = 30
    count_rows: bool = True
    dump_globals: bool = True
    # False adds --no-role-passwords, which a non-superuser needs for pg_dumpall.
    role_passwords: bool = True
    # Run the clients as this system user (peer authentication as root from cron).
    run_as: str | None = None

    def connection(self) -> PgConnection:
        return PgConnection(
            self.host, self.port, self.username, self.password,
            command_prefix=list(self.command_prefix), run_as=self.run_as, psql=self.psql,
            pg_dump=self.pg_dump, pg_dumpall=self.pg_dumpall, env=self.env,
            connect_timeout=self.connect_timeout,
        )  # fmt: skip


class PostgresSource:
    """One database: DIR postgres, FILE postgres/<dbname>.dump, FILE postgres/globals.sql."""

    def __init__(
        self, options: PostgresOptions, layout_prefix: Sequence[str] = ("postgres",)
    ) -> None:
        if not options.dbname or "/" in options.dbname or options.dbname in (".", ".."):
            raise UsageError(f"database name {options.dbname!r} cannot be a file name")
        self.options = options
        self._connection = options.connection()
        self.layout_prefix = tuple(part.encode() for part in layout_prefix)
        self._facts: dict[str, object] = {
            "dbname": options.dbname,
            "dump_format": DUMP_FORMAT,
            "globals": options.dump_globals,
            # Where the server was (never the password): drill connects there again.
            "host": options.host,
            "port": options.port,
            "username": options.username,
        }

    @property
    def kind(self) -> str:
        return "postgres"

    def describe(self) -> list[str]:
        where = self.options.host or "local"
        if self.options.port is not None:
            where += f":{self.options.port}"
        return [f"postgres://{where}/{self.options.dbname}"]

    def metadata(self) -> dict[str, object]:
        return {"postgres": dict(self._facts)}

    def entries(self, on_error: ErrorCallback) -> Iterator[SourceEntry]:
        # Fail before anything is read when the server or database is wrong.
        version = self._run([self.options.psql, *self._psql_args(), "-c", "SHOW server_version"])
        self._facts["server_version"] = version
        self._facts["pg_dump_version"] = self._run([self.options.pg_dump, "--version"])
        now = time.time_ns()
        if self.layout_prefix:
            yield SourceEntry(self.layout_prefix, EntryKind.DIR, mode=0o700, mtime_ns=now)
        dump_name = f"{self.options.dbname}.dump".encode()
        yield SourceEntry(
            self.layout_prefix + (dump_name,),
            EntryKind.FILE,
            mode=0o600,
            mtime_ns=now,
            open_content=self._dump,
            profile=ChunkingProfile.DATABASE,
        )
        if self.options.dump_globals:
            yield SourceEntry(
                self.layout_prefix + (b"globals.sql",),
                EntryKind.FILE,
                mode=0o600,
                mtime_ns=now,
                open_content=self._globals,
            )

    @contextlib.contextmanager
    def _dump(self) -> Iterator[BinaryIO]:
        """pg_dump inside the snapshot a psql session exported and counted rows in."""
        options = self.options
        psql = self._command(options.psql, *self._psql_args())
        with _ExportedSnapshot(psql, self._environment()) as tx:
            if options.count_rows:
                counts = json.loads(tx.query(ROW_COUNTS_SQL))
                self._facts["row_counts"] = {str(k): int(v) for k, v in counts.items()}
            size = tx.query("SELECT pg_database_size(current_database());")
            self._facts["database_size"] = int(size)
            self._facts["snapshot_id"] = tx.snapshot_id
            argv = self._command(
                options.pg_dump,
                f"--format={DUMP_FORMAT}",
                "--compress=0",
                "--no-password",
                f"--snapshot={tx.snapshot_id}",
                *self._connection_args(),
                f"--dbname={options.dbname}",
            )
            with CommandStream(argv, env=self._environment(), name="pg_dump") as stream:
                yield stream

    def _globals(self) -> CommandStream:
        argv = [
            "--globals-only",
            "--no-password",
            *self._connection_args(),
            f"--database={self.options.dbname}",
        ]
        if not self.options.role_passwords:
            argv.append("--no-role-passwords")
        command = self._command(self.options.pg_dumpall, *argv)
        return CommandStream(command, env=self._environment(), name="pg_dumpall")

    def _connection_args(self) -> list[str]:
        return self._connection.connection_args()

    def _psql_args(self) -> list[str]:
        return [
            "-X", "-q", "-At", "-w", "-v", "ON_ERROR_STOP=1",
            *self._connection_args(),
            f"--dbname={self.options.dbname}",
        ]  # fmt: skip

    def _command(self, program: str, *args: str) -> list[str]:
        return self._connection.command(program, *args)

    def _environment(self) -> dict[str, str] | None:
        return self._connection.environment()

    def _run(self, argv: list[str]) -> str:
        name = display_name(argv)
        output = run_command(self._command(*argv), env=self._environment(), name=name)
        return output.decode("utf-8", errors="replace").strip()


class _ExportedSnapshot:
    """A psql session holding a read-only REPEATABLE READ transaction with an exported
    snapshot, which pg_dump imports. Each query must print exactly one line."""

    def __init__(self, argv: list[str], env: dict[str, str] | None) -> None:
        self._argv = argv
        self._env = env
        self.snapshot_id = ""

    def __enter__(self) -> Self:
        try:
            self._proc = subprocess.Popen(
                [*self._argv, "-f", "-"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=self._env,
            )
        except OSError as exc:
            raise DumpFailed("psql", CANNOT_EXECUTE, f"cannot execute: {exc}") from exc
        assert self._proc.stderr is not None
        self._stderr = StderrTail(self._proc.stderr, 64 * 1024)
        try:
            # The session idles while pg_dump runs; a server-wide idle timeout must not end it
            # before pg_dump has imported the snapshot.
            self.snapshot_id = self.query(
                "SET idle_in_transaction_session_timeout = 0; "
                "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; SELECT pg_export_snapshot();"
            )
        except BaseException:
            self._close()
            raise
        return self

    def query(self, sql: str) -> str:
        proc = self._proc
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(sql.encode() + b"\n")
            proc.stdin.flush()
            line = proc.stdout.readline()
        except BrokenPipeError:
            line = b""
        if not line.endswith(b"\n"):
            self._close()
            raise DumpFailed("psql", proc.returncode, self._stderr.text(timeout=10))
        return line.decode().rstrip("\n")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._close()

    def _close(self) -> None:
        """End of input ends psql, which closes the connection and the transaction."""
        proc = self._proc
        if proc.stdin is not None and not proc.stdin.closed:
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.close()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
        self._stderr.text(timeout=10)
