"""Reading a file of a snapshot at any offset: offsets to chunks, chunks through the blob reader.

A node lists its chunk ids (inline, or in chunk-list blobs for a big file; snapshot/content.py)
but not their lengths; those are in the index (`Repository.plain_lengths`). A `ChunkMap` turns
a run of ids into end offsets, one *segment* at a time: the inline ids are one segment, each
chunk list another. A chunk list is read only when a read reaches it, and of the lists before
it only their lengths are kept (one number each), so a 100 GB dump's 1.6 million ids never sit
in memory together: a read at its end reads every list once, keeping a few.

An `OpenFile` reads through a cache of chunk plaintexts shared by every open file. A read whose
chunks are missing fetches them through the repository's one blob reader; when the reads of a
handle follow each other (`cat`, `cp`), it fetches the chunks after them too, up to
`read_ahead` bytes, in the same planned call (ranges of one pack merged, fetched in parallel).
A chunk that cannot be read fails the read that needs it, naming the blob; read-ahead that
fails is dropped and tried again when, and if, it is needed.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from snapstore.errors import IntegrityError, ObjectNotFound, SnapstoreError
from snapstore.ids import ID_SIZE, Id
from snapstore.lru import WeightedLru
from snapstore.pack import BlobType
from snapstore.repository.repository import Repository
from snapstore.snapshot.content import read_chunk_list
from snapstore.snapshot.tree import Node

#: Chunk lists of one open file kept decoded (the one being read and the one before it).
_SEGMENTS_KEPT = 2


@dataclass(frozen=True)
class Chunk:
    """One chunk of a file: its blob id and where its bytes lie in the file."""

    id: Id
    start: int
    length: int

    @property
    def end(self) -> int:
        return self.start + self.length


@dataclass(frozen=True)
class _Segment:
    """A run of chunk ids (inline, or one chunk list) and their end offsets in the file."""

    start: int
    ids: bytes
    ends: np.ndarray  # int64, absolute

    @property
    def end(self) -> int:
        return int(self.ends[-1]) if len(self.ends) else self.start

    def chunk(self, i: int) -> Chunk:
        start = int(self.ends[i - 1]) if i else self.start
        return Chunk(Id(self.ids[i * ID_SIZE : (i + 1) * ID_SIZE]), start, int(self.ends[i]) - start)


class ChunkMap:
    """A file node's offsets mapped to its chunks (see the module docstring). Not thread-safe:
    one per open file, used under its lock."""

    def __init__(self, repo: Repository, node: Node) -> None:
        self._repo = repo
        self._lists = list(node.content_lists)
        self._inline = b"".join(bytes(i) for i in node.content)
        #: File offset where each chunk list starts, known for the lists up to the first unread
        self._starts = [0]
        self._segments: dict[int, _Segment] = {}

    def chunks_from(self, offset: int) -> Iterator[Chunk]:
        """The chunk holding `offset` and every one after it, in order (none past the end)."""
        if not self._lists:
            segment = self._segment(0)
            i = int(np.searchsorted(segment.ends, offset, side="right"))
            for j in range(i, len(segment.ends)):
                yield segment.chunk(j)
            return
        n = bisect.bisect_right(self._starts, offset) - 1
        while n < len(self._lists):
            segment = self._segment(n)
            if offset < segment.end:
                i = int(np.searchsorted(segment.ends, offset, side="right"))
                for j in range(i, len(segment.ends)):
                    yield segment.chunk(j)
                offset = segment.end
            n += 1

    def _segment(self, n: int) -> _Segment:
        found = self._segments.get(n)
        if found is not None:
            return found
        if self._lists:
            while len(self._starts) <= n:  # lists before it: read for their lengths
                self._segment(len(self._starts) - 1)
            list_id = bytes(self._lists[n])
            try:
                ids = b"".join(bytes(i) for i in read_chunk_list(self._repo, Id(list_id)))
            except SnapstoreError as exc:
                raise naming_blob(exc, list_id) from None
        else:
            ids = self._inline
        start = self._starts[n]
        lengths = self._repo.plain_lengths(ids) if ids else np.empty(0, dtype=np.int64)
        missing = np.flatnonzero(lengths < 0)
        if len(missing):
            j = int(missing[0])
            raise ObjectNotFound(f"blob {ids[j * ID_SIZE : (j + 1) * ID_SIZE].hex()} is not in the index")
        segment = _Segment(start, ids, start + np.cumsum(lengths, dtype=np.int64))
        if self._lists and len(self._starts) == n + 1:
            self._starts.append(segment.end)
        while len(self._segments) >= _SEGMENTS_KEPT:
            del self._segments[next(iter(self._segments))]
        self._segments[n] = segment
        return segment


BlobCache = WeightedLru[bytes, bytes]


def new_blob_cache(max_bytes: int) -> BlobCache:
    return WeightedLru(max_bytes, len)


class OpenFile:
    """One open file of a snapshot: `read(size, offset)` as a filesystem asks for it."""

    def __init__(self, repo: Repository, node: Node, cache: BlobCache, read_ahead: int) -> None:
        self._repo = repo
        self._size = node.size
        self._map = ChunkMap(repo, node)
        self._cache = cache
        self._read_ahead = read_ahead
        self._next_offset = 0  # where a read following the last one starts
        self._lock = threading.Lock()

    def read(self, size: int, offset: int) -> bytes:
        """Up to `size` bytes at `offset` (fewer only at the end of the file). Raises the
        SnapstoreError of the first chunk that cannot be read, naming its blob."""
        end = min(offset + size, self._size)
        if size <= 0 or offset >= end:
            return b""
        with self._lock:
            sequential = offset == self._next_offset
            wanted: list[Chunk] = []
            ahead: list[Chunk] = []
            chunks = self._map.chunks_from(offset)
            for chunk in chunks:
                wanted.append(chunk)
                if chunk.end >= end:
                    break
            data = {bytes(c.id): self._cache.get(bytes(c.id)) for c in wanted}
            if any(v is None for v in data.values()):
                if sequential:
                    ahead = self._ahead(chunks, wanted[-1].end if wanted else end)
                data.update(self._fetch([c for c in wanted if data[bytes(c.id)] is None], ahead))
            self._next_offset = end
        return self._assemble(wanted, data, offset, end)

    def _ahead(self, chunks: Iterator[Chunk], start: int) -> list[Chunk]:
        """The chunks after a sequential read not yet cached, up to `read_ahead` bytes."""
        ahead: list[Chunk] = []
        try:
            for chunk in chunks:
                if chunk.start - start >= self._read_ahead:
                    break
                if self._cache.get(bytes(chunk.id)) is None:
                    ahead.append(chunk)
        except SnapstoreError:  # the next chunk list is damaged: the read that needs it says so
            pass
        return ahead

    def _fetch(self, wanted: list[Chunk], ahead: list[Chunk]) -> dict[bytes, bytes | None]:
        """Reads the chunks (one planned read for several) into the cache; returns the wanted
        ones' plaintexts, raising the first error among them."""
        requests = list(dict.fromkeys(bytes(c.id) for c in [*wanted, *ahead]))
        needed = {bytes(c.id) for c in wanted}
        found: dict[bytes, bytes | None] = {}
        if len(requests) == 1:
            try:
                found[requests[0]] = self._repo.load_blob(BlobType.DATA, requests[0])
            except SnapstoreError as exc:
                raise naming_blob(exc, requests[0]) from None
        else:
            for result in self._repo.read_blobs((BlobType.DATA, Id(r)) for r in requests):
                key = bytes(result.id)
                if result.error is not None:
                    if key in needed:
                        raise naming_blob(result.error, key)
                    continue
                found[key] = result.data
        for key, value in found.items():
            if value is not None:
                self._cache.put(key, value)
        return {key: found.get(key) for key in needed}

    @staticmethod
    def _assemble(chunks: list[Chunk], data: dict[bytes, bytes | None], offset: int, end: int) -> bytes:
        pieces = []
        for chunk in chunks:
            plain = data[bytes(chunk.id)]
            assert plain is not None
            if len(plain) != chunk.length:
                raise IntegrityError(f"blob {chunk.id.hex()} has {len(plain)} bytes, its index entry {chunk.length}")
            lo, hi = max(offset, chunk.start), min(end, chunk.end)
            pieces.append(memoryview(plain)[lo - chunk.start : hi - chunk.start])
        return b"".join(pieces)


def naming_blob(error: SnapstoreError, blob_id: bytes) -> SnapstoreError:
    """The error, with the blob's id in its message if the reader did not put it there."""
    if blob_id.hex() in str(error):
        return error
    return type(error)(f"blob {blob_id.hex()}: {error}")
