"""Repository statistics: what is stored, what the snapshots hold, and the ratio."""

from __future__ import annotations

from dataclasses import dataclass

from snapstore.backend.base import FileType
from snapstore.ids import Id
from snapstore.pack import BlobType
from snapstore.repository.repository import Repository
from snapstore.snapshot.content import parse_chunk_list
from snapstore.snapshot.store import list_snapshots, walk
from snapstore.snapshot.tree import NodeType


@dataclass
class RepositoryStats:
    snapshots: int
    stored_bytes: int
    packs: int
    blobs: int
    logical_bytes: int
    unique_content_bytes: int

    @property
    def dedup_ratio(self) -> float:
        """Logical size of all snapshots over what the backend holds."""
        return self.logical_bytes / self.stored_bytes if self.stored_bytes else 0.0


def repository_stats(repo: Repository) -> RepositoryStats:
    stored = 0
    packs = 0
    for file_type in FileType:
        for info in repo.list_objects(file_type):
            stored += info.size
            packs += file_type is FileType.PACK
    snapshots = list_snapshots(repo)
    logical = 0
    unique: set[bytes] = set()
    unique_bytes = 0
    seen_trees: dict[bytes, int] = {}
    for snap in snapshots:
        logical += _tree_size(repo, snap.tree, seen_trees, unique)
    for blob_id in unique:
        loc = repo.lookup(blob_id)
        if loc is not None:
            unique_bytes += loc.plain_length
    return RepositoryStats(len(snapshots), stored, packs, len(repo.index), logical, unique_bytes)


def _tree_size(repo: Repository, tree_id: bytes, seen: dict[bytes, int], unique: set[bytes]) -> int:
    """Logical bytes below a tree; identical subtrees are sized once and reused.

    `unique` collects the data blobs the files use: their chunks, and for a file of many
    chunks its chunk-list blobs too (each list blob is read once, however many files share it).
    """
    if tree_id in seen:
        return seen[tree_id]
    total = 0
    for _, node in walk(repo, Id(tree_id)):
        if node.type is NodeType.FILE:
            total += node.size
            unique.update(bytes(i) for i in node.content)
            for list_id in node.content_lists:
                if bytes(list_id) not in unique:
                    unique.add(bytes(list_id))
                    listed = parse_chunk_list(repo.load_blob(BlobType.DATA, list_id))
                    unique.update(bytes(i) for i in listed)
    seen[tree_id] = total
    return total
