"""Fuzzing the compression frame inside every envelope (flags 0x00, 0x01 and the delta frame
0x02): any frame, expected length and base give the plaintext of that length or a clean
error, and a frame claiming a huge content size allocates nothing of that size."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from snapstore import compression
from snapstore.errors import DecompressionError, UnsupportedVersion
from tests.fuzz.fuzzing import decoded, fuzz, hostile
from tests.fuzz.seeds import BASE, FRAME_SIZES, FRAMES

FRAME_ERRORS = (DecompressionError, UnsupportedVersion)
#: zstd's best ratio is about 32,000 (a 4-byte RLE block stands for 128 KiB): what a real
#: frame may legitimately expand to, and so what decompression may allocate.
ZSTD_EXPANSION = 40_000

expected_sizes = st.none() | st.sampled_from(FRAME_SIZES) | st.integers(0, 1 << 20)
bases = st.none() | st.just(BASE) | st.just(b"") | st.binary(max_size=300)


def claiming(size: int) -> bytes:
    """A zstd frame (flag 0x01) whose header claims `size` bytes of content and holds none."""
    header = b"\x28\xb5\x2f\xfd" + b"\xc0\x58" + size.to_bytes(8, "little")  # 8-byte size, window
    return b"\x01" + header + b"\x01\x00\x00"  # one empty raw block, the last


def test_compression_frames(fuzz_cases: int) -> None:
    @given(hostile(FRAMES), expected_sizes, bases)
    # Found by this test: a stored frame was returned whatever length was expected; a zstd
    # frame claiming a huge content size made zstandard allocate it before decoding anything
    # (MemoryError for 2**40, 3 GiB of address space for 3 * 2**30, and as much again for a
    # delta frame, whose base is any bytes).
    @example(b"\x00not what the index says", 0, None)
    @example(claiming(1 << 40), None, None)
    @example(claiming(3 << 30), None, None)
    @example(claiming(1 << 40), 100, None)
    @example(b"\x02" + bytes(32) + claiming(3 << 30)[1:], None, BASE)
    def case(framed: bytes, expected: int | None, base: bytes | None) -> None:
        plain = decoded(
            compression.decompress, framed, expected, base, allowed=FRAME_ERRORS,
            size=len(framed) + (expected or 0) // ZSTD_EXPANSION, per_byte=ZSTD_EXPANSION,
        )
        if plain is not None and expected is not None:
            assert len(plain) == expected
        base_id = decoded(compression.delta_base, framed, allowed=FRAME_ERRORS)
        if base_id is not None:
            assert framed[0] == compression.DELTA and len(base_id) == 32

    fuzz(fuzz_cases, case)
