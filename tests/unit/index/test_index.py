"""The in-memory BlobIndex: sorted columns plus pending additions, merged in batches."""

from __future__ import annotations

import os
import random
from concurrent.futures import ThreadPoolExecutor

import pytest

from snapstore.ids import Id
from snapstore.index import index as index_module
from snapstore.index.index import BlobIndex, BlobLocation
from snapstore.pack import BlobType, PackEntry


def entries_for(ids: list[bytes], blob_type: BlobType = BlobType.DATA) -> list[PackEntry]:
    out, offset = [], 0
    for n, blob_id in enumerate(ids):
        out.append(PackEntry(blob_type, Id(blob_id), offset, 100 + n, 200 + n))
        offset += 100 + n
    return out


def random_ids(count: int, seed: int = 0) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(32) for _ in range(count)]


PACK_A, PACK_B, PACK_C = (Id(bytes([n]) * 32) for n in (1, 2, 3))


def location(pack_id: Id, entry: PackEntry) -> BlobLocation:
    return BlobLocation(pack_id, entry.type, entry.offset, entry.length, entry.plain_length)


def test_empty_index() -> None:
    index = BlobIndex()
    assert len(index) == 0
    assert index.lookup(bytes(32)) is None
    assert index.lookup_all(bytes(32)) == []
    assert bytes(32) not in index
    assert index.pack_ids() == set()
    assert list(index.entries()) == []


@pytest.mark.parametrize("compact", [False, True])
def test_add_and_lookup(compact: bool) -> None:
    index = BlobIndex()
    entries = entries_for(random_ids(10))
    index.add_pack(PACK_A, entries[:6])
    index.add_pack(PACK_B, entries[6:])
    if compact:
        index.compact()
    assert len(index) == 10
    for n, entry in enumerate(entries):
        pack_id = PACK_A if n < 6 else PACK_B
        assert index.lookup(entry.id) == location(pack_id, entry)
        assert index.lookup_all(entry.id) == [location(pack_id, entry)]
        assert entry.id in index
    assert index.lookup(random_ids(1, seed=99)[0]) is None
    assert index.pack_ids() == {PACK_A, PACK_B}


def test_types_are_kept() -> None:
    index = BlobIndex()
    tree, data = entries_for(random_ids(1, 1), BlobType.TREE), entries_for(random_ids(1, 2))
    index.add_pack(PACK_A, tree + [PackEntry(BlobType.DATA, data[0].id, 100, 5, 5)])
    for compact in (False, True):
        if compact:
            index.compact()
        assert index.lookup(tree[0].id).type is BlobType.TREE  # type: ignore[union-attr]
        assert index.lookup(data[0].id).type is BlobType.DATA  # type: ignore[union-attr]


def test_duplicates_across_packs() -> None:
    index = BlobIndex()
    shared = random_ids(1, 5)[0]
    a = PackEntry(BlobType.DATA, Id(shared), 0, 10, 20)
    b = PackEntry(BlobType.DATA, Id(shared), 50, 11, 20)
    c = PackEntry(BlobType.DATA, Id(shared), 70, 12, 20)
    index.add_pack(PACK_A, [a])
    index.add_pack(PACK_B, [b])
    index.compact()
    index.add_pack(PACK_C, [c])  # one merged copy pair, one pending copy
    found = index.lookup_all(shared)
    assert sorted(found, key=lambda loc: loc.pack_id) == [
        location(PACK_A, a),
        location(PACK_B, b),
        location(PACK_C, c),
    ]
    assert index.lookup(shared) in found
    assert len(index) == 3
    assert len(list(index.entries())) == 3


def test_ids_sharing_the_sort_key() -> None:
    """Ids equal in their first 8 bytes (the sorted key) are told apart by the rest."""
    prefix = b"\xab" * 8
    ids = [prefix + bytes([n]) * 24 for n in range(5)]
    index = BlobIndex()
    entries = entries_for(ids)
    index.add_pack(PACK_A, entries[:3])
    index.compact()
    index.add_pack(PACK_B, entries[3:])
    for n, entry in enumerate(entries):
        assert index.lookup_all(entry.id) == [location(PACK_A if n < 3 else PACK_B, entry)]
    assert index.lookup(prefix + b"\xff" * 24) is None


def test_adding_the_same_pack_twice_keeps_one_pack_number() -> None:
    index = BlobIndex()
    entries = entries_for(random_ids(2))
    index.add_pack(PACK_A, entries[:1])
    index.add_pack(PACK_A, entries[1:])
    assert index.pack_ids() == {PACK_A}
    assert all(index.lookup(e.id).pack_id == PACK_A for e in entries)  # type: ignore[union-attr]


def test_merge_threshold_crossing() -> None:
    """More than 65536 additions force a merge; later additions stay pending until the next."""
    index = BlobIndex()
    ids = random_ids(70_000, seed=3)
    first = entries_for(ids[:40_000])
    second = entries_for(ids[40_000:])
    index.add_pack(PACK_A, first)
    assert len(index._keys) == 0  # still pending: below the threshold
    index.add_pack(PACK_B, second)
    assert len(index._keys) == 70_000 and index._pending_count == 0  # merged
    late = entries_for(random_ids(100, seed=4))
    index.add_pack(PACK_C, late)
    assert index._pending_count == 100
    assert len(index) == 70_100
    rng = random.Random(1)
    for entry in rng.sample(first, 200):
        assert index.lookup(entry.id) == location(PACK_A, entry)
    for entry in rng.sample(second, 200):
        assert index.lookup_all(entry.id) == [location(PACK_B, entry)]
    for entry in late:
        assert index.lookup(entry.id) == location(PACK_C, entry)
    assert index.pack_ids() == {PACK_A, PACK_B, PACK_C}


def test_merge_threshold_scales_with_size(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(index_module, "_MIN_MERGE", 4)
    index = BlobIndex()
    entries = entries_for(random_ids(200, seed=6))
    for entry in entries:
        index.add_pack(PACK_A, [entry])
        # Pending never exceeds max(4, merged / 8) + 1.
        assert index._pending_count <= max(4, len(index._keys) // 8) + 1
    for entry in entries:
        assert index.lookup(entry.id) == location(PACK_A, entry)


def test_memory_per_entry() -> None:
    index = BlobIndex()
    count = 20_000
    index.add_pack(PACK_A, entries_for(random_ids(count, seed=7)))
    index.compact()
    assert index.memory_bytes() / count <= 64


def test_entries_lists_everything() -> None:
    index = BlobIndex()
    entries = entries_for(random_ids(50, seed=8))
    index.add_pack(PACK_A, entries[:25])
    index.add_pack(PACK_B, entries[25:])
    listed = dict(index.entries())
    assert len(listed) == 50
    for n, entry in enumerate(entries):
        assert listed[entry.id] == location(PACK_A if n < 25 else PACK_B, entry)
    assert all(isinstance(blob_id, Id) for blob_id in listed)


def test_flags_survive_lookup_before_merge() -> None:
    index = BlobIndex()
    entry = PackEntry(BlobType.DATA, Id(os.urandom(32)), 0, 10, 20, flags=5)
    index.add_pack(PACK_A, [entry])
    assert index.lookup(entry.id).flags == 5  # type: ignore[union-attr]


def test_flags_survive_merge() -> None:
    index = BlobIndex()
    entry = PackEntry(BlobType.DATA, Id(os.urandom(32)), 0, 10, 20, flags=5)
    index.add_pack(PACK_A, [entry])
    index.compact()
    assert index.lookup(entry.id).flags == 5  # type: ignore[union-attr]


def test_concurrent_adds_and_lookups() -> None:
    index = BlobIndex()
    batches = [entries_for(random_ids(3000, seed=100 + n)) for n in range(4)]
    packs = [Id(bytes([10 + n]) * 32) for n in range(4)]

    def add(n: int) -> None:
        for start in range(0, 3000, 100):
            index.add_pack(packs[n], batches[n][start : start + 100])
            for entry in batches[n][start : start + 100 : 10]:
                assert index.lookup(entry.id) is not None

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(add, range(4)))  # re-raises anything a thread raised
    assert len(index) == 12_000
    for n, batch in enumerate(batches):
        for entry in batch[::50]:
            assert index.lookup_all(entry.id) == [location(packs[n], entry)]
