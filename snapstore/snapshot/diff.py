"""What changed between two snapshots (`snapstore diff`), as restic's diff says it.

Each path that differs is one `DiffEntry`:

    +  added             only in the new snapshot (everything below an added directory too)
    -  removed           only in the old snapshot (everything below a removed directory too)
    M  content changed   a file whose size or chunks differ, a symlink whose target differs,
                         a device node whose device number differs
    U  metadata only     same content; mode, owner (uid, gid, user, group) or mtime differ

A path whose type changed (a file became a directory) is removed, then added.

**Identical subtrees are not entered.** The new snapshot's tree is walked by the shared
`Walker` (snapshot/walk.py); the old side is read alongside, one directory per level of the
walk. When a directory has the same tree id on both sides, its contents are identical (a tree's
id is its content's), and the walker is told not to go below it: diffing two nightly snapshots
of a million files reads only the trees on the paths to what changed. A removed directory's
contents are listed by a walk of the old tree.

Memory holds one directory listing per level on each side, never the whole snapshot; entries
are yielded as they are met, in path order (names in byte order at each level).
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass

from snapstore.errors import PathNotFound
from snapstore.ids import Id
from snapstore.repository.repository import Repository
from snapstore.snapshot.manifest import Snapshot
from snapstore.snapshot.store import find_node, split_path
from snapstore.snapshot.tree import Node, NodeType
from snapstore.snapshot.walk import Walker, display_path, load_tree


class DiffChange(enum.Enum):
    ADDED = "+"
    REMOVED = "-"
    MODIFIED = "M"
    METADATA = "U"


@dataclass(frozen=True)
class DiffEntry:
    """One path that differs; `old` and `new` are its nodes on each side (None where absent)."""

    change: DiffChange
    path: str
    old: Node | None
    new: Node | None

    @property
    def node(self) -> Node:
        node = self.new if self.new is not None else self.old
        assert node is not None
        return node

    @property
    def size_change(self) -> int:
        """New size minus old size, for files (0 for directories and symlinks)."""
        return _file_size(self.new) - _file_size(self.old)


@dataclass
class DiffSummary:
    """Totals over the entries. `bytes_added` is the size of added files plus the growth of
    changed ones; `bytes_removed` the size of removed files plus the shrinking of changed ones
    (file sizes, not stored bytes)."""

    files_added: int = 0
    files_removed: int = 0
    files_changed: int = 0
    dirs_added: int = 0
    dirs_removed: int = 0
    others_added: int = 0
    others_removed: int = 0
    others_changed: int = 0
    metadata_changed: int = 0
    bytes_added: int = 0
    bytes_removed: int = 0

    def count(self, entry: DiffEntry) -> None:
        kind = {NodeType.FILE: "files", NodeType.DIR: "dirs"}.get(entry.node.type, "others")
        if entry.change is DiffChange.METADATA:
            self.metadata_changed += 1
        else:
            what = {"+": "added", "-": "removed", "M": "changed"}[entry.change.value]
            setattr(self, f"{kind}_{what}", getattr(self, f"{kind}_{what}") + 1)
        delta = entry.size_change
        self.bytes_added += max(delta, 0)
        self.bytes_removed += max(-delta, 0)

    def to_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


class SnapshotDiff:
    """The differences, yielded by iterating (once); `summary` counts those yielded so far."""

    def __init__(self, repo: Repository, old: Snapshot, new: Snapshot, path: str = "/") -> None:
        self.old = old
        self.new = new
        self.summary = DiffSummary()
        self._repo = repo
        self._base = tuple(split_path(path))
        self._roots = (_tree_at(repo, old, path), _tree_at(repo, new, path))
        if self._roots == (None, None):
            raise PathNotFound(f"{path!r} is in neither snapshot")

    def __iter__(self) -> Iterator[DiffEntry]:
        old_root, new_root = self._roots
        for entry in self._entries(old_root, new_root):
            self.summary.count(entry)
            yield entry

    def _entries(self, old_root: Id | None, new_root: Id | None) -> Iterator[DiffEntry]:
        if old_root is not None and new_root is not None and old_root == new_root:
            return
        if new_root is None:
            assert old_root is not None
            yield from self._below(self._base, old_root, DiffChange.REMOVED)
            return
        olds = [_OldLevel(load_tree(self._repo, old_root) if old_root is not None else [])]
        counterpart: list[Node | None] = [None]  # the old node of the new node just met

        def descend(path: tuple[bytes, ...], node: Node) -> bool:
            old = counterpart[0]
            old_tree = old.subtree if old is not None and old.type is NodeType.DIR else None
            if old_tree is not None and old_tree == node.subtree:
                return False  # identical contents: the point of the whole design
            olds.append(_OldLevel(load_tree(self._repo, old_tree) if old_tree is not None else []))
            return True

        for step in Walker(self._repo, each_tree_once=False).steps(new_root, descend):
            level = olds[-1]
            path = (*self._base, *step.path)
            if step.leaving:
                for old in level.rest():
                    yield from self._gone(path, old)
                olds.pop()
                continue
            node = step.node
            assert node is not None
            for old in level.before(node.name):
                yield from self._gone(path[:-1], old)
            old_node = level.take(node.name)
            counterpart[0] = old_node
            yield from self._compare(path, old_node, node)

    def _compare(self, path: tuple[bytes, ...], old: Node | None, new: Node) -> Iterator[DiffEntry]:
        where = "/" + display_path(path)
        if old is None:
            yield DiffEntry(DiffChange.ADDED, where, None, new)
        elif old.type is not new.type:
            yield from self._gone(path[:-1], old)
            yield DiffEntry(DiffChange.ADDED, where, None, new)
        elif _content_differs(old, new):
            yield DiffEntry(DiffChange.MODIFIED, where, old, new)
        elif _metadata_differs(old, new):
            yield DiffEntry(DiffChange.METADATA, where, old, new)

    def _gone(self, parent: tuple[bytes, ...], old: Node) -> Iterator[DiffEntry]:
        """`old` and, for a directory, everything below it, as removed."""
        path = (*parent, old.name)
        yield DiffEntry(DiffChange.REMOVED, "/" + display_path(path), old, None)
        if old.type is NodeType.DIR and old.subtree is not None:
            yield from self._below(path, old.subtree, DiffChange.REMOVED)

    def _below(self, base: tuple[bytes, ...], tree: Id, change: DiffChange) -> Iterator[DiffEntry]:
        for visit in Walker(self._repo, each_tree_once=False).pre_order(tree):
            where = "/" + display_path((*base, *visit.path))
            yield DiffEntry(change, where, visit.node, None)


@dataclass
class _OldLevel:
    """One directory of the old side, consumed in name order alongside the new side's."""

    nodes: list[Node]
    at: int = 0

    def before(self, name: bytes) -> Iterator[Node]:
        while self.at < len(self.nodes) and self.nodes[self.at].name < name:
            self.at += 1
            yield self.nodes[self.at - 1]

    def take(self, name: bytes) -> Node | None:
        if self.at < len(self.nodes) and self.nodes[self.at].name == name:
            self.at += 1
            return self.nodes[self.at - 1]
        return None

    def rest(self) -> Iterator[Node]:
        while self.at < len(self.nodes):
            self.at += 1
            yield self.nodes[self.at - 1]


def diff_snapshots(repo: Repository, old: Snapshot, new: Snapshot, path: str = "/") -> SnapshotDiff:
    """The differences from `old` to `new` at and below `path` (a directory in at least one of
    them): iterate for the entries, then read `.summary`."""
    return SnapshotDiff(repo, old, new, path)


def _tree_at(repo: Repository, snapshot: Snapshot, path: str) -> Id | None:
    """The tree of the directory at `path` in `snapshot`; None when the path is not there."""
    try:
        node = find_node(repo, snapshot.tree, path)
    except PathNotFound:
        return None
    if node is None:
        return snapshot.tree
    if node.type is not NodeType.DIR or node.subtree is None:
        raise PathNotFound(f"{path!r} is not a directory in snapshot {snapshot.short_id}")
    return node.subtree


def _file_size(node: Node | None) -> int:
    return node.size if node is not None and node.type is NodeType.FILE else 0


def _content_differs(old: Node, new: Node) -> bool:
    if old.type is NodeType.FILE:
        return (
            old.size != new.size
            or old.content != new.content
            or old.content_lists != new.content_lists
        )
    if old.type is NodeType.SYMLINK:
        return old.target != new.target
    if old.type.is_device:  # a device node's "content" is the device it names
        return (old.rdev_major, old.rdev_minor) != (new.rdev_major, new.rdev_minor)
    return False


def _metadata_differs(old: Node, new: Node) -> bool:
    return (old.mode, old.uid, old.gid, old.user, old.group, old.mtime_ns) != (
        new.mode, new.uid, new.gid, new.user, new.group, new.mtime_ns
    )
