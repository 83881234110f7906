"""Index files: msgpack with packed 46-byte records; anything malformed is an IntegrityError."""

from __future__ import annotations

import os
import struct

import msgpack
import pytest

from snapstore.errors import IntegrityError, UnsupportedVersion
from snapstore.ids import Id
from snapstore.index.codec import (
    RECORD_SIZE,
    IndexFile,
    decode_entries,
    decode_index,
    encode_entries,
    encode_index,
)
from snapstore.pack import FLAG_DELTA, BlobType, PackEntry


def sample_entries(count: int) -> list[PackEntry]:
    out, offset = [], 0
    for n in range(count):
        length = 40 + n
        blob_type = BlobType.TREE if n % 2 else BlobType.DATA
        delta = n % 3 == 1
        base = Id(os.urandom(32)) if delta else None
        out.append(
            PackEntry(blob_type, Id(os.urandom(32)), offset, length, 3 * n, FLAG_DELTA if delta else 0, base)
        )
        offset += length
    return out


def sample_index() -> IndexFile:
    return IndexFile(
        packs={Id(os.urandom(32)): sample_entries(n) for n in (1, 3, 0, 5)},
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
    entry = PackEntry(BlobType.TREE, Id(bytes(range(32))), 7, 300, 70_000, flags=1)
    raw = encode_entries([entry])
    assert len(raw) == RECORD_SIZE
    assert raw == struct.pack("<BBIII", 2, 1, 7, 300, 70_000) + bytes(range(32))
    assert decode_entries(raw) == [entry]


def test_document_layout() -> None:
    index = sample_index()
    doc = msgpack.unpackb(encode_index(index))
    assert doc["v"] == 1
    assert doc["supersedes"] == [bytes(i) for i in index.supersedes]
    assert [p[0] for p in doc["packs"]] == [bytes(p) for p in index.packs]


def test_partial_record() -> None:
    raw = encode_entries(sample_entries(2))
    with pytest.raises(IntegrityError):
        decode_entries(raw[:-1])


def _doc(**changes: object) -> bytes:
    doc = msgpack.unpackb(encode_index(sample_index()))
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
)
def test_malformed_index_is_an_integrity_error(plaintext: bytes) -> None:
    with pytest.raises(IntegrityError):
        decode_index(plaintext)


@pytest.mark.parametrize("version", [0, 2, None, "1"])
def test_unknown_version(version: object) -> None:
    with pytest.raises(UnsupportedVersion):
        decode_index(_doc(v=version))


def test_every_truncation_is_refused() -> None:
    encoded = encode_index(sample_index())
    for length in range(len(encoded)):
        with pytest.raises(IntegrityError):
            decode_index(encoded[:length])
