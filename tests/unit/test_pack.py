"""Pack layout: blobs back to back, then the header, then an 8-byte trailer."""

from __future__ import annotations

import os
import struct

import pytest

from snapstore import pack
from snapstore.errors import IntegrityError, Truncated, UnsupportedVersion
from snapstore.ids import Id
from snapstore.pack import BlobType, PackEntry


def identity(header: bytes) -> bytes:
    """Packs hold no crypto; the tests seal the header with the identity function."""
    return header


def make_blobs(count: int) -> list[tuple[BlobType, Id, bytes, int]]:
    blobs = []
    for i in range(count):
        body = os.urandom(10 + 37 * i)
        blob_type = BlobType.TREE if i % 3 == 2 else BlobType.DATA
        blobs.append((blob_type, Id(os.urandom(32)), body, len(body) * 2 + i))
    return blobs


def parse(data: bytes) -> list[PackEntry]:
    """What a reader does with a whole pack."""
    start, header = pack.split_tail(data, len(data))
    assert header is not None
    entries = pack.decode_header(header)
    pack.check_entries_fit(entries, start)
    return entries


@pytest.mark.parametrize("count", [0, 1, 2, 7])
def test_assemble_parse_round_trip(count: int) -> None:
    blobs = make_blobs(count)
    data, entries = pack.assemble(blobs, identity)
    assert parse(data) == entries
    offset = 0
    for (blob_type, blob_id, body, plain), entry in zip(blobs, entries, strict=True):
        assert entry == PackEntry(blob_type, blob_id, offset, len(body), plain, 0)
        assert data[entry.offset : entry.offset + entry.length] == body
        offset += len(body)


def test_layout_bytes() -> None:
    blobs = make_blobs(2)
    data, entries = pack.assemble(blobs, identity)
    header = pack.encode_header(entries)
    assert len(header) == 5 + 2 * pack.ENTRY_SIZE
    assert data == blobs[0][2] + blobs[1][2] + header + struct.pack("<I", len(header)) + b"SNP\x01"
    assert header[:5] == b"\x01\x02\x00\x00\x00"
    first = header[5 : 5 + pack.ENTRY_SIZE]
    assert first[0] == blobs[0][0] and first[1] == 0
    assert struct.unpack("<II", first[2:10]) == (len(blobs[0][2]), blobs[0][3])
    assert first[10:] == blobs[0][1]


def test_sealed_header_is_what_the_trailer_measures() -> None:
    blobs = make_blobs(3)
    sealed: list[bytes] = []

    def seal(header: bytes) -> bytes:
        sealed.append(b"[" + header[::-1] + b"]")  # any transformation that changes the length
        return sealed[-1]

    data, entries = pack.assemble(blobs, seal)
    start, header = pack.split_tail(data, len(data))
    assert header == sealed[0]
    assert start == sum(len(b[2]) for b in blobs)
    assert pack.decode_header(header[1:-1][::-1]) == entries


def test_split_tail_with_a_short_tail() -> None:
    data, entries = pack.assemble(make_blobs(5), identity)
    header_len = pack.header_length(data[-pack.TRAILER_SIZE :])
    start, header = pack.split_tail(data[-pack.TRAILER_SIZE :], len(data))
    assert header is None
    assert start == len(data) - pack.TRAILER_SIZE - header_len
    assert pack.decode_header(data[start : len(data) - pack.TRAILER_SIZE]) == entries
    # A tail that just reaches the header start returns it.
    start2, header2 = pack.split_tail(data[start:], len(data))
    assert (start2, header2) == (start, data[start : -pack.TRAILER_SIZE])


def test_trailer_magic_damage() -> None:
    data, _ = pack.assemble(make_blobs(2), identity)
    for position in (-4, -3, -2):
        damaged = bytearray(data)
        damaged[position] ^= 0x20
        with pytest.raises(IntegrityError):
            pack.header_length(bytes(damaged))


def test_trailer_version_damage() -> None:
    data, _ = pack.assemble(make_blobs(2), identity)
    damaged = data[:-1] + b"\x02"
    with pytest.raises(UnsupportedVersion):
        pack.split_tail(damaged, len(damaged))


def test_trailer_too_short() -> None:
    with pytest.raises(Truncated):
        pack.header_length(b"SNP\x01")


def test_header_length_pointing_before_the_start() -> None:
    data, _ = pack.assemble(make_blobs(1), identity)
    damaged = data[:-8] + struct.pack("<I", len(data)) + b"SNP\x01"
    with pytest.raises(Truncated):
        pack.split_tail(damaged, len(damaged))


def test_truncated_pack_is_refused() -> None:
    data, _ = pack.assemble(make_blobs(3), identity)
    cut = data[5:]  # lost its first bytes: header no longer sits where the blobs end
    start, header = pack.split_tail(cut, len(cut))
    assert header is not None
    with pytest.raises(IntegrityError):
        pack.check_entries_fit(pack.decode_header(header), start)


def test_check_entries_fit() -> None:
    _, entries = pack.assemble(make_blobs(3), identity)
    end = sum(e.length for e in entries)
    pack.check_entries_fit(entries, end)
    for wrong in (end - 1, end + 1, 0):
        with pytest.raises(IntegrityError):
            pack.check_entries_fit(entries, wrong)
    pack.check_entries_fit([], 0)


def test_decode_header_refuses_damage() -> None:
    _, entries = pack.assemble(make_blobs(2), identity)
    header = pack.encode_header(entries)
    with pytest.raises(Truncated):
        pack.decode_header(header[:4])
    with pytest.raises(Truncated):
        pack.decode_header(header[:-1])
    with pytest.raises(Truncated):
        pack.decode_header(header + b"\0")
    with pytest.raises(Truncated):
        pack.decode_header(b"\x01" + struct.pack("<I", 3) + header[5:])
    with pytest.raises(UnsupportedVersion):
        pack.decode_header(b"\x02" + header[1:])
    bad_type = bytearray(header)
    bad_type[5] = 9
    with pytest.raises(IntegrityError):
        pack.decode_header(bytes(bad_type))


def test_offsets_are_implicit() -> None:
    _, entries = pack.assemble(make_blobs(4), identity)
    decoded = pack.decode_header(pack.encode_header(entries))
    assert [e.offset for e in decoded] == [e.offset for e in entries]
    assert decoded[0].offset == 0


def test_flags_survive_the_header() -> None:
    entry = PackEntry(BlobType.DATA, Id(bytes(32)), 0, 10, 20, flags=3)
    assert pack.decode_header(pack.encode_header([entry])) == [entry]
