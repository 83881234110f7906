"""A wrapper that refuses every write, so `check` and `mount` cannot change a repository."""

from __future__ import annotations

from collections.abc import Iterator

from snapstore.backend.base import Backend, FileInfo, FileType, Handle
from snapstore.errors import PermissionDenied


class ReadOnlyBackend:
    """Reads pass through to `inner`; create, save and remove raise PermissionDenied."""

    def __init__(self, inner: Backend) -> None:
        self._inner = inner

    @property
    def location(self) -> str:
        return self._inner.location

    def create(self) -> None:
        self._refuse("create the repository")

    def save(self, handle: Handle, data: bytes) -> None:
        self._refuse(f"save {handle}")

    def load(self, handle: Handle, offset: int = 0, length: int | None = None) -> bytes:
        return self._inner.load(handle, offset, length)

    def stat(self, handle: Handle) -> FileInfo:
        return self._inner.stat(handle)

    def remove(self, handle: Handle) -> None:
        self._refuse(f"remove {handle}")

    def list(self, file_type: FileType) -> Iterator[FileInfo]:
        return self._inner.list(file_type)

    def close(self) -> None:
        self._inner.close()

    def _refuse(self, what: str) -> None:
        raise PermissionDenied(f"{self.location} is opened read-only: refusing to {what}")
