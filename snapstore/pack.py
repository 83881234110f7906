"""Pack files: many blob envelopes in one object, with an encrypted header at the end.

Pure bytes in, bytes out; no I/O and no crypto (the caller seals and opens the header).

    blob envelope 0 | blob envelope 1 | ... | header envelope | trailer

Trailer, 8 bytes: header envelope length (u32 little-endian), then b"SNP", then the pack
format version (1). Header plaintext: version (u8, 1), blob count (u32 LE), then one 42-byte
entry per blob in file order:

    type u8 | flags u8 | stored length u32 LE | plain length u32 LE | blob id (32 bytes)

Offsets are implicit: blobs sit back to back from offset 0. Because every pack describes its
own contents, the index can always be rebuilt from the packs alone.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from snapstore.errors import IntegrityError, Truncated, UnsupportedVersion
from snapstore.ids import ID_SIZE, Id

PACK_VERSION = 1
HEADER_VERSION = 1
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


def encode_header(entries: Sequence[PackEntry]) -> bytes:
    out = bytearray(struct.pack("<BI", HEADER_VERSION, len(entries)))
    for entry in entries:
        out += _ENTRY.pack(entry.type, entry.flags, entry.length, entry.plain_length, entry.id)
    return bytes(out)


def decode_header(plaintext: bytes) -> list[PackEntry]:
    if len(plaintext) < 5:
        raise Truncated("pack header is too short")
    version, count = struct.unpack_from("<BI", plaintext)
    if version != HEADER_VERSION:
        raise UnsupportedVersion(f"pack header version {version} is not supported")
    if len(plaintext) != 5 + count * ENTRY_SIZE:
        raise Truncated(f"pack header says {count} entries but has {len(plaintext)} bytes")
    entries = []
    offset = 0
    for i in range(count):
        type_, flags, length, plain_length, blob_id = _ENTRY.unpack_from(plaintext, 5 + i * ENTRY_SIZE)
        try:
            blob_type = BlobType(type_)
        except ValueError:
            raise IntegrityError(f"pack header names unknown blob type {type_}") from None
        entries.append(PackEntry(blob_type, Id(blob_id), offset, length, plain_length, flags))
        offset += length
    return entries


def assemble(
    blobs: Sequence[tuple[BlobType, Id, bytes, int]], seal_header: Callable[[bytes], bytes]
) -> tuple[bytes, list[PackEntry]]:
    """Lays out (type, id, envelope, plain length) blobs and appends the sealed header."""
    entries = []
    parts = []
    offset = 0
    for blob_type, blob_id, envelope, plain_length in blobs:
        entries.append(PackEntry(blob_type, blob_id, offset, len(envelope), plain_length))
        parts.append(envelope)
        offset += len(envelope)
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
