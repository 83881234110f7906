"""snapstore.forget over a real (memory) repository: removes exactly the forgotten snapshot
objects, nothing on a dry run, nothing when a group would be emptied; the checker stays happy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import snapstore
from snapstore.backend.base import FileType
from snapstore.errors import UsageError
from snapstore.repository.repository import Repository
from tests.conftest import assert_repository_ok

START = datetime(2024, 1, 1, 12, tzinfo=UTC)


def take(repo: Repository, source: Path, days: list[int], host: str = "web1") -> list[str]:
    ids = []
    for day in days:
        options = snapstore.SnapshotOptions(time=START + timedelta(days=day), host=host)
        snap = snapstore.take_snapshot(repo, snapstore.FileSource([str(source)]), options).snapshot
        assert snap.id is not None
        ids.append(snap.id.hex())
    return ids


def stored(repo: Repository) -> set[str]:
    return {info.handle.name for info in repo.list_objects(FileType.SNAPSHOT)}


@pytest.fixture
def source(tmp_path: Path) -> Path:
    (tmp_path / "data.txt").write_text("hello\n")
    return tmp_path


def test_forget_removes_exactly_the_forgotten_snapshots(repo: Repository, source: Path) -> None:
    ids = take(repo, source, [0, 1, 2, 3, 4])
    policy = snapstore.RetentionPolicy(keep_last=2)

    preview = snapstore.forget(repo, policy, dry_run=True, tz=UTC)
    assert preview.dry_run and stored(repo) == set(ids)
    assert [s.id.hex() for s in preview.removed if s.id] == ids[2::-1]

    done = snapstore.forget(repo, policy, tz=UTC)
    assert stored(repo) == set(ids[3:])
    assert [d.reasons for d in done.groups[0].keep] == [("last #1",), ("last #2",)]
    assert snapstore.forget(repo, policy, tz=UTC).removed == []
    assert_repository_ok(repo)


def test_refused_plan_removes_nothing(repo: Repository, source: Path) -> None:
    ids = take(repo, source, [0, 1]) + take(repo, source, [0], host="db1")
    with pytest.raises(UsageError):
        snapstore.forget(repo, snapstore.RetentionPolicy())
    with pytest.raises(UsageError):  # no group would keep a snapshot
        snapstore.forget(repo, snapstore.RetentionPolicy(keep_tags=["nothing-has-this"]))
    assert stored(repo) == set(ids)
    assert_repository_ok(repo)
