"""snapstore.health: the verdict over groups, locks and the last check, and the check record."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from snapstore.backend.base import FileType
from snapstore.health import (
    CheckRecord,
    HealthOptions,
    assess_health,
    judge,
    load_check_record,
    save_check_record,
)
from snapstore.ids import Id
from snapstore.repository.lock import LockInfo
from snapstore.repository.repository import Repository
from snapstore.snapshot.manifest import Snapshot, Summary
from tests.conftest import assert_repository_ok

NOW = datetime(2026, 12, 7, 4, 0, tzinfo=UTC)
GOOD_CHECK = CheckRecord(NOW - timedelta(days=1), ok=True)
DAY = HealthOptions(max_age=timedelta(hours=26))


def snap(hours_ago: float, host: str = "h", paths: tuple[str, ...] = ("/srv",), errors: int = 0,
         tags: tuple[str, ...] = ()) -> Snapshot:
    return Snapshot(time=NOW - timedelta(hours=hours_ago), host=host, user="u", tags=list(tags),
                    source="files", paths=list(paths), tree=Id(bytes(32)),
                    summary=Summary(errors=errors), id=Id(bytes([int(hours_ago)]) * 32))


def test_fresh_groups_are_healthy() -> None:
    report = judge([snap(30), snap(2), snap(5, paths=("/etc",))], [], GOOD_CHECK, DAY, NOW)
    assert report.ok and report.problems == []
    assert [(g.paths, g.age) for g in report.groups] == [
        (("/etc",), timedelta(hours=5)), (("/srv",), timedelta(hours=2))]
    assert report.line().startswith("ok: 2 groups of snapshots, the newest complete one at most 5h old")


def test_an_overdue_group_or_an_incomplete_newest_is_unhealthy() -> None:
    report = judge([snap(2), snap(27, paths=("/etc",))], [], GOOD_CHECK, DAY, NOW)
    assert not report.ok
    assert report.line() == ("unhealthy: h:/etc: newest complete snapshot 1b1b1b1b is 1d3h old "
                             "(max 1d2h)")
    # an incomplete snapshot never counts as the newest complete one
    report = judge([snap(30), snap(1, errors=2)], [], GOOD_CHECK, DAY, NOW)
    assert report.groups[0].newest is not None and report.groups[0].age == timedelta(hours=30)
    assert not report.ok
    only_incomplete = judge([snap(1, errors=1)], [], GOOD_CHECK, DAY, NOW)
    assert only_incomplete.problems == ["h:/srv has no complete snapshot"]


def test_no_snapshots_and_filters() -> None:
    assert judge([], [], GOOD_CHECK, DAY, NOW).problems == ["no snapshots"]


def test_the_last_check() -> None:
    fresh = [snap(1)]
    assert judge(fresh, [], None, DAY, NOW).problems == [
        "no check has been recorded (run snapstore check)"]
    lenient = HealthOptions(max_age=timedelta(hours=26), require_check=False)
    assert judge(fresh, [], None, lenient, NOW).ok
    damaged = CheckRecord(NOW - timedelta(hours=3), ok=False, errors=4)
    assert judge(fresh, [], damaged, DAY, NOW).problems == [
        "the last check (2026-12-07 01:00) found 4 errors"]
    weekly = HealthOptions(max_age=timedelta(hours=26), max_check_age=timedelta(days=8))
    old = CheckRecord(NOW - timedelta(days=9), ok=True)
    assert judge(fresh, [], old, weekly, NOW).problems == ["the last check is 9d old (max 8d)"]


def test_check_record_round_trip_and_damage(tmp_path: Path) -> None:
    assert load_check_record(tmp_path, "repo-id") is None
    save_check_record(tmp_path, "repo-id", GOOD_CHECK)
    assert load_check_record(tmp_path, "repo-id") == GOOD_CHECK
    (tmp_path / "repo-id" / "last-check.json").write_text('{"time": "2026-01-01T00:00:00"}')
    assert load_check_record(tmp_path, "repo-id") is None  # unreadable: as if none


def test_assess_reads_hosts_tags_and_stale_locks(repo: Repository) -> None:
    old = LockInfo(False, "gone-host", 4242, "u", NOW - timedelta(hours=2), NOW - timedelta(hours=2))
    repo.save_object(FileType.LOCK, old.encode())
    live = LockInfo(False, "other-host", 4242, "u", NOW, NOW - timedelta(minutes=1))
    repo.save_object(FileType.LOCK, live.encode())
    report = assess_health(repo, DAY, GOOD_CHECK, now=NOW)
    assert [lock.info.host for lock in report.stale_locks if lock.info] == ["gone-host"]
    assert report.problems[0] == "no snapshots"
    assert report.problems[1].startswith("stale lock: a shared lock held by u@gone-host (pid 4242)")
    filtered = assess_health(repo, HealthOptions(timedelta(hours=1), hosts=["x"]), GOOD_CHECK, NOW)
    assert filtered.problems[0] == "no snapshots match"
    assert_repository_ok(repo)
