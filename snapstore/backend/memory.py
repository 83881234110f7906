"""A complete backend that keeps objects in a dict, for tests and throwaway repositories.

Each instance owns its own store: two MemoryBackends never see each other's objects (unlike
fsspec's process-wide `memory://`). It enforces the same names and ranges as the others, so a
test that passes here is not relying on leniency a real backend lacks.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

from snapstore.backend import layout
from snapstore.backend.base import FileInfo, FileType, Handle
from snapstore.errors import ObjectNotFound


class MemoryBackend:
    """Objects in a dict under a lock; `location` is only a label for messages."""

    def __init__(self, location: str = "memory") -> None:
        self._location = location
        self._objects: dict[Handle, bytes] = {}
        self._lock = threading.Lock()

    @property
    def location(self) -> str:
        return self._location

    def create(self) -> None:
        pass

    def save(self, handle: Handle, data: bytes) -> None:
        layout.check_name(handle)
        content = bytes(data)  # a private copy: the caller may reuse a bytearray
        with self._lock:
            self._objects[handle] = content

    def load(self, handle: Handle, offset: int = 0, length: int | None = None) -> bytes:
        layout.check_name(handle)
        layout.check_range(offset, length)
        content = self._get(handle)
        end = layout.range_end(len(content), offset, length, handle)
        return content[offset:end]

    def stat(self, handle: Handle) -> FileInfo:
        layout.check_name(handle)
        return FileInfo(handle, len(self._get(handle)))

    def remove(self, handle: Handle) -> None:
        layout.check_name(handle)
        with self._lock:
            if self._objects.pop(handle, None) is None:
                raise ObjectNotFound(f"{self._location}: {handle} does not exist")

    def list(self, file_type: FileType) -> Iterator[FileInfo]:
        with self._lock:
            found = [FileInfo(h, len(c)) for h, c in self._objects.items() if h.type is file_type]
        return iter(found)

    def close(self) -> None:
        pass

    def _get(self, handle: Handle) -> bytes:
        with self._lock:
            content = self._objects.get(handle)
        if content is None:
            raise ObjectNotFound(f"{self._location}: {handle} does not exist")
        return content
