"""The drill's `latest` is the newest complete snapshot with a database dump (issue 12,
item 4): a night whose Redis or media failed is not what a restore drill proves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from snapstore.archiver.archiver import Archiver, SnapshotOptions
from snapstore.errors import SnapshotNotFound
from snapstore.repository.repository import Repository
from snapstore.snapshot.manifest import Snapshot
from snapstore.sources.drill import latest_database_snapshot
from tests.conftest import assert_repository_ok
from tests.support.memory_source import File, MemorySource

WHEN = datetime(2026, 5, 1, 3, 0, tzinfo=UTC)


def take(repo: Repository, day: int, *, fail: bool, dump: bool = True) -> Snapshot:
    broken = File(b"", open_error=OSError(5, "Input/output error"))
    source = MemorySource({"db.dump": b"PGDMP", "media.bin": broken if fail else b"media"},
                          meta={"postgres": {"dbname": "mastodon"}} if dump else {})
    options = SnapshotOptions(time=WHEN + timedelta(days=day), host="h", user="u")
    return Archiver(repo).run(source, options).snapshot


def test_the_drill_passes_over_incomplete_snapshots(repo: Repository) -> None:
    with pytest.raises(SnapshotNotFound, match="has no snapshots with a database dump"):
        latest_database_snapshot(repo)
    bad = take(repo, 0, fail=True)
    with pytest.raises(SnapshotNotFound, match=f"the newest, {bad.short_id}, is incomplete"):
        latest_database_snapshot(repo)
    good = take(repo, 1, fail=False)
    take(repo, 2, fail=True)
    take(repo, 3, fail=False, dump=False)
    assert latest_database_snapshot(repo).id == good.id
    assert_repository_ok(repo)
