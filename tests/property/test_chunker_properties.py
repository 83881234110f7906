"""Properties of the chunker that must hold for any data, seed and parameters.

Sizes are kept small (averages of 2 B to 1 KiB) so that the pure-Python
reference can check the C core on many examples.
"""

from __future__ import annotations

import io
import random
from collections.abc import Iterable, Sequence

from chunker_reference import reference_lengths
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from snapstore._chunker import GearChunker
from snapstore.chunker import Chunker, ChunkerParams, gear_table

seeds = st.binary(min_size=32, max_size=32)


@st.composite
def small_params(draw: st.DrawFn) -> ChunkerParams:
    bits = draw(st.integers(1, 10))
    avg = 1 << bits
    return ChunkerParams(
        min_size=draw(st.integers(1, avg - 1)),
        avg_size=avg,
        max_size=draw(st.integers(avg + 1, 4 * avg)),
        normalization=draw(st.integers(0, min(3, bits - 1))),
    )


def _random_bytes(length: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(length)


# Hypothesis's own binaries are low-entropy (long runs force max_size cuts);
# random bytes exercise the hash cuts. Use both.
noisy = st.builds(_random_bytes, st.integers(0, 20_000), st.integers(0, 2**32))
any_data = st.binary(max_size=5_000) | noisy


def cut_points(core: GearChunker, pieces: Iterable[bytes]) -> list[int]:
    """End offsets of the chunks when the stream arrives as `pieces`."""
    cuts: list[int] = []
    offset = 0
    for piece in pieces:
        start = 0
        while (cut := core.scan(piece, start)) >= 0:
            cuts.append(offset + cut)
            start = cut
        offset += len(piece)
    if offset and (not cuts or cuts[-1] != offset):
        cuts.append(offset)
    return cuts


def ends(lengths: Sequence[int]) -> list[int]:
    out: list[int] = []
    total = 0
    for n in lengths:
        total += n
        out.append(total)
    return out


def new_core(params: ChunkerParams, seed: bytes) -> GearChunker:
    p = params
    return GearChunker(gear_table(seed), p.min_size, p.avg_size, p.max_size, p.normalization)


def slice_up(data: bytes, sizes: list[int]) -> list[bytes]:
    pieces = []
    at = 0
    for size in sizes:
        pieces.append(data[at : at + size])
        at += size
    pieces.append(data[at:])
    return pieces


@given(data=any_data, params=small_params(), seed=seeds)
def test_chunks_concatenate_to_input(data: bytes, params: ChunkerParams, seed: bytes) -> None:
    chunker = Chunker(params, seed)
    chunks = chunker.split(data)
    assert b"".join(chunks) == data
    assert all(chunks)
    assert list(chunker.iter_chunks(io.BytesIO(data), read_size=997)) == chunks


@given(data=any_data, params=small_params(), seed=seeds)
def test_chunk_sizes_within_limits(data: bytes, params: ChunkerParams, seed: bytes) -> None:
    lengths = [len(c) for c in Chunker(params, seed).split(data)]
    # Bytes before min_size are not hashed, so the shortest cut chunk is min_size + 1.
    for n in lengths[:-1]:
        assert params.min_size < n <= params.max_size
    if lengths:
        assert 1 <= lengths[-1] <= params.max_size


@settings(max_examples=300)
@given(data=any_data, params=small_params(), seed=seeds)
def test_c_core_matches_reference(data: bytes, params: ChunkerParams, seed: bytes) -> None:
    got = [len(c) for c in Chunker(params, seed).split(data)]
    p = params
    assert got == reference_lengths(data, seed, p.min_size, p.avg_size, p.max_size, p.normalization)


@given(
    data=any_data,
    params=small_params(),
    seed=seeds,
    sizes=st.lists(st.integers(0, 3_000), max_size=40),
)
def test_cuts_do_not_depend_on_slicing(
    data: bytes, params: ChunkerParams, seed: bytes, sizes: list[int]
) -> None:
    whole = cut_points(new_core(params, seed), [data])
    assert whole == ends([len(c) for c in Chunker(params, seed).split(data)])
    assert cut_points(new_core(params, seed), slice_up(data, sizes)) == whole


short_data = st.binary(max_size=2_000) | st.builds(
    _random_bytes, st.integers(0, 2_000), st.integers(0, 2**32)
)


@given(data=short_data, params=small_params(), seed=seeds)
def test_cuts_byte_by_byte(data: bytes, params: ChunkerParams, seed: bytes) -> None:
    whole = cut_points(new_core(params, seed), [data])
    one_at_a_time = [data[i : i + 1] for i in range(len(data))]
    assert cut_points(new_core(params, seed), one_at_a_time) == whole


class SlicingReader:
    """A reader whose reads return the sizes it is told to, like a pipe."""

    def __init__(self, data: bytes, sizes: list[int]) -> None:
        self._data = data
        self._sizes = [s for s in sizes if s > 0] or [1]
        self._at = 0
        self._turn = 0

    def readinto(self, buffer: memoryview) -> int:
        size = min(len(buffer), self._sizes[self._turn % len(self._sizes)])
        self._turn += 1
        piece = self._data[self._at : self._at + size]
        buffer[: len(piece)] = piece
        self._at += len(piece)
        return len(piece)

    def read(self, size: int = -1, /) -> bytes:
        raise AssertionError("iter_chunks should prefer readinto")


@given(
    data=any_data,
    params=small_params(),
    seed=seeds,
    sizes=st.lists(st.integers(1, 5_000), min_size=1, max_size=20),
    read_size=st.integers(1, 4_096),
)
def test_iter_chunks_equals_split_whatever_the_reads(
    data: bytes, params: ChunkerParams, seed: bytes, sizes: list[int], read_size: int
) -> None:
    chunker = Chunker(params, seed)
    streamed = list(chunker.iter_chunks(SlicingReader(data, sizes), read_size=read_size))
    assert streamed == chunker.split(data)


@given(seed_a=seeds, seed_b=seeds, data_seed=st.integers(0, 2**32))
def test_different_seeds_cut_differently(seed_a: bytes, seed_b: bytes, data_seed: int) -> None:
    assume(seed_a != seed_b)
    params = ChunkerParams(64, 256, 1024)
    data = _random_bytes(64 * 1024, data_seed)
    lengths_a = [len(c) for c in Chunker(params, seed_a).split(data)]
    lengths_b = [len(c) for c in Chunker(params, seed_b).split(data)]
    assert lengths_a != lengths_b
