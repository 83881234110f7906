"""The compression framing inside an envelope: a flag byte, then stored bytes, one zstd frame,
or a base id and one zstd frame compressed against the base (a delta)."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import pytest
import zstandard

from snapstore import compression
from snapstore.compression import (
    DELTA,
    STORED,
    ZSTD,
    compress,
    compress_delta,
    decompress,
    delta_base,
    rebuild_chain,
)
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


@pytest.mark.parametrize("flag", [3, 0x7F, 0xFF])
def test_unknown_flag(flag: int) -> None:
    with pytest.raises(UnsupportedVersion):
        decompress(bytes([flag]) + TEXT)


# -- delta frames (flag 0x02) --------------------------------------------------------------------

BASE_ID = bytes(range(32))
OTHER_ID = bytes(range(1, 33))
BASE = b"".join(
    b"row %d: name=user%d, score=%d\n" % (i, i * 7 % 1000, i * 31 % 977) for i in range(8000)
)
# Yesterday's dump with a few rows edited: a delta against BASE is tiny.
EDITED = (
    BASE[:50_000] + b"row 1234: name=changed, score=0\n" + BASE[50_000:150_000] + BASE[150_100:]
)


@pytest.fixture(params=["cffi-prefix", "c-dictionary"])
def binding(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Deltas are decompressed through python-zstandard's cffi binding, the base as a prefix;
    where the wheel lacks it, through the C binding with the base as a dictionary. Both
    read every frame alike."""
    if request.param == "cffi-prefix":
        assert compression._prefix_binding() is not None
    else:
        monkeypatch.setattr(compression, "_prefix_binding", lambda: None)
    return str(request.param)


def test_delta_round_trip(binding: str) -> None:
    framed = compress_delta(EDITED, BASE_ID, BASE)
    assert framed[0] == DELTA
    assert framed[1:33] == BASE_ID
    assert delta_base(framed) == BASE_ID
    assert decompress(framed, len(EDITED), BASE) == EDITED
    assert decompress(framed, None, BASE) == EDITED  # the frame carries its content size
    assert len(framed) < len(compress(EDITED)) // 10


def test_delta_of_unrelated_data_still_round_trips(binding: str) -> None:
    data = os.urandom(5000)
    framed = compress_delta(data, BASE_ID, BASE)
    assert decompress(framed, len(data), BASE) == data


@pytest.mark.parametrize("data", [b"", b"x", BASE])
def test_delta_edge_cases(data: bytes, binding: str) -> None:
    assert decompress(compress_delta(data, BASE_ID, BASE), len(data), BASE) == data
    # A tiny base is still a valid raw-content dictionary.
    assert (
        decompress(compress_delta(data, BASE_ID, b"0123456789"), len(data), b"0123456789") == data
    )


def test_delta_base_is_none_for_other_frames() -> None:
    assert delta_base(compress(TEXT)) is None
    assert delta_base(compress(b"")) is None
    assert delta_base(b"") is None


def test_delta_against_the_wrong_base_never_yields_the_data(binding: str) -> None:
    """The frame cannot tell a wrong base: zstd fails, or gives other bytes that the caller's id
    check refuses (the repository hashes every result). Either way, never the data."""
    framed = compress_delta(EDITED, BASE_ID, BASE)
    for wrong in (BASE[:-1] + b"?", b"\0" * len(BASE), BASE[100:], os.urandom(len(BASE))):
        try:
            result = decompress(framed, len(EDITED), wrong)
        except DecompressionError:
            continue
        assert result != EDITED


def test_delta_without_its_base_is_refused(binding: str) -> None:
    framed = compress_delta(EDITED, BASE_ID, BASE)
    with pytest.raises(DecompressionError):
        decompress(framed, len(EDITED))


@pytest.mark.parametrize("length", [1, 2, 32])
def test_delta_cut_short_before_its_base_id(length: int, binding: str) -> None:
    framed = compress_delta(EDITED, BASE_ID, BASE)[:length]
    with pytest.raises(DecompressionError):
        delta_base(framed)
    with pytest.raises(DecompressionError):
        decompress(framed, len(EDITED), BASE)


def test_delta_with_a_damaged_or_truncated_frame(binding: str) -> None:
    framed = compress_delta(EDITED, BASE_ID, BASE)
    with pytest.raises(DecompressionError):
        decompress(framed[:33], len(EDITED), BASE)  # the base id and no zstd frame
    with pytest.raises(DecompressionError):
        decompress(framed[: len(framed) // 2], len(EDITED), BASE)
    damaged = bytearray(framed)
    damaged[33] ^= 0xFF  # the zstd magic number
    with pytest.raises(DecompressionError):
        decompress(bytes(damaged), len(EDITED), BASE)
    with pytest.raises(DecompressionError):
        decompress(framed, len(EDITED) + 1, BASE)


def test_the_base_id_is_not_what_decompression_uses(binding: str) -> None:
    """The id in the frame only names the base; the caller fetches it. Another id in front of
    the same zstd frame decodes the same: binding the id to the data is the envelope's job."""
    framed = compress_delta(EDITED, BASE_ID, BASE)
    relabelled = framed[:1] + OTHER_ID + framed[33:]
    assert delta_base(relabelled) == OTHER_ID
    assert decompress(relabelled, len(EDITED), BASE) == EDITED


def test_a_delta_frame_that_states_no_size_is_read_with_the_size_known(binding: str) -> None:
    dictionary = zstandard.ZstdCompressionDict(BASE, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
    frame = zstandard.ZstdCompressor(dict_data=dictionary, write_content_size=False).compress(EDITED)
    framed = bytes([DELTA]) + BASE_ID + frame
    assert decompress(framed, len(EDITED), BASE) == EDITED
    with pytest.raises(DecompressionError, match="does not state its content size"):
        decompress(framed, None, BASE)


def test_deltas_decompressed_on_many_threads_at_once(binding: str) -> None:
    """Each thread has its own decompression context: deltas on several bases at once."""
    bases = [BASE[n * 1000 :] for n in range(4)]
    frames = [(compress_delta(b + b"tail", BASE_ID, b), b) for b in bases]

    def work(n: int) -> None:
        for _ in range(50):
            framed, base = frames[(n + _) % 4]
            assert decompress(framed, len(base) + 4, base) == base + b"tail"

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(work, range(4)))


def test_thread_safety() -> None:
    def work(seed: int) -> None:
        for i in range(30):
            data = TEXT[seed * 100 + i :] + os.urandom(i)
            assert decompress(compress(data), len(data)) == data

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(work, range(4)))  # re-raises anything a thread raised


# -- a chain of deltas rebuilt in one call -------------------------------------------------------


def versions(root: bytes, count: int) -> list[bytes]:
    """A chunk's versions, each a small edit of the one before."""
    out = [root]
    for n in range(1, count):
        cut = (n * 7919) % max(len(out[-1]), 1)
        out.append(out[-1][:cut] + b"edit %d" % n + out[-1][cut + 3 :])
    return out


@pytest.mark.parametrize(
    "root",
    [TEXT, os.urandom(300_000), b"", b"x", os.urandom(128 * 1024)],
    ids=["zstd", "stored-3-blocks", "empty", "one-byte", "stored-one-full-block"],
)
def test_a_chain_rebuilds_from_its_whole_root_whatever_its_framing(root: bytes) -> None:
    chain = versions(root, 6)
    frames = [(compress_delta(new, b"b" * 32, old), len(new)) for old, new in zip(chain, chain[1:], strict=False)]
    framed_root = compress(root)
    for depth in range(len(frames) + 1):
        assert rebuild_chain(framed_root, len(root), frames[:depth]) == chain[depth]
    # a plaintext already in hand stands at the bottom as a stored frame
    assert rebuild_chain(b"\x00" + chain[2], len(chain[2]), frames[2:]) == chain[-1]


def test_a_chain_with_a_wrong_claim_or_frame_is_refused() -> None:
    chain = versions(TEXT, 3)
    frames = [(compress_delta(new, b"b" * 32, old), len(new)) for old, new in zip(chain, chain[1:], strict=False)]
    root = compress(TEXT)
    with pytest.raises(DecompressionError):  # a frame claiming another size than the index's
        rebuild_chain(root, len(TEXT), [frames[0], (frames[1][0], frames[1][1] + 1)])
    with pytest.raises(DecompressionError):  # the root's size
        rebuild_chain(root, len(TEXT) - 1, frames)
    with pytest.raises(DecompressionError):  # a whole frame where a delta belongs
        rebuild_chain(root, len(TEXT), [(compress(chain[1]), len(chain[1]))])
    with pytest.raises(DecompressionError):  # a delta at the bottom
        rebuild_chain(frames[0][0], len(chain[1]), frames[1:])
    damaged = bytearray(frames[1][0])
    damaged[-5] ^= 0xFF
    with pytest.raises(DecompressionError):
        rebuild_chain(root, len(TEXT), [frames[0], (bytes(damaged), frames[1][1])])
    # against the wrong base: never the data (zstd may or may not notice; the id check will).
    # An unrelated one: a base that differs from the right one only away from what the delta
    # copies gives the right data, which the id check then accepts.
    unrelated = compress(bytes(reversed(TEXT)))
    try:
        assert rebuild_chain(unrelated, len(TEXT), frames[1:]) != chain[2]
    except DecompressionError:
        pass


def test_a_skippable_frame_is_refused_before_zstd_sizes_anything() -> None:
    """A skippable frame states no content size (zstd reads 0) while its length field would
    have zstd allocate up to 4 GiB: only a zstd frame proper may follow the flag."""
    skippable = (0x184D2A50).to_bytes(4, "little") + (0xFFFFFFF0).to_bytes(4, "little")
    with pytest.raises(DecompressionError):
        decompress(bytes([ZSTD]) + skippable, 0)
    with pytest.raises(DecompressionError):
        decompress(bytes([DELTA]) + b"b" * 32 + skippable, 0, BASE)
    with pytest.raises(DecompressionError):
        rebuild_chain(compress(TEXT), len(TEXT), [(bytes([DELTA]) + b"b" * 32 + skippable, 0)])
    with pytest.raises(DecompressionError):
        rebuild_chain(bytes([ZSTD]) + skippable, 0, [])
