"""The restore target beside the snapshot: which paths --include and --exclude select, and
the directories open along the current path, a window of descriptors however deep the tree.
Shared by the restorer and by --verify, which walk the target the same way."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from snapstore.restorer.file_writer import reopen_parent
from snapstore.snapshot.patterns import PathPatterns
from snapstore.snapshot.store import split_path
from snapstore.snapshot.tree import Node

#: Directory descriptors kept open along the current path; deeper ones are reopened.
DIR_FD_WINDOW = 64


class Selection:
    """Which paths --include and --exclude select: the included paths, their ancestors and
    contents, less what an exclude pattern matches."""

    def __init__(self, includes: list[str], excludes: list[str]) -> None:
        self._paths = [tuple(split_path(p)) for p in includes]
        self._hit = [False] * len(self._paths)
        self._excludes = PathPatterns(excludes)

    def wants(self, path: tuple[bytes, ...]) -> bool:
        if self._excludes and self._excludes.matches(b"/" + b"/".join(path)):
            return False
        if not self._paths:
            return True
        for n, inc in enumerate(self._paths):
            common = min(len(inc), len(path))
            if inc[:common] == path[:common]:
                if len(path) >= len(inc):
                    self._hit[n] = True
                return True
        return False

    def whole(self, path: tuple[bytes, ...]) -> bool:
        return not self._paths or any(path[: len(inc)] == inc for inc in self._paths)

    def unmatched(self) -> list[str]:
        return [
            "/" + b"/".join(p).decode("utf-8", "surrogateescape")
            for p, hit in zip(self._paths, self._hit, strict=True)
            if p and not hit
        ]


@dataclass
class TargetDir:
    """A directory on the current path: its descriptor (None when closed to stay within the
    window, or in a dry run where it does not exist), its identity to check a reopen by, and
    the names the snapshot has in it (for --delete)."""

    fd: int | None
    ident: tuple[int, int]
    node: Node | None  # None for the target itself
    path: tuple[bytes, ...]
    names: set[bytes] = field(default_factory=set)
    made: bool = False  # made by this restore: nothing was in it to keep or replace


def display_path(path: tuple[bytes, ...]) -> str:
    return "/" + b"/".join(path).decode("utf-8", "surrogateescape")


def push_dir(stack: list[TargetDir], frame: TargetDir) -> None:
    """Puts a directory on the stack, closing the descriptor of one far above it: only
    DIR_FD_WINDOW stay open, however deep the tree (`reopen_parent_dir` finds the way back)."""
    stack.append(frame)
    if len(stack) > DIR_FD_WINDOW + 1:
        far = stack[-DIR_FD_WINDOW - 1]
        if far.fd is not None and far.node is not None:
            os.close(far.fd)
            far.fd = None


def reopen_parent_dir(stack: list[TargetDir], done: TargetDir) -> None:
    """Before a directory's descriptor closes, reopens its parent's if the window closed it."""
    parent = stack[-1] if stack else None
    if parent is not None and parent.fd is None and parent.ident != (0, 0) and done.fd is not None:
        parent.fd = reopen_parent(done.fd, parent.ident)


def dir_identity(fd: int) -> tuple[int, int]:
    st = os.fstat(fd)
    return st.st_dev, st.st_ino
