"""Creating entries inside a directory descriptor without ever following a symlink.

Every operation is relative to an open directory fd and uses O_NOFOLLOW (or
follow_symlinks=False), so a symlink planted in the target, or restored from the snapshot,
can never redirect a write outside the target.

FIFOs and device nodes are made with mkfifo/mknod and never opened (opening a FIFO blocks
until a writer comes; opening a device may act on it: a tape rewinds): their metadata is set
by name inside the directory, never following a symlink (`apply_node_metadata`).
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import stat
from collections.abc import Callable
from functools import partial

from snapstore.errors import UnsafePath
from snapstore.snapshot.tree import Node, NodeType, check_name
from snapstore.snapshot.xattrs import PRIVILEGED, decode_xattrs

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
    return make_dir(dir_fd, name)[0]


def make_dir(dir_fd: int, name: bytes) -> tuple[int, bool]:
    """`open_dir`, and whether the directory is new (made here: nothing is in it yet). What
    is at `name` is looked at only when something is (mkdir never follows a symlink)."""
    check_name(name)
    made = True
    try:
        os.mkdir(name, 0o700, dir_fd=dir_fd)
    except FileExistsError:
        made = False
        _remove_existing(dir_fd, name, keep_dir=True)
        try:
            os.mkdir(name, 0o700, dir_fd=dir_fd)
        except FileExistsError:
            pass
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=dir_fd), made
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise UnsafePath(f"{os.fsdecode(name)!r} in the target is not a directory") from None
        raise


def existing(dir_fd: int, name: bytes) -> os.stat_result | None:
    """What is at `name` in the directory now (a symlink is not followed), or None."""
    check_name(name)
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def create_file(dir_fd: int, name: bytes, size: int) -> int:
    """Creates a regular file of `size` bytes, all holes, and returns it open for positional
    writes; whatever was at `name` (not a directory) is replaced."""
    check_name(name)
    try:
        fd = os.open(name, _FILE_FLAGS, 0o600, dir_fd=dir_fd)
    except FileExistsError:  # O_EXCL with O_NOFOLLOW: a symlink there is not followed either
        _remove_existing(dir_fd, name, keep_dir=False)
        fd = os.open(name, _FILE_FLAGS, 0o600, dir_fd=dir_fd)
    try:
        if size:
            os.ftruncate(fd, size)
    except BaseException:
        os.close(fd)
        raise
    return fd


def write_at(fd: int, data: bytes | memoryview, offset: int) -> None:
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, offset)
        view = view[n:]
        offset += n


#: A run of zeros at least this long inside a blob is left as a hole, not written.
ZERO_RUN = 4096
_ZEROS = bytes(ZERO_RUN)
_NON_ZERO = re.compile(rb"[^\x00]")


def write_keeping_holes(fd: int, data: bytes, offset: int) -> None:
    """Positional write of `data` at `offset` into a file created all holes, skipping runs of
    ZERO_RUN zeros or more, so a sparse file's holes stay holes even inside a chunk that also
    holds data (the chunker cuts long zero runs into chunks up to its maximum size)."""
    if _ZEROS not in data:
        write_at(fd, data, offset)
        return
    view = memoryview(data)
    pos = 0
    while pos < len(data):
        zeros = data.find(_ZEROS, pos)
        if zeros < 0:
            write_at(fd, view[pos:], offset + pos)
            return
        if zeros > pos:
            write_at(fd, view[pos:zeros], offset + pos)
        found = _NON_ZERO.search(data, zeros + ZERO_RUN)
        pos = found.start() if found else len(data)


def remove_entry(dir_fd: int, name: bytes) -> None:
    """Removes a file, link or whole directory inside the directory (for --delete)."""
    check_name(name)
    st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(os.fsdecode(name), dir_fd=dir_fd)
    else:
        os.unlink(name, dir_fd=dir_fd)


def reopen_parent(child_fd: int, expected: tuple[int, int]) -> int:
    """The parent directory of an open directory, checked to be the one opened before (the
    restorer keeps few directory descriptors open, so a 10,000-level tree needs no more)."""
    fd = os.open("..", _DIR_FLAGS, dir_fd=child_fd)
    st = os.fstat(fd)
    if (st.st_dev, st.st_ino) != expected:
        os.close(fd)
        raise UnsafePath("a directory of the restore target was moved while restoring")
    return fd


def make_hardlink(root_fd: int, existing_path: bytes, dir_fd: int, name: bytes) -> None:
    """Links `name` in the directory to the file at `existing_path` (relative to `root_fd`,
    made of checked names, restored earlier in this run); neither end is followed if a
    symlink. Whatever was at `name` (not a directory) is replaced."""
    check_name(name)
    _remove_existing(dir_fd, name, keep_dir=False)
    os.link(existing_path, name, src_dir_fd=root_fd, dst_dir_fd=dir_fd, follow_symlinks=False)


def make_special(dir_fd: int, node: Node) -> None:
    """Creates a FIFO or a device node (never a socket: only a program listening on one makes
    it); whatever was at its name (not a directory) is replaced. Creating a device node needs
    root (CAP_MKNOD): PermissionError otherwise."""
    check_name(node.name)
    if not (node.type is NodeType.FIFO or node.type.is_device):
        raise ValueError(f"cannot create a {node.type.value} node")
    _remove_existing(dir_fd, node.name, keep_dir=False)
    if node.type is NodeType.FIFO:
        os.mkfifo(node.name, 0o600, dir_fd=dir_fd)
    else:
        device = os.makedev(node.rdev_major, node.rdev_minor)
        os.mknod(node.name, 0o600 | node.type.type_bits, device, dir_fd=dir_fd)


def same_special(found: os.stat_result, node: Node) -> bool:
    """Whether what `lstat` found is the node's kind of special file (and device)."""
    if stat.S_IFMT(found.st_mode) != node.type.type_bits:
        return False
    return not node.type.is_device or (
        os.major(found.st_rdev), os.minor(found.st_rdev)) == (node.rdev_major, node.rdev_minor)


def make_symlink(dir_fd: int, name: bytes, target: bytes) -> None:
    check_name(name)
    _remove_existing(dir_fd, name, keep_dir=False)
    os.symlink(target, name, dir_fd=dir_fd)


def apply_metadata(fd: int, node: Node, owners: bool) -> list[str]:
    """Ownership (when asked, e.g. as root), extended attributes (`apply_xattrs`, after chown,
    which clears file capabilities), then mode, then mtime, on an open descriptor; returns
    the attributes the filesystem refused.

    An owner chown cannot take (outside uid_t: OverflowError) is left as it is, as one we may
    not set is; the tree decoder already refuses such nodes, this keeps any other caller safe."""
    if owners:
        try:
            os.fchown(fd, node.uid, node.gid)
        except (PermissionError, OverflowError):
            pass
    refused = apply_xattrs(fd, node, owners)
    os.fchmod(fd, node.mode & 0o7777)
    os.utime(fd, ns=(node.mtime_ns, node.mtime_ns))
    return refused


def apply_xattrs(fd: int, node: Node, privileged: bool) -> list[str]:
    """Sets the node's extended attributes (ACLs among them) on an open descriptor, before its
    mode (an access ACL and the mode share the group bits). Best effort: returns one line per
    attribute the filesystem refused; `security.*` and `trusted.*` only when `privileged`."""
    return _set_xattrs(node, privileged, partial(os.setxattr, fd))


def _set_xattrs(node: Node, privileged: bool, set_one: Callable[[bytes, bytes], None]) -> list[str]:
    refused = []
    for name, value in decode_xattrs(node.extra):
        if name.startswith(PRIVILEGED) and not privileged:
            continue
        try:
            set_one(name, value)
        except OSError as exc:
            refused.append(f"extended attribute {os.fsdecode(name)} not restored: {exc.strerror or exc}")
    return refused


def apply_node_metadata(dir_fd: int, node: Node, owners: bool) -> list[str]:
    """`apply_metadata` for a FIFO or device node, which is never opened: the node is taken
    with O_PATH (no open of the FIFO or device itself, a symlink not followed), checked to be
    what was made, and changed through its /proc/self/fd link, as glibc's fchmodat does.
    Returns the attributes the filesystem refused."""
    fd = os.open(node.name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        if not same_special(os.fstat(fd), node):
            raise UnsafePath(f"{os.fsdecode(node.name)!r} was replaced in the target while restoring")
        path = f"/proc/self/fd/{fd}"
        if owners:
            try:
                os.chown(path, node.uid, node.gid)
            except (PermissionError, OverflowError):
                pass
        refused = _set_xattrs(node, owners, partial(os.setxattr, path))
        os.chmod(path, node.mode & 0o7777)
        os.utime(path, ns=(node.mtime_ns, node.mtime_ns))
    finally:
        os.close(fd)
    return refused


def apply_link_metadata(dir_fd: int, node: Node, owners: bool) -> None:
    if owners:
        try:
            os.chown(node.name, node.uid, node.gid, dir_fd=dir_fd, follow_symlinks=False)
        except (PermissionError, OverflowError):
            pass
    os.utime(node.name, ns=(node.mtime_ns, node.mtime_ns), dir_fd=dir_fd, follow_symlinks=False)
