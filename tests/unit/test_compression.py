"""The compression framing inside an envelope: a flag byte, then stored bytes or one zstd frame."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import pytest
import zstandard

from snapstore.compression import STORED, ZSTD, compress, decompress
from snapstore.errors import DecompressionError, UnsupportedVersion

TEXT = b"".join(b"line %d of a very repetitive database dump\n" % (i % 50) for i in range(5000))


def test_compressible_data_uses_zstd() -> None:
    framed = compress(TEXT)
    assert framed[0] == ZSTD
    assert len(framed) < len(TEXT) // 10
    assert decompress(framed) == TEXT
    assert decompress(framed, len(TEXT)) == TEXT


@pytest.mark.parametrize("size", [1, 100, 64 * 1024, 200 * 1024, 1 << 20])
def test_incompressible_data_is_stored(size: int) -> None:
    data = os.urandom(size)
    framed = compress(data)
    assert framed[0] == STORED
    assert framed == b"\x00" + data
    assert len(framed) <= size + 1
    assert decompress(framed, size) == data


def test_never_larger_than_input_plus_one() -> None:
    samples = [b"", b"a", b"ab" * 3, os.urandom(17), TEXT[:40], bytes(10), TEXT]
    for data in samples:
        assert len(compress(data)) <= len(data) + 1
        assert decompress(compress(data)) == data


def test_empty_input_is_stored() -> None:
    assert compress(b"") == b"\x00"
    assert decompress(b"\x00") == b""


def test_level_zero_stores() -> None:
    assert compress(TEXT, level=0) == b"\x00" + TEXT


def test_large_input_with_incompressible_start_is_stored_whole() -> None:
    # The probe of the first 64 KiB decides for large inputs.
    data = os.urandom(256 * 1024) + bytes(256 * 1024)
    framed = compress(data)
    assert framed[0] == STORED
    assert decompress(framed) == data


def test_large_compressible_input() -> None:
    data = TEXT * 4
    assert len(data) > 128 * 1024
    framed = compress(data)
    assert framed[0] == ZSTD
    assert decompress(framed, len(data)) == data


def test_accepts_buffers() -> None:
    for buffer in (bytearray(TEXT), memoryview(TEXT)):
        assert decompress(compress(buffer)) == TEXT  # type: ignore[arg-type]


@pytest.mark.parametrize("position", [1, 2, 3, 4])
def test_damaged_zstd_frame_header(position: int) -> None:
    # zstd frames carry no checksum here (the envelope's tag covers the bytes), so only
    # framing damage is guaranteed to show: the magic number is bytes 1-4.
    framed = bytearray(compress(TEXT))
    framed[position] ^= 0xFF
    with pytest.raises(DecompressionError):
        decompress(bytes(framed), len(TEXT))


def test_truncated_zstd_frame() -> None:
    framed = compress(TEXT)
    with pytest.raises(DecompressionError):
        decompress(framed[: len(framed) // 2], len(TEXT))
    with pytest.raises(DecompressionError):
        decompress(b"\x01")


def test_garbage_after_zstd_flag() -> None:
    with pytest.raises(DecompressionError):
        decompress(b"\x01not a zstd frame at all")


def test_wrong_expected_size() -> None:
    framed = compress(TEXT)
    with pytest.raises(DecompressionError):
        decompress(framed, len(TEXT) + 1)


def test_frame_without_content_size_needs_expected_size() -> None:
    frame = zstandard.ZstdCompressor(write_content_size=False).compress(TEXT)
    assert decompress(b"\x01" + frame, len(TEXT)) == TEXT


def test_empty_frame() -> None:
    with pytest.raises(DecompressionError):
        decompress(b"")


@pytest.mark.parametrize("flag", [2, 0x7F, 0xFF])
def test_unknown_flag(flag: int) -> None:
    with pytest.raises(UnsupportedVersion):
        decompress(bytes([flag]) + TEXT)


def test_thread_safety() -> None:
    def work(seed: int) -> None:
        for i in range(30):
            data = TEXT[seed * 100 + i :] + os.urandom(i)
            assert decompress(compress(data), len(data)) == data

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(work, range(4)))  # re-raises anything a thread raised
