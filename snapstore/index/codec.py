"""Index file plaintext (SPEC.md section 8): a msgpack map.

    {"v": 1 or 2,
     "supersedes": [bin(32), ...],          # index files this one replaces (prune)
     "packs": [[bin(32) pack id, bin entries], ...]}        # v1
     "packs": [[bin(32) pack id, bin entries, bin bases], ...]}  # v2

`entries` is a byte string of 46-byte records, one per blob, in pack order:

    type u8 | flags u8 | offset u32 LE | stored length u32 LE | plain length u32 LE | id (32)

`bases` (version 2 only) holds the 32-byte base ids of the delta entries (flags has
FLAG_DELTA), in entry order, so prune knows which blobs deltas need without reading packs.
Writers use version 1 when no pack in the file holds a delta.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

import msgpack

from snapstore.errors import IntegrityError, UnsupportedVersion
from snapstore.ids import ID_SIZE, Id
from snapstore.pack import FLAG_DELTA, BlobType, PackEntry, check_delta_fields

INDEX_VERSION = 1
INDEX_VERSION_DELTAS = 2
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


def encode_bases(entries: Sequence[PackEntry]) -> bytes:
    return b"".join(bytes(e.base) for e in entries if e.base is not None)


def decode_entries(raw: bytes, bases: bytes = b"") -> list[PackEntry]:
    if len(raw) % RECORD_SIZE:
        raise IntegrityError("index entry list has a partial record")
    if len(bases) % ID_SIZE:
        raise IntegrityError("index base list has a partial id")
    out = []
    next_base = 0
    for type_, flags, offset, length, plain, blob_id in _RECORD.iter_unpack(raw):
        base = None
        if flags & FLAG_DELTA:
            if next_base + ID_SIZE > len(bases):
                raise IntegrityError("index names more delta blobs than base ids")
            base = Id(bases[next_base : next_base + ID_SIZE])
            next_base += ID_SIZE
        check_delta_fields(flags, base)
        out.append(PackEntry(BlobType(type_), Id(blob_id), offset, length, plain, flags, base))
    if next_base != len(bases):
        raise IntegrityError("index has more base ids than delta blobs")
    return out


def encode_index(index: IndexFile) -> bytes:
    deltas = any(e.base is not None for ents in index.packs.values() for e in ents)
    packs: list[list[bytes]] = []
    for pack_id, entries in index.packs.items():
        row = [bytes(pack_id), encode_entries(entries)]
        if deltas:
            row.append(encode_bases(entries))
        packs.append(row)
    return msgpack.packb(
        {
            "v": INDEX_VERSION_DELTAS if deltas else INDEX_VERSION,
            "supersedes": [bytes(i) for i in index.supersedes],
            "packs": packs,
        },
        use_bin_type=True,
    )


def decode_index(plaintext: bytes) -> IndexFile:
    try:
        doc = msgpack.unpackb(plaintext, raw=False)
        if not isinstance(doc, dict):
            raise ValueError("not a map")
        version = doc.get("v")
        if type(version) is not int or version not in (INDEX_VERSION, INDEX_VERSION_DELTAS):
            raise UnsupportedVersion(f"index version {version!r} is not supported")
        result = IndexFile(supersedes=[Id(x) for x in doc["supersedes"]])
        for row in doc["packs"]:
            if version == INDEX_VERSION:
                pack_id, raw = row
                bases = b""
            else:
                pack_id, raw, bases = row
            result.packs[Id(pack_id)] = decode_entries(raw, bases)
    except UnsupportedVersion:
        raise
    except (ValueError, KeyError, TypeError, msgpack.UnpackException) as exc:
        raise IntegrityError(f"index file is malformed: {exc}") from None
    return result
