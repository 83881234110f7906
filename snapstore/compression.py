"""Compression inside the envelope: one flag byte, then the payload.

    0x00  stored: the payload is the plaintext as is
    0x01  zstd:   the payload is one zstd frame holding the plaintext

Compression is skipped when it does not pay (media, already-compressed dumps): a quick probe
of the first 64 KiB decides for large inputs, and the result is kept only if it is smaller,
so a stored blob is never larger than its plaintext plus one byte.
"""

from __future__ import annotations

import threading

import zstandard

from snapstore.errors import DecompressionError, UnsupportedVersion

STORED = 0
ZSTD = 1
DEFAULT_LEVEL = 3
_PROBE_SIZE = 64 * 1024
_PROBE_MIN_SAVING = 0.03

_local = threading.local()


def _compressor(level: int) -> zstandard.ZstdCompressor:
    cache: dict[int, zstandard.ZstdCompressor] | None = getattr(_local, "compressors", None)
    if cache is None:
        cache = _local.compressors = {}
    if level not in cache:
        cache[level] = zstandard.ZstdCompressor(level=level, write_content_size=True)
    return cache[level]


def _decompressor() -> zstandard.ZstdDecompressor:
    dctx: zstandard.ZstdDecompressor | None = getattr(_local, "decompressor", None)
    if dctx is None:
        dctx = _local.decompressor = zstandard.ZstdDecompressor()
    return dctx


def _worth_trying(data: bytes, level: int) -> bool:
    if len(data) <= 2 * _PROBE_SIZE:
        return True
    probe = data[:_PROBE_SIZE]
    return len(_compressor(1).compress(probe)) < len(probe) * (1 - _PROBE_MIN_SAVING)


def compress(data: bytes, level: int = DEFAULT_LEVEL) -> bytes:
    """Frame `data` with the flag byte, compressing only when it makes the result smaller."""
    if level > 0 and data and _worth_trying(data, level):
        packed = _compressor(level).compress(data)
        if len(packed) < len(data):
            return b"\x01" + packed
    return b"\x00" + data


def decompress(framed: bytes, expected_size: int | None = None) -> bytes:
    if not framed:
        raise DecompressionError("empty compression frame")
    flag = framed[0]
    if flag == STORED:
        return framed[1:]
    if flag == ZSTD:
        try:
            out = _decompressor().decompress(
                framed[1:], max_output_size=expected_size or 0
            )
        except zstandard.ZstdError as exc:
            raise DecompressionError(f"zstd frame is damaged: {exc}") from None
        if expected_size is not None and len(out) != expected_size:
            raise DecompressionError(f"expected {expected_size} bytes, zstd gave {len(out)}")
        return out
    raise UnsupportedVersion(f"unknown compression flag {flag}")
