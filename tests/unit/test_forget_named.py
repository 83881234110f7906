"""snapstore.forget with snapshot_ids (restic's `forget ID...`, issue 10, item 9): exactly the
snapshots named go (ids, prefixes, `latest`, each once), nothing on a dry run, nothing at all
when one name matches nothing; no policy with names, and host/tag/path filters narrow `latest`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import snapstore
from snapstore.backend.base import FileType
from snapstore.errors import SnapshotNotFound, UsageError
from snapstore.repository.repository import Repository
from tests.conftest import assert_repository_ok

START = datetime(2024, 1, 1, 12, tzinfo=UTC)
NO_POLICY = snapstore.RetentionPolicy()


def _take(repo: Repository, source: Path, count: int) -> list[str]:
    ids = []
    for day in range(count):
        options = snapstore.SnapshotOptions(time=START + timedelta(days=day), host="web1")
        snap = snapstore.take_snapshot(repo, snapstore.FileSource([str(source)]), options).snapshot
        assert snap.id is not None
        ids.append(snap.id.hex())
    return ids


def _stored(repo: Repository) -> set[str]:
    return {info.handle.name for info in repo.list_objects(FileType.SNAPSHOT)}


@pytest.fixture
def source(tmp_path: Path) -> Path:
    (tmp_path / "data.txt").write_text("hello\n")
    return tmp_path


def test_forget_removes_exactly_the_snapshots_named(repo: Repository, source: Path) -> None:
    ids = _take(repo, source, 4)
    names = [ids[0][:8], "latest", ids[0], ids[3][:12]]  # the first twice, the last twice
    preview = snapstore.forget(repo, NO_POLICY, snapshot_ids=names, dry_run=True)
    assert [s.id.hex() for s in preview.removed if s.id] == [ids[3], ids[0]]  # newest first
    assert preview.kept == [] and _stored(repo) == set(ids)

    done = snapstore.forget(repo, NO_POLICY, snapshot_ids=names)
    assert {s.id.hex() for s in done.removed if s.id} == {ids[0], ids[3]}
    assert _stored(repo) == {ids[1], ids[2]}
    assert_repository_ok(repo)


def test_a_name_that_matches_nothing_removes_nothing(repo: Repository, source: Path) -> None:
    ids = _take(repo, source, 2)
    with pytest.raises(SnapshotNotFound):
        snapstore.forget(repo, NO_POLICY, snapshot_ids=[ids[0], "ffffffffffff"])
    assert _stored(repo) == set(ids)


def test_names_take_no_policy(repo: Repository, source: Path) -> None:
    ids = _take(repo, source, 2)
    with pytest.raises(UsageError, match="keep rules"):
        snapstore.forget(repo, snapstore.RetentionPolicy(keep_last=1), snapshot_ids=[ids[0]])
    assert _stored(repo) == set(ids)


def test_filters_narrow_latest_among_the_names(repo: Repository, source: Path) -> None:
    ids = _take(repo, source, 2)
    other = snapstore.take_snapshot(repo, snapstore.FileSource([str(source)]), snapstore.SnapshotOptions(
        time=START + timedelta(days=5), host="db1")).snapshot
    web1 = snapstore.SnapshotFilter(hosts=["web1"])
    done = snapstore.forget(repo, NO_POLICY, snapshot_ids=["latest"], selection=web1)
    assert [s.id.hex() for s in done.removed if s.id] == [ids[1]]  # web1's newest, not db1's
    assert other.id is not None and _stored(repo) == {ids[0], other.id.hex()}
    with pytest.raises(SnapshotNotFound, match="host nowhere"):
        snapstore.forget(repo, NO_POLICY, snapshot_ids=["latest"],
                         selection=snapstore.SnapshotFilter(hosts=["nowhere"]))
    assert_repository_ok(repo)
