"""repair_index: the index rebuilt from the index files that can be read and the packs' own
headers; the new files written before the old ones go, the last listing them all in
`supersedes`; a dry run changes nothing; a failing backend stops it before it changes
anything."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import snapstore
from snapstore.backend.base import Backend, FileType, Handle
from snapstore.backend.faulty import FaultyBackend, SimulatedCrash
from snapstore.errors import TransientBackendError, UsageError
from snapstore.ids import Id
from snapstore.repository.repository import DamagedObject, Repository
from tests.conftest import PASSWORD, assert_repository_ok, reopen
from tests.support.damage import flip_byte


def backup(repo: Repository, source: Path, name: str, size: int = 300_000) -> snapstore.Snapshot:
    (source / name).write_bytes(os.urandom(size))
    return snapstore.take_snapshot(repo, snapstore.FileSource([str(source)])).snapshot


def index_names(backend: Backend) -> set[str]:
    return {info.handle.name for info in backend.list(FileType.INDEX)}


def damage(backend: Backend, file_type: FileType, name: str) -> None:
    flip_byte(backend, Handle(file_type, name))


def damaged_on_open(repo: Repository) -> list[DamagedObject]:
    seen: list[DamagedObject] = []
    again = reopen(repo, load_index=False)
    again.on_damaged = seen.append
    again.load_index()
    return seen


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "source"
    path.mkdir()
    return path


def test_a_damaged_index_file_is_rebuilt_from_the_packs(repo: Repository, source: Path) -> None:
    backup(repo, source, "a.bin")
    (first,) = index_names(repo.backend)
    backup(repo, source, "b.bin")
    old = index_names(repo.backend)
    damage(repo.backend, FileType.INDEX, first)
    assert [d.name for d in damaged_on_open(repo)] == [first]

    report = snapstore.repair_index(repo)
    assert list(report.damaged_index_files) == [first]
    assert report.packs_indexed == report.packs == len(repo.list_packs())
    assert report.packs_from_headers >= 2  # a.bin's data pack and its tree pack at least
    assert report.index_files_deleted == len(old)
    assert index_names(repo.backend).isdisjoint(old)
    assert damaged_on_open(repo) == []
    assert_repository_ok(repo)


def test_the_last_new_file_supersedes_every_old_one(repo: Repository, source: Path) -> None:
    for name in ("a.bin", "b.bin", "c.bin"):
        backup(repo, source, name)
    old = index_names(repo.backend)
    snapstore.repair_index(repo)
    new = [repo.load_index_file(name) for name in index_names(repo.backend)]
    assert [sorted(Id(s).hex() for s in f.supersedes) for f in new if f.supersedes] == [sorted(old)]


def test_unindexed_packs_are_indexed(repo: Repository, source: Path) -> None:
    backup(repo, source, "a.bin")
    for name in index_names(repo.backend):  # as if every index file had been lost
        repo.backend.remove(Handle(FileType.INDEX, name))
    report = snapstore.repair_index(repo)
    assert report.packs_from_headers == report.packs_indexed == len(repo.list_packs())
    assert_repository_ok(repo)


def test_packs_that_are_gone_are_dropped(repo: Repository, source: Path) -> None:
    backup(repo, source, "a.bin")
    snap = backup(repo, source, "b.bin")
    node = next(n for path, n in snapstore.list_tree(repo, snap) if path.endswith("/b.bin"))
    location = repo.lookup(node.content[0])
    assert location is not None
    repo.backend.remove(Handle(FileType.PACK, location.pack_id.hex()))
    report = snapstore.repair_index(repo)
    assert report.vanished_packs == 1
    assert report.packs_indexed == len(repo.list_packs())
    assert location.pack_id not in reopen(repo).index.pack_ids()


def test_a_pack_shorter_than_its_index_says_is_read_from_its_header(
    repo: Repository, source: Path
) -> None:
    backup(repo, source, "a.bin")
    packs = repo.list_packs()
    pack_id, size = max(packs.items(), key=lambda item: item[1])
    handle = Handle(FileType.PACK, pack_id.hex())
    repo.backend.save(handle, repo.backend.load(handle)[: size // 2])  # cut short
    report = snapstore.repair_index(repo)
    assert list(report.damaged_packs) == [pack_id.hex()]
    assert report.packs_indexed == len(packs) - 1
    assert pack_id not in reopen(repo).index.pack_ids()


def test_read_all_packs_keeps_the_index_entries_of_a_pack_whose_header_alone_is_damaged(
    repo: Repository, source: Path
) -> None:
    backup(repo, source, "a.bin")
    packs = repo.list_packs()
    pack_id, size = max(packs.items(), key=lambda item: item[1])
    damage_at_end(repo.backend, Handle(FileType.PACK, pack_id.hex()), 30)
    assert snapstore.repair_index(repo).damaged_packs == {}  # its entries fit: not read
    report = snapstore.repair_index(repo, read_all_packs=True)
    assert report.headers_read == len(packs)
    assert list(report.damaged_packs) == [pack_id.hex()]
    assert "index entries are kept" in report.damaged_packs[pack_id.hex()]
    assert report.packs_indexed == len(packs)


def damage_at_end(backend: Backend, handle: Handle, from_end: int) -> None:
    data = bytearray(backend.load(handle))
    data[-from_end] ^= 0x01
    backend.save(handle, bytes(data))


def test_a_dry_run_changes_nothing(repo: Repository, source: Path) -> None:
    backup(repo, source, "a.bin")
    (name,) = index_names(repo.backend)
    damage(repo.backend, FileType.INDEX, name)
    report = snapstore.repair_index(repo, dry_run=True)
    assert report.dry_run and list(report.damaged_index_files) == [name]
    assert report.index_files_written == 0 and report.index_files_deleted == 1  # would be
    assert index_names(repo.backend) == {name}


def test_it_needs_an_exclusive_lock(repo: Repository) -> None:
    repo.lock(exclusive=False)
    with pytest.raises(UsageError, match="exclusive lock"):
        snapstore.repair_index(repo)


def test_a_failing_backend_stops_it_before_anything_changes(source: Path, backend: Backend) -> None:
    faulty = FaultyBackend(backend)
    repo = Repository.init(faulty, PASSWORD, kdf=snapstore.TEST_KDF, pack_size=1 << 20)
    backup(repo, source, "a.bin")
    before = index_names(backend)
    faulty.fail("load", times=None, file_type=FileType.INDEX, error=TransientBackendError("reset"))
    with pytest.raises(TransientBackendError):
        snapstore.repair_index(repo)
    assert index_names(backend) == before


def test_a_crash_between_writing_and_deleting_leaves_every_snapshot_readable(
    source: Path, backend: Backend
) -> None:
    faulty = FaultyBackend(backend)
    repo = Repository.init(faulty, PASSWORD, kdf=snapstore.TEST_KDF, pack_size=1 << 20)
    snaps = [backup(repo, source, name) for name in ("a.bin", "b.bin")]
    first = sorted(index_names(backend))[0]
    damage(backend, FileType.INDEX, first)
    faulty.fail("remove", file_type=FileType.INDEX, error=SimulatedCrash())
    with pytest.raises(SimulatedCrash):
        snapstore.repair_index(repo)
    faulty.clear()
    again = reopen(repo, load_index=False)
    again.on_damaged = lambda damaged: None
    again.load_index()
    for snap in snaps:
        for path, node in snapstore.list_tree(again, snap):
            if node.type is snapstore.NodeType.FILE:
                assert b"".join(snapstore.dump_file(again, snap, path))
    snapstore.repair_index(again)  # a second run finishes the job
    assert_repository_ok(again)
