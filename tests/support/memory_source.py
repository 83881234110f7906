"""An in-memory backup Source for unit tests, and a reader for what a restore wrote.

`MemorySource` turns a mapping of "a/b/c" paths to `File`, `Dir`, `Link` and `Special` (a
FIFO, socket or device node) values (plain
bytes are shorthand for a `File`) into the depth-first `SourceEntry` stream the archiver
consumes. Missing parents are left to the archiver. A `File` can be told to fail when it is
opened (`open_error`) or half-way through reading (`read_error`), as an unreadable or
vanishing file would, or when its content is closed (`close_error`), as a dump command that
exits non-zero does.
"""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from snapstore.archiver.source import ChunkingProfile, EntryKind, ErrorCallback, SourceEntry

MTIME = 1_700_000_000_123_456_789


@dataclass(frozen=True)
class File:
    data: bytes = b""
    mode: int = 0o644
    mtime_ns: int = MTIME
    profile: ChunkingProfile = ChunkingProfile.FILES
    open_error: Exception | None = None
    read_error: Exception | None = None
    close_error: Exception | None = None


@dataclass(frozen=True)
class Dir:
    mode: int = 0o755
    mtime_ns: int = MTIME


@dataclass(frozen=True)
class Link:
    target: bytes
    mtime_ns: int = MTIME


@dataclass(frozen=True)
class Special:
    kind: EntryKind  # FIFO, SOCKET, CHARDEV or BLOCKDEV
    mode: int = 0o600
    mtime_ns: int = MTIME
    rdev: tuple[int, int] | None = None  # devices: (major, minor)


# Path ("a/b" or a tuple of name bytes) -> bytes | File | Dir | Link. Typed loosely because
# Mapping keys are invariant and mixed literal dicts infer `object` values.
Spec = Mapping[Any, Any]


class _FailingReader(io.RawIOBase):
    def __init__(self, data: bytes, error: Exception) -> None:
        self._data, self._error, self._sent = data, error, False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self._sent:
            raise self._error
        self._sent = True
        n = min(len(buffer), len(self._data) // 2)
        buffer[:n] = self._data[:n]
        return n


def components(path: str | tuple[bytes, ...]) -> tuple[bytes, ...]:
    if isinstance(path, tuple):
        return path
    return tuple(os.fsencode(part) for part in path.split("/"))


@dataclass
class MemorySource:
    tree: Spec
    kind: str = "memory"
    meta: dict[str, object] = field(default_factory=dict)
    opened: list[tuple[bytes, ...]] = field(default_factory=list)

    def describe(self) -> list[str]:
        return ["memory"]

    def metadata(self) -> dict[str, object]:
        return dict(self.meta)

    def entries(self, on_error: ErrorCallback) -> Iterator[SourceEntry]:
        items = {components(path): value for path, value in self.tree.items()}
        for path in sorted(items):
            value = items[path]
            if isinstance(value, bytes):
                value = File(value)
            if isinstance(value, Dir):
                yield SourceEntry(path, EntryKind.DIR, mode=value.mode, mtime_ns=value.mtime_ns)
            elif isinstance(value, Link):
                yield SourceEntry(
                    path,
                    EntryKind.SYMLINK,
                    mode=0o777,
                    mtime_ns=value.mtime_ns,
                    link_target=value.target,
                )
            elif isinstance(value, Special):
                yield SourceEntry(
                    path, value.kind, mode=value.mode, mtime_ns=value.mtime_ns, rdev=value.rdev
                )
            else:
                yield SourceEntry(
                    path,
                    EntryKind.FILE,
                    mode=value.mode,
                    mtime_ns=value.mtime_ns,
                    size=len(value.data),
                    open_content=self._opener(path, value),
                    profile=value.profile,
                )

    def _opener(
        self, path: tuple[bytes, ...], value: File
    ) -> Callable[[], AbstractContextManager[BinaryIO]]:
        @contextmanager
        def open_content() -> Iterator[BinaryIO]:
            self.opened.append(path)
            if value.open_error is not None:
                raise value.open_error
            if value.read_error is not None:
                yield io.BufferedReader(_FailingReader(value.data, value.read_error))
            else:
                yield io.BytesIO(value.data)
            if value.close_error is not None:
                raise value.close_error

        return open_content


def read_tree(root: str | Path) -> dict[str, tuple[object, ...]]:
    """What a restore left below `root`: type, mode, mtime and content, link target or device
    number (a FIFO or device is looked at, never opened)."""
    state: dict[str, tuple[object, ...]] = {}
    top = os.fsencode(root)
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            rel = os.fsdecode(os.path.relpath(path, top))
            st = os.lstat(path)
            if os.path.islink(path):
                state[rel] = ("link", os.readlink(path), st.st_mtime_ns)
            elif os.path.isdir(path):
                state[rel] = ("dir", st.st_mode & 0o7777, st.st_mtime_ns)
            elif stat.S_ISFIFO(st.st_mode) or stat.S_ISSOCK(st.st_mode):
                kind = "fifo" if stat.S_ISFIFO(st.st_mode) else "socket"
                state[rel] = (kind, st.st_mode & 0o7777, st.st_mtime_ns)
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                kind = "chardev" if stat.S_ISCHR(st.st_mode) else "blockdev"
                rdev = (os.major(st.st_rdev), os.minor(st.st_rdev))
                state[rel] = (kind, st.st_mode & 0o7777, st.st_mtime_ns, rdev)
            else:
                with open(path, "rb") as f:
                    state[rel] = ("file", st.st_mode & 0o7777, st.st_mtime_ns, f.read())
    return state


def expected_tree(spec: Spec) -> dict[str, tuple[object, ...]]:
    """The `read_tree` a faithful restore of `spec` produces (implicit parents get 0o755;
    sockets are not restored)."""
    state: dict[str, tuple[object, ...]] = {}
    for path, value in spec.items():
        parts = components(path)
        for depth in range(1, len(parts)):
            parent = os.fsdecode(b"/".join(parts[:depth]))
            state.setdefault(parent, ("dir", 0o755, 0))
        rel = os.fsdecode(b"/".join(parts))
        if isinstance(value, bytes):
            value = File(value)
        if isinstance(value, Dir):
            state[rel] = ("dir", value.mode, value.mtime_ns)
        elif isinstance(value, Link):
            state[rel] = ("link", value.target, value.mtime_ns)
        elif isinstance(value, Special) and value.kind is EntryKind.FIFO:
            state[rel] = ("fifo", value.mode, value.mtime_ns)
        elif isinstance(value, Special) and value.kind is not EntryKind.SOCKET:
            state[rel] = (value.kind.value, value.mode, value.mtime_ns, value.rdev)
        elif not isinstance(value, Special):
            state[rel] = ("file", value.mode, value.mtime_ns, value.data)
    return state
