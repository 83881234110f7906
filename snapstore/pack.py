"""Pack files: many blob envelopes in one object, with an encrypted header at the end.

Pure bytes in, bytes out; no I/O and no crypto (the caller seals and opens the header).

    blob envelope 0 | blob envelope 1 | ... | header envelope | trailer

Trailer, 8 bytes: header envelope length (u32 little-endian), then b"SNP", then the pack
format version (1). Header plaintext: version (u8, 1 or 2), blob count (u32 LE), then one
42-byte entry per blob in file order:

    type u8 | flags u8 | stored length u32 LE | plain length u32 LE | blob id (32 bytes)

In a version 2 header, an entry whose flags have FLAG_DELTA set is followed by the 32-byte id
of its base blob (SPEC.md section 7), and the flags' bits 1-7 hold the delta's generation
(SPEC.md section 6, feature `delta-chains`; 0 in deltas written before it). Writers use
version 1 when no blob is a delta.

Offsets are implicit: blobs sit back to back from offset 0. Because every pack describes its
own contents, the index can always be rebuilt from the packs alone.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from snapstore.errors import IntegrityError, Truncated, UnsupportedVersion
from snapstore.ids import ID_SIZE, Id

PACK_VERSION = 1
HEADER_VERSION = 1
HEADER_VERSION_DELTAS = 2
#: Entry flag: the blob is stored as a delta against the base blob its entry names.
FLAG_DELTA = 0x01
#: A delta entry's flags hold its generation above the delta bit (bits 1-7).
GENERATION_SHIFT = 1
MAX_GENERATION = 0xFF >> GENERATION_SHIFT
TRAILER_MAGIC = b"SNP"
TRAILER_SIZE = 8
ENTRY_SIZE = 42
_ENTRY = struct.Struct("<BBII32s")
_TRAILER = struct.Struct("<I3sB")
#: No pack may be larger than this: offsets and lengths are 32-bit.
MAX_PACK_SIZE = (1 << 32) - 1


class BlobType(enum.IntEnum):
    DATA = 1
    TREE = 2


@dataclass(frozen=True)
class PackEntry:
    """One blob in a pack, as the pack header and the index describe it."""

    type: BlobType
    id: Id
    offset: int
    length: int
    plain_length: int
    flags: int = 0
    base: Id | None = None  # the base blob of a delta (flags has FLAG_DELTA)

    @property
    def is_delta(self) -> bool:
        return bool(self.flags & FLAG_DELTA)

    @property
    def generation(self) -> int:
        return delta_generation(self.flags)


def blob_key(blob_type: BlobType, blob_id: bytes) -> bytes:
    """One blob as prune and the delta rules count it: its type and id (a tree and a data blob
    may share an id)."""
    return bytes((blob_type,)) + bytes(blob_id)


def delta_flags(generation: int) -> int:
    """The entry flags of a delta of this generation (0 to MAX_GENERATION)."""
    if not 0 <= generation <= MAX_GENERATION:
        raise ValueError(f"delta generation {generation} is out of range")
    return FLAG_DELTA | generation << GENERATION_SHIFT


def delta_generation(flags: int) -> int:
    """The generation entry flags give a delta (0 for a whole blob, or a delta written
    before `delta-chains`)."""
    return flags >> GENERATION_SHIFT if flags & FLAG_DELTA else 0


class PackBlob(NamedTuple):
    """A blob ready to go into a pack: its envelope and what the header says about it."""

    type: BlobType
    id: Id
    envelope: bytes
    plain_length: int
    base: Id | None = None
    generation: int = 0  # of a delta (SPEC.md section 6)


def check_delta_fields(flags: int, base: bytes | None) -> None:
    if bool(flags & FLAG_DELTA) != (base is not None):
        raise IntegrityError("a delta entry must name its base, and only a delta entry may")


def encode_header(entries: Sequence[PackEntry]) -> bytes:
    deltas = any(e.is_delta for e in entries)
    version = HEADER_VERSION_DELTAS if deltas else HEADER_VERSION
    out = bytearray(struct.pack("<BI", version, len(entries)))
    for entry in entries:
        check_delta_fields(entry.flags, entry.base)
        out += _ENTRY.pack(entry.type, entry.flags, entry.length, entry.plain_length, entry.id)
        if entry.base is not None:
            out += entry.base
    return bytes(out)


def decode_header(plaintext: bytes) -> list[PackEntry]:
    if len(plaintext) < 5:
        raise Truncated("pack header is too short")
    version, count = struct.unpack_from("<BI", plaintext)
    if version not in (HEADER_VERSION, HEADER_VERSION_DELTAS):
        raise UnsupportedVersion(f"pack header version {version} is not supported")
    entries = []
    offset = 0
    position = 5
    for _ in range(count):
        if position + ENTRY_SIZE > len(plaintext):
            raise Truncated(f"pack header says {count} entries but has {len(plaintext)} bytes")
        type_, flags, length, plain_length, blob_id = _ENTRY.unpack_from(plaintext, position)
        position += ENTRY_SIZE
        try:
            blob_type = BlobType(type_)
        except ValueError:
            raise IntegrityError(f"pack header names unknown blob type {type_}") from None
        base = None
        if flags & FLAG_DELTA:
            if version < HEADER_VERSION_DELTAS:
                raise IntegrityError("a version 1 pack header cannot hold delta blobs")
            if position + ID_SIZE > len(plaintext):
                raise Truncated("pack header ends inside a base id")
            base = Id(plaintext[position : position + ID_SIZE])
            position += ID_SIZE
        entries.append(PackEntry(blob_type, Id(blob_id), offset, length, plain_length, flags, base))
        offset += length
    if position != len(plaintext):
        raise Truncated(f"pack header says {count} entries but has {len(plaintext)} bytes")
    return entries


def assemble(
    blobs: Sequence[PackBlob] | Sequence[tuple[BlobType, Id, bytes, int]], seal_header: Callable[[bytes], bytes]
) -> tuple[bytes, list[PackEntry]]:
    """Lays out blobs back to back and appends the sealed header."""
    entries = []
    parts = []
    offset = 0
    for item in blobs:
        blob = PackBlob(*item)  # plain (type, id, envelope, plain length) tuples are fine too
        flags = delta_flags(blob.generation) if blob.base is not None else 0
        entries.append(
            PackEntry(blob.type, blob.id, offset, len(blob.envelope), blob.plain_length, flags, blob.base)
        )
        parts.append(blob.envelope)
        offset += len(blob.envelope)
    header = seal_header(encode_header(entries))
    parts.append(header)
    parts.append(_TRAILER.pack(len(header), TRAILER_MAGIC, PACK_VERSION))
    pack = b"".join(parts)
    if len(pack) > MAX_PACK_SIZE:
        raise ValueError("pack exceeds the 4 GiB format limit")
    return pack, entries


def header_length(tail: bytes) -> int:
    """Reads the trailer (the last 8 bytes of a pack) and returns the header envelope's length."""
    if len(tail) < TRAILER_SIZE:
        raise Truncated("pack is shorter than its trailer")
    length, magic, version = _TRAILER.unpack(tail[-TRAILER_SIZE:])
    if magic != TRAILER_MAGIC:
        raise IntegrityError("pack trailer has no SNP magic: not a pack, or truncated")
    if version != PACK_VERSION:
        raise UnsupportedVersion(f"pack format version {version} is not supported")
    return int(length)


def split_tail(pack_tail: bytes, pack_size: int) -> tuple[int, bytes | None]:
    """Given the last bytes of a pack, returns (header offset, header envelope if inside tail)."""
    length = header_length(pack_tail)
    start = pack_size - TRAILER_SIZE - length
    if start < 0:
        raise Truncated("pack header length points before the start of the pack")
    if length + TRAILER_SIZE <= len(pack_tail):
        return start, pack_tail[-TRAILER_SIZE - length : -TRAILER_SIZE]
    return start, None


def check_entries_fit(entries: Sequence[PackEntry], header_offset: int) -> None:
    end = sum(e.length for e in entries)
    if end != header_offset:
        raise IntegrityError(
            f"pack header describes {end} bytes of blobs but the header starts at {header_offset}"
        )


assert _ENTRY.size == ENTRY_SIZE and ID_SIZE == 32
