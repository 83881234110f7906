"""The restore drill: prove that a snapshot's database comes back, then throw it away.

`drill` restores the snapshot's dump into a fresh scratch database on the server the
connection names (`snapstore_drill_<snapshot>_<random>`: never an existing database),
runs sanity queries, compares them with the row counts recorded when the snapshot was
taken (PostgresSource counts them in the very transaction pg_dump dumps, so they must
match exactly), and drops the scratch database, even when a check fails.

Checks, each in the report with pass/fail and a one-line detail:
- `restore`: pg_restore ran to the end without error;
- `tables present`: every table recorded at backup time exists, plus `accounts`,
  `statuses` and `schema_migrations` for a Mastodon database (a `mastodon` snapshot, or a
  database with an `accounts` table);
- `schema_migrations`: present and not empty (Mastodon only);
- `rows <table>`: for every recorded table, the restored count equals the recorded count;
- `history ...`: the recorded counts and database size against the previous snapshot of the
  same database (drill_history.py): a table emptied overnight fails the drill even though
  its dump restores.
When no counts were recorded (`count_rows` was off), a `recorded counts` check says so and
passes: there is nothing to compare with, and the other checks still run.

The server is the one the snapshot came from (snapshot_server.py); restoring needs the right
to create databases there (Mastodon's own database user has it in the standard
installation). A failed restore reports pg_restore's first errors, not its last line (with
--single-transaction it stops at the first, and the last is often "Command was: ...").
With `keep`, `DrillReport.kept` says whether the scratch database is really there: a failed
restore drops the database it created.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from snapstore.errors import CommandFailed, SnapstoreError, SourceError
from snapstore.progress import Progress
from snapstore.repository.repository import Repository
from snapstore.snapshot.manifest import Snapshot
from snapstore.snapshot.selection import SnapshotFilter
from snapstore.snapshot.store import list_snapshots, newest_complete
from snapstore.sources.drill_history import (
    DEFAULT_MAX_SHRINK,
    history_checks,
    previous_snapshot,
    recorded_counts,
)
from snapstore.sources.pg_client import PgConnection
from snapstore.sources.pg_restore import DatabaseRestoreOptions, restore_database
from snapstore.sources.postgres import ROW_COUNTS_SQL

MASTODON_TABLES = ("accounts", "statuses", "schema_migrations")
# How many of pg_restore's error lines a failed restore's check shows.
RESTORE_ERROR_LINES = 3


@dataclass
class DrillCheck:
    name: str
    passed: bool
    detail: str


@dataclass
class DrillReport:
    snapshot_id: str
    source_database: str
    scratch_database: str
    # Where the scratch database went: "mastodon@127.0.0.1:5432" (never the password).
    server: str = ""
    checks: list[DrillCheck] = field(default_factory=list)
    dropped: bool = False
    # Asked to keep it, and it exists after the drill (a failed restore leaves none).
    kept: bool = False
    # The snapshot the history checks compared with, if any.
    previous_snapshot_id: str | None = None
    duration_s: float = 0.0

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(check.passed for check in self.checks)

    def add(self, name: str, passed: bool, detail: str) -> None:
        self.checks.append(DrillCheck(name, passed, detail))


def latest_database_snapshot(repo: Repository, selection: SnapshotFilter | None = None) -> Snapshot:
    """The newest complete snapshot that holds a database dump (source postgres or mastodon)
    among those `selection` matches (default: all): what `latest` names (`newest_complete`);
    an incomplete one is drilled only by its id."""
    chosen = (selection or SnapshotFilter()).select(list_snapshots(repo))
    dumps = [s for s in chosen if isinstance(s.metadata.get("postgres"), Mapping)]
    what = " ".join(["snapshots with a database dump", selection.describe() if selection else ""])
    return newest_complete(dumps, what.strip())


def drill(
    repo: Repository,
    snapshot: Snapshot,
    connection: PgConnection,
    *,
    scratch_database: str | None = None,
    keep: bool = False,
    max_shrink: float = DEFAULT_MAX_SHRINK,
    progress: Progress | None = None,
) -> DrillReport:
    """Restore into a scratch database, check it, drop it (unless `keep`); then compare
    what the snapshot recorded with the previous snapshot of the same database."""
    started = time.monotonic()
    facts = snapshot.metadata.get("postgres")
    source_db = str(facts.get("dbname", "?")) if isinstance(facts, Mapping) else "?"
    short = snapshot.id.hex()[:8] if snapshot.id else "unsaved"
    scratch = scratch_database or f"snapstore_drill_{short}_{secrets.token_hex(4)}"
    report = DrillReport(
        snapshot.id.hex() if snapshot.id else "", source_db, scratch, connection.describe()
    )
    try:
        exists = connection.database_exists(scratch)
    except CommandFailed as exc:
        raise SourceError(f"cannot reach PostgreSQL at {connection.describe()}: {exc}") from exc
    if exists:
        raise SourceError(
            f"scratch database {scratch!r} already exists; the drill never reuses one"
        )
    try:
        try:
            restored = restore_database(
                repo, snapshot, connection, DatabaseRestoreOptions(scratch, create=True), progress
            )
        except (SourceError, CommandFailed) as exc:
            report.add("restore", False, restore_error(exc))
        else:
            report.add("restore", True, f"{restored.dump_path}: {restored.bytes_restored} bytes")
            _check(report, snapshot, connection, scratch)
    finally:
        if keep:
            report.kept = _exists(connection, scratch)
        else:
            try:
                connection.drop_database(scratch)
                report.dropped = True
            except (SourceError, CommandFailed) as exc:
                report.add("drop scratch database", False, str(exc))
        report.duration_s = round(time.monotonic() - started, 3)
    previous = previous_snapshot(list_snapshots(repo), snapshot)
    if previous is not None and previous.id is not None:
        report.previous_snapshot_id = previous.id.hex()
    for name, passed, detail in history_checks(snapshot, previous, max_shrink):
        report.add(name, passed, detail)
    return report


def restore_error(exc: SnapstoreError) -> str:
    """pg_restore's first error lines (`ERROR:`, `error:`), not its last line: after an
    error it prints "Command was: ..." and more, which say nothing of the cause."""
    if not isinstance(exc, CommandFailed) or not exc.stderr_tail:
        return str(exc)
    errors = [
        " ".join(line.split()) for line in exc.stderr_tail.splitlines()
        if "error:" in line.lower() or "fatal:" in line.lower()
    ]  # fmt: skip
    if not errors:
        return str(exc)
    code = exc.returncode
    status = "was killed" if code is None or code < 0 else f"exited {code}"
    return f"{exc.command} {status}: " + "; ".join(errors[:RESTORE_ERROR_LINES])


def _exists(connection: PgConnection, dbname: str) -> bool:
    try:
        return connection.database_exists(dbname)
    except CommandFailed:
        return False


def _check(report: DrillReport, snapshot: Snapshot, connection: PgConnection, db: str) -> None:
    lines = connection.query(ROW_COUNTS_SQL, db)
    counts = {str(k): int(v) for k, v in json.loads(lines[0] if lines else "{}").items()}
    recorded = recorded_counts(snapshot)
    # A Mastodon database: by the snapshot's source, else by its tables.
    mastodon = snapshot.source == "mastodon" or "accounts" in (recorded or counts)
    expected = set(recorded or {}) | (set(MASTODON_TABLES) if mastodon else set())
    missing = sorted(expected - set(counts))
    if missing:
        report.add("tables present", False, "missing: " + ", ".join(missing))
    else:
        report.add("tables present", True, f"{len(counts)} tables")
    if mastodon:
        migrations = counts.get("schema_migrations")
        if migrations is None:
            report.add("schema_migrations", False, "table missing")
        else:
            report.add("schema_migrations", migrations > 0, f"{migrations} migrations")
    if recorded is None:
        restored = ", ".join(f"{t} {counts[t]}" for t in ("accounts", "statuses") if t in counts)
        detail = "none recorded at backup time: not compared"
        report.add("recorded counts", True, f"{detail} ({restored})" if restored else detail)
        return
    for table in sorted(recorded):
        want, got = recorded[table], counts.get(table)
        if got is None:
            report.add(f"rows {table}", False, f"table missing, {want} rows at backup")
        else:
            report.add(f"rows {table}", got == want, f"{got} restored, {want} at backup")
