"""Snapshots thousands of directories deep, built in the repository itself.

On disk such a tree passes PATH_MAX long before the bottom (each level adds at least two bytes
to the path), so no source could back it up; but a repository can hold it, and every command
that walks snapshots must then cope. The trees are saved bottom-up through the library, one
TREE blob per level, each level a directory `d` holding the next (and, at the bottom, a file).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

from snapstore.pack import BlobType
from snapstore.repository.repository import Repository
from snapstore.snapshot.manifest import Snapshot
from snapstore.snapshot.store import save_snapshot
from snapstore.snapshot.tree import Node, NodeType, encode_tree

#: 3,000 levels in every run: three times Python's recursion limit, and a path of 6,000 bytes,
#: past PATH_MAX; 10,000 in the nightly mode (tests/conftest.py).
DEPTH = 10_000 if os.environ.get("SNAPSTORE_NIGHTLY") == "1" else 3_000
WHEN = datetime(2026, 5, 1, tzinfo=UTC)


def deep_snapshot(
    repo: Repository, leaf: bytes = b"at the bottom\n", depth: int = DEPTH, when: datetime = WHEN
) -> Snapshot:
    """Stores a snapshot of `depth` nested directories named `d`, the last holding `leaf.txt`
    with `leaf` as its content, and returns it (saved, so with its id)."""
    data = repo.save_blob(BlobType.DATA, leaf).id
    tree = repo.save_blob(
        BlobType.TREE, encode_tree([Node(b"leaf.txt", NodeType.FILE, size=len(leaf), content=[data])])
    ).id
    for _ in range(depth):
        tree = repo.save_blob(
            BlobType.TREE, encode_tree([Node(b"d", NodeType.DIR, mode=0o755, subtree=tree)])
        ).id
    repo.flush()
    snap = Snapshot(when, "host", "user", [], "files", ["/deep"], tree)
    save_snapshot(repo, snap)
    return snap


def deep_path(index: int, depth: int = DEPTH) -> str:
    """The `index`th path `ls` shows for `deep_snapshot`: each level in turn, then the file.
    (One at a time: all 10,001 of them would be 100 MB of text.)"""
    return "/d" * (index + 1) if index < depth else "/d" * depth + "/leaf.txt"
