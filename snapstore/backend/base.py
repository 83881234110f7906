"""The Backend protocol and the names it deals in."""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


class FileType(enum.Enum):
    """The kinds of object a repository keeps; the value is the folder name on the backend."""

    CONFIG = "config"
    KEY = "keys"
    PACK = "data"
    INDEX = "index"
    SNAPSHOT = "snapshots"
    LOCK = "locks"


@dataclass(frozen=True)
class Handle:
    """Names one object. The config object has the empty name.

    `metadata` is a hint for caching wrappers, not part of the name (it takes no part in
    equality or hashing): a ranged load of a pack marked so reads repository metadata (a tree
    blob) that commands read again and again, and a cache may keep it (restic's IsMetadata).
    """

    type: FileType
    name: str = ""
    metadata: bool = field(default=False, compare=False)

    def __post_init__(self) -> None:
        if self.type is FileType.CONFIG:
            if self.name:
                raise ValueError("the config object has no name")
        elif not self.name or "/" in self.name or self.name in (".", ".."):
            raise ValueError(f"invalid object name {self.name!r}")

    def __str__(self) -> str:
        return self.type.value if self.type is FileType.CONFIG else f"{self.type.value}/{self.name}"


@dataclass(frozen=True)
class FileInfo:
    handle: Handle
    size: int


@runtime_checkable
class Backend(Protocol):
    """Object storage as the repository needs it.

    `save` is atomic: readers see the whole object or none of it, and an existing object is
    replaced only by identical content in practice (objects are content-addressed, except locks
    and config). `load` with a length reads a byte range; it raises `ObjectNotFound` for an absent
    object and `RangeError` when the range reaches past the end.
    """

    @property
    def location(self) -> str:
        """Where the objects live, for messages (no credentials)."""
        ...

    def create(self) -> None:
        """Prepare an empty location (folders, bucket); harmless if it already exists."""
        ...

    def save(self, handle: Handle, data: bytes) -> None: ...

    def load(self, handle: Handle, offset: int = 0, length: int | None = None) -> bytes: ...

    def stat(self, handle: Handle) -> FileInfo: ...

    def remove(self, handle: Handle) -> None: ...

    def list(self, file_type: FileType) -> Iterator[FileInfo]: ...

    def close(self) -> None: ...
