"""Prune over the memory backend: space comes back, kept snapshots stay whole, nothing is
deleted on incomplete knowledge, and a crash after any backend write leaves a good repository."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from snapstore.archiver.archiver import Archiver, SnapshotOptions
from snapstore.backend.base import Backend, FileInfo, FileType, Handle
from snapstore.backend.faulty import SimulatedCrash
from snapstore.backend.memory import MemoryBackend
from snapstore.crypto.kdf import TEST_KDF
from snapstore.errors import IntegrityError, RepositoryLocked, UsageError
from snapstore.ids import Id
from snapstore.pack import BlobType
from snapstore.prune import PruneOptions, PruneReport, prune
from snapstore.repository.lock import remove_locks
from snapstore.repository.repository import Repository
from snapstore.restorer.restorer import Restorer
from snapstore.snapshot.manifest import Snapshot
from snapstore.snapshot.store import list_snapshots, walk
from snapstore.snapshot.tree import NodeType
from tests.conftest import PASSWORD, assert_repository_ok, reopen
from tests.support.memory_source import MemorySource, Spec, expected_tree, read_tree

WHEN = datetime(2026, 5, 1, tzinfo=UTC)
MiB = 1 << 20


def backup(repo: Repository, spec: Spec) -> Snapshot:
    return Archiver(repo).run(MemorySource(spec), SnapshotOptions(time=WHEN)).snapshot


def forget(repo: Repository, snap: Snapshot) -> None:
    assert snap.id is not None
    repo.remove_object(FileType.SNAPSHOT, snap.id.hex())


def contents(repo: Repository, snap: Snapshot) -> dict[str, bytes]:
    out = {}
    for path, node in walk(repo, snap.tree):
        if node.type is NodeType.FILE:
            out[b"/".join(path).decode()] = b"".join(
                repo.load_blob(BlobType.DATA, i) for i in node.content
            )
    return out


def pack_bytes(backend: Backend) -> int:
    return sum(i.size for i in backend.list(FileType.PACK))


def state(backend: Backend) -> dict[Handle, bytes]:
    return {i.handle: backend.load(i.handle) for t in FileType for i in backend.list(t)}


def clone(backend: Backend) -> MemoryBackend:
    copy = MemoryBackend()
    for handle, data in state(backend).items():
        copy.save(handle, data)
    return copy


def rand(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def small_files(first: int, last: int) -> dict[str, bytes]:
    """Files small enough that many share one pack."""
    return {f"small/{n:03d}": rand(20_000, n) for n in range(first, last)}


@pytest.fixture
def a_and_b(repo: Repository) -> tuple[Snapshot, Snapshot, dict[str, bytes], dict[str, bytes]]:
    """A holds 4 MiB of its own and 1 MiB shared with B; B adds 1 MiB of its own."""
    shared = rand(MiB, 1)
    spec_a = {"shared": shared, "a-only": rand(4 * MiB, 2)}
    spec_b = {"shared": shared, "b-only": rand(MiB, 3)}
    return backup(repo, spec_a), backup(repo, spec_b), spec_a, spec_b


def test_prune_frees_what_only_a_forgotten_snapshot_used(
    repo: Repository,
    backend: MemoryBackend,
    tmp_path: Path,
    a_and_b: tuple[Snapshot, Snapshot, dict[str, bytes], dict[str, bytes]],
) -> None:
    a, b, _, spec_b = a_and_b
    before = pack_bytes(backend)
    forget(repo, a)
    report = prune(repo)
    freed = before - pack_bytes(backend)
    assert 0.95 * 4 * MiB < freed < 1.05 * 4 * MiB
    assert report.bytes_freed > 0.95 * 4 * MiB and report.snapshots == 1
    assert report.unused_after <= 0.05 * (pack_bytes(backend))
    fresh = reopen(repo)
    assert contents(fresh, b) == spec_b
    Restorer(fresh).restore(b, tmp_path / "b")
    assert read_tree(tmp_path / "b") == expected_tree(spec_b)
    assert not list(backend.list(FileType.LOCK))
    assert_repository_ok(repo)
    # Nothing more to do: a second prune changes nothing.
    again = state(backend)
    assert prune(reopen(repo)).bytes_freed == 0
    assert state(backend) == again


def test_repacking_moves_used_blobs_out_of_mixed_packs(
    repo: Repository, backend: MemoryBackend
) -> None:
    a = backup(repo, small_files(0, 100))  # 2 MB in small blobs: a few shared packs
    b = backup(repo, {f"small/{n:03d}": rand(20_000, n) for n in range(0, 100, 2)})
    forget(repo, a)
    before = pack_bytes(backend)
    lazy = prune(reopen(repo), PruneOptions(max_unused=1.0, dry_run=True))
    # every data pack is half used; only the forgotten snapshot's tree pack goes
    assert lazy.packs_repacked == 0 and lazy.packs_deleted == 1 and lazy.bytes_freed < 20_000
    report = prune(repo, PruneOptions(max_unused=0.0))
    assert report.packs_repacked >= 1 and report.packs_written >= 1
    assert report.bytes_read >= report.packs_repacked * 100_000
    assert report.unused_after == 0
    assert 0.45 * before < pack_bytes(backend) < 0.55 * before
    assert contents(reopen(repo), b) == {
        f"small/{n:03d}": rand(20_000, n) for n in range(0, 100, 2)
    }
    again = reopen(repo)
    for info in backend.list(FileType.PACK):  # trees and data in packs of their own
        types = {e.type for e in again.read_pack_header(Id.from_hex(info.handle.name))}
        assert len(types) == 1
    assert_repository_ok(repo)


def test_dry_run_changes_nothing_and_predicts_the_real_run(
    repo: Repository,
    backend: MemoryBackend,
    a_and_b: tuple[Snapshot, Snapshot, dict[str, bytes], dict[str, bytes]],
) -> None:
    forget(repo, a_and_b[0])
    before = state(backend)
    predicted = prune(reopen(repo), PruneOptions(dry_run=True))
    assert state(backend) == before
    assert predicted.dry_run and predicted.packs_deleted >= 1
    real = prune(reopen(repo))
    for field in (
        "packs_deleted",
        "packs_repacked",
        "blobs_used",
        "blobs_unused",
        "bytes_read",
        "unused_before",
        "unused_after",
        "index_files_deleted",
    ):
        assert getattr(predicted, field) == getattr(real, field), field
    assert abs(predicted.bytes_freed - real.bytes_freed) < 0.01 * real.bytes_freed
    assert_repository_ok(repo)


def test_leftovers_of_an_interrupted_backup_are_deleted(
    repo: Repository, backend: MemoryBackend
) -> None:
    snap = backup(repo, {"kept": rand(100_000, 5)})
    indexes = {i.handle for i in backend.list(FileType.INDEX)}
    repo.save_blob(BlobType.DATA, rand(300_000, 6))
    repo.flush()
    for handle in {i.handle for i in backend.list(FileType.INDEX)} - indexes:
        backend.remove(handle)  # killed before its index file was written
    truncated = Handle(FileType.PACK, "ab" * 32)  # and a pack cut short by a non-atomic store
    backend.save(truncated, rand(5000, 7))
    report = prune(reopen(repo))
    assert report.unindexed_packs == 2 and report.damaged_unindexed_packs == 1
    assert report.packs_deleted == 2
    assert len(list(backend.list(FileType.PACK))) == 2  # the snapshot's data pack and tree pack
    assert contents(reopen(repo), snap) == {"kept": rand(100_000, 5)}
    assert_repository_ok(repo)


def test_a_used_pack_that_lost_its_index_is_indexed_again(
    repo: Repository, backend: MemoryBackend
) -> None:
    first = backup(repo, {"one": rand(200_000, 8)})
    (index,) = [i.handle for i in backend.list(FileType.INDEX)]
    second = backup(repo, {"two": rand(200_000, 9)})
    backend.remove(index)  # the first snapshot's blobs are now only in the packs themselves
    report = prune(reopen(repo, load_index=False))
    assert report.unindexed_packs >= 1 and report.packs_deleted == 0
    fresh = reopen(repo)
    assert contents(fresh, first) == {"one": rand(200_000, 8)}
    assert contents(fresh, second) == {"two": rand(200_000, 9)}
    assert_repository_ok(repo)


def test_a_partly_used_pack_without_index_is_repacked_and_indexed(
    repo: Repository, backend: MemoryBackend
) -> None:
    indexes = {i.handle for i in backend.list(FileType.INDEX)}
    for data in small_files(0, 10).values():  # one pack of ten small blobs...
        repo.save_blob(BlobType.DATA, data)
    repo.flush()
    (lost,) = {i.handle for i in backend.list(FileType.INDEX)} - indexes
    y = backup(repo, small_files(0, 3))  # ...of which a snapshot uses three
    backend.remove(lost)  # and the index file naming that pack is gone
    report = prune(reopen(repo, load_index=False), PruneOptions(max_unused=0.0))
    assert report.packs_repacked == 1 and report.unindexed_packs == 1
    assert contents(reopen(repo), y) == small_files(0, 3)
    assert_repository_ok(repo)


def test_duplicate_blobs_keep_one_copy(repo: Repository, backend: MemoryBackend) -> None:
    data = rand(50_000, 10)
    other = reopen(repo)
    assert repo.save_blob(BlobType.DATA, data).added and other.save_blob(BlobType.DATA, data).added
    repo.flush()
    other.flush()
    snap = backup(repo, {"f": data})
    assert len(reopen(repo).index.lookup_all(repo.hash_blob(data))) == 2
    prune(repo)
    fresh = reopen(repo)
    assert len(fresh.index.lookup_all(repo.hash_blob(data))) == 1
    assert contents(fresh, snap) == {"f": data}
    assert_repository_ok(repo)


def test_an_unreadable_tree_stops_prune_before_any_change(
    repo: Repository,
    backend: MemoryBackend,
    a_and_b: tuple[Snapshot, Snapshot, dict[str, bytes], dict[str, bytes]],
) -> None:
    a, b, _, _ = a_and_b
    forget(repo, a)
    location = reopen(repo).index.lookup(b.tree)
    assert location is not None
    handle = Handle(FileType.PACK, location.pack_id.hex())
    damaged = bytearray(backend.load(handle))
    damaged[location.offset + 30] ^= 1
    backend.save(handle, bytes(damaged))
    before = state(backend)
    with pytest.raises(IntegrityError, match="nothing was deleted.*tree"):
        prune(reopen(repo))
    assert state(backend) == before


def test_a_missing_pack_stops_prune_before_any_change(
    repo: Repository,
    backend: MemoryBackend,
    a_and_b: tuple[Snapshot, Snapshot, dict[str, bytes], dict[str, bytes]],
) -> None:
    a, b, _, _ = a_and_b
    forget(repo, a)
    fresh = reopen(repo)
    data_ids = [i for _, n in walk(fresh, b.tree) if n.type is NodeType.FILE for i in n.content]
    location = fresh.index.lookup(data_ids[-1])
    assert location is not None
    backend.remove(Handle(FileType.PACK, location.pack_id.hex()))
    before = state(backend)
    with pytest.raises(IntegrityError, match="nothing was deleted"):
        prune(reopen(repo))
    assert state(backend) == before


def test_prune_takes_an_exclusive_lock(repo: Repository, backend: MemoryBackend) -> None:
    backup(repo, {"f": b"x"})
    reader = reopen(repo)
    reader.lock(exclusive=False)
    with pytest.raises(RepositoryLocked):
        prune(reopen(repo))
    with pytest.raises(UsageError, match="exclusive"):
        prune(reader)
    assert prune(reader, PruneOptions(dry_run=True)).dry_run  # a dry run only reads
    reader.close()
    prune(repo)
    assert not list(backend.list(FileType.LOCK))


# -- crashes --------------------------------------------------------------------------------
class CrashingBackend:
    """Dies (SimulatedCrash) at the n-th write or delete, before or after doing it; once dead,
    every later call dies too, as nothing runs after a kill."""

    def __init__(self, inner: Backend, crash_at: int, after: bool) -> None:
        self.inner = inner
        self.crash_at = crash_at
        self.after = after
        self.mutations = 0
        self.dead = False

    @property
    def location(self) -> str:
        return self.inner.location

    def _mutate(self, action: str, handle: Handle, run: object) -> None:
        if self.dead:
            raise SimulatedCrash(f"dead: {action} {handle}")
        self.mutations += 1
        if self.mutations == self.crash_at:
            self.dead = True
            if self.after:
                run()  # type: ignore[operator]
            raise SimulatedCrash(f"killed at {action} {handle}")
        run()  # type: ignore[operator]

    def create(self) -> None:
        self.inner.create()

    def save(self, handle: Handle, data: bytes) -> None:
        self._mutate("save", handle, lambda: self.inner.save(handle, data))

    def remove(self, handle: Handle) -> None:
        self._mutate("remove", handle, lambda: self.inner.remove(handle))

    def load(self, handle: Handle, offset: int = 0, length: int | None = None) -> bytes:
        if self.dead:
            raise SimulatedCrash("dead")
        return self.inner.load(handle, offset, length)

    def stat(self, handle: Handle) -> FileInfo:
        return self.inner.stat(handle)

    def list(self, file_type: FileType) -> Iterator[FileInfo]:
        return self.inner.list(file_type)

    def close(self) -> None:
        pass


def test_a_crash_after_any_write_or_delete_of_prune_loses_nothing_kept() -> None:
    origin = MemoryBackend()
    repo = Repository.init(origin, PASSWORD, kdf=TEST_KDF, pack_size=256 * 1024)
    shared = rand(400_000, 11)
    a = backup(repo, {"shared": shared, "a": rand(1_500_000, 12), **small_files(0, 80)})
    b = backup(
        repo,
        {
            "shared": shared,
            "b": rand(300_000, 13),
            **{k: v for k, v in small_files(0, 80).items() if int(k[-3:]) % 3 == 0},
        },
    )
    c = backup(repo, {"c": rand(200_000, 14), **small_files(60, 100)})
    forget(repo, a)
    keep = {b.tree: contents(repo, b), c.tree: contents(repo, c)}
    repo.close()

    counter = CrashingBackend(clone(origin), crash_at=0, after=False)
    full = prune(Repository.open(counter, PASSWORD), PruneOptions(max_unused=0.0))
    # (whether some pack holds only A's blobs depends on how the archiver's threads filled the
    # packs; the repacked packs are deleted too, so deletions are covered either way)
    assert full.packs_repacked >= 1 and full.packs_deleted + full.packs_repacked >= 2
    writes = counter.mutations
    assert writes >= 15
    clean_size = pack_bytes(counter.inner)

    for crash_at in range(1, writes + 1):
        for after in (False, True):
            crashing = CrashingBackend(clone(origin), crash_at, after)
            with pytest.raises(SimulatedCrash):
                prune(Repository.open(crashing, PASSWORD), PruneOptions(max_unused=0.0))
            survivor = crashing.inner
            remove_locks(Repository.open(survivor, PASSWORD), remove_all=True)  # the dead holder's
            reopened = Repository.open(survivor, PASSWORD)
            reopened.load_index()
            for snap in list_snapshots(reopened):
                assert contents(reopened, snap) == keep[snap.tree], (crash_at, after)
            assert_repository_ok(reopened, read_data=False)
            # The next prune finishes the job.
            prune(Repository.open(survivor, PASSWORD), PruneOptions(max_unused=0.0))
            assert pack_bytes(survivor) <= clean_size * 1.02, (crash_at, after)
            assert_repository_ok(reopened)


def test_prune_reads_every_index_before_it_writes(repo: Repository, backend: MemoryBackend) -> None:
    """A damaged index file stops prune: its packs might hold what a snapshot needs."""
    snap = backup(repo, {"f": rand(10_000, 15)})
    forget(repo, snap)
    backup(repo, {"g": rand(10_000, 16)})
    (name, *_) = sorted(i.handle.name for i in backend.list(FileType.INDEX))
    backend.save(Handle(FileType.INDEX, name), os.urandom(200))
    before = state(backend)
    with pytest.raises(IntegrityError, match="index file"):
        prune(reopen(repo, load_index=False))
    assert state(backend) == before


def test_report_adds_up(
    repo: Repository, a_and_b: tuple[Snapshot, Snapshot, dict[str, bytes], dict[str, bytes]]
) -> None:
    forget(repo, a_and_b[0])
    report: PruneReport = prune(repo)
    assert report.bytes_after == report.bytes_before - report.bytes_freed
    assert report.bytes_deleted >= report.bytes_freed
    assert report.index_files_written >= 1 and report.index_files_deleted >= 2
