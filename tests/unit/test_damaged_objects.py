"""One damaged object does not block the others (issue 10, item 5): a snapshot that cannot be
read is left out of every listing and named; an index file that cannot be read is left out,
what it described is found again from the packs' own headers, and a writer names those packs
in a new index file before it stores anything. A handle that was not asked to carry on (no
`on_damaged`) raises as before, and a failing backend is never taken for damage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import snapstore
from snapstore.backend.base import Backend, FileType, Handle
from snapstore.crypto.kdf import TEST_KDF
from snapstore.errors import IntegrityError, TransientBackendError
from snapstore.pack import BlobType
from snapstore.repository.repository import DamagedObject, Repository
from snapstore.snapshot.store import find_snapshot, list_snapshots
from tests.conftest import PASSWORD, assert_repository_ok, reopen
from tests.support.damage import flip_byte

START = datetime(2024, 1, 1, 12, tzinfo=UTC)


def take(repo: Repository, source: Path, days: list[int]) -> list[str]:
    ids = []
    for day in days:
        (source / f"day{day}.txt").write_text(f"day {day}\n" * 1000)
        options = snapstore.SnapshotOptions(time=START + timedelta(days=day), host="web1")
        snap = snapstore.take_snapshot(repo, snapstore.FileSource([str(source)]), options).snapshot
        assert snap.id is not None
        ids.append(snap.id.hex())
    return ids


def damage(backend: Backend, file_type: FileType, name: str) -> None:
    flip_byte(backend, Handle(file_type, name))


def tolerant(repo: Repository) -> tuple[Repository, list[DamagedObject]]:
    """A fresh handle that skips damaged objects, as open_repository's does."""
    seen: list[DamagedObject] = []
    again = reopen(repo, load_index=False)
    again.on_damaged = seen.append
    again.load_index()
    return again, seen


def stored_snapshots(repo: Repository) -> set[str]:
    return {info.handle.name for info in repo.list_objects(FileType.SNAPSHOT)}


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "source"
    path.mkdir()
    return path


def test_a_damaged_snapshot_is_left_out_of_listings_and_named(repo: Repository, source: Path) -> None:
    ids = take(repo, source, [0, 1, 2])
    damage(repo.backend, FileType.SNAPSHOT, ids[2])

    with pytest.raises(IntegrityError):  # a handle not asked to carry on raises as before
        list_snapshots(reopen(repo))

    handle, seen = tolerant(repo)
    assert [s.id.hex() for s in list_snapshots(handle) if s.id] == ids[:2]
    latest = find_snapshot(handle, "latest")
    assert latest.id is not None and latest.id.hex() == ids[1]  # the newest that can be read
    assert [(d.kind, d.name) for d in seen] == [("snapshot", ids[2])]  # named once, listed twice
    assert handle.damaged == seen
    with pytest.raises(IntegrityError, match=f"snapshot {ids[2][:8]} is damaged"):
        find_snapshot(handle, ids[2][:10])


def test_a_backend_failure_is_not_damage(repo: Repository) -> None:
    seen: list[DamagedObject] = []
    repo.on_damaged = seen.append
    with pytest.raises(TransientBackendError):
        repo.skip_damaged(FileType.SNAPSHOT, "ab" * 32, TransientBackendError("connection reset"))
    assert seen == [] and repo.damaged == []


def test_forget_leaves_a_damaged_snapshot_alone_and_removes_no_more(
    repo: Repository, source: Path
) -> None:
    ids = take(repo, source, [0, 1, 2, 3])
    damage(repo.backend, FileType.SNAPSHOT, ids[3])  # the newest: keep-last 1 would keep it
    handle, _ = tolerant(repo)
    result = snapstore.forget(handle, snapstore.RetentionPolicy(keep_last=1), tz=UTC)
    # Without the damage, ids[2] would have gone; with it, it is the newest snapshot known.
    assert [s.id.hex() for s in result.kept if s.id] == [ids[2]]
    assert sorted(s.id.hex() for s in result.removed if s.id) == sorted(ids[:2])
    assert result.damaged == [ids[3]]
    assert stored_snapshots(repo) == {ids[2], ids[3]}


def test_forget_with_an_older_damaged_snapshot(repo: Repository, source: Path) -> None:
    ids = take(repo, source, [0, 1, 2, 3])
    damage(repo.backend, FileType.SNAPSHOT, ids[1])
    handle, _ = tolerant(repo)
    result = snapstore.forget(handle, snapstore.RetentionPolicy(keep_last=2), tz=UTC)
    assert [s.id.hex() for s in result.removed if s.id] == [ids[0]]
    assert stored_snapshots(repo) == {ids[1], ids[2], ids[3]}  # the damaged one stays


def test_stats_names_the_snapshots_it_left_out(repo: Repository, source: Path) -> None:
    ids = take(repo, source, [0, 1])
    damage(repo.backend, FileType.SNAPSHOT, ids[0])
    handle, _ = tolerant(repo)
    stats = snapstore.repository_stats(handle)
    assert stats.snapshots == 1 and stats.damaged_snapshots == [ids[0]]


def test_prune_still_refuses_and_points_to_repair(repo: Repository, source: Path) -> None:
    ids = take(repo, source, [0, 1])
    damage(repo.backend, FileType.SNAPSHOT, ids[0])
    handle, _ = tolerant(repo)
    packs_before = set(handle.list_packs())
    with pytest.raises(IntegrityError, match="repair snapshots --forget"):
        snapstore.prune(handle)
    assert set(handle.list_packs()) == packs_before


# -- index files -----------------------------------------------------------------------------
def index_names(backend: Backend) -> set[str]:
    return {info.handle.name for info in backend.list(FileType.INDEX)}


@pytest.fixture
def local(tmp_path: Path, source: Path) -> tuple[str, list[str], str]:
    """A local repository with two snapshots, each named by its own index file, the first of
    which is damaged; returns (location, snapshot ids, the damaged index file's name)."""
    location = str(tmp_path / "repo")
    with snapstore.init_repository(location, PASSWORD, kdf=TEST_KDF) as repo:
        first = take(repo, source, [0])
        first_index = index_names(repo.backend)
        second = take(repo, source, [1])
        (name,) = first_index
        damage(repo.backend, FileType.INDEX, name)
    return location, first + second, name


def day0_path(repo: Repository, snap: snapstore.Snapshot) -> str:
    return next(path for path, _ in snapstore.list_tree(repo, snap) if path.endswith("/day0.txt"))


def test_open_repository_finds_what_a_damaged_index_file_described(
    local: tuple[str, list[str], str], tmp_path: Path
) -> None:
    location, ids, bad = local
    seen: list[DamagedObject] = []
    with snapstore.open_repository(location, PASSWORD, on_damaged=seen.append) as repo:
        assert [(d.kind, d.name) for d in seen] == [("index", bad)]
        assert repo.damaged == seen
        first = find_snapshot(repo, ids[0])
        result = snapstore.restore(repo, first, tmp_path / "restored")
        assert result.errors == []
        assert next((tmp_path / "restored").rglob("day0.txt")).read_text() == "day 0\n" * 1000
        dumped = b"".join(snapstore.dump_file(repo, first, day0_path(repo, first)))
        assert dumped == b"day 0\n" * 1000


def test_a_backup_names_the_rebuilt_packs(local: tuple[str, list[str], str], source: Path) -> None:
    location, ids, bad = local
    with snapstore.open_repository(location, PASSWORD, lock="shared") as repo:
        take(repo, source, [2])
        repo.backend.remove(Handle(FileType.INDEX, bad))  # as if it had never been there
    with snapstore.open_repository(location, PASSWORD, load_index=False) as repo:
        assert_repository_ok(repo)  # every snapshot's blobs are named by a stored index file


def test_any_writer_names_the_rebuilt_packs_before_its_first_blob(
    local: tuple[str, list[str], str],
) -> None:
    location, ids, bad = local
    with snapstore.open_repository(location, PASSWORD, lock="shared") as repo:
        before = index_names(repo.backend)
        repo.save_blob(BlobType.DATA, b"one more blob")
        assert len(index_names(repo.backend) - before) == 1  # written before the blob's pack
        repo.flush()
        repo.backend.remove(Handle(FileType.INDEX, bad))
    with snapstore.open_repository(location, PASSWORD, load_index=False) as repo:
        assert_repository_ok(repo)


def test_a_reader_writes_nothing(local: tuple[str, list[str], str]) -> None:
    location, ids, bad = local
    with snapstore.open_repository(location, PASSWORD, lock="shared") as repo:
        before = index_names(repo.backend)
        list(snapstore.list_tree(repo, find_snapshot(repo, "latest")))
        assert index_names(repo.backend) == before
