"""The parent snapshot: where unchanged files take their content from (unchanged.py) and a
new chunk's delta bases come from (SPEC.md section 6).

A day's database dump differs from yesterday's in thin scattered stretches. Where the new
stream stops matching the parent's chunks, the parent chunk at the same byte offset into the
gap (and its neighbours) is the most similar old content: the archiver offers those as
candidate bases, and the packer keeps a delta against the best one when it pays.

Where changes are everywhere (an RDB with 5% of its keys rewritten has no chunk left in
common with yesterday's), there are no matching chunks to align on, and records that grew or
shrank make the offsets drift. So each delta the packer keeps also serves as an anchor:
the base it used tells where in the parent the new stream is, a few chunks late because the
packer works in the background.

Memory stays near 50 bytes per parent chunk (ids, sort keys, offsets in numpy arrays): a
100 GB dump at 64 KiB is 1.6 million chunks, about 80 MB while that file is backed up.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from concurrent.futures import Future
from datetime import datetime

import numpy as np

from snapstore.errors import SnapstoreError
from snapstore.ids import ID_SIZE, Id
from snapstore.index.deltas import Offer
from snapstore.pack import BlobType
from snapstore.repository.packer import SavedBlob
from snapstore.repository.repository import Repository
from snapstore.snapshot.manifest import Snapshot
from snapstore.snapshot.store import list_snapshots, load_tree
from snapstore.snapshot.tree import Node, NodeType

_DIR_CACHE_ENTRIES = 64
#: Parent chunks offered as bases for one new chunk: the aligned one, then its neighbours.
CANDIDATES = 3
#: Offers whose outcome the alignment may not know yet when the next chunk is aligned: the
#: packer works on several chunks at once, and a fixed lag keeps the result deterministic.
_OUTCOMES_PENDING = 6
#: Parent chunks whose offers are found together, and blocks of them remembered: the
#: candidates of consecutive chunks are neighbours, and a block's chains are followed in one
#: vectorised index search per level. Small enough that a file with a changed chunk here
#: and there does not walk hundreds of chains for each.
_OFFER_BLOCK = 32
_OFFER_BLOCKS_KEPT = 8


def find_parent(repo: Repository, source: str, paths: list[str], host: str) -> Snapshot | None:
    """The snapshot of the same source kind most like this one: from this host before another,
    with the same paths before overlapping ones before others, then the latest.

    A source may learn some of its paths only while it is read (a Mastodon instance names
    what it found), so `paths` may be a part of what the new snapshot will record. A parent
    that is a worse match only costs deltas: files are matched by path inside it.

    Incomplete snapshots (`Snapshot.complete`) are never chosen: a night whose media or Redis
    failed would otherwise be the base the next night's deltas and unchanged files are
    matched against. Naming one (`SnapshotOptions.parent`, `--parent ID`) still uses it.
    """
    wanted = set(paths)

    def rank(snap: Snapshot) -> tuple[bool, bool, bool, datetime]:
        return (snap.host == host, snap.paths == paths, bool(wanted & set(snap.paths)), snap.time)

    same = [s for s in list_snapshots(repo) if s.source == source and s.complete]
    return max(same, key=rank) if same else None


class ParentTree:
    """Looks up nodes by path in the parent snapshot, caching the directories it decodes."""

    def __init__(self, repo: Repository, root: Id) -> None:
        self._repo = repo
        self._root = root
        self._dirs: OrderedDict[bytes, dict[bytes, Node]] = OrderedDict()
        #: The directory of the last file looked up: files come directory by directory.
        self._last: tuple[tuple[bytes, ...], dict[bytes, Node] | None] | None = None

    def _children(self, tree_id: Id) -> dict[bytes, Node]:
        key = bytes(tree_id)
        if key in self._dirs:
            self._dirs.move_to_end(key)
            return self._dirs[key]
        children = {n.name: n for n in load_tree(self._repo, tree_id)}
        self._dirs[key] = children
        if len(self._dirs) > _DIR_CACHE_ENTRIES:
            self._dirs.popitem(last=False)
        return children

    def file_at(self, path: tuple[bytes, ...]) -> Node | None:
        """The parent's file node at `path`; None when it is missing, not a file, or unreadable
        (a damaged parent only costs deltas and reading files again, never the snapshot)."""
        if not path:
            return None
        if self._last is None or self._last[0] != path[:-1]:
            self._last = (path[:-1], self._dir_at(path[:-1]))
        children = self._last[1]
        node = children.get(path[-1]) if children is not None else None
        return node if node is not None and node.type is NodeType.FILE else None

    def _dir_at(self, path: tuple[bytes, ...]) -> dict[bytes, Node] | None:
        """The children of the parent's directory at `path`; None when there is none."""
        found = self.tree_at(path)
        return found[1] if found is not None else None

    def tree_at(self, path: tuple[bytes, ...]) -> tuple[Id, dict[bytes, Node]] | None:
        """The tree id of the parent's directory at `path` (() for the root) and its nodes by
        name, the same node objects `file_at` returns; None when there is no such directory
        or it cannot be read."""
        tree_id = self._root
        try:
            for name in path:
                node = self._children(tree_id).get(name)
                if node is None or node.type is not NodeType.DIR or node.subtree is None:
                    return None
                tree_id = node.subtree
            return tree_id, self._children(tree_id)
        except SnapstoreError:
            return None


def parent_chunk_ids(repo: Repository, node: Node) -> bytes:
    """The parent file's chunk ids as one run of 32-byte ids (empty if a list is unreadable)."""
    if not node.content_lists:
        return b"".join(bytes(i) for i in node.content)
    parts = []
    try:
        for list_id in node.content_lists:
            parts.append(repo.load_blob(BlobType.DATA, list_id))
    except SnapstoreError:
        return b""
    return b"".join(parts)


class ParentStream:
    """Follows a new chunk stream along the parent's and names candidate bases for new chunks."""

    def __init__(self, repo: Repository, ids: bytes) -> None:
        self._repo = repo
        count = len(ids) // ID_SIZE
        self._ids = np.frombuffer(ids, dtype=np.uint8, count=count * ID_SIZE).reshape(count, ID_SIZE)
        keys = self._ids[:, :8].copy().view(">u8").ravel().astype(np.uint64)
        self._order = np.argsort(keys, kind="stable")
        self._sorted_keys = keys[self._order]
        sizes = np.maximum(repo.index.plain_lengths_of_run(ids[: count * ID_SIZE]), 0)
        #: byte offset where each parent chunk starts, plus the end
        self._starts = np.concatenate([np.zeros(1, dtype=np.int64), np.cumsum(sizes)])
        self._count = count
        self._gap_start = 0  # parent chunk after the last match
        self._gap_parent_offset = 0
        self._gap_child_offset = 0
        self._child_offset = 0
        # bases offered for a new chunk (by its start offset), and deltas reported kept
        self._lock = threading.Lock()
        self._offered: dict[int, dict[bytes, int]] = {}
        self._pending: deque[tuple[int, Future[SavedBlob]]] = deque()
        # what the parent chunks offer, by block of _OFFER_BLOCK chunks
        self._offers: OrderedDict[int, list[Offer | None]] = OrderedDict()
        self._kept: list[tuple[int, bytes]] = []

    def __len__(self) -> int:
        return self._count

    def _position(self, blob_id: bytes) -> int | None:
        """Where the parent has this chunk: the first place at or after the gap, else the first."""
        key = np.uint64(int.from_bytes(blob_id[:8], "big"))
        low = int(np.searchsorted(self._sorted_keys, key, side="left"))
        high = int(np.searchsorted(self._sorted_keys, key, side="right"))
        found = [
            int(self._order[i]) for i in range(low, high) if self._ids[self._order[i]].tobytes() == bytes(blob_id)
        ]
        if not found:
            return None
        found.sort()
        return next((p for p in found if p >= self._gap_start), found[0])

    def candidates(self, blob_id: bytes, size: int) -> list[Offer]:
        """Call for each new chunk in order; returns the bases offered ([] for a matching chunk).

        The chunk starts at offset `self.offset` of the new stream (read it before calling);
        report what the packer did with it through `kept`.
        """
        start = self._child_offset
        self._child_offset += size
        self._settle(_OUTCOMES_PENDING)
        self._apply_kept()
        position = self._position(blob_id) if self._count else None
        if position is not None:
            self._gap_start = position + 1
            self._gap_parent_offset = int(self._starts[position + 1])
            self._gap_child_offset = self._child_offset
            return []
        if not self._count:
            return []
        # where the chunk's middle falls in the parent: the parent chunk that overlaps it most
        # when boundaries shifted a little either way
        target = self._gap_parent_offset + (start - self._gap_child_offset) + size // 2
        guess = int(np.searchsorted(self._starts, target, side="right")) - 1
        guess = min(max(guess, self._gap_start - 1, 0), self._count - 1)
        out: list[Offer] = []
        offered: dict[bytes, int] = {}
        for index in (guess, guess + 1, guess - 1)[:CANDIDATES]:
            if 0 <= index < self._count:
                offer = self._offer(index)
                if offer is not None and bytes(offer.base) not in offered:
                    out.append(offer)
                    offered[bytes(offer.base)] = index
        if offered:
            with self._lock:
                self._offered[start] = offered
        return out

    def _offer(self, index: int) -> Offer | None:
        """The base parent chunk `index` offers, asked of the repository for a block of
        parent chunks at a time (the new stream moves along the parent's)."""
        block = index // _OFFER_BLOCK
        if block not in self._offers:
            start = block * _OFFER_BLOCK
            ids = self._ids[start : start + _OFFER_BLOCK].tobytes()
            self._offers[block] = self._repo.delta_offers([ids[i : i + ID_SIZE] for i in range(0, len(ids), ID_SIZE)])
            if len(self._offers) > _OFFER_BLOCKS_KEPT:
                self._offers.popitem(last=False)
        else:
            self._offers.move_to_end(block)
        return self._offers[block][index % _OFFER_BLOCK]

    @property
    def offset(self) -> int:
        """Where the next chunk starts in the new stream."""
        return self._child_offset

    def submitted(self, start: int, saving: Future[SavedBlob]) -> None:
        """The chunk starting at `start` went to the packer with the bases offered for it; its
        outcome moves the alignment once `_OUTCOMES_PENDING` later offers were made (always
        then, never earlier or later, so the same data gives the same deltas however fast the
        workers are)."""
        self._pending.append((start, saving))

    def _settle(self, pending: int) -> None:
        """Takes in the outcome of every offer but the last `pending`, waiting when need be."""
        while len(self._pending) > pending:
            start, saving = self._pending.popleft()
            if not saving.cancelled() and saving.exception() is None:
                self.kept(start, saving.result().base)

    def kept(self, start: int, base: bytes | None) -> None:
        """The packer stored the chunk starting at `start` as a delta against `base` (or not).
        """
        with self._lock:
            offered = self._offered.pop(start, None)
            if base is not None and offered is not None and bytes(base) in offered:
                self._kept.append((start, bytes(base)))
                self._offered[start] = offered  # consumed by _apply_kept

    def _apply_kept(self) -> None:
        """Moves the alignment to the newest kept delta that is newer than the last anchor."""
        with self._lock:
            kept, self._kept = self._kept, []
            newest = None
            for start, base in kept:
                index = self._offered.pop(start, {}).get(base)
                if index is not None and (newest is None or start > newest[0]):
                    newest = (start, index)
        if newest is not None and newest[0] >= self._gap_child_offset:
            start, index = newest
            self._gap_child_offset = start
            self._gap_parent_offset = int(self._starts[index])
            self._gap_start = max(self._gap_start, index)
