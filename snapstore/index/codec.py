"""Index file plaintext (SPEC.md section 8): a msgpack map.

    {"v": 1,
     "supersedes": [bin(32), ...],          # index files this one replaces (prune)
     "packs": [[bin(32) pack id, bin entries], ...]}

`entries` is a byte string of 46-byte records, one per blob, in pack order:

    type u8 | flags u8 | offset u32 LE | stored length u32 LE | plain length u32 LE | id (32)
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

import msgpack

from snapstore.errors import IntegrityError, UnsupportedVersion
from snapstore.ids import Id
from snapstore.pack import BlobType, PackEntry

INDEX_VERSION = 1
RECORD_SIZE = 46
_RECORD = struct.Struct("<BBIII32s")


@dataclass
class IndexFile:
    packs: dict[Id, list[PackEntry]] = field(default_factory=dict)
    supersedes: list[Id] = field(default_factory=list)


def encode_entries(entries: Sequence[PackEntry]) -> bytes:
    return b"".join(
        _RECORD.pack(e.type, e.flags, e.offset, e.length, e.plain_length, e.id) for e in entries
    )


def decode_entries(raw: bytes) -> list[PackEntry]:
    if len(raw) % RECORD_SIZE:
        raise IntegrityError("index entry list has a partial record")
    out = []
    for type_, flags, offset, length, plain, blob_id in _RECORD.iter_unpack(raw):
        out.append(PackEntry(BlobType(type_), Id(blob_id), offset, length, plain, flags))
    return out


def encode_index(index: IndexFile) -> bytes:
    return msgpack.packb(
        {
            "v": INDEX_VERSION,
            "supersedes": [bytes(i) for i in index.supersedes],
            "packs": [[bytes(pid), encode_entries(ents)] for pid, ents in index.packs.items()],
        },
        use_bin_type=True,
    )


def decode_index(plaintext: bytes) -> IndexFile:
    try:
        doc = msgpack.unpackb(plaintext, raw=False)
        if not isinstance(doc, dict):
            raise ValueError("not a map")
        if doc.get("v") != INDEX_VERSION:
            raise UnsupportedVersion(f"index version {doc.get('v')!r} is not supported")
        result = IndexFile(supersedes=[Id(x) for x in doc["supersedes"]])
        for pack_id, raw in doc["packs"]:
            result.packs[Id(pack_id)] = decode_entries(raw)
    except UnsupportedVersion:
        raise
    except (ValueError, KeyError, TypeError, msgpack.UnpackException) as exc:
        raise IntegrityError(f"index file is malformed: {exc}") from None
    return result
