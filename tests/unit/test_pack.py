"""Pack layout: blobs back to back, then the header, then an 8-byte trailer."""

from __future__ import annotations

import os
import struct

import pytest

from snapstore import pack
from snapstore.errors import IntegrityError, Truncated, UnsupportedVersion
from snapstore.ids import Id
from snapstore.pack import BlobType, PackBlob, PackEntry


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
    for version in (0, 3, 0xFF):
        with pytest.raises(UnsupportedVersion):
            pack.decode_header(bytes([version]) + header[1:])
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
    """Flag bits other than FLAG_DELTA are reserved: kept as they are, in both versions."""
    entry = PackEntry(BlobType.DATA, Id(bytes(32)), 0, 10, 20, flags=0x82)
    header = pack.encode_header([entry])
    assert header[0] == pack.HEADER_VERSION
    assert pack.decode_header(header) == [entry]
    delta = PackEntry(
        BlobType.DATA, Id(bytes(32)), 0, 10, 20, flags=0x82 | pack.FLAG_DELTA, base=BASE
    )
    header = pack.encode_header([delta])
    assert header[0] == pack.HEADER_VERSION_DELTAS
    assert pack.decode_header(header) == [delta]


# -- version 2 headers: delta entries carry their base id ----------------------------------------

BASE = Id(bytes(range(100, 132)))


def mixed_blobs() -> list[PackBlob]:
    """A whole blob, a delta, a tree, another delta: the order a writer may put them in."""
    out = []
    for i, (blob_type, base) in enumerate(
        [
            (BlobType.DATA, None),
            (BlobType.DATA, BASE),
            (BlobType.TREE, None),
            (BlobType.DATA, Id(os.urandom(32))),
        ]
    ):
        body = os.urandom(20 + 11 * i)
        out.append(PackBlob(blob_type, Id(os.urandom(32)), body, 1000 + i, base))
    return out


def test_version_2_round_trip() -> None:
    blobs = mixed_blobs()
    data, entries = pack.assemble(blobs, identity)
    assert parse(data) == entries
    offset = 0
    for blob, entry in zip(blobs, entries, strict=True):
        flags = pack.FLAG_DELTA if blob.base is not None else 0
        assert entry == PackEntry(
            blob.type, blob.id, offset, len(blob.envelope), blob.plain_length, flags, blob.base
        )
        assert entry.is_delta == (blob.base is not None)
        assert data[entry.offset : entry.offset + entry.length] == blob.envelope
        offset += len(blob.envelope)
    # The trailer's pack version stays 1: only the header inside knows about deltas.
    assert data[-4:] == b"SNP\x01"


def test_version_2_layout_bytes() -> None:
    blobs = mixed_blobs()[:2]
    _, entries = pack.assemble(blobs, identity)
    header = pack.encode_header(entries)
    assert header[:5] == b"\x02\x02\x00\x00\x00"
    assert len(header) == 5 + 2 * pack.ENTRY_SIZE + 32
    whole = header[5 : 5 + pack.ENTRY_SIZE]
    delta = header[5 + pack.ENTRY_SIZE : 5 + 2 * pack.ENTRY_SIZE]
    assert whole[1] == 0 and delta[1] == pack.FLAG_DELTA
    assert (
        delta
        == struct.pack("<BBII", 1, 1, len(blobs[1].envelope), blobs[1].plain_length) + blobs[1].id
    )
    assert header[5 + 2 * pack.ENTRY_SIZE :] == BASE  # right after the delta's entry


def test_whole_blobs_only_still_write_version_1() -> None:
    blobs = [PackBlob(*b) for b in make_blobs(3)]
    _, entries = pack.assemble(blobs, identity)
    assert pack.encode_header(entries)[0] == pack.HEADER_VERSION == 1


def test_version_1_header_with_a_delta_flag_is_refused() -> None:
    _, entries = pack.assemble(mixed_blobs()[:2], identity)
    header = pack.encode_header(entries)
    with pytest.raises(IntegrityError):
        pack.decode_header(b"\x01" + header[1:])
    # Even without the base id that a version 1 reader would not expect.
    with pytest.raises(IntegrityError):
        pack.decode_header(b"\x01" + header[1:-32])


def test_version_2_header_truncated_inside_a_base_id() -> None:
    _, entries = pack.assemble(mixed_blobs()[:2], identity)
    header = pack.encode_header(entries)
    for cut in (1, 16, 31):
        with pytest.raises(Truncated):
            pack.decode_header(header[:-cut])
    # The count says two entries; with the base id gone, the delta entry ends the header.
    with pytest.raises(Truncated):
        pack.decode_header(header[:-32] + b"\0")


def test_every_truncation_of_a_version_2_header_is_refused() -> None:
    _, entries = pack.assemble(mixed_blobs(), identity)
    header = pack.encode_header(entries)
    for length in range(len(header)):
        with pytest.raises(IntegrityError):  # Truncated is an IntegrityError
            pack.decode_header(header[:length])


def test_a_delta_entry_must_name_its_base_and_only_a_delta_may() -> None:
    with pytest.raises(IntegrityError):
        pack.encode_header([PackEntry(BlobType.DATA, Id(bytes(32)), 0, 1, 1, pack.FLAG_DELTA)])
    with pytest.raises(IntegrityError):
        pack.encode_header([PackEntry(BlobType.DATA, Id(bytes(32)), 0, 1, 1, 0, BASE)])


def test_a_base_id_flag_cleared_shifts_the_entries() -> None:
    """Clearing a delta flag in a version 2 header leaves 32 bytes the count does not explain."""
    _, entries = pack.assemble(mixed_blobs()[:2], identity)
    header = bytearray(pack.encode_header(entries))
    header[5 + pack.ENTRY_SIZE + 1] = 0
    with pytest.raises(Truncated):
        pack.decode_header(bytes(header))
