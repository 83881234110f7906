"""Creating entries inside a directory descriptor without ever following a symlink.

Every operation is relative to an open directory fd and uses O_NOFOLLOW (or
follow_symlinks=False), so a symlink planted in the target, or restored from the snapshot,
can never redirect a write outside the target.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable

from snapstore.errors import UnsafePath
from snapstore.snapshot.tree import Node, check_name

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def _remove_existing(dir_fd: int, name: bytes, keep_dir: bool) -> None:
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        if keep_dir:
            return
        raise UnsafePath(
            f"{os.fsdecode(name)!r} exists as a directory in the target; refusing to replace it"
        )
    os.unlink(name, dir_fd=dir_fd)


def open_dir(dir_fd: int, name: bytes) -> int:
    """Creates (if needed) and opens a subdirectory; a symlink in its place is replaced."""
    check_name(name)
    _remove_existing(dir_fd, name, keep_dir=True)
    try:
        os.mkdir(name, 0o700, dir_fd=dir_fd)
    except FileExistsError:
        pass
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise UnsafePath(f"{os.fsdecode(name)!r} in the target is not a directory") from None
        raise


def write_file(dir_fd: int, name: bytes, chunks: Iterable[bytes]) -> tuple[int, int]:
    """Writes a regular file; returns (open fd, bytes written). The caller sets metadata."""
    check_name(name)
    _remove_existing(dir_fd, name, keep_dir=False)
    fd = os.open(name, _FILE_FLAGS, 0o600, dir_fd=dir_fd)
    written = 0
    try:
        for chunk in chunks:
            view = memoryview(chunk)
            while view:
                n = os.write(fd, view)
                view = view[n:]
                written += n
    except BaseException:
        os.close(fd)
        raise
    return fd, written


def make_symlink(dir_fd: int, name: bytes, target: bytes) -> None:
    check_name(name)
    _remove_existing(dir_fd, name, keep_dir=False)
    os.symlink(target, name, dir_fd=dir_fd)


def apply_metadata(fd: int, node: Node, owners: bool) -> None:
    """Ownership (when asked, e.g. as root), then mode, then mtime, on an open descriptor."""
    if owners:
        try:
            os.fchown(fd, node.uid, node.gid)
        except PermissionError:
            pass
    os.fchmod(fd, node.mode & 0o7777)
    os.utime(fd, ns=(node.mtime_ns, node.mtime_ns))


def apply_link_metadata(dir_fd: int, node: Node, owners: bool) -> None:
    if owners:
        try:
            os.chown(node.name, node.uid, node.gid, dir_fd=dir_fd, follow_symlinks=False)
        except PermissionError:
            pass
    os.utime(node.name, ns=(node.mtime_ns, node.mtime_ns), dir_fd=dir_fd, follow_symlinks=False)
