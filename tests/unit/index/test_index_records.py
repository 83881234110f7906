"""`BlobIndex.add_records`: packs added as index files store them (46-byte records and base
ids, read by numpy) give the index `add_pack` gives from `PackEntry` lists, and records that
`decode_index` would refuse are refused."""

from __future__ import annotations

import os
import random

import pytest

from snapstore.errors import IntegrityError
from snapstore.ids import Id
from snapstore.index.codec import (
    IndexFile,
    decode_index,
    encode_bases,
    encode_entries,
    encode_index,
)
from snapstore.index.index import BlobIndex
from snapstore.pack import FLAG_DELTA, BlobType, PackEntry


def sample_packs(seed: int) -> dict[Id, list[PackEntry]]:
    """Packs of data and tree blobs, some deltas, reserved flag bits set, an id stored in two
    packs and ids sharing their first 8 bytes."""
    rng = random.Random(seed)
    ids = [Id(rng.randbytes(32)) for _ in range(300)]
    ids += [Id(ids[0][:8] + rng.randbytes(24)) for _ in range(3)]  # share the sort key
    packs: dict[Id, list[PackEntry]] = {}
    for start in range(0, len(ids), 40):
        entries = []
        for n, blob_id in enumerate(ids[start : start + 40]):
            delta = n % 4 == 3
            flags = (FLAG_DELTA if delta else 0) | (rng.randrange(128) << 1)  # all 8 bits
            base = Id(rng.choice(ids)) if delta else None
            blob_type = BlobType.TREE if n % 5 == 0 else BlobType.DATA
            entries.append(
                PackEntry(blob_type, blob_id, n * 1000, 900 + n, 4_000_000_000 - n, flags, base)
            )
        packs[Id(rng.randbytes(32))] = entries
    first_pack = next(iter(packs.values()))
    packs[Id(rng.randbytes(32))] = first_pack[:5]  # the same blobs again, in another pack
    return packs


def records(packs: dict[Id, list[PackEntry]]) -> list[tuple[Id, tuple[bytes, bytes]]]:
    return [(p, (encode_entries(e), encode_bases(e))) for p, e in packs.items()]


def assert_same_index(got: BlobIndex, want: BlobIndex, ids: list[bytes]) -> None:
    assert len(got) == len(want)
    for blob_id in ids:
        assert got.lookup_all(blob_id) == want.lookup_all(blob_id)
        assert got.lookup(blob_id) == want.lookup(blob_id)
    run = b"".join(ids)
    assert got.lookup_run(run) == want.lookup_run(run)
    assert got.plain_lengths_of_run(run).tolist() == want.plain_lengths_of_run(run).tolist()
    keys = [int.from_bytes(i[:8], "big") for i in ids] + [7]
    assert got.ids_with_keys(keys) == want.ids_with_keys(keys)
    assert got.pack_ids() == want.pack_ids()
    assert got.stored_bytes() == want.stored_bytes()
    assert list(got.entries()) == list(want.entries())
    assert got.memory_bytes() == want.memory_bytes() <= 58 * len(want)


@pytest.mark.parametrize("batches", [1, 3])
def test_records_give_the_index_add_pack_gives(batches: int) -> None:
    packs = sample_packs(1)
    by_entries = BlobIndex()
    for pack_id, entries in packs.items():
        by_entries.add_pack(pack_id, entries)
    by_records = BlobIndex()
    rows = records(packs)
    for n in range(batches):
        by_records.add_records(rows[n::batches])
    ids = [bytes(e.id) for entries in packs.values() for e in entries] + [os.urandom(32)]
    if batches == 1:  # both in the order added, so duplicates list the same way
        assert_same_index(by_records, by_entries, ids)
    for blob_id in ids:
        assert sorted(by_records.lookup_all(blob_id), key=repr) == sorted(
            by_entries.lookup_all(blob_id), key=repr
        )
    by_records.compact()
    by_entries.compact()
    if batches == 1:
        assert_same_index(by_records, by_entries, ids)


def test_records_of_a_decoded_index_file() -> None:
    """What opening a repository does: decode_index, then the stored records straight in."""
    packs = sample_packs(2)
    decoded = decode_index(encode_index(IndexFile(packs=packs)))
    index = BlobIndex()
    index.add_records(decoded.pack_records().items())
    want = BlobIndex()
    for pack_id, entries in packs.items():
        want.add_pack(pack_id, entries)
    ids = [bytes(e.id) for entries in packs.values() for e in entries]
    assert_same_index(index, want, ids)
    delta = next(e for e in packs[next(iter(packs))] if e.base is not None)
    found = index.lookup(delta.id)
    assert found is not None and found.is_delta
    assert found.base_key == int.from_bytes(delta.base[:8], "big")  # type: ignore[index]
    assert found.flags == delta.flags and found.plain_length == delta.plain_length


@pytest.mark.parametrize("filler", [0, 20_000])
def test_records_join_an_index_with_runs(filler: int) -> None:
    """Records added to a small index are merged into its run, to a big one they stay a run
    of their own; either way an id in both lists the earlier location first."""
    packs = sample_packs(3)
    (first_id, first), *rest = packs.items()
    repeated = list(packs)[-1]  # holds first[:5] again
    index = BlobIndex()
    if filler:
        index.add_pack(Id(bytes(32)), entries_for([os.urandom(32) for _ in range(filler)]))
    index.add_pack(first_id, first)
    index.add_records(records(dict(rest)))
    assert len(index._runs) == (2 if filler else 1)
    blob_id = first[0].id
    assert [loc.pack_id for loc in index.lookup_all(blob_id)] == [first_id, repeated]
    assert index.lookup(blob_id) == index.lookup_run(blob_id)[0] == index.lookup_all(blob_id)[0]
    assert len(index) == filler + sum(len(e) for e in packs.values())


def entries_for(ids: list[bytes]) -> list[PackEntry]:
    return [PackEntry(BlobType.DATA, Id(b), n * 10, 10, 20) for n, b in enumerate(ids)]


@pytest.mark.parametrize(
    "raw, bases",
    [
        (encode_entries([PackEntry(BlobType.DATA, Id(bytes(32)), 0, 1, 1, FLAG_DELTA)]), b""),
        (encode_entries([PackEntry(BlobType.DATA, Id(bytes(32)), 0, 1, 1, 0x80)]), bytes(32)),
        (encode_entries([PackEntry(BlobType.DATA, Id(bytes(32)), 0, 1, 1)])[:-1], b""),
        (b"\x07" + encode_entries([PackEntry(BlobType.DATA, Id(bytes(32)), 0, 1, 1)])[1:], b""),
        (encode_entries([PackEntry(BlobType.DATA, Id(bytes(32)), 0, 1, 1, 0xFF)]), bytes(31)),
    ],
    ids=[
        "delta-without-base",
        "base-without-delta",
        "partial-record",
        "unknown-type",
        "partial-base",
    ],
)
def test_malformed_records_are_refused(raw: bytes, bases: bytes) -> None:
    index = BlobIndex()
    good = encode_entries([PackEntry(BlobType.DATA, Id(os.urandom(32)), 0, 1, 1)])
    with pytest.raises(IntegrityError):
        index.add_records([(Id(bytes(32)), (good, b"")), (Id(b"\1" * 32), (raw, bases))])
    assert len(index) == 0 and index.pack_ids() == set()


def test_no_records() -> None:
    index = BlobIndex()
    index.add_records([])
    index.add_records([(Id(bytes(32)), (b"", b""))])
    assert (
        len(index) == 0
        and index.lookup(bytes(32)) is None
        and index.lookup_run(bytes(64)) == [None, None]
    )
