"""The drill against history: what a snapshot recorded, compared with the night before.

A dump taken while `favourites` was being emptied restores perfectly and matches its own
counts (issue 12): only the previous snapshot shows that 401,703 rows became 0. So besides
restoring, the drill compares each table's row count and the database size recorded at
backup time with those of the previous snapshot of the same database: the newest complete
snapshot older than the drilled one with the same source, host and database name that has
recorded counts. Pure: snapshots and numbers in, (name, passed, detail) checks out.

What fails:
- a table that lost more than `max_shrink` percent of its rows (default 50). A table that had
  fewer than MIN_ROWS_JUDGED rows is not judged by percentage: a handful of rows (an
  announcement, a push subscription) come and go on a small instance;
- any of accounts, statuses, users going from non-zero to 0, whatever the threshold;
- a table present before and gone now;
- the database size shrinking by more than `max_shrink` percent (recorded since 51677d5; when
  either snapshot lacks it, a passing check says it was not compared).
With no previous snapshot, one passing check says there is nothing to compare with.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from snapstore.snapshot.manifest import Snapshot

DEFAULT_MAX_SHRINK = 50.0
VITAL_TABLES = ("accounts", "statuses", "users")
MIN_ROWS_JUDGED = 10

Check = tuple[str, bool, str]


def _facts(snapshot: Snapshot) -> Mapping[str, object]:
    facts = snapshot.metadata.get("postgres")
    return facts if isinstance(facts, Mapping) else {}


def recorded_counts(snapshot: Snapshot) -> dict[str, int] | None:
    """Row counts recorded at backup time, or None when none were."""
    counts = _facts(snapshot).get("row_counts")
    if not isinstance(counts, Mapping):
        return None
    return {str(table): int(rows) for table, rows in counts.items()}


def recorded_size(snapshot: Snapshot) -> int | None:
    """pg_database_size at backup time, or None for a snapshot that predates recording it."""
    size = _facts(snapshot).get("database_size")
    return size if isinstance(size, int) and not isinstance(size, bool) else None


def database_name(snapshot: Snapshot) -> str | None:
    name = _facts(snapshot).get("dbname")
    return str(name) if name is not None else None


def previous_snapshot(snapshots: Sequence[Snapshot], snapshot: Snapshot) -> Snapshot | None:
    """The newest snapshot older than `snapshot` of the same source, host and database that
    is complete and has recorded counts; `snapshots` oldest first (list_snapshots)."""
    key = (snapshot.source, snapshot.host, database_name(snapshot))
    for candidate in reversed(snapshots):
        if candidate.time >= snapshot.time or candidate.id == snapshot.id:
            continue
        if (candidate.source, candidate.host, database_name(candidate)) != key:
            continue
        if candidate.complete and recorded_counts(candidate) is not None:
            return candidate
    return None


def describe(snapshot: Snapshot) -> str:
    """"snapshot 1a2b3c4d (2026-12-06 03:15)", in the time zone it was taken in."""
    return f"snapshot {snapshot.short_id} ({snapshot.time.strftime('%Y-%m-%d %H:%M')})"


def _shrunk(before: int, after: int, max_shrink: float) -> bool:
    return before > 0 and (before - after) * 100 > max_shrink * before


def history_checks(
    snapshot: Snapshot, previous: Snapshot | None, max_shrink: float = DEFAULT_MAX_SHRINK
) -> list[Check]:
    """The checks against `previous` (None: one check saying there is nothing to compare)."""
    if previous is None:
        return [("history", True, "no earlier complete snapshot of this database with "
                 "recorded counts: nothing to compare with")]  # fmt: skip
    since = f"since {describe(previous)}"
    checks: list[Check] = [("history", True, f"compared with {describe(previous)}")]
    now, before = recorded_counts(snapshot), recorded_counts(previous)
    if now is None or before is None:
        checks.append(("history rows", True, "no counts recorded in this snapshot: not compared"))
    else:
        checks += _row_checks(now, before, max_shrink, since)
    size_now, size_before = recorded_size(snapshot), recorded_size(previous)
    if size_now is None or size_before is None:
        older = snapshot if size_now is None else previous
        checks.append(("history database size", True, f"not recorded in {describe(older)} "
                       "(taken before sizes were recorded): not compared"))  # fmt: skip
    else:
        detail = f"{size_before} → {size_now} bytes {since}"
        checks.append(("history database size", not _shrunk(size_before, size_now, max_shrink),
                       detail))  # fmt: skip
    return checks


def _row_checks(
    now: Mapping[str, int], before: Mapping[str, int], max_shrink: float, since: str
) -> list[Check]:
    checks: list[Check] = []
    gone = sorted(set(before) - set(now))
    if gone:
        checks.append(("history tables", False, f"gone {since}: " + ", ".join(gone)))
    for table in sorted(set(before) & set(now)):
        old, new = before[table], now[table]
        emptied = table in VITAL_TABLES and old > 0 and new == 0
        judged = old >= MIN_ROWS_JUDGED and _shrunk(old, new, max_shrink)
        if emptied or judged:
            checks.append((f"history rows {table}", False, f"{table}: {old} → {new} rows {since}"))
    if not checks:
        checks.append(("history rows", True, f"{len(now)} tables, none lost more than "
                       f"{max_shrink:g}% of its rows {since}"))  # fmt: skip
    return checks
