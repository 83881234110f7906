"""Vectorised look-ups give what one look-up at a time gives: merged, pending, shared key
prefixes and unknown ids alike."""

from __future__ import annotations

import os

from snapstore.ids import Id
from snapstore.index.index import BlobIndex
from snapstore.pack import FLAG_DELTA, BlobType, PackEntry


def entry(blob_id: bytes, offset: int, base: bytes | None = None) -> PackEntry:
    flags = FLAG_DELTA if base is not None else 0
    return PackEntry(BlobType.DATA, Id(blob_id), offset, 10, 20, flags, Id(base) if base else None)


def test_lookup_run_matches_lookup() -> None:
    index = BlobIndex()
    merged = [os.urandom(32) for _ in range(50)]
    merged += [merged[2][:8] + b"\0" * 24, merged[2][:8] + b"\xff" * 24]  # one key, three ids
    index.add_pack(Id(b"\1" * 32), [entry(b, n * 10) for n, b in enumerate(merged)])
    index.compact()
    twin = merged[0][:8] + os.urandom(24)  # shares the 8-byte key prefix of a merged id
    pending = [os.urandom(32) for _ in range(5)] + [twin]
    index.add_pack(Id(b"\2" * 32), [entry(b, n * 10, base=merged[1]) for n, b in enumerate(pending)])
    unknown = [os.urandom(32) for _ in range(5)]
    wanted = merged + pending + unknown + merged[:3]
    assert index.lookup_run(b"".join(wanted)) == [index.lookup(b) for b in wanted]
    assert index.lookup_run(b"") == []


def test_ids_with_keys_matches_ids_with_key() -> None:
    index = BlobIndex()
    ids = [os.urandom(32) for _ in range(40)]
    ids.append(ids[0][:8] + os.urandom(24))
    index.add_pack(Id(b"\1" * 32), [entry(b, n * 10) for n, b in enumerate(ids)])
    index.compact()
    keys = [int.from_bytes(b[:8], "big") for b in ids] + [12345]
    assert index.ids_with_keys(keys) == {k: index.ids_with_key(k) for k in keys}


def test_lookup_all_run_matches_lookup_all() -> None:
    """Every copy of each id, in `lookup_all`'s order: copies in one run and across runs,
    ids sharing a key prefix, unknown and repeated ids."""
    index = BlobIndex()
    ids = [os.urandom(32) for _ in range(30)]
    twin = ids[0][:8] + os.urandom(24)
    index.add_pack(Id(b"\1" * 32), [entry(b, n * 10) for n, b in enumerate([*ids, twin, ids[3]])])
    index.compact()
    index.add_pack(Id(b"\2" * 32), [entry(b, n * 10, base=ids[1]) for n, b in enumerate(ids[:5])])
    unknown = [os.urandom(32) for _ in range(3)]
    wanted = [*ids, twin, *unknown, ids[3], ids[0]]
    found = index.lookup_all_run(b"".join(wanted))
    assert found == [index.lookup_all(b) for b in wanted]
    assert len(found[3]) == 3 and len(found[0]) == 2
    assert index.lookup_all_run(b"") == []
