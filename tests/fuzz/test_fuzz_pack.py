"""Fuzzing the pack format: the trailer, the header plaintext and a whole pack's recovery path
(trailer, header envelope, compression frame, header, consistency) on any bytes."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from snapstore import compression, pack
from snapstore.crypto.aead import Kind
from snapstore.errors import IntegrityError, UnsupportedVersion
from snapstore.pack import PackEntry
from tests.fuzz.fuzzing import decoded, fuzz, hostile, mutated
from tests.fuzz.seeds import OPENER, PACK_HEADERS, PACKS, seal
from tests.fuzz.wellformed import check_pack_entries

PACK_ERRORS = (IntegrityError, UnsupportedVersion)


def read_pack(data: bytes) -> list[PackEntry]:
    """What Repository.read_pack_header does with a whole pack."""
    start, header = pack.split_tail(data, len(data))
    assert header is not None
    entries = pack.decode_header(compression.decompress(OPENER.open(Kind.PACK_HEADER, header)))
    pack.check_entries_fit(entries, start)
    return entries


def test_pack_trailer(fuzz_cases: int) -> None:
    @given(hostile(PACKS) | mutated([p[-12:] for p in PACKS]), st.integers(0, 2**33))
    def case(tail: bytes, more: int) -> None:
        decoded(pack.header_length, tail, allowed=PACK_ERRORS)
        for size in (len(tail), len(tail) + more):
            found = decoded(pack.split_tail, tail, size, allowed=PACK_ERRORS)
            if found is not None:
                start, header = found
                assert 0 <= start <= size - pack.TRAILER_SIZE
                assert header is None or start + len(header) + pack.TRAILER_SIZE == size

    fuzz(fuzz_cases, case)


def test_pack_header_decoder(fuzz_cases: int) -> None:
    @given(hostile(PACK_HEADERS))
    def case(plaintext: bytes) -> None:
        entries = decoded(pack.decode_header, plaintext, allowed=PACK_ERRORS)
        if entries is not None:
            check_pack_entries(entries, in_pack=False)  # check_entries_fit's job

    fuzz(fuzz_cases, case)


@st.composite
def packs(draw: st.DrawFn) -> bytes:
    """A damaged pack, or a pack whose sealed header holds a damaged plaintext."""
    if draw(st.booleans()):
        return draw(hostile(PACKS))
    header = draw(hostile(PACK_HEADERS))
    body = draw(st.binary(max_size=300))
    sealed = seal(Kind.PACK_HEADER, compression.compress(header))
    return body + sealed + len(sealed).to_bytes(4, "little") + pack.TRAILER_MAGIC + b"\x01"


def test_pack_recovery_path(fuzz_cases: int) -> None:
    @given(packs())
    def case(data: bytes) -> None:
        entries = decoded(read_pack, data, allowed=PACK_ERRORS)
        if entries is not None:
            check_pack_entries(entries)

    fuzz(fuzz_cases, case)
