"""Back up one stream (standard input, an open file) as a single file entry.

A stream cannot report whether whatever produced it succeeded: `pg_dump | snapstore`
makes a snapshot even when pg_dump died half-way. For dumps, prefer a source that runs the
command itself through `CommandStream` (postgres.py, redis.py), whose exit status decides.
This source exists for data that really only arrives on a stream.

The stream is read once and never closed here: it belongs to the caller.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import BinaryIO

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
    ) -> None:
        if not name or "/" in name or "\0" in name or name in (".", ".."):
            raise UsageError(f"{name!r} is not a valid file name for a stream")
        self.stream = stream
        self.name = name
        self.profile = profile
        self.mode = mode
        self.mtime_ns = mtime_ns
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
        yield self.stream
