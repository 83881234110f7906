"""The one blob reader: planned, coalesced, parallel reads; deltas; other copies; damage as values."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from snapstore.backend.base import Backend, FileInfo, FileType, Handle
from snapstore.backend.memory import MemoryBackend
from snapstore.crypto.kdf import TEST_KDF
from snapstore.errors import ObjectNotFound, SnapstoreError
from snapstore.ids import Id
from snapstore.index.codec import IndexFile
from snapstore.index.index import BlobLocation
from snapstore.pack import BlobType, PackBlob, PackEntry
from snapstore.repository.blob_reader import BlobRead
from snapstore.repository.read_plan import plan_ranges
from snapstore.repository.repository import Repository
from tests.conftest import PASSWORD, reopen
from tests.support.deltas import edited, varied


class CountingBackend:
    """Counts ranged loads of packs, delegating everything to a real backend."""

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.pack_reads = 0
        self._lock = threading.Lock()

    @property
    def location(self) -> str:
        return self.inner.location

    def create(self) -> None:
        self.inner.create()

    def save(self, handle: Handle, data: bytes) -> None:
        self.inner.save(handle, data)

    def load(self, handle: Handle, offset: int = 0, length: int | None = None) -> bytes:
        if handle.type is FileType.PACK:
            with self._lock:
                self.pack_reads += 1
        return self.inner.load(handle, offset, length)

    def stat(self, handle: Handle) -> FileInfo:
        return self.inner.stat(handle)

    def remove(self, handle: Handle) -> None:
        self.inner.remove(handle)

    def list(self, file_type: FileType) -> Iterator[FileInfo]:
        return self.inner.list(file_type)

    def close(self) -> None:
        self.inner.close()


def location(pack: int, offset: int, length: int) -> BlobLocation:
    return BlobLocation(Id(bytes([pack]) * 32), BlobType.DATA, offset, length, length)


def request(n: int) -> tuple[BlobType, Id]:
    return BlobType.DATA, Id(n.to_bytes(32, "big"))


def test_ranges_close_together_in_one_pack_are_one_read() -> None:
    blobs = [
        (request(1), location(1, 0, 100)),
        (request(2), location(1, 100, 100)),
        (request(3), location(1, 250, 50)),  # 50 bytes apart: merged
        (request(4), location(1, 10_000, 10)),  # far: its own read
        (request(5), location(2, 0, 10)),  # another pack
    ]
    ranges = plan_ranges(blobs, gap=100, max_read=1 << 20)
    assert [(r.pack_id[0], r.start, r.end, len(r.blobs)) for r in ranges] == [
        (1, 0, 300, 3),
        (1, 10_000, 10_010, 1),
        (2, 0, 10, 1),
    ]


def test_a_read_never_exceeds_the_limit_unless_one_blob_does() -> None:
    blobs = [(request(i), location(1, i * 100, 100)) for i in range(10)]
    blobs.append((request(99), location(1, 5000, 1000)))
    ranges = plan_ranges(blobs, gap=1 << 20, max_read=300)
    assert all(r.end - r.start <= 300 or len(r.blobs) == 1 for r in ranges)
    assert sorted(b[0] for r in ranges for b in r.blobs) == sorted(b[0] for b in blobs)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 3), st.integers(0, 10_000), st.integers(1, 2_000)), min_size=1, max_size=40
    ),
    st.integers(0, 5_000),
    st.integers(1, 20_000),
)
def test_every_planned_read_covers_its_blobs_and_each_blob_is_planned_once(
    places: list[tuple[int, int, int]], gap: int, max_read: int
) -> None:
    blobs = [(request(i), location(p, o, n)) for i, (p, o, n) in enumerate(places)]
    ranges = plan_ranges(blobs, gap=gap, max_read=max_read)
    planned = [b for r in ranges for b in r.blobs]
    assert sorted(b[0] for b in planned) == sorted(b[0] for b in blobs)
    for r in ranges:
        for _, loc in r.blobs:
            assert loc.pack_id == r.pack_id
            assert r.start <= loc.offset and loc.offset + loc.length <= r.end


@pytest.fixture
def counted() -> tuple[Repository, CountingBackend]:
    backend = CountingBackend(MemoryBackend())
    repo = Repository.init(backend, PASSWORD, kdf=TEST_KDF, pack_size=1 << 20)
    return repo, backend


def test_many_blobs_of_one_pack_take_one_read_each_in_request_order(
    counted: tuple[Repository, CountingBackend],
) -> None:
    repo, backend = counted
    blobs = [os.urandom(10_000) for _ in range(50)]
    ids = [repo.save_blob(BlobType.DATA, b).id for b in blobs]
    repo.flush()
    backend.pack_reads = 0
    wanted = [(BlobType.DATA, i) for i in reversed(ids)] + [(BlobType.DATA, ids[3])]
    results = list(repo.read_blobs(wanted))
    assert [r.id for r in results] == [i for _, i in wanted]
    assert [r.data for r in results] == list(reversed(blobs)) + [blobs[3]]
    assert backend.pack_reads == 1


def three_packs(repo: Repository) -> list[list[tuple[Id, bytes]]]:
    """Three data packs of ten 110 kB blobs each (the pack size is 1 MiB)."""
    packs = []
    for _ in range(3):
        blobs = [os.urandom(110_000) for _ in range(10)]
        packs.append([(repo.save_blob(BlobType.DATA, b).id, b) for b in blobs])
    repo.flush()
    return packs


def test_read_each_reads_each_pack_once_whatever_the_request_order_and_window(
    counted: tuple[Repository, CountingBackend],
) -> None:
    repo, backend = counted
    packs = three_packs(repo)
    assert len({repo.index.lookup(i).pack_id for p in packs for i, _ in p}) == 3  # type: ignore[union-attr]
    backend.pack_reads = 0
    # interleaved across the packs, windows of half a pack (a blob weighs 220 kB, stored and
    # plain): cut in request order, every window read from every pack
    wanted = [(BlobType.DATA, p[n][0]) for n in range(10) for p in packs]
    got: dict[bytes, bytes | None] = {}
    lock = threading.Lock()

    def consume(read: BlobRead) -> None:
        with lock:
            got[bytes(read.id)] = read.data

    repo.reader.read_each(wanted, consume, window_bytes=1_200_000)
    assert got == {bytes(i): b for p in packs for i, b in p}
    assert backend.pack_reads == 3


def test_read_each_cuts_a_pack_of_more_than_a_window_in_stretches(
    counted: tuple[Repository, CountingBackend],
) -> None:
    repo, backend = counted
    packs = three_packs(repo)
    backend.pack_reads = 0
    got: list[BlobRead] = []
    lock = threading.Lock()

    def consume(read: BlobRead) -> None:
        with lock:
            got.append(read)

    wanted = [(BlobType.DATA, i) for p in packs for i, _ in p]
    # a blob weighs 220 kB (stored and plain), a stretch at most twice the window: 2 blobs
    repo.reader.read_each(wanted, consume, window_bytes=250_000)
    assert sorted(bytes(r.id) for r in got) == sorted(bytes(i) for _, i in wanted)
    assert all(r.data is not None for r in got)
    assert backend.pack_reads == 3 * 5


def test_reading_in_order_takes_the_rest_of_a_begun_pack_into_the_window(
    counted: tuple[Repository, CountingBackend],
) -> None:
    repo, backend = counted
    packs = three_packs(repo)
    backend.pack_reads = 0
    wanted = [(BlobType.DATA, i) for p in packs for i, _ in p]
    # a window is full at 1 MB (5 blobs): it takes the rest of the pack it is in (to 2 MB)
    results = list(repo.reader.read(wanted, window_bytes=1_000_000))
    assert [r.data for r in results] == [b for p in packs for _, b in p]
    assert backend.pack_reads == 3


def test_a_blob_read_as_a_delta_base_is_not_fetched_again_when_asked_for(repo: Repository) -> None:
    """A base the window opened (two deltas rest on it) is kept for later reads; a whole blob
    read only as the root of one delta's chain is not: it goes into the chain's one call into
    zstd and its plaintext alone never exists."""
    base = varied(60_000, 1)
    base_id = repo.save_blob(BlobType.DATA, base).id
    repo.flush()
    saved = [repo.save_blob(BlobType.DATA, edited(base, n), bases=[base_id]) for n in (7, 8)]
    repo.flush()
    assert all(s.delta for s in saved)
    fresh = reopen(repo)
    counting = CountingBackend(fresh.backend)
    fresh.backend = counting
    assert fresh.reader.load(BlobType.DATA, saved[0].id) == edited(base, 7)
    assert counting.pack_reads == 2  # the delta, then its base: one call into zstd rebuilds it
    got: list[BlobRead] = []
    fresh.reader.read_each([(BlobType.DATA, s.id) for s in saved], got.append)  # a window keeps the bases it opened
    assert sorted(r.data or b"" for r in got) == sorted([edited(base, 7), edited(base, 8)])
    reads = counting.pack_reads
    fresh.reader.read_each([(BlobType.DATA, base_id)], got.append)
    assert got[-1].data == base and counting.pack_reads == reads
    fresh.close()
    alone = reopen(repo)
    counting = CountingBackend(alone.backend)
    alone.backend = counting
    alone.reader.read_each([(BlobType.DATA, saved[0].id)], got.append)
    reads = counting.pack_reads
    alone.reader.read_each([(BlobType.DATA, base_id)], got.append)
    assert got[-1].data == base and counting.pack_reads == reads + 1
    alone.close()


def test_deltas_are_rebuilt_with_their_bases_fetched_in_the_same_plan(repo: Repository) -> None:
    bases = [varied(60_000, seed) for seed in range(5)]
    base_ids = [repo.save_blob(BlobType.DATA, b).id for b in bases]
    repo.flush()
    changed = [edited(b, 7) for b in bases]
    saved = [repo.save_blob(BlobType.DATA, c, bases=[i]) for c, i in zip(changed, base_ids, strict=True)]
    repo.flush()
    assert all(s.delta for s in saved)
    fresh = reopen(repo)  # empty caches
    results = list(fresh.read_blobs([(BlobType.DATA, s.id) for s in saved]))
    assert [r.data for r in results] == changed
    assert all(r.error is None for r in results)


def test_damage_is_a_value_and_other_blobs_are_still_read(repo: Repository) -> None:
    good = os.urandom(5_000)
    good_id = repo.save_blob(BlobType.DATA, good).id
    repo.flush()
    bad = os.urandom(5_000)
    bad_id = repo.save_blob(BlobType.DATA, bad).id
    repo.flush()
    where = repo.lookup(bad_id)
    assert where is not None and where.pack_id != repo.lookup(good_id).pack_id  # type: ignore[union-attr]
    handle = Handle(FileType.PACK, where.pack_id.hex())
    data = bytearray(repo.backend.load(handle))
    data[where.offset + 20] ^= 1
    repo.backend.save(handle, bytes(data))
    missing = Id(b"\x01" * 32)
    results = list(reopen(repo).read_blobs([(BlobType.DATA, bad_id), (BlobType.DATA, good_id), (BlobType.DATA, missing)]))
    assert results[0].data is None and isinstance(results[0].error, SnapstoreError)
    assert where.pack_id.hex()[:16] in str(results[0].error)
    assert results[1].data == good
    assert isinstance(results[2].error, ObjectNotFound)


def test_a_damaged_copy_falls_back_to_another(repo: Repository) -> None:
    payload = os.urandom(8_000)
    blob_id = repo.save_blob(BlobType.DATA, payload).id
    repo.flush()
    first = repo.lookup(blob_id)
    assert first is not None
    # A second copy in another pack, as a resumed backup or a second host leaves.
    again = reopen(repo)
    raw = again.backend.load(Handle(FileType.PACK, first.pack_id.hex()))
    entries = again.read_pack_header(first.pack_id)
    copy = again.write_pack([_as_pack_blob(raw, e) for e in entries])
    again.write_index(IndexFile(packs={copy[0]: copy[1]}))
    handle = Handle(FileType.PACK, first.pack_id.hex())
    data = bytearray(raw)
    data[first.offset + 30] ^= 1
    again.backend.save(handle, bytes(data))
    fresh = reopen(repo)
    assert [r.data for r in fresh.read_blobs([(BlobType.DATA, blob_id)])] == [payload]
    assert fresh.load_blob(BlobType.DATA, blob_id) == payload


def _as_pack_blob(raw: bytes, entry: PackEntry) -> PackBlob:
    return PackBlob(entry.type, entry.id, raw[entry.offset : entry.offset + entry.length], entry.plain_length, entry.base)
