"""The operations of the public API that are one call into a layer below: back up, restore,
list and dump from a snapshot (a file, or a directory as a tar or zip archive), check
(snapstore/__init__.py re-exports them).

They live in their own module so that `import snapstore` stays cheap: the package imports a
module only when one of its names is first used, and opening a repository to list its
snapshots (snapstore.repository.opening) does not need the archiver, restorer or checker.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from snapstore.archiver.archiver import Archiver, BackupResult, SnapshotOptions
from snapstore.archiver.source import Source
from snapstore.checker.checker import CheckOptions, CheckReport, check_repository
from snapstore.errors import PathIsDirectory, PathNotFound
from snapstore.ids import Id
from snapstore.progress import Progress
from snapstore.repository.repository import Repository
from snapstore.restorer.archive import ArchiveFormat, ArchiveResult, archive_entries, write_archive
from snapstore.restorer.restorer import RestoreOptions, Restorer, RestoreResult
from snapstore.restorer.stream import stream_file
from snapstore.snapshot.manifest import Snapshot
from snapstore.snapshot.store import find_node, split_path
from snapstore.snapshot.tree import Node, NodeType
from snapstore.snapshot.walk import Walker


def take_snapshot(
    repo: Repository,
    source: Source,
    options: SnapshotOptions | None = None,
    progress: Progress | None = None,
) -> BackupResult:
    """Backs up one source as one snapshot."""
    return Archiver(repo, progress).run(source, options)


def restore(
    repo: Repository,
    snapshot: Snapshot,
    target: str | Path,
    includes: list[str] | None = None,
    progress: Progress | None = None,
    options: RestoreOptions | None = None,
) -> RestoreResult:
    """Writes a snapshot (or the included paths of it) below `target`.

    Damaged files do not stop it: they are listed in `RestoreResult.errors`, every other file
    is restored. An include that matches nothing raises PathNotFound.
    """
    return Restorer(repo, progress).restore(snapshot, target, includes, options)


def list_tree(
    repo: Repository, snapshot: Snapshot, path: str = "/"
) -> Iterator[tuple[str, Node]]:
    """(display path, node) for everything at and below `path` in a snapshot, parents before
    children, each directory in name order; identical directories are each listed in full."""
    node = find_node(repo, snapshot.tree, path)
    base = "/" + "/".join(p for p in path.split("/") if p and p != ".")
    if node is None:
        tree_id = snapshot.tree
    else:
        yield base, node
        if node.type is not NodeType.DIR or node.subtree is None:
            return
        tree_id = node.subtree
    for visit in Walker(repo, each_tree_once=False).pre_order(tree_id):
        yield base.rstrip("/") + "/" + visit.display_path, visit.node


def dump_file(
    repo: Repository, snapshot: Snapshot, path: str, progress: Progress | None = None
) -> Iterator[bytes]:
    """The content of one file in a snapshot, blob by blob (reported to `progress` as it is
    taken)."""
    node = find_node(repo, snapshot.tree, path)
    if node is None or node.type is NodeType.DIR:
        raise PathIsDirectory(f"{path!r} is a directory in snapshot {snapshot.short_id}")
    if node.type is not NodeType.FILE:
        raise PathNotFound(f"{path!r} is not a file in snapshot {snapshot.short_id}")
    if progress is None:
        return stream_file(repo, node)
    return _reported(stream_file(repo, node), path, node.size, progress)


def _reported(
    chunks: Iterator[bytes], path: str, size: int, progress: Progress
) -> Iterator[bytes]:
    progress.phase("dump")
    progress.totals(1, size)
    progress.item(path)
    for chunk in chunks:
        yield chunk
        progress.advance(len(chunk), 0)
    progress.item_done(path)


def dump_archive(
    repo: Repository,
    snapshot: Snapshot,
    path: str,
    out: BinaryIO,
    archive_format: ArchiveFormat | str = ArchiveFormat.TAR,
) -> ArchiveResult:
    """`path` (a directory, the whole snapshot for "/", or one file) and everything below it
    as a tar or zip archive written to `out`, which may be a pipe (restorer/archive.py)."""
    node = find_node(repo, snapshot.tree, path)
    if node is None:
        tree: Id | None = snapshot.tree
    else:
        tree = node.subtree if node.type is NodeType.DIR else None
    entries = archive_entries(repo, tuple(split_path(path)), node, tree)
    return write_archive(repo, entries, out, ArchiveFormat(archive_format))


def check(
    repo: Repository, options: CheckOptions | None = None, progress: Progress | None = None
) -> CheckReport:
    """Checks a repository opened with load_index=False."""
    return check_repository(repo, options, progress)
