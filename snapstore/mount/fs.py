"""The mounted filesystem's logic, without FUSE: paths to attributes, listings, links, bytes.

Paths are what FUSE hands over, `/`-separated and decoded as UTF-8 with surrogateescape (so a
name that is not UTF-8 comes and goes unchanged). The part above the snapshots is the layout
(layout.py); below a snapshot's folder, each name is looked up in its directory's tree, decoded
when first needed and kept in an LRU bounded by the number of nodes it holds. Nothing is kept
for a file or directory once it is out of that cache, so listing a snapshot of a million files
costs the cache, not a million entries. Open files are the one state held for as long as the
caller holds them (`open` ... `release`).

FIFOs, sockets and device nodes appear with their type bits, mode and (devices) `st_rdev`,
and hold nothing: `open` refuses them (ENXIO, as opening a socket is). Under a real mount the
kernel never asks: it opens a FIFO or device inode itself (FUSE hands special inodes to the
kernel's own code). A FIFO there is an empty pipe of this machine, so a reader that opens it
with O_NONBLOCK reads nothing at once, and a blocking open waits for a writer as with any FIFO;
device nodes cannot be opened at all, libfuse mounting with `nodev` (fuse_ops.py asks for it).

Errors are OSErrors with the errno FUSE should return: ENOENT, ENOTDIR, EISDIR, EINVAL, and
EIO for what the repository could not read, which is also reported (`MountOptions.on_error`)
naming the path and the blob, and the mount goes on.
"""

from __future__ import annotations

import errno
import itertools
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from snapstore.errors import SnapstoreError
from snapstore.ids import Id
from snapstore.lru import WeightedLru
from snapstore.mount.file_reader import OpenFile, naming_blob, new_blob_cache
from snapstore.mount.layout import Folder, Link, Report, SnapshotTable, time_ns
from snapstore.repository.repository import Repository
from snapstore.snapshot.manifest import Snapshot
from snapstore.snapshot.selection import SnapshotFilter
from snapstore.snapshot.tree import Node, NodeType
from snapstore.snapshot.walk import load_tree


def _ignore(what: str, error: SnapstoreError) -> None:
    """The default `on_error`: the failed read's EIO is all the caller hears."""


@dataclass
class MountOptions:
    """How a repository is mounted. The caches bound the memory a mount uses whatever is
    browsed; `on_mounted` is called once the filesystem is up, `on_error` with each error
    answered with EIO (what was being done, the error; the error names the blob)."""

    allow_other: bool = False  # let other users than the one mounting in (FUSE allow_other)
    refresh_every: float = 3.0  # seconds before a folder above the snapshots lists them again
    tree_cache_nodes: int = 50_000  # decoded tree nodes kept (a node costs about 1 KiB)
    blob_cache_bytes: int = 64 * 1024 * 1024  # chunk plaintexts kept, shared by all open files
    read_ahead: int = 8 * 1024 * 1024  # fetched past a sequential read
    on_mounted: Callable[[], None] | None = None
    on_error: Report = _ignore
    selection: SnapshotFilter | None = None  # only the snapshots it matches (host, tag, path)


@dataclass(frozen=True)
class Attr:
    """What `stat` says about an entry."""

    type: NodeType
    mode: int  # permission bits
    size: int
    uid: int
    gid: int
    mtime_ns: int
    rdev: int = 0  # a device node's device number (st_rdev)

    @property
    def st_mode(self) -> int:
        return self.type.type_bits | (self.mode & 0o7777)

    @property
    def nlink(self) -> int:
        return 2 if self.type is NodeType.DIR else 1


@dataclass(frozen=True)
class _InSnapshot:
    """A path below a snapshot's folder: the snapshot, and the node (None for its root)."""

    snapshot: Snapshot
    node: Node | None


@dataclass
class _Handle:
    path: str
    file: OpenFile


class _MissingAbove(FileNotFoundError):
    """A name missing from a folder above the snapshots (a new snapshot may be it)."""


def _errno(code: int, path: str) -> OSError:
    return OSError(code, os.strerror(code), path)


class SnapshotFilesystem:
    """The filesystem over one repository (thread-safe: FUSE calls from several threads).

    `uid`/`gid` own the folders above the snapshots (default: this process's)."""

    def __init__(
        self,
        repo: Repository,
        options: MountOptions | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        uid: int | None = None,
        gid: int | None = None,
    ) -> None:
        self._repo = repo
        self.options = options or MountOptions()
        self._uid = os.getuid() if uid is None else uid
        self._gid = os.getgid() if gid is None else gid
        self._table = SnapshotTable(
            repo,
            refresh_every=self.options.refresh_every,
            clock=clock,
            mounted_ns=time.time_ns(),
            report=self.options.on_error,
            selection=self.options.selection,
        )
        self._trees: WeightedLru[bytes, dict[bytes, Node]] = WeightedLru(
            self.options.tree_cache_nodes, len
        )
        self._blobs = new_blob_cache(self.options.blob_cache_bytes)
        self._handles: dict[int, _Handle] = {}
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()

    # -- what FUSE asks -------------------------------------------------------------------
    def getattr(self, path: str) -> Attr:
        found = self._resolve(path)
        if isinstance(found, Folder):
            return self._virtual(NodeType.DIR, 0o555, 0, found.mtime_ns)
        if isinstance(found, Link):
            return self._virtual(NodeType.SYMLINK, 0o777, len(found.target.encode("utf-8", "surrogateescape")), found.mtime_ns)
        node = found.node
        if node is None:
            return self._virtual(NodeType.DIR, 0o555, 0, time_ns(found.snapshot))
        rdev = os.makedev(node.rdev_major, node.rdev_minor) if node.type.is_device else 0
        return Attr(node.type, node.mode, node.size, node.uid, node.gid, node.mtime_ns, rdev)

    def readdir(self, path: str) -> Iterator[tuple[str, NodeType]]:
        """The entries of a directory (name, type), in stored order; the folders above the
        snapshots list the snapshots again first if their listing is old enough."""
        found = self._resolve(path, refresh=True)
        if isinstance(found, Folder):
            return iter([(name, _type_of(entry)) for name, entry in found.entries.items()])
        if isinstance(found, Link):
            raise _errno(errno.ENOTDIR, path)
        nodes = self._children(found, path)
        return ((n.display_name, n.type) for n in nodes.values())

    def readlink(self, path: str) -> str:
        found = self._resolve(path)
        if isinstance(found, Link):
            return found.target
        if isinstance(found, _InSnapshot) and found.node is not None and found.node.type is NodeType.SYMLINK:
            return found.node.target.decode("utf-8", "surrogateescape")
        raise _errno(errno.EINVAL, path)

    def open(self, path: str, flags: int = os.O_RDONLY) -> int:
        """A handle for `read`; writing is refused (EROFS)."""
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_TRUNC | os.O_APPEND | os.O_CREAT):
            raise _errno(errno.EROFS, path)
        found = self._resolve(path)
        if not isinstance(found, _InSnapshot) or found.node is None or found.node.type is NodeType.DIR:
            raise _errno(errno.EISDIR, path)
        if found.node.type.special:  # nothing to read: see the module docstring
            raise _errno(errno.ENXIO, path)
        if found.node.type is not NodeType.FILE:
            raise _errno(errno.EINVAL, path)
        opened = OpenFile(self._repo, found.node, self._blobs, self.options.read_ahead)
        with self._lock:
            number = next(self._numbers)
            self._handles[number] = _Handle(path, opened)
        return number

    def read(self, handle: int, size: int, offset: int) -> bytes:
        with self._lock:
            found = self._handles.get(handle)
        if found is None:
            raise _errno(errno.EBADF, "")
        try:
            return found.file.read(size, offset)
        except SnapstoreError as exc:
            self.options.on_error(f"reading {found.path}", exc)
            raise _errno(errno.EIO, found.path) from None

    def release(self, handle: int) -> None:
        with self._lock:
            self._handles.pop(handle, None)

    @property
    def open_files(self) -> int:
        return len(self._handles)

    # -- lookups --------------------------------------------------------------------------
    def _resolve(self, path: str, refresh: bool = False) -> Folder | Link | _InSnapshot:
        """The entry at `path`. A name missing above the snapshots lists them again (at most
        every `refresh_every` seconds) before it is called missing; with `refresh`, so does a
        folder above the snapshots."""
        parts = [part for part in path.split("/") if part]
        root = self._table.root
        try:
            found: Folder | Link | _InSnapshot | None = self._lookup(root, parts, path)
        except _MissingAbove:
            found = None
        if found is None or (refresh and isinstance(found, Folder)):
            newer = self._table.refresh()
            if found is None or newer is not root:
                return self._lookup(newer, parts, path)
        return found

    def _lookup(self, root: Folder, parts: list[str], path: str) -> Folder | Link | _InSnapshot:
        entry: Folder | Link | Snapshot = root
        for depth, part in enumerate(parts):
            if isinstance(entry, Snapshot):
                return self._in_snapshot(entry, parts[depth:], path)
            if isinstance(entry, Link):
                raise _errno(errno.ENOTDIR, path)
            child = entry.entries.get(part)
            if child is None:
                raise _MissingAbove(errno.ENOENT, os.strerror(errno.ENOENT), path)
            entry = child
        if isinstance(entry, Snapshot):
            return _InSnapshot(entry, None)
        return entry

    def _in_snapshot(self, snapshot: Snapshot, parts: list[str], path: str) -> _InSnapshot:
        found = _InSnapshot(snapshot, None)
        for part in parts:
            nodes = self._children(found, path)
            node = nodes.get(part.encode("utf-8", "surrogateescape"))
            if node is None:
                raise _errno(errno.ENOENT, path)
            found = _InSnapshot(snapshot, node)
        return found

    def _children(self, found: _InSnapshot, path: str) -> dict[bytes, Node]:
        """A directory's nodes by name, in stored order (ENOTDIR for anything else)."""
        if found.node is None:
            tree_id = found.snapshot.tree
        elif found.node.type is NodeType.DIR and found.node.subtree is not None:
            tree_id = found.node.subtree
        else:
            raise _errno(errno.ENOTDIR, path)
        return self._tree(tree_id, path)

    def _tree(self, tree_id: Id, path: str) -> dict[bytes, Node]:
        key = bytes(tree_id)
        nodes = self._trees.get(key)
        if nodes is None:
            try:
                nodes = {node.name: node for node in load_tree(self._repo, tree_id)}
            except SnapstoreError as exc:
                self.options.on_error(f"listing {path}", naming_blob(exc, key))
                raise _errno(errno.EIO, path) from None
            self._trees.put(key, nodes)
        return nodes

    def _virtual(self, kind: NodeType, mode: int, size: int, mtime_ns: int) -> Attr:
        return Attr(kind, mode, size, self._uid, self._gid, mtime_ns)


def _type_of(entry: Folder | Link | Snapshot) -> NodeType:
    return NodeType.SYMLINK if isinstance(entry, Link) else NodeType.DIR
