"""The one snapshot walker: every tree below a root, with an explicit stack, never recursion.

Check, prune, stats, copy, `ls` and restore all walk snapshots; they differ only in what they do at each
node and in what an unreadable tree or chunk list means to them. So there is one walk here and
each of them says the rest:

- **Order.** `Walker.pre_order` yields each node (`Visit`) before anything below it, in stored
  name order: what `ls` prints. `Walker.steps` adds a leaving step after each directory's
  contents and lets the consumer prune the walk: what restore needs. `Walker.post_order` yields each tree (`TreeVisit`) after every
  tree below it: what copy needs to rewrite trees bottom-up and stats to size them.
- **Each tree once.** A walker remembers the trees it has entered, across as many snapshots as
  it walks: a subtree shared by a thousand snapshots is read once. A node naming a tree met
  before is still yielded, but the walk does not go below it again. Consumers that need a value
  per tree (stats' sizes, copy's new ids) keep it by tree id from the post-order walk. `ls`,
  which must show every copy of an identical directory, asks for `each_tree_once=False`.
- **Chunk lists once.** `Walker.chunk_lists` and `Walker.blobs` read the chunk-list blobs of a
  file node (snapshot/content.py) that this walker has not read before, one list at a time; a
  walk that never asks (ls, copy) reads none.
- **Damage.** A tree or chunk list that cannot be read is handed to `on_error` as an
  `Unreadable` value: the checker records a finding and the walk carries on as if the tree or
  list were empty; prune raises from the callback and so stops. Without a callback the error
  propagates as it was raised.
- **Depth.** The stack holds one entry per level (the tree's nodes and where the walk is in
  them) and the path is kept as one list of names: memory grows with the depth and the width
  of one directory per level, never with the size of the snapshot. A snapshot 10,000 levels
  deep walks like a flat one.

`load_tree` and `read_chunk_list` are the two reads a walk makes; they live here, below
`store.py`, so that the tree and chunk-list reading each have exactly one home.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from snapstore.errors import SnapstoreError
from snapstore.ids import Id
from snapstore.pack import BlobType
from snapstore.repository.repository import Repository
from snapstore.snapshot.content import read_chunk_list
from snapstore.snapshot.tree import Node, NodeType, decode_tree


def load_tree(repo: Repository, tree_id: Id) -> list[Node]:
    """One tree's nodes, in stored (name) order."""
    return decode_tree(repo.load_blob(BlobType.TREE, tree_id))


def display_path(path: tuple[bytes, ...]) -> str:
    """Names joined with "/", undecodable bytes kept as surrogates (as `Node.display_name`)."""
    return b"/".join(path).decode("utf-8", "surrogateescape")


class BlobRole(enum.Enum):
    """What an unreadable blob was to the walk."""

    TREE = "tree"
    CHUNK_LIST = "chunk list"


@dataclass(frozen=True)
class Unreadable:
    """A tree or chunk list the walk could not read, and why."""

    role: BlobRole
    blob_id: Id
    error: SnapstoreError


OnError = Callable[[Unreadable], None]


@dataclass(frozen=True)
class Visit:
    """One node, met in pre-order; `path` runs from the walk's root tree to the node."""

    path: tuple[bytes, ...]
    node: Node

    @property
    def display_path(self) -> str:
        return display_path(self.path)


@dataclass(frozen=True)
class TreeVisit:
    """One tree, met in post-order (after every tree below it); `path` leads to it from the
    walk's root (empty for the root). `nodes` are fresh objects the consumer may change."""

    path: tuple[bytes, ...]
    tree_id: Id
    nodes: list[Node]

    @property
    def display_path(self) -> str:
        return display_path(self.path)


@dataclass(frozen=True)
class Step:
    """One step of `Walker.steps`: a node met (`leaving` False), or the end of a directory
    whose contents were all met (`leaving` True; `node` is the directory's node, None for the
    walk's root)."""

    path: tuple[bytes, ...]
    node: Node | None
    leaving: bool = False

    @property
    def display_path(self) -> str:
        return display_path(self.path)


#: Whether to go below a directory node met at a path.
Descend = Callable[[tuple[bytes, ...], Node], bool]


@dataclass
class _Level:
    """One tree on the stack: its id, its nodes, the nodes not yet visited, and the directory
    node it is the tree of (None for the root)."""

    tree_id: Id
    nodes: list[Node]
    pending: Iterator[Node]
    node: Node | None = None


class Walker:
    """Walks snapshots' trees; see the module docstring for order, sharing and damage."""

    def __init__(
        self, repo: Repository, *, on_error: OnError | None = None, each_tree_once: bool = True
    ) -> None:
        self._repo = repo
        self._on_error = on_error
        self._once = each_tree_once
        self._trees: set[bytes] = set()  # entered by this walker
        self._lists: set[bytes] = set()  # read (or found unreadable) by this walker

    def pre_order(self, tree_id: Id) -> Iterator[Visit]:
        """Every node below `tree_id`, each before its children, siblings in name order."""
        for names, _, node in self._steps(tree_id):
            if node is not None:
                yield Visit((*names, node.name), node)

    def steps(self, tree_id: Id, descend: Descend | None = None) -> Iterator[Step]:
        """Each node as it is met (parents first, name order) and, after a directory's
        contents, a leaving step for it: what restore needs to create a directory before its
        contents and set its times after them. `descend` says which directories to go below
        (all by default); it is asked after the consumer has seen the directory's node."""
        for names, level, node in self._steps(tree_id, descend):
            if node is None:
                yield Step(tuple(names), level.node, leaving=True)
            else:
                yield Step((*names, node.name), node)

    def post_order(self, tree_id: Id) -> Iterator[TreeVisit]:
        """`tree_id` and every tree below it not met before, each after the trees below it."""
        for names, level, node in self._steps(tree_id):
            if node is None:
                yield TreeVisit(tuple(names), level.tree_id, level.nodes)

    def chunk_lists(self, node: Node) -> Iterator[tuple[Id, list[Id]]]:
        """(list id, chunk ids) for each chunk list of a file node this walker has not read
        before, read as the caller asks for it. An unreadable list, once reported, is empty."""
        for list_id in node.content_lists:
            key = bytes(list_id)
            if key in self._lists:
                continue
            self._lists.add(key)
            try:
                ids = read_chunk_list(self._repo, list_id)
            except SnapstoreError as exc:
                if self._on_error is None:
                    raise
                self._on_error(Unreadable(BlobRole.CHUNK_LIST, list_id, exc))
                ids = []
            yield list_id, ids

    def blobs(self, node: Node) -> Iterator[tuple[BlobType, Id]]:
        """The blobs a node uses, for those who count them: a directory's tree; a file's
        chunks and chunk-list blobs, and the chunks in each list not read before."""
        if node.type is NodeType.DIR and node.subtree is not None:
            yield BlobType.TREE, node.subtree
        elif node.type is NodeType.FILE:
            for blob_id in node.content:
                yield BlobType.DATA, blob_id
            for list_id in node.content_lists:
                yield BlobType.DATA, list_id
            for _, listed in self.chunk_lists(node):
                for blob_id in listed:
                    yield BlobType.DATA, blob_id

    def _steps(
        self, root: Id, descend: Descend | None = None
    ) -> Iterator[tuple[list[bytes], _Level, Node | None]]:
        """The walk itself: (names to the tree, its level, node) as each node is met, then
        (names, level, None) once the tree and everything below it is done. `names` is the one
        list the walk keeps; it is only valid until the next step."""
        nodes = self._enter(root)
        if nodes is None:
            return
        names: list[bytes] = []
        stack = [_Level(root, nodes, iter(nodes))]
        while stack:
            level = stack[-1]
            node = next(level.pending, None)
            if node is None:
                yield names, level, None
                stack.pop()
                if stack:  # the root has no name of its own
                    names.pop()
                continue
            yield names, level, node
            if node.type is NodeType.DIR and node.subtree is not None:
                if descend is not None and not descend((*names, node.name), node):
                    continue
                children = self._enter(node.subtree)
                if children is not None:
                    names.append(node.name)
                    stack.append(_Level(node.subtree, children, iter(children), node))

    def _enter(self, tree_id: Id) -> list[Node] | None:
        """A tree's nodes; None if this walker entered it before. An unreadable tree, once
        reported, is walked as empty."""
        if self._once:
            key = bytes(tree_id)
            if key in self._trees:
                return None
            self._trees.add(key)
        try:
            nodes = load_tree(self._repo, tree_id)
        except SnapstoreError as exc:
            if self._on_error is None:
                raise
            self._on_error(Unreadable(BlobRole.TREE, tree_id, exc))
            return []
        # the subdirectories' trees sit side by side in a tree pack: one read for all of them
        self._repo.prefetch_trees(
            n.subtree
            for n in nodes
            if n.type is NodeType.DIR and n.subtree is not None and bytes(n.subtree) not in self._trees
        )
        return nodes
