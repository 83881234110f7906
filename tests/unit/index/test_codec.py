"""Index files: msgpack with packed 46-byte records (and, in version 2, the base ids of delta
entries); anything malformed is an IntegrityError."""

from __future__ import annotations

import os
import struct

import msgpack
import pytest

from snapstore.errors import IntegrityError, UnsupportedVersion
from snapstore.ids import Id
from snapstore.index.codec import (
    INDEX_VERSION,
    INDEX_VERSION_DELTAS,
    RECORD_SIZE,
    IndexFile,
    decode_entries,
    decode_index,
    encode_bases,
    encode_entries,
    encode_index,
)
from snapstore.pack import FLAG_DELTA, BlobType, PackEntry


def sample_entries(count: int, deltas: bool = True) -> list[PackEntry]:
    out, offset = [], 0
    for n in range(count):
        length = 40 + n
        blob_type = BlobType.TREE if n % 2 else BlobType.DATA
        delta = deltas and n % 3 == 1
        base = Id(os.urandom(32)) if delta else None
        out.append(
            PackEntry(
                blob_type,
                Id(os.urandom(32)),
                offset,
                length,
                3 * n,
                FLAG_DELTA if delta else 0,
                base,
            )
        )
        offset += length
    return out


def sample_index(deltas: bool = True) -> IndexFile:
    return IndexFile(
        packs={Id(os.urandom(32)): sample_entries(n, deltas) for n in (1, 3, 0, 5)},
        supersedes=[Id(os.urandom(32)), Id(os.urandom(32))],
    )


def test_round_trip() -> None:
    original = sample_index()
    decoded = decode_index(encode_index(original))
    assert decoded == original
    assert all(isinstance(pack_id, Id) for pack_id in decoded.packs)
    assert list(decoded.packs) == list(original.packs)  # order kept


def test_empty_index_round_trip() -> None:
    assert decode_index(encode_index(IndexFile())) == IndexFile()


def test_record_layout() -> None:
    entry = PackEntry(BlobType.TREE, Id(bytes(range(32))), 7, 300, 70_000, flags=0x82)
    raw = encode_entries([entry])
    assert len(raw) == RECORD_SIZE
    assert raw == struct.pack("<BBIII", 2, 0x82, 7, 300, 70_000) + bytes(range(32))
    assert decode_entries(raw) == [entry]  # reserved flag bits are kept


def test_record_layout_of_a_delta() -> None:
    base = Id(bytes(range(100, 132)))
    entries = [
        PackEntry(BlobType.DATA, Id(bytes(range(32))), 0, 300, 70_000),
        PackEntry(BlobType.DATA, Id(bytes(range(1, 33))), 300, 40, 70_001, FLAG_DELTA, base),
    ]
    raw = encode_entries(entries)
    assert raw[RECORD_SIZE:] == struct.pack("<BBIII", 1, FLAG_DELTA, 300, 40, 70_001) + bytes(
        range(1, 33)
    )
    assert encode_bases(entries) == base  # only the delta has one
    assert decode_entries(raw, base) == entries


def test_document_layout() -> None:
    index = sample_index(deltas=False)
    doc = msgpack.unpackb(encode_index(index))
    assert list(doc) == ["v", "supersedes", "packs"]
    assert doc["v"] == INDEX_VERSION == 1
    assert doc["supersedes"] == [bytes(i) for i in index.supersedes]
    assert [p[0] for p in doc["packs"]] == [bytes(p) for p in index.packs]
    assert all(len(p) == 2 for p in doc["packs"])


def test_document_layout_with_deltas() -> None:
    index = sample_index()
    doc = msgpack.unpackb(encode_index(index))
    assert doc["v"] == INDEX_VERSION_DELTAS == 2
    assert [p[0] for p in doc["packs"]] == [bytes(p) for p in index.packs]
    for (_, raw, bases), entries in zip(doc["packs"], index.packs.values(), strict=True):
        assert raw == encode_entries(entries)
        # Every pack row has its bases, empty when the pack holds no delta.
        assert bases == b"".join(bytes(e.base) for e in entries if e.base is not None)
    assert any(bases == b"" for _, _, bases in doc["packs"])
    assert any(bases != b"" for _, _, bases in doc["packs"])


def test_round_trip_with_deltas() -> None:
    original = sample_index()
    decoded = decode_index(encode_index(original))
    assert decoded == original
    deltas = [e for entries in decoded.packs.values() for e in entries if e.is_delta]
    assert deltas and all(isinstance(e.base, Id) for e in deltas)
    assert all(
        e.base is None for entries in decoded.packs.values() for e in entries if not e.is_delta
    )


def test_version_1_still_reads() -> None:
    original = sample_index(deltas=False)
    plain = msgpack.packb(
        {
            "v": 1,
            "supersedes": [bytes(i) for i in original.supersedes],
            "packs": [[bytes(p), encode_entries(e)] for p, e in original.packs.items()],
        },
        use_bin_type=True,
    )
    assert encode_index(original) == plain
    assert decode_index(plain) == original


def _rows_with_bases(change: object) -> list[list[bytes]]:
    """The pack rows of a v2 document whose one delta gets `change` as its bases field."""
    entries = sample_entries(3)
    assert [e.is_delta for e in entries] == [False, True, False]
    return [[bytes(32), encode_entries(entries), change]]  # type: ignore[list-item]


@pytest.mark.parametrize(
    "bases",
    [
        b"",  # the delta has no base
        bytes(31),  # a partial base id
        bytes(33),
        bytes(64),  # one base too many
        "text",
    ],
)
def test_base_count_mismatches_are_refused(bases: object) -> None:
    with pytest.raises(IntegrityError):
        decode_index(_doc(v=2, packs=_rows_with_bases(bases)))


def test_bases_without_deltas_are_refused() -> None:
    entries = sample_entries(3, deltas=False)
    with pytest.raises(IntegrityError):
        decode_index(_doc(v=2, packs=[[bytes(32), encode_entries(entries), bytes(32)]]))
    with pytest.raises(IntegrityError):
        decode_entries(encode_entries(entries), bytes(32))


def test_version_1_cannot_hold_deltas() -> None:
    entries = sample_entries(3)
    with pytest.raises(IntegrityError):  # a v1 row has no bases for its delta
        decode_index(_doc(v=1, packs=[[bytes(32), encode_entries(entries)]]))
    with pytest.raises(IntegrityError):  # nor room for them
        decode_index(_doc(v=1, packs=[[bytes(32), encode_entries(entries), bytes(32)]]))


def test_version_2_rows_need_their_bases() -> None:
    entries = sample_entries(2, deltas=False)
    with pytest.raises(IntegrityError):
        decode_index(_doc(v=2, packs=[[bytes(32), encode_entries(entries)]]))
    assert decode_index(_doc(v=2, packs=[[bytes(32), encode_entries(entries), b""]])).packs == {
        Id(bytes(32)): entries
    }


def test_partial_record() -> None:
    raw = encode_entries(sample_entries(2))
    with pytest.raises(IntegrityError):
        decode_entries(raw[:-1])


def _doc(**changes: object) -> bytes:
    """A version 1 document (rows of two) with some fields changed or removed (...)."""
    doc = msgpack.unpackb(encode_index(sample_index(deltas=False)))
    doc.update(changes)
    return msgpack.packb({k: v for k, v in doc.items() if v is not ...}, use_bin_type=True)


@pytest.mark.parametrize(
    "plaintext",
    [
        b"",
        b"\xc1",
        b"\x92\x01",  # a truncated array
        msgpack.packb([1, 2, 3]),
        msgpack.packb("index"),
        _doc(packs=...),
        _doc(supersedes=...),
        _doc(packs=[[b"short", b""]]),
        _doc(packs=[[bytes(32)]]),
        _doc(packs=[[bytes(32), b"x" * (RECORD_SIZE + 1)]]),
        _doc(packs=[[bytes(32), "text"]]),
        _doc(packs=[[bytes(32), b"\x09" + bytes(RECORD_SIZE - 1)]]),  # unknown blob type
        _doc(packs={"a": 1}),
        _doc(supersedes=[b"short"]),
        _doc(supersedes=[1]),
        _doc(packs=[[bytes(32), 1]]),
        _doc(packs=[1]),
        encode_index(sample_index()) + b"\x00",  # trailing data
    ],
    ids=lambda plaintext: f"{len(plaintext)}B",  # stable: some cases hold random ids
)
def test_malformed_index_is_an_integrity_error(plaintext: bytes) -> None:
    with pytest.raises(IntegrityError):
        decode_index(plaintext)


@pytest.mark.parametrize("version", [0, 3, None, "1", "2"])
def test_unknown_version(version: object) -> None:
    with pytest.raises(UnsupportedVersion):
        decode_index(_doc(v=version))


@pytest.mark.parametrize("deltas", [False, True])
def test_every_truncation_is_refused(deltas: bool) -> None:
    encoded = encode_index(sample_index(deltas))
    for length in range(len(encoded)):
        with pytest.raises(IntegrityError):
            decode_index(encoded[:length])


def test_a_decoded_file_keeps_the_stored_records() -> None:
    """decode_index checks the records and keeps them as stored (opening a repository hands
    them to the index whole); `packs` is built from them on first use."""
    original = sample_index()
    plaintext = encode_index(original)
    doc = msgpack.unpackb(plaintext)
    decoded = decode_index(plaintext)
    assert decoded.pack_records() == {Id(p): (raw, bases) for p, raw, bases in doc["packs"]}
    assert encode_index(decoded) == plaintext  # from the records, no entries built
    assert decoded.packs == original.packs
    assert decoded.pack_records() == original.pack_records()


def test_pack_records_of_entries() -> None:
    index = sample_index()
    assert index.pack_records() == {
        p: (encode_entries(e), encode_bases(e)) for p, e in index.packs.items()
    }


def test_changing_the_packs_of_a_decoded_file() -> None:
    decoded = decode_index(encode_index(sample_index()))
    extra = Id(os.urandom(32))
    entries = sample_entries(2)
    decoded.packs[extra] = entries
    assert decoded.pack_records()[extra] == (encode_entries(entries), encode_bases(entries))
    assert decode_index(encode_index(decoded)).packs == decoded.packs
    assert extra in decode_index(encode_index(decoded)).packs


@pytest.mark.parametrize("flags", [FLAG_DELTA, FLAG_DELTA | 0xFE, 0x80, 0xFE])
def test_every_flags_bit_is_kept_and_only_the_delta_bit_asks_for_a_base(flags: int) -> None:
    base = Id(os.urandom(32)) if flags & FLAG_DELTA else None
    entry = PackEntry(BlobType.DATA, Id(os.urandom(32)), 0, 1, 2, flags, base)
    index = IndexFile(packs={Id(bytes(32)): [entry]})
    assert decode_index(encode_index(index)).packs == index.packs
    wrong = b"" if base is not None else bytes(32)
    with pytest.raises(IntegrityError):
        decode_index(_doc(v=2, packs=[[bytes(32), encode_entries([entry]), wrong]]))
