"""Content-defined chunking: where a stream is cut into blobs.

Boundaries come from a gear hash of the content (FastCDC with normalised
chunking), so an insertion only changes the chunks around it and the rest
deduplicate. The gear table is derived from a secret per-repository seed:
with a public table, the sizes of stored blobs would reveal whether a known
file is in the repository. The byte-level algorithm is a format contract,
specified in SPEC.md "Chunker"; the hot loop lives in `snapstore/_chunker.c`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Protocol

import blake3

from snapstore._chunker import GearChunker

if TYPE_CHECKING:
    from typing_extensions import Buffer

__all__ = [
    "DATABASE",
    "DEFAULT_READ_SIZE",
    "FILES",
    "GEAR_CONTEXT",
    "PROFILES",
    "SEED_SIZE",
    "ByteReader",
    "Chunker",
    "ChunkerParams",
    "gear_table",
]

GEAR_CONTEXT = "snapstore 2026-11-22 chunker gear table v1"
SEED_SIZE = 32
DEFAULT_READ_SIZE = 1 << 20
#: iter_chunks' first buffer: enough for most small files in one read.
_FIRST_BUFFER = 64 << 10

KiB = 1 << 10
MiB = 1 << 20


@dataclass(frozen=True)
class ChunkerParams:
    """Chunk size limits; stored in the repository config, so part of the format."""

    min_size: int
    avg_size: int
    max_size: int
    normalization: int = 2

    def __post_init__(self) -> None:
        for name in ("min_size", "avg_size", "max_size", "normalization"):
            if type(getattr(self, name)) is not int:
                raise TypeError(f"ChunkerParams.{name} must be an int")
        if not 0 < self.min_size < self.avg_size < self.max_size:
            raise ValueError(
                "chunk sizes need 0 < min_size < avg_size < max_size, got "
                f"{self.min_size}, {self.avg_size}, {self.max_size}"
            )
        if self.avg_size & (self.avg_size - 1):
            raise ValueError(f"avg_size must be a power of two, got {self.avg_size}")
        bits = self.bits
        if not 0 <= self.normalization < bits or bits + self.normalization > 64:
            raise ValueError(
                f"normalization must be in [0, {min(bits, 65 - bits)}), got {self.normalization}"
            )

    @property
    def bits(self) -> int:
        """log2(avg_size): the number of hash bits a cut must find zero, on average."""
        return self.avg_size.bit_length() - 1


# Whole files dedup as whole files; large chunks keep the index small (restic-like sizes).
FILES = ChunkerParams(512 * KiB, 1 * MiB, 8 * MiB)
# Database dumps change thinly all over; small chunks keep the re-upload per change small.
DATABASE = ChunkerParams(16 * KiB, 64 * KiB, 256 * KiB)
PROFILES: Mapping[str, ChunkerParams] = MappingProxyType({"files": FILES, "database": DATABASE})


def gear_table(seed: bytes) -> bytes:
    """The 2048-byte gear table (256 little-endian u64) derived from the repository seed."""
    if len(seed) != SEED_SIZE:
        raise ValueError(f"the chunker seed is {SEED_SIZE} bytes, got {len(seed)}")
    return blake3.blake3(bytes(seed), derive_key_context=GEAR_CONTEXT).digest(length=2048)


class ByteReader(Protocol):
    """What iter_chunks reads from: any binary stream; `readinto` is used when present."""

    def read(self, size: int = -1, /) -> bytes: ...


class Chunker:
    """Splits data with one repository's seed. Safe to share between threads."""

    __slots__ = ("_gear", "params")

    def __init__(self, params: ChunkerParams, seed: bytes) -> None:
        self.params = params
        self._gear = gear_table(seed)

    def __repr__(self) -> str:
        # Never show the seed or the table: they are the secret.
        return f"Chunker({self.params!r})"

    def _core(self) -> GearChunker:
        p = self.params
        return GearChunker(self._gear, p.min_size, p.avg_size, p.max_size, p.normalization)

    def split(self, data: Buffer) -> list[bytes]:
        """Cut one whole buffer into chunks (none for empty input)."""
        view = memoryview(data).cast("B")
        core = self._core()
        chunks: list[bytes] = []
        start = 0
        while start < len(view):
            cut = core.scan(view, start)
            end = len(view) if cut < 0 else cut
            chunks.append(bytes(view[start:end]))
            start = end
        return chunks

    def iter_chunks(
        self, reader: ByteReader, *, read_size: int = DEFAULT_READ_SIZE
    ) -> Iterator[bytes]:
        """Chunk a stream of any length, holding at most max_size + read_size bytes.

        Short reads (pipes) are fine; a read returning no bytes is the end. A
        reader exception propagates before the last chunk is yielded, so a
        failed read never looks like a shorter stream.
        """
        if read_size <= 0:
            raise ValueError(f"read_size must be positive, got {read_size}")
        core = self._core()
        # The buffer starts small and doubles while the open chunk needs it, up to
        # max_size + read_size: a file of a few bytes does not cost a zeroed 9 MiB buffer.
        capacity = self.params.max_size + read_size
        buf = bytearray(min(capacity, _FIRST_BUFFER))
        view = memoryview(buf)
        readinto = getattr(reader, "readinto", None)
        start = 0  # first byte of the open chunk
        filled = 0  # bytes of buf that hold stream data
        while True:
            if len(buf) - filled < read_size and start:
                # The open chunk is shorter than max_size, so at full capacity this frees read_size.
                view[: filled - start] = view[start:filled]
                filled -= start
                start = 0
            if filled == len(buf):
                grown = bytearray(min(capacity, 2 * len(buf)))
                grown[:filled] = view[:filled]
                view.release()
                buf, view = grown, memoryview(grown)
            want = min(read_size, len(buf) - filled)
            if readinto is not None:
                count = readinto(view[filled : filled + want])
                if count is None:
                    raise ValueError("iter_chunks needs a blocking reader")
            else:
                data = reader.read(want)
                count = len(data)
                view[filled : filled + count] = data
            if not count:
                break
            scan_from = filled
            filled += count
            while (cut := core.scan(view[:filled], scan_from)) >= 0:
                yield bytes(view[start:cut])
                start = scan_from = cut
        if filled > start:
            yield bytes(view[start:filled])
