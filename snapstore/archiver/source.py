"""What the archiver consumes: a Source yields entries; the archiver owns this interface.

A source (files on disk, a pg_dump stream, a Redis RDB, a whole Mastodon instance) walks
whatever it backs up and yields `SourceEntry` records in depth-first order: a directory
comes before its contents, and the contents of one directory are contiguous. Paths are
tuples of name components (bytes, as the filesystem spells them) relative to the snapshot
root. Missing parent directories are created by the archiver with default metadata.

File content is read through `open_content()`, a context manager returning a binary stream.
Leaving the context normally means the content is complete and good; a source whose content
comes from a command (pg_dump) checks the command's exit status on exit and raises
`DumpFailed`, which aborts the snapshot: a failed dump must never look like a backup.

A source reports a file it could not read (permissions, vanished) through the `on_error`
callback it is given and carries on; the archiver then records the snapshot as incomplete.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import BinaryIO, Protocol, runtime_checkable


class EntryKind(enum.Enum):
    """What an entry is; each value names the tree node type it becomes (SPEC.md section 9)."""

    FILE = "file"
    DIR = "dir"
    SYMLINK = "symlink"
    FIFO = "fifo"
    SOCKET = "socket"
    CHARDEV = "chardev"
    BLOCKDEV = "blockdev"


class ChunkingProfile(enum.Enum):
    """Which chunker parameters suit the content; see SPEC.md, section 5."""

    FILES = "files"
    DATABASE = "database"


@dataclass(slots=True)
class SourceEntry:
    path: tuple[bytes, ...]
    kind: EntryKind
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    user: str = ""
    group: str = ""
    mtime_ns: int = 0
    size: int = 0
    link_target: bytes | None = None
    #: Character and block devices: the device number as (major, minor)
    rdev: tuple[int, int] | None = None
    open_content: Callable[[], AbstractContextManager[BinaryIO]] | None = None
    profile: ChunkingProfile = ChunkingProfile.FILES
    extra: dict[str, object] = field(default_factory=dict)


ErrorCallback = Callable[[tuple[bytes, ...], Exception], None]


class Source(Protocol):
    """Something that can be backed up."""

    @property
    def kind(self) -> str:
        """Short name recorded in the snapshot: "files", "stdin", "postgres", "mastodon"..."""
        ...

    def describe(self) -> list[str]:
        """What was taken, for the snapshot's `paths` field (absolute paths, dbnames, ...)."""
        ...

    def entries(self, on_error: ErrorCallback) -> Iterator[SourceEntry]: ...

    def metadata(self) -> dict[str, object]:
        """Facts recorded in the snapshot after `entries` is exhausted (row counts, versions)."""
        ...


@runtime_checkable
class ScannableSource(Protocol):
    """A source that can count what it holds before reading it (files on disk): the
    archiver scans it in a thread of its own for the progress totals."""

    def scan(self) -> Iterator[int]:
        """The size of each file `entries` would yield, without opening any."""
        ...
