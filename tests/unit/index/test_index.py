"""The in-memory BlobIndex: sorted columns plus pending additions, merged in batches."""

from __future__ import annotations

import os
import random
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from snapstore.ids import Id
from snapstore.index import index as index_module
from snapstore.index.index import BlobIndex, BlobLocation
from snapstore.pack import FLAG_DELTA, BlobType, PackEntry


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


def run_sizes(index: BlobIndex) -> list[int]:
    return [len(run) for run in index._runs]


def test_small_runs_merge_into_a_small_index() -> None:
    """Until the index holds more than _MIN_MERGE entries, each pack's run is merged into it;
    past that a pack's run stays apart until the runs after the first add up to 1/_RATIO."""
    index = BlobIndex()
    ids = random_ids(70_000, seed=3)
    first = entries_for(ids[:10_000])
    second = entries_for(ids[10_000:])
    index.add_pack(PACK_A, first)
    index.add_pack(PACK_B, second)
    assert run_sizes(index) == [70_000]  # 10,000 <= _MIN_MERGE: merged
    late = entries_for(random_ids(100, seed=4))
    index.add_pack(PACK_C, late)
    assert run_sizes(index) == [70_000, 100]
    assert len(index) == 70_100
    rng = random.Random(1)
    for entry in rng.sample(first, 200):
        assert index.lookup(entry.id) == location(PACK_A, entry)
    for entry in rng.sample(second, 200):
        assert index.lookup_all(entry.id) == [location(PACK_B, entry)]
    for entry in late:
        assert index.lookup(entry.id) == location(PACK_C, entry)
    assert index.pack_ids() == {PACK_A, PACK_B, PACK_C}
    index.compact()
    assert run_sizes(index) == [70_100]
    assert all(index.lookup(e.id) == location(PACK_C, e) for e in late)


def test_runs_shrink_by_the_ratio(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each run is more than max(_MIN_MERGE, _RATIO x the next): a few runs, whatever the
    number of packs added."""
    monkeypatch.setattr(index_module, "_MIN_MERGE", 4)
    index = BlobIndex()
    entries = entries_for(random_ids(3000, seed=6))
    for n, entry in enumerate(entries):
        index.add_pack(Id(n.to_bytes(32, "big")), [entry])
        sizes = run_sizes(index)
        assert all(a > max(4, 8 * b) for a, b in zip(sizes, sizes[1:], strict=False)), sizes
    assert 1 < len(run_sizes(index)) <= 4 and sum(run_sizes(index)) == 3000
    for n, entry in enumerate(entries):
        assert index.lookup(entry.id) == location(Id(n.to_bytes(32, "big")), entry)
    wanted = b"".join(e.id for e in entries[::7])
    assert index.lookup_run(wanted) == [index.lookup(e.id) for e in entries[::7]]


def test_memory_per_entry() -> None:
    index = BlobIndex()
    count = 20_000
    index.add_pack(PACK_A, entries_for(random_ids(count, seed=7)))
    index.compact()
    assert index.memory_bytes() / count <= 64


def test_memory_per_entry_with_deltas() -> None:
    """The base key column keeps the index within 64 bytes per blob (58 by the docstring)."""
    index = BlobIndex()
    count = 100_000
    ids = random_ids(count, seed=17)
    for start in range(0, count, 1000):
        entries = [
            PackEntry(
                e.type, e.id, e.offset, e.length, e.plain_length, FLAG_DELTA, Id(ids[start + n - 1])
            )
            if n % 2
            else e
            for n, e in enumerate(entries_for(ids[start : start + 1000]))
        ]
        index.add_pack(Id(start.to_bytes(32, "big")), entries)
    index.compact()
    assert len(index) == count
    assert index.memory_bytes() / count <= 64
    location = index.lookup(ids[1])
    assert location is not None and location.base_key == int.from_bytes(ids[0][:8], "big")


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


def test_columns_give_every_copy_without_an_object_per_blob() -> None:
    """`columns` (the check's pass over a whole index): every copy, by id, with where it ends
    in its pack, and the base keys of the deltas in their order."""
    index = BlobIndex()
    assert len(index.columns()) == 0 and len(index.columns().delta_bases) == 0
    ids = random_ids(30, seed=9)
    plain = entries_for(ids[:20])
    deltas = [
        PackEntry(BlobType.DATA, Id(blob), 1000 * n, 50, 500, FLAG_DELTA, Id(ids[n]))
        for n, blob in enumerate(ids[20:])
    ]
    index.add_pack(PACK_A, plain[:10] + deltas[:5])
    index.add_pack(PACK_B, plain[10:] + deltas[5:] + plain[:3])  # three blobs in both packs
    columns = index.columns()
    assert len(columns) == 33
    rows = list(range(len(columns)))
    assert [bytes(columns.id(r)) for r in rows] == sorted(bytes(e.id) for e in plain + deltas + plain[:3])
    assert [columns.location(r) for r in rows] == [loc for _, loc in index.entries()]
    places = list(columns.places(np.arange(len(columns))))
    for row, (blob, pack, offset, length) in zip(rows, places, strict=True):
        where = columns.location(row)
        assert blob == bytes(columns.id(row)) and columns.pack_ids[pack] == where.pack_id
        assert (offset, length) == (where.offset, where.length)
        assert columns.ends[row] == where.offset + where.length
    delta_rows = np.flatnonzero(columns.is_delta).tolist()
    assert len(delta_rows) == 10
    assert columns.delta_bases.tolist() == [columns.location(r).base_key for r in delta_rows]


def test_flags_survive_lookup_before_merge() -> None:
    index = BlobIndex()
    entry = PackEntry(BlobType.DATA, Id(os.urandom(32)), 0, 10, 20, flags=4)
    index.add_pack(PACK_A, [entry])
    assert index.lookup(entry.id).flags == 4  # type: ignore[union-attr]


def test_flags_survive_merge() -> None:
    index = BlobIndex()
    entry = PackEntry(BlobType.DATA, Id(os.urandom(32)), 0, 10, 20, flags=4)
    index.add_pack(PACK_A, [entry])
    index.compact()
    assert index.lookup(entry.id).flags == 4  # type: ignore[union-attr]


# -- deltas: the base key column ----------------------------------------------------------------

BASE = Id(bytes(range(40, 72)))
BASE_KEY = int.from_bytes(bytes(range(40, 48)), "big")


def delta_entry(blob_id: bytes, base: Id = BASE, offset: int = 0) -> PackEntry:
    return PackEntry(BlobType.DATA, Id(blob_id), offset, 30, 9000, FLAG_DELTA, base)


@pytest.mark.parametrize("compact", [False, True])
def test_base_key_of_deltas_and_whole_blobs(compact: bool) -> None:
    index = BlobIndex()
    whole, delta = entries_for(random_ids(2, seed=20))
    delta = delta_entry(delta.id, offset=delta.offset)
    index.add_pack(PACK_A, [whole, delta])
    if compact:
        index.compact()
    found = index.lookup(delta.id)
    assert found is not None and found.is_delta and found.base_key == BASE_KEY
    assert found == BlobLocation(
        PACK_A, BlobType.DATA, delta.offset, 30, 9000, FLAG_DELTA, BASE_KEY
    )
    assert index.lookup_all(delta.id) == [found]
    plain = index.lookup(whole.id)
    assert plain is not None and not plain.is_delta and plain.base_key == 0
    assert dict(index.entries())[delta.id] == found


def test_a_blob_stored_whole_and_as_a_delta() -> None:
    """Two writers may store the same blob differently; both copies are listed with their own
    flags and base key."""
    index = BlobIndex()
    (blob_id,) = random_ids(1, seed=21)
    whole = PackEntry(BlobType.DATA, Id(blob_id), 0, 500, 9000)
    index.add_pack(PACK_A, [whole])
    index.compact()
    index.add_pack(PACK_B, [delta_entry(blob_id)])
    found = sorted(index.lookup_all(blob_id), key=lambda loc: loc.pack_id)
    assert [(loc.is_delta, loc.base_key) for loc in found] == [(False, 0), (True, BASE_KEY)]


@pytest.mark.parametrize("compact", [False, True])
def test_ids_with_key(compact: bool) -> None:
    prefix = BASE[:8]
    twins = [prefix + bytes([n]) * 24 for n in range(3)]  # share the base's 8-byte key
    index = BlobIndex()
    index.add_pack(PACK_A, entries_for([bytes(BASE), twins[0]] + random_ids(5, seed=22)))
    index.compact()
    index.add_pack(PACK_B, entries_for(twins[1:]))  # pending until compacted
    if compact:
        index.compact()
    assert index.ids_with_key(BASE_KEY) == sorted([BASE, *map(Id, twins)])
    assert all(isinstance(i, Id) for i in index.ids_with_key(BASE_KEY))
    assert index.ids_with_key(BASE_KEY + 1) == []
    assert index.ids_with_key(0) == []
    assert BlobIndex().ids_with_key(BASE_KEY) == []


def test_ids_with_key_lists_an_id_once() -> None:
    index = BlobIndex()
    index.add_pack(PACK_A, entries_for([bytes(BASE)]))
    index.compact()
    index.add_pack(PACK_B, entries_for([bytes(BASE)]))
    index.add_pack(PACK_C, entries_for([bytes(BASE)]))
    assert index.ids_with_key(BASE_KEY) == [BASE]


def test_a_delta_base_is_found_from_its_key() -> None:
    index = BlobIndex()
    ids = random_ids(50, seed=23)
    index.add_pack(PACK_A, entries_for(ids[:-1]))
    index.add_pack(PACK_B, [delta_entry(ids[-1], base=Id(ids[10]))])
    index.compact()
    location = index.lookup(ids[-1])
    assert location is not None
    assert index.ids_with_key(location.base_key) == [Id(ids[10])]


def test_plain_lengths() -> None:
    index = BlobIndex()
    merged = entries_for(random_ids(100, seed=24))
    index.add_pack(PACK_A, merged)
    index.compact()
    pending = [delta_entry(i, offset=n) for n, i in enumerate(random_ids(3, seed=25))]
    index.add_pack(PACK_B, pending)
    unknown = random_ids(2, seed=26)
    wanted: list[bytes] = [
        merged[5].id,
        Id(unknown[0]),
        pending[1].id,
        merged[99].id,
        merged[5].id,
        Id(unknown[1]),
    ]
    assert index.plain_lengths(wanted) == [205, None, 9000, 299, 205, None]
    assert index.plain_lengths([]) == []
    assert index.plain_lengths([e.id for e in merged]) == [e.plain_length for e in merged]


def test_plain_lengths_of_ids_sharing_a_key() -> None:
    """The vectorised path looks at the first row with the key; the others are still found."""
    prefix = b"\x10" * 8
    twins = [prefix + bytes([n]) * 24 for n in range(4)]
    index = BlobIndex()
    index.add_pack(PACK_A, entries_for(twins[:3]))
    index.compact()
    wanted: list[bytes] = [Id(t) for t in reversed(twins)]
    lengths = index.plain_lengths(wanted)
    assert lengths == [None, 202, 201, 200]
    assert index.plain_lengths([Id(prefix + b"\xff" * 24)]) == [None]


def test_plain_lengths_on_an_empty_index() -> None:
    assert BlobIndex().plain_lengths([Id(b) for b in random_ids(3)]) == [None, None, None]


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


def test_base_keys_through_merges_and_drops(monkeypatch: pytest.MonkeyPatch) -> None:
    """Base keys sit in a column of the deltas alone: every delta keeps its own across runs,
    merges, blocks of 64 rows and dropped packs, and lookup_run gives what lookup gives."""
    monkeypatch.setattr(index_module, "_MIN_MERGE", 50)
    rng = random.Random(30)
    ids = random_ids(2000, seed=31)
    want: dict[bytes, BlobLocation] = {}
    packs = [Id(n.to_bytes(32, "big")) for n in range(40)]
    index = BlobIndex()
    for n, pack_id in enumerate(packs):
        entries = []
        for m, blob_id in enumerate(ids[n * 50 : n * 50 + 50]):
            base = Id(rng.randbytes(32)) if rng.random() < 0.4 else None
            flags = (FLAG_DELTA if base else 0) | rng.randrange(128) << 1
            entries.append(PackEntry(BlobType.DATA, Id(blob_id), m, 1, 2, flags, base))
            key = int.from_bytes(base[:8], "big") if base else 0
            want[blob_id] = BlobLocation(pack_id, BlobType.DATA, m, 1, 2, flags, key)
        index.add_pack(pack_id, entries)
        if n == 30:
            assert len(index._runs) > 1
            assert [index.lookup(i) for i in ids] == [want.get(i) for i in ids]
    assert index.lookup_run(b"".join(ids)) == [want[i] for i in ids]
    index.drop_packs(set(packs[::3]))
    kept = {i: loc for i, loc in want.items() if loc.pack_id not in packs[::3]}
    assert dict(index.entries()) == kept
    assert index.lookup_run(b"".join(ids)) == [kept.get(i) for i in ids]
    assert index.memory_bytes() == 50 * len(kept) + 8 * sum(
        loc.is_delta for loc in kept.values()
    ) + 4 * -(-len(kept) // 64)
