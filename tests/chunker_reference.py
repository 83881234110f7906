"""A slow, literal pure-Python chunker: the executable form of SPEC.md "Chunker".

Tests compare snapstore's C chunker against it. It shares no code with
snapstore.chunker (it derives its own gear table), so a mistake in either one
shows up as a disagreement rather than being copied into both.
"""

from __future__ import annotations

import struct

import blake3

GEAR_CONTEXT = "snapstore 2026-11-22 chunker gear table v1"
_MASK64 = (1 << 64) - 1


def reference_gear(seed: bytes) -> list[int]:
    """The 256 gear values: BLAKE3 derive_key(context, seed) output, as little-endian u64."""
    table = blake3.blake3(seed, derive_key_context=GEAR_CONTEXT).digest(length=2048)
    return list(struct.unpack("<256Q", table))


def _top_bits(count: int) -> int:
    return (_MASK64 << (64 - count)) & _MASK64


def reference_lengths(
    data: bytes,
    seed: bytes,
    min_size: int,
    avg_size: int,
    max_size: int,
    normalization: int = 2,
) -> list[int]:
    """Chunk lengths for `data`, found one byte at a time exactly as the spec words it."""
    gear = reference_gear(seed)
    bits = avg_size.bit_length() - 1
    assert 1 << bits == avg_size
    mask_s = _top_bits(bits + normalization)
    mask_l = _top_bits(bits - normalization)

    lengths: list[int] = []
    start = 0
    while start < len(data):
        h = 0
        length = len(data) - start  # no cut: the rest is the last chunk
        for j in range(min_size, len(data) - start):
            h = ((h << 1) + gear[data[start + j]]) & _MASK64
            n = j + 1
            mask = mask_s if n < avg_size else mask_l
            if h & mask == 0 or n == max_size:
                length = n
                break
        lengths.append(length)
        start += length
    return lengths
