"""Repository statistics: what is stored, what the snapshots hold, and the ratio."""

from __future__ import annotations

from dataclasses import dataclass, field

from snapstore.backend.base import FileType
from snapstore.ids import Id
from snapstore.repository.repository import Repository
from snapstore.snapshot.selection import SnapshotFilter
from snapstore.snapshot.store import damaged_snapshots, list_snapshots
from snapstore.snapshot.tree import NodeType
from snapstore.snapshot.walk import Walker


@dataclass
class RepositoryStats:
    snapshots: int
    stored_bytes: int
    packs: int
    blobs: int
    logical_bytes: int
    unique_content_bytes: int
    #: names of snapshots that could not be read: left out of every figure above
    damaged_snapshots: list[str] = field(default_factory=list)

    @property
    def dedup_ratio(self) -> float:
        """Logical size of all snapshots over what the backend holds."""
        return self.logical_bytes / self.stored_bytes if self.stored_bytes else 0.0


def repository_stats(repo: Repository, selection: SnapshotFilter | None = None) -> RepositoryStats:
    """What the repository stores (all of it), and the logical and unique content sizes of the
    snapshots `selection` matches (default: all), which `snapshots` counts."""
    stored = 0
    packs = 0
    for file_type in FileType:
        for info in repo.list_objects(file_type):
            stored += info.size
            packs += file_type is FileType.PACK
    snapshots = (selection or SnapshotFilter()).select(list_snapshots(repo))
    logical = 0
    unique: set[bytes] = set()
    unique_bytes = 0
    walker = Walker(repo)
    sizes: dict[bytes, int] = {}
    for snap in snapshots:
        logical += _tree_size(walker, snap.tree, sizes, unique)
    for blob_id in unique:
        loc = repo.lookup(blob_id)
        if loc is not None:
            unique_bytes += loc.plain_length
    return RepositoryStats(
        len(snapshots), stored, packs, len(repo.index), logical, unique_bytes,
        damaged_snapshots(repo),
    )


def _tree_size(walker: Walker, tree_id: Id, sizes: dict[bytes, int], unique: set[bytes]) -> int:
    """Logical bytes below a tree: every file counts as often as the snapshot holds it.

    The walker reads each tree once however many snapshots share it, so sizes are summed
    bottom-up (post-order) and kept by tree id: a tree met again, in this snapshot or another,
    adds its size without being read. `unique` collects the data blobs the files use: their
    chunks, and for a file of many chunks its chunk-list blobs and the chunks they list.
    """
    for tree in walker.post_order(tree_id):
        total = 0
        for node in tree.nodes:
            if node.type is NodeType.FILE:
                total += node.size
                unique.update(bytes(blob_id) for _, blob_id in walker.blobs(node))
            elif node.type is NodeType.DIR and node.subtree is not None:
                total += sizes[bytes(node.subtree)]
        sizes[bytes(tree.tree_id)] = total
    return sizes[bytes(tree_id)]
