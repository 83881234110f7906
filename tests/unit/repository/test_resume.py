"""Resume: a backup run after an interrupted one reuses what the interrupted one uploaded."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from snapstore.archiver.archiver import Archiver, SnapshotOptions
from snapstore.archiver.source import ErrorCallback, SourceEntry
from snapstore.backend.base import FileType, Handle
from snapstore.backend.memory import MemoryBackend
from snapstore.pack import BlobType
from snapstore.repository.repository import Repository
from tests.conftest import PASSWORD, assert_repository_ok, reopen
from tests.support.memory_source import MemorySource

WHEN = datetime(2026, 5, 1, tzinfo=UTC)


def files(count: int) -> dict[str, bytes]:
    rng = random.Random(count)
    return {f"f{n:03d}": rng.randbytes(300_000) for n in range(count)}


class Interrupted(MemorySource):
    """Yields `stop_after` entries, then the user presses Ctrl-C."""

    def __init__(self, tree: dict[str, bytes], stop_after: int) -> None:
        super().__init__(tree)
        self.stop_after = stop_after

    def entries(self, on_error: ErrorCallback) -> Iterator[SourceEntry]:
        for number, entry in enumerate(super().entries(on_error)):
            if number == self.stop_after:
                raise KeyboardInterrupt
            yield entry


def indexed_packs(repo: Repository) -> set[str]:
    return {
        p.hex()
        for info in repo.list_objects(FileType.INDEX)
        for p in repo.load_index_file(info.handle.name).packs
    }


def pack_names(backend: MemoryBackend) -> set[str]:
    return {i.handle.name for i in backend.list(FileType.PACK)}


def test_recover_indexes_packs_a_killed_writer_stored(
    repo: Repository, backend: MemoryBackend
) -> None:
    data = [random.Random(n).randbytes(200_000) for n in range(12)]
    for blob in data:
        repo.save_blob(BlobType.DATA, blob)
    repo._packer.close()  # type: ignore[union-attr]  # uploads under way end, then it is "killed"
    # Some packs are stored, no index file names them, the open pack is lost.
    stored = pack_names(backend)
    assert stored and not indexed_packs(repo)
    survivor = reopen(repo)
    assert survivor.recover_unindexed_packs() == len(stored)
    assert indexed_packs(survivor) == stored
    reused = [survivor.save_blob(BlobType.DATA, blob) for blob in data]
    assert sum(not s.added for s in reused) >= 5 * len(stored)
    survivor.flush()
    assert reopen(repo).recover_unindexed_packs() == 0  # nothing left to recover
    assert_repository_ok(survivor)


def test_recover_skips_packs_cut_short_and_packs_others_indexed(
    repo: Repository, backend: MemoryBackend
) -> None:
    backend.save(Handle(FileType.PACK, "cd" * 32), b"half a pack")
    other = reopen(repo)
    other.save_blob(BlobType.DATA, b"indexed by another writer")
    other.flush()
    assert repo.recover_unindexed_packs() == 0  # it reads the other writer's index file instead
    assert repo.has_blob(repo.hash_blob(b"indexed by another writer"))
    backend.remove(Handle(FileType.PACK, "cd" * 32))
    assert_repository_ok(repo)


def test_close_indexes_what_an_interrupted_backup_stored(
    repo: Repository, backend: MemoryBackend
) -> None:
    tree = files(30)
    with pytest.raises(KeyboardInterrupt), reopen(repo) as interrupted:
        Archiver(interrupted).run(Interrupted(tree, 20), SnapshotOptions(time=WHEN))
    assert indexed_packs(repo) == pack_names(backend) != set()
    assert not list(backend.list(FileType.SNAPSHOT))
    assert_repository_ok(repo)
    result = Archiver(reopen(repo)).run(MemorySource(tree), SnapshotOptions(time=WHEN))
    assert result.snapshot.summary.bytes_added < 0.5 * 30 * 300_000
    assert_repository_ok(repo)


def test_a_backup_after_a_kill_reuses_unindexed_packs(
    backend: MemoryBackend, repo: Repository
) -> None:
    tree = files(30)
    killed = reopen(repo)
    with pytest.raises(KeyboardInterrupt):
        Archiver(killed).run(Interrupted(tree, 20), SnapshotOptions(time=WHEN))
    killed._packer.close()  # type: ignore[union-attr]  # let its threads end; no index is written
    assert pack_names(backend) and not indexed_packs(repo)
    result = Archiver(Repository.open(backend, PASSWORD)).run(
        MemorySource(tree), SnapshotOptions(time=WHEN)
    )
    summary = result.snapshot.summary
    assert summary.bytes_read == 30 * 300_000
    assert summary.bytes_added < 0.5 * summary.bytes_read
    assert_repository_ok(repo)
