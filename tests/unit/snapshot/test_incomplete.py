"""Incomplete snapshots (issue 12, item 4): one definition (`Snapshot.complete`, the failed
Mastodon parts), and `latest` naming the newest complete snapshot, never an incomplete one,
unless the incomplete one is named by its id."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from snapstore.archiver.archiver import Archiver, SnapshotOptions
from snapstore.errors import SnapshotNotFound
from snapstore.ids import Id
from snapstore.repository.repository import Repository
from snapstore.snapshot.manifest import Snapshot, Summary
from snapstore.snapshot.store import find_snapshot, newest_complete
from tests.conftest import assert_repository_ok
from tests.support.memory_source import File, MemorySource

WHEN = datetime(2026, 5, 1, 3, 0, tzinfo=UTC)


def record(errors: int = 0, metadata: dict[str, Any] | None = None, day: int = 0) -> Snapshot:
    return Snapshot(time=WHEN + timedelta(days=day), host="h", user="u", tags=[],
                    source="mastodon", paths=["/"], tree=Id(bytes(32)),
                    summary=Summary(files=3, errors=errors), metadata=metadata or {},
                    id=Id(bytes([day]) * 32))


def mastodon_parts(**parts: str) -> dict[str, Any]:
    return {"mastodon": {"parts": parts}}


def test_complete_means_no_errors_and_the_failed_parts_come_from_the_mastodon_record() -> None:
    ok = record(metadata=mastodon_parts(postgres="ok", redis="skipped: not asked for"))
    assert ok.complete and ok.failed_parts == [] and ok.describe_incomplete() == ""
    failed = record(errors=2, metadata=mastodon_parts(
        postgres="ok", redis="failed: connection refused", config="ok",
        media="failed: media directory /x does not exist", media_cache="skipped: refetched"))
    assert not failed.complete
    assert failed.failed_parts == ["redis", "media"]  # in the order recorded
    assert failed.describe_incomplete() == "incomplete (redis, media)"
    # a files snapshot with an unreadable file: no parts, the error count says what is known
    assert record(errors=1).describe_incomplete() == "incomplete (1 error)"
    assert record(errors=3).describe_incomplete() == "incomplete (3 errors)"


@pytest.mark.parametrize("metadata", [
    {"mastodon": "not a map"}, {"mastodon": {"parts": ["redis"]}},
    {"mastodon": {"parts": {"redis": 1, "media": None}}}, {"postgres": {"parts": {"x": "failed"}}},
])
def test_failed_parts_of_odd_metadata_are_none(metadata: dict[str, Any]) -> None:
    snap = record(errors=1, metadata=metadata)
    assert snap.failed_parts == [] and not snap.complete


def test_newest_complete_passes_over_incomplete_ones() -> None:
    older, newer = record(day=0), record(errors=1, day=1)
    assert newest_complete([older, newer]) is older
    with pytest.raises(SnapshotNotFound, match="has no snapshots"):
        newest_complete([])
    with pytest.raises(SnapshotNotFound, match="has no snapshots with a database dump"):
        newest_complete([], "snapshots with a database dump")
    only = [record(errors=1, day=0),
            record(errors=2, day=1, metadata=mastodon_parts(redis="failed: down"))]
    with pytest.raises(SnapshotNotFound) as raised:
        newest_complete(only)
    assert f"the newest, {only[1].short_id}, is incomplete (redis)" in str(raised.value)
    assert "name it by its id" in str(raised.value)


def take(repo: Repository, day: int, fail: bool) -> Snapshot:
    broken = File(b"", open_error=PermissionError(13, "Permission denied"))
    tree = {"a.txt": b"alpha", "b.txt": broken if fail else b"beta"}
    options = SnapshotOptions(time=WHEN + timedelta(days=day), host="h", user="u")
    return Archiver(repo).run(MemorySource(tree), options).snapshot


def test_latest_is_the_newest_complete_snapshot_and_an_id_names_any(repo: Repository) -> None:
    good = take(repo, 0, fail=False)
    bad = take(repo, 1, fail=True)
    assert good.complete and not bad.complete
    assert find_snapshot(repo, "latest").id == good.id
    assert bad.id is not None and find_snapshot(repo, bad.id.hex()[:8]).id == bad.id
    newer = take(repo, 2, fail=False)
    assert find_snapshot(repo, "latest").id == newer.id
    assert_repository_ok(repo)


def test_latest_with_only_incomplete_snapshots_names_the_newest(repo: Repository) -> None:
    take(repo, 0, fail=True)
    newest = take(repo, 1, fail=True)
    with pytest.raises(SnapshotNotFound, match=f"the newest, {newest.short_id}, is incomplete"):
        find_snapshot(repo, "latest")
    assert_repository_ok(repo)
