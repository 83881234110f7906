"""Compression inside the envelope: one flag byte, then the payload.

    0x00  stored: the payload is the plaintext as is
    0x01  zstd:   the payload is one zstd frame holding the plaintext
    0x02  delta:  the payload is the base blob's id (32 bytes), then one zstd frame holding
                  the plaintext, compressed with the base's plaintext as a raw-content
                  dictionary (SPEC.md section 6)

Compression is skipped when it does not pay (media, already-compressed dumps): a quick probe
of the first 64 KiB decides for large inputs, and the result is kept only if it is smaller,
so a stored blob is never larger than its plaintext plus one byte.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Sequence
from typing import Any

import zstandard

from snapstore.errors import DecompressionError, UnsupportedVersion

STORED = 0
ZSTD = 1
DELTA = 2
_BASE_ID_SIZE = 32
DEFAULT_LEVEL = 3
_PROBE_SIZE = 64 * 1024
_PROBE_MIN_SAVING = 0.03
#: No envelope's plaintext reaches 2**32 bytes (SPEC.md section 6), so no frame may claim it.
MAX_PLAINTEXT = (1 << 32) - 1
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_MAX_BLOCK = 128 * 1024

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


def compress_delta(data: bytes, base_id: bytes, base: bytes, level: int = DEFAULT_LEVEL) -> bytes:
    """Frames `data` as a delta: zstd with the base's plaintext as a raw-content dictionary.

    Referencing the base as a prefix instead (zstd then indexes only part of it) cost a third
    of the CPU, but on night 9 of the month fixture level 2 so stored 5% more bytes for the
    chunks that changed little and level 3 4% more for the night; a dictionary loaded through
    the cffi binding gave the same bytes in the same time as this."""
    dictionary = zstandard.ZstdCompressionDict(base, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
    cctx = zstandard.ZstdCompressor(level=level, dict_data=dictionary, write_content_size=True)
    return b"\x02" + bytes(base_id) + cctx.compress(data)


def rebuild_chain(root: bytes, root_size: int, frames: Sequence[tuple[bytes, int]]) -> bytes:
    """The plaintext at the top of a chain of deltas, in one call into zstd (its
    content-dictionary chaining): `root` is the framed whole blob at the bottom (stored or
    zstd, as `compress` made it) of `root_size` plain bytes, `frames` the delta frames from
    the one resting on it upwards, each with its plain length. The plaintexts in between
    never reach Python. Every frame's claimed size is checked before anything is allocated
    for it."""
    if not root or root[0] not in (STORED, ZSTD):
        raise DecompressionError("the bottom of a delta chain is not a whole blob")
    if root[0] == STORED:
        if len(root) - 1 != root_size:
            raise DecompressionError(f"expected {root_size} bytes, the frame holds {len(root) - 1}")
        return _chain(_raw_frame(memoryview(root)[1:]), root_size, frames)
    return _chain(_checked_frame(root[1:], root_size), root_size, frames)


def rebuild_on(base: bytes, frames: Sequence[tuple[bytes, int]]) -> bytes:
    """`rebuild_chain` from the plaintext of the blob the lowest delta rests on."""
    return _chain(_raw_frame(memoryview(base)), len(base), frames)


def _chain(first: bytes, first_size: int, frames: Sequence[tuple[bytes, int]]) -> bytes:
    chain: list[bytes | bytearray | memoryview] = [first]
    for framed, size in frames:
        if not framed or framed[0] != DELTA:
            raise DecompressionError("a frame in a delta chain is not a delta")
        delta_base(framed)  # checks the length
        chain.append(_checked_frame(framed[1 + _BASE_ID_SIZE :], size))
    try:
        out = _decompressor().decompress_content_dict_chain(chain)
    except (zstandard.ZstdError, ValueError) as exc:
        raise DecompressionError(f"delta chain does not rebuild: {exc}") from None
    wanted = frames[-1][1] if frames else first_size
    if len(out) != wanted:
        raise DecompressionError(f"expected {wanted} bytes, the delta chain gave {len(out)}")
    return out


def _checked_frame(frame: bytes, size: int) -> bytes:
    """A zstd frame of a chain, once it is seen to claim `size` plain bytes."""
    claimed = _claimed_size(frame, size)
    if claimed != size:
        raise DecompressionError(f"zstd frame claims {claimed} bytes, expected {size}")
    return frame


def _check_magic(frame: bytes | memoryview) -> None:
    """Only a zstd frame proper may follow the flag: a skippable frame states no content size
    (zstd reads it as 0) while its length field would have zstd allocate up to 4 GiB."""
    if bytes(frame[:4]) != _ZSTD_MAGIC:
        raise DecompressionError("the payload is not a zstd frame")


def _raw_frame(data: memoryview) -> bytes:
    """`data` as a zstd frame of raw (uncompressed) blocks with its content size stated: a
    stored blob at the bottom of `rebuild_chain`'s chain (RFC 8878, section 3.1)."""
    parts: list[bytes | memoryview] = [_ZSTD_MAGIC + b"\xe0" + len(data).to_bytes(8, "little")]  # one segment
    for start in range(0, max(len(data), 1), _MAX_BLOCK):
        piece = data[start : start + _MAX_BLOCK]
        last = start + _MAX_BLOCK >= len(data)
        parts += [(len(piece) << 3 | last).to_bytes(3, "little"), piece]  # block type 0: raw
    return b"".join(parts)


def delta_base(framed: bytes) -> bytes | None:
    """The base id a delta frame names, or None when the frame is not a delta."""
    if not framed or framed[0] != DELTA:
        return None
    if len(framed) < 1 + _BASE_ID_SIZE:
        raise DecompressionError("delta frame is cut short before its base id")
    return framed[1 : 1 + _BASE_ID_SIZE]


def _claimed_size(frame: bytes, expected_size: int | None) -> int:
    """The content size a zstd frame's header claims (-1: not stated), once it is seen to be a
    zstd frame proper whose claim agrees with `expected_size` when the caller knows it (a
    blob's plain length from the index), else within the format's bound: nothing is
    allocated for a claim before this."""
    _check_magic(frame)
    try:
        claimed = zstandard.frame_content_size(frame)
    except zstandard.ZstdError as exc:
        raise DecompressionError(f"zstd frame is damaged: {exc}") from None
    if claimed > MAX_PLAINTEXT or (claimed >= 0 and expected_size not in (None, claimed)):
        wanted = "at most 2**32 - 1" if expected_size is None else expected_size
        raise DecompressionError(f"zstd frame claims {claimed} bytes, expected {wanted}")
    return claimed


def _inflate(frame: bytes, expected_size: int | None, dctx: zstandard.ZstdDecompressor) -> bytes:
    """The frame's plaintext (its claimed size checked first, `_claimed_size`); the output
    grows only with what the frame really holds."""
    claimed = _claimed_size(frame, expected_size)
    try:
        if expected_size is None:
            if claimed < 0:
                raise DecompressionError("zstd frame does not state its content size")
            out = dctx.decompressobj().decompress(frame)
        else:  # max_output_size=0 would mean no limit: an empty blob allows 1 byte, then fails
            out = dctx.decompress(frame, max_output_size=max(expected_size, 1))
    except zstandard.ZstdError as exc:
        raise DecompressionError(f"zstd frame is damaged: {exc}") from None
    wanted = claimed if expected_size is None else expected_size
    if len(out) != wanted:
        raise DecompressionError(f"expected {wanted} bytes, zstd gave {len(out)}")
    return out


def _inflate_on(base: bytes, frame: bytes, expected_size: int | None) -> bytes:
    """A delta frame's plaintext, `base` as its raw-content dictionary: through the cffi
    binding of zstd when it is there, with one decompression context per thread and the base
    referenced as a prefix (what a raw-content dictionary is to zstd). The C binding builds a
    dictionary and a context for every delta, which cost twice as much and held the GIL: a
    check rebuilds every delta of a month of nights."""
    prefix = _prefix_binding()
    if prefix is None:
        return _inflate_with_dictionary(base, frame, expected_size)
    ffi, lib, uncleared = prefix
    claimed = _claimed_size(frame, expected_size)
    if claimed < 0:  # no content size stated: the general path decides
        return _inflate_with_dictionary(base, frame, expected_size)
    dctx = getattr(_local, "prefix_context", None)
    if dctx is None:
        dctx = _local.prefix_context = ffi.gc(lib.ZSTD_createDCtx(), lib.ZSTD_freeDCtx)
    out = uncleared("char[]", max(claimed, 1))
    done = lib.ZSTD_DCtx_refPrefix(dctx, ffi.from_buffer(base), len(base))
    if not lib.ZSTD_isError(done):
        done = lib.ZSTD_decompressDCtx(dctx, out, claimed, ffi.from_buffer(frame), len(frame))
    if lib.ZSTD_isError(done):
        raise DecompressionError(f"zstd frame is damaged: {ffi.string(lib.ZSTD_getErrorName(done)).decode()}")
    if done != claimed:
        raise DecompressionError(f"expected {claimed} bytes, zstd gave {done}")
    return ffi.buffer(out, done)[:]


def _inflate_with_dictionary(base: bytes, frame: bytes, expected_size: int | None) -> bytes:
    dictionary = zstandard.ZstdCompressionDict(base, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
    return _inflate(frame, expected_size, zstandard.ZstdDecompressor(dict_data=dictionary))


@functools.cache
def _prefix_binding() -> tuple[Any, Any, Any] | None:
    """python-zstandard's cffi binding (ffi, lib, an allocator that does not clear what it
    allocates), imported on first use; None where the wheel lacks it."""
    try:
        from zstandard import backend_cffi
    except ImportError:
        return None
    ffi = backend_cffi.ffi
    return ffi, backend_cffi.lib, ffi.new_allocator(should_clear_after_alloc=False)


def decompress(framed: bytes, expected_size: int | None = None, base: bytes | None = None) -> bytes:
    """Undoes `compress` or `compress_delta`; a delta needs its base's plaintext. With
    `expected_size`, the result has that length or DecompressionError is raised."""
    if not framed:
        raise DecompressionError("empty compression frame")
    flag = framed[0]
    if flag == STORED:
        if expected_size is not None and len(framed) - 1 != expected_size:
            raise DecompressionError(
                f"expected {expected_size} bytes, the frame holds {len(framed) - 1}"
            )
        return framed[1:]
    if flag == ZSTD:
        return _inflate(framed[1:], expected_size, _decompressor())
    if flag == DELTA:
        delta_base(framed)  # checks the length
        if base is None:
            raise DecompressionError("a delta frame needs its base blob")
        return _inflate_on(base, framed[1 + _BASE_ID_SIZE :], expected_size)
    raise UnsupportedVersion(f"unknown compression flag {flag}")
