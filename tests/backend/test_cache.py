"""The metadata cache: what it keeps, that it verifies copies, and that deletions reach it."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import blake3
import pytest

from snapstore.archiver.archiver import Archiver
from snapstore.backend.base import Backend, FileType, Handle
from snapstore.backend.cache import CacheBackend
from snapstore.backend.faulty import FaultyBackend
from snapstore.backend.memory import MemoryBackend
from snapstore.crypto.kdf import TEST_KDF
from snapstore.pack import BlobType
from snapstore.repository.repository import Repository
from snapstore.snapshot.store import list_snapshots, load_tree
from tests.backend.conformance import BackendConformance
from tests.conftest import PASSWORD, assert_repository_ok, reopen
from tests.support.memory_source import MemorySource


class TestCacheBackend(BackendConformance):
    """The cache must not change what the backend under it does."""

    @pytest.fixture
    def backend(self, tmp_path: Path) -> Iterator[Backend]:
        yield CacheBackend(MemoryBackend(), tmp_path / "cache")


def named(file_type: FileType, data: bytes, metadata: bool = False) -> Handle:
    """A handle named like a real object: the BLAKE3 hash of its bytes."""
    return Handle(file_type, blake3.blake3(data).hexdigest(), metadata=metadata)


@pytest.fixture
def faulty() -> FaultyBackend:
    return FaultyBackend(MemoryBackend())


@pytest.fixture
def cache(faulty: FaultyBackend, tmp_path: Path) -> CacheBackend:
    return CacheBackend(faulty, tmp_path / "cache")


@pytest.mark.parametrize("file_type", [FileType.KEY, FileType.INDEX, FileType.SNAPSHOT])
def test_whole_objects_are_read_once(
    cache: CacheBackend, faulty: FaultyBackend, file_type: FileType
) -> None:
    data = os.urandom(300)
    handle = named(file_type, data)
    faulty.save(handle, data)  # written by another client: not in the cache yet
    assert cache.load(handle) == data
    assert cache.load(handle) == data
    assert faulty.calls("load") == 1


def test_saves_are_written_through(cache: CacheBackend, faulty: FaultyBackend) -> None:
    data = b"index file"
    handle = named(FileType.INDEX, data)
    cache.save(handle, data)
    assert cache.load(handle) == data
    assert faulty.calls("load") == 0


@pytest.mark.parametrize("handle", [Handle(FileType.CONFIG), Handle(FileType.LOCK, "l1")])
def test_config_and_locks_are_never_cached(
    cache: CacheBackend, faulty: FaultyBackend, handle: Handle
) -> None:
    cache.save(handle, b"one")
    faulty.save(handle, b"two")
    assert cache.load(handle) == b"two"


def test_objects_not_named_by_their_hash_are_not_kept(
    cache: CacheBackend, faulty: FaultyBackend
) -> None:
    handle = Handle(FileType.SNAPSHOT, "not-a-hash")
    faulty.save(handle, b"x")
    cache.load(handle)
    cache.load(handle)
    assert faulty.calls("load") == 2


def test_a_tree_pack_is_cached_whole_on_its_first_marked_read(
    cache: CacheBackend, faulty: FaultyBackend
) -> None:
    content = bytes(range(100))
    tree = named(FileType.PACK, content, metadata=True)
    faulty.save(tree, content)
    assert cache.load(tree, 10, 5) == bytes(range(10, 15))
    assert cache.load(tree, 60, 30) == bytes(range(60, 90))  # another tree of the same pack
    assert faulty.calls("load") == 1
    data = named(FileType.PACK, content)  # unmarked: data reads always go to the backend
    cache.load(data, 10, 5)
    cache.load(data, 10, 5)
    assert faulty.calls("load") == 3


def test_a_tree_pack_saved_through_the_cache_is_read_from_it(
    cache: CacheBackend, faulty: FaultyBackend
) -> None:
    content = os.urandom(300)
    tree = named(FileType.PACK, content, metadata=True)
    cache.save(tree, content)
    assert cache.load(tree, 100, 50) == content[100:150]
    assert faulty.calls("load") == 0


def test_tampered_object_is_detected_and_fetched_again(
    cache: CacheBackend, faulty: FaultyBackend
) -> None:
    data = os.urandom(200)
    handle = named(FileType.SNAPSHOT, data)
    cache.save(handle, data)
    copy = cache.directory / "snapshots" / handle.name
    copy.write_bytes(b"evil" + data[4:])
    assert cache.load(handle) == data
    assert faulty.calls("load") == 1
    assert copy.read_bytes() == data  # replaced by the good copy
    assert cache.load(handle) == data
    assert faulty.calls("load") == 1


def test_a_tampered_tree_pack_is_detected_and_fetched_again(
    cache: CacheBackend, faulty: FaultyBackend
) -> None:
    content = bytes(range(100))
    tree = named(FileType.PACK, content, metadata=True)
    faulty.save(tree, content)
    cache.load(tree, 0, 50)
    copy = cache.directory / "packs" / tree.name
    damaged = bytearray(copy.read_bytes())
    damaged[-1] ^= 1
    copy.write_bytes(bytes(damaged))
    next_command = CacheBackend(faulty, cache.directory)  # checks each copy once
    assert next_command.load(tree, 0, 50) == bytes(range(50))
    assert faulty.calls("load") == 2
    assert copy.read_bytes() == content


def test_a_checked_tree_pack_is_read_by_range_without_the_backend(
    cache: CacheBackend, faulty: FaultyBackend
) -> None:
    content = os.urandom(1000)
    tree = named(FileType.PACK, content, metadata=True)
    faulty.save(tree, content)
    assert cache.load(tree, 0, 10) == content[:10]
    for offset in range(0, 1000, 100):
        assert cache.load(tree, offset, 100) == content[offset : offset + 100]
    assert faulty.calls("load") == 1
    (cache.directory / "packs" / tree.name).unlink()  # lost meanwhile: fetched again
    assert cache.load(tree, 990, 10) == content[990:]
    assert faulty.calls("load") == 2


def test_two_threads_reading_one_uncached_object_fetch_it_once(
    faulty: FaultyBackend, tmp_path: Path
) -> None:
    content = os.urandom(1000)
    tree = named(FileType.PACK, content, metadata=True)
    faulty.save(tree, content)
    entered = threading.Semaphore(0)
    release = threading.Event()

    class Slow(FaultyBackend):
        def load(self, handle: Handle, offset: int = 0, length: int | None = None) -> bytes:
            entered.release()
            release.wait(5)
            return super().load(handle, offset, length)

    cache = CacheBackend(Slow(faulty), tmp_path / "cache")
    results: list[bytes] = []
    first = threading.Thread(target=lambda: results.append(cache.load(tree, 0, 10)))
    first.start()
    assert entered.acquire(timeout=5)
    second = threading.Thread(target=lambda: results.append(cache.load(tree, 10, 10)))
    second.start()
    # the second reader waits for the first instead of fetching too: it does not come
    assert not entered.acquire(timeout=1)
    release.set()
    first.join()
    second.join()
    assert sorted(results) == sorted([content[:10], content[10:20]])
    assert faulty.calls("load") == 1


def test_listing_drops_what_the_backend_lost(cache: CacheBackend, faulty: FaultyBackend) -> None:
    kept, gone = b"kept", b"gone"
    for data in (kept, gone):
        cache.save(named(FileType.SNAPSHOT, data), data)
    packs = [named(FileType.PACK, bytes([n]) * 100, metadata=True) for n in (1, 2)]
    for n, pack in enumerate(packs, 1):
        faulty.save(pack, bytes([n]) * 100)
        cache.load(pack, 0, 10)
    faulty.remove(named(FileType.SNAPSHOT, gone))  # another client forgot it
    faulty.remove(packs[1])  # and pruned a pack
    assert [i.handle for i in cache.list(FileType.SNAPSHOT)] == [named(FileType.SNAPSHOT, kept)]
    assert len(list(cache.list(FileType.PACK))) == 1
    assert sorted(p.name for p in (cache.directory / "snapshots").iterdir()) == [
        named(FileType.SNAPSHOT, kept).name
    ]
    assert [p.name for p in (cache.directory / "packs").iterdir()] == [packs[0].name]


def test_an_interrupted_listing_drops_nothing(cache: CacheBackend, faulty: FaultyBackend) -> None:
    data = b"snap"
    cache.save(named(FileType.SNAPSHOT, data), data)
    faulty.fail("list", error=OSError("cut off"))
    with pytest.raises(OSError):
        list(cache.list(FileType.SNAPSHOT))
    assert len(list((cache.directory / "snapshots").iterdir())) == 1


def test_remove_drops_the_copy(cache: CacheBackend) -> None:
    data = b"index"
    handle = named(FileType.INDEX, data)
    cache.save(handle, data)
    cache.remove(handle)
    assert not (cache.directory / "index" / handle.name).exists()


def test_an_unwritable_cache_only_costs_requests(faulty: FaultyBackend, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    cache = CacheBackend(faulty, blocker / "cache")  # a folder below a file: cannot exist
    data = b"snapshot"
    cache.save(named(FileType.SNAPSHOT, data), data)
    assert cache.load(named(FileType.SNAPSHOT, data)) == data


def test_a_second_listing_of_snapshots_and_trees_reads_only_listings(tmp_path: Path) -> None:
    """What `snapshots` and `ls` do, a second time: nothing but listings reach the backend."""
    faulty = FaultyBackend(MemoryBackend())
    repo = Repository.init(faulty, PASSWORD, kdf=TEST_KDF, pack_size=1 << 20)
    repo.backend = CacheBackend(faulty, tmp_path / "cache")  # as open_repository attaches it
    source = MemorySource({"a/b/c.txt": b"hello", "a/d.txt": b"x" * 5000, "e.txt": b"e"})
    Archiver(repo).run(source)
    repo.close()

    def read_everything() -> None:
        again = Repository.open(faulty, PASSWORD)
        again.backend = CacheBackend(faulty, tmp_path / "cache")
        again.load_index()
        [snap] = list_snapshots(again)
        pending = [snap.tree]
        while pending:
            for node in load_tree(again, pending.pop()):
                if node.subtree is not None:
                    pending.append(node.subtree)

    read_everything()  # trees are read (and kept) the first time
    loads_before = faulty.calls("load")
    read_everything()
    # the second time: only what open needs before the cache is attached (config, key)
    assert faulty.calls("load") - loads_before == 2
    assert_repository_ok(repo)


def test_tree_reads_are_marked_for_the_cache(repo: Repository) -> None:
    seen: list[Handle] = []
    real_load = repo.backend.load

    def recording(handle: Handle, offset: int = 0, length: int | None = None) -> bytes:
        seen.append(handle)
        return real_load(handle, offset, length)

    tree = repo.save_blob(BlobType.TREE, b"\x82\xa1v\x01\xa5nodes\x90").id
    data = repo.save_blob(BlobType.DATA, b"content").id
    repo.flush()
    fresh = reopen(repo)  # nothing read yet, so nothing kept in memory
    fresh.backend.load = recording  # type: ignore[method-assign]
    fresh.load_blob(BlobType.TREE, tree)
    fresh.load_blob(BlobType.DATA, data)
    assert [h.metadata for h in seen] == [True, False]
