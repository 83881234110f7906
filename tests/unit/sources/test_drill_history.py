"""The drill against history: the previous snapshot of the same database, and what fails."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from snapstore.errors import RestoreFailed
from snapstore.ids import Id
from snapstore.snapshot.manifest import Snapshot, Summary
from snapstore.sources.drill import restore_error
from snapstore.sources.drill_history import history_checks, previous_snapshot

WHEN = datetime(2026, 12, 6, 3, 15, tzinfo=UTC)
COUNTS = {"accounts": 30, "favourites": 401_703, "statuses": 300, "schema_migrations": 7}


def record(day: int, counts: dict[str, int] | None = COUNTS, *, size: int | None = 8_000_000,
           errors: int = 0, host: str = "mastodon.host", dbname: str = "mastodon_production",
           source: str = "mastodon") -> Snapshot:  # fmt: skip
    facts: dict[str, object] = {"dbname": dbname}
    if counts is not None:
        facts["row_counts"] = dict(counts)
    if size is not None:
        facts["database_size"] = size
    return Snapshot(
        time=WHEN + timedelta(days=day), host=host, user="root", tags=[], source=source,
        paths=[], tree=Id(bytes(32)), summary=Summary(errors=errors),
        metadata={"postgres": facts}, id=Id(bytes([day % 256]) * 32),
    )  # fmt: skip


def failures(checks: list[tuple[str, bool, str]]) -> dict[str, str]:
    return {name: detail for name, passed, detail in checks if not passed}


def test_previous_is_the_newest_older_complete_snapshot_of_the_same_database() -> None:
    wanted = record(1)
    drilled = record(5)
    others = [
        record(0), wanted,
        record(2, errors=1),                 # incomplete
        record(3, host="elsewhere"),         # another host
        record(4, dbname="other_db"),        # another database
        record(4, source="postgres"),        # another source
        record(4, counts=None),              # no counts recorded
        record(6),                           # newer than the drilled one
    ]  # fmt: skip
    assert previous_snapshot([*others, drilled], drilled) is wanted
    assert previous_snapshot([drilled], drilled) is None


def test_a_table_emptied_overnight_fails_with_both_numbers() -> None:
    emptied = record(1, {**COUNTS, "favourites": 0})
    failed = failures(history_checks(emptied, record(0)))
    assert failed == {
        "history rows favourites":
            "favourites: 401703 → 0 rows since snapshot 00000000 (2026-12-06 03:15)",
    }  # fmt: skip


def test_a_normal_day_passes_and_says_what_it_compared() -> None:
    grown = record(1, {**COUNTS, "favourites": 401_900, "statuses": 335}, size=8_100_000)
    checks = history_checks(grown, record(0))
    assert failures(checks) == {}
    details = {name: detail for name, _, detail in checks}
    assert details["history"] == "compared with snapshot 00000000 (2026-12-06 03:15)"
    assert "4 tables, none lost more than 50% of its rows" in details["history rows"]
    assert details["history database size"].startswith("8000000 → 8100000 bytes since")


def test_thresholds_vital_tables_small_tables_and_vanished_tables() -> None:
    before = record(0, {**COUNTS, "announcements": 3, "follows": 1_000})
    after = record(1, {"accounts": 0, "statuses": 300, "schema_migrations": 7,
                       "favourites": 300_000, "announcements": 0, "follows": 400})  # fmt: skip
    failed = failures(history_checks(after, before, max_shrink=100))
    # accounts emptied fails whatever the threshold; announcements had too few rows to judge
    assert set(failed) == {"history rows accounts"}
    failed = failures(history_checks(after, before, max_shrink=50))
    assert set(failed) == {"history rows accounts", "history rows follows"}
    gone = record(1, {k: v for k, v in COUNTS.items() if k != "favourites"})
    assert failures(history_checks(gone, record(0)))["history tables"].endswith(": favourites")


def test_database_size_shrinking_fails_and_an_old_snapshot_without_one_is_a_note() -> None:
    failed = failures(history_checks(record(1, size=3_000_000), record(0)))
    assert failed == {"history database size":
                      "8000000 → 3000000 bytes since snapshot 00000000 (2026-12-06 03:15)"}
    checks = history_checks(record(1), record(0, size=None))
    assert failures(checks) == {}
    assert any(name == "history database size" and "not compared" in detail
               for name, _, detail in checks)  # fmt: skip


def test_nothing_to_compare_with_passes_and_says_so() -> None:
    assert history_checks(record(0), None) == [
        ("history", True, "no earlier complete snapshot of this database with recorded "
         "counts: nothing to compare with"),
    ]  # fmt: skip


def test_a_failed_restore_shows_pg_restores_first_error_not_its_last_line() -> None:
    stderr = (
        "pg_restore: while PROCESSING TOC:\n"
        "pg_restore: from TOC entry 215; 1259 16390 TABLE accounts mastodon\n"
        'pg_restore: error: could not execute query: ERROR:  role "mastodon" does not exist\n'
        "Command was: ALTER TABLE public.accounts OWNER TO mastodon;\n"
    )
    detail = restore_error(RestoreFailed("pg_restore", 1, stderr))
    assert detail == ('pg_restore exited 1: pg_restore: error: could not execute query: '
                      'ERROR: role "mastodon" does not exist')  # fmt: skip
    assert restore_error(RestoreFailed("pg_restore", 1, "no such thing\n")) == (
        "pg_restore exited 1: no such thing"
    )
