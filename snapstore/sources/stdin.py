"""Back up one stream (standard input, an open file) as a single file entry.

A stream cannot report whether whatever produced it succeeded: `pg_dump | snapstore`
makes a snapshot even when pg_dump died half-way. For dumps, prefer a source that runs the
command itself through `CommandStream` (postgres.py, redis.py), whose exit status decides.
This source exists for data that really only arrives on a stream; program.py runs a
producer itself for `snapshot command`.

An empty stream is refused (SourceError, no snapshot) unless `allow_empty`: a producer that
failed before writing anything looks exactly like one with nothing to say, and an empty
snapshot would then be the newest of its group, the one `forget --keep-last 1` keeps.

The stream is read once and never closed here: it belongs to the caller.
"""

from __future__ import annotations

import contextlib
import io
import time
from collections.abc import Iterator
from typing import BinaryIO, cast

from snapstore.archiver.source import ChunkingProfile, EntryKind, ErrorCallback, SourceEntry
from snapstore.errors import SourceError, UsageError


class StreamSource:
    """One FILE entry at `(name,)` whose content is `stream`."""

    def __init__(
        self,
        stream: BinaryIO,
        name: str,
        *,
        profile: ChunkingProfile = ChunkingProfile.DATABASE,
        mode: int = 0o600,
        mtime_ns: int | None = None,
        allow_empty: bool = False,
    ) -> None:
        check_stream_name(name)
        self.stream = stream
        self.name = name
        self.profile = profile
        self.mode = mode
        self.mtime_ns = mtime_ns
        self.allow_empty = allow_empty
        self._read = False

    @property
    def kind(self) -> str:
        return "stdin"

    def describe(self) -> list[str]:
        return [self.name]

    def metadata(self) -> dict[str, object]:
        return {"stdin": {"name": self.name}}

    def entries(self, on_error: ErrorCallback) -> Iterator[SourceEntry]:
        yield SourceEntry(
            (self.name.encode(),),
            EntryKind.FILE,
            mode=self.mode,
            mtime_ns=time.time_ns() if self.mtime_ns is None else self.mtime_ns,
            open_content=self._open,
            profile=self.profile,
        )

    @contextlib.contextmanager
    def _open(self) -> Iterator[BinaryIO]:
        if self._read:
            raise SourceError(f"the stream {self.name!r} can be read only once")
        self._read = True
        counted = CountingReader(self.stream)
        yield cast(BinaryIO, counted)
        if not counted.count and not self.allow_empty:
            raise SourceError(
                f"{self.name}: the stream was empty, so no snapshot was recorded "
                "(--allow-empty records an empty file)"
            )


def check_stream_name(name: str) -> None:
    """A stream is stored as one file at the top of the snapshot: `name` must be one name."""
    if not name or "/" in name or "\0" in name or name in (".", ".."):
        raise UsageError(f"{name!r} is not a valid file name for a stream")


class CountingReader(io.RawIOBase):
    """Reads through to `stream`, counting the bytes: whether anything came at all.

    Never closes `stream`, which belongs to whoever opened it."""

    def __init__(self, stream: BinaryIO) -> None:
        super().__init__()
        self._stream = stream
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        readinto = getattr(self._stream, "readinto", None)
        if readinto is not None:
            got: int | None = readinto(buffer)
            if got is None:
                raise ValueError("a stream source needs a blocking stream")
        else:
            data = self._stream.read(len(buffer))
            got = len(data)
            buffer[:got] = data
        self.count += got
        return got
