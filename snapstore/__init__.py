"""snapstore: a deduplicating, encrypted snapshot store.

The public API, used by the command line and by anyone scripting snapstore:

    repo = snapstore.init_repository("/srv/backup", b"secret")
    result = snapstore.take_snapshot(repo, snapstore.FileSource(["/etc"]))
    snapstore.restore(repo, snapstore.find_snapshot(repo, "latest"), "/tmp/restore")

Everything else inside the package is private to it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

from snapstore.archiver.archiver import PROGRAM_VERSION, Archiver, BackupResult, SnapshotOptions
from snapstore.archiver.source import ChunkingProfile, Source
from snapstore.backend.base import Backend
from snapstore.backend.location import open_backend
from snapstore.checker.checker import CheckOptions, CheckReport, check_repository
from snapstore.checker.findings import Finding
from snapstore.crypto.kdf import DEFAULT_KDF, TEST_KDF, KdfParams
from snapstore.errors import PathNotFound, SnapstoreError
from snapstore.progress import NoProgress, Progress
from snapstore.repository.repository import Repository
from snapstore.restorer.restorer import Restorer, RestoreResult
from snapstore.restorer.stream import stream_content
from snapstore.snapshot.manifest import Snapshot, Summary
from snapstore.snapshot.store import find_node, find_snapshot, list_snapshots, walk
from snapstore.snapshot.tree import Node, NodeType
from snapstore.sources.files import FileSource
from snapstore.sources.stdin import StreamSource
from snapstore.stats import RepositoryStats, repository_stats

__version__ = PROGRAM_VERSION.split()[-1]

__all__ = [
    "Backend",
    "BackupResult",
    "CheckOptions",
    "CheckReport",
    "ChunkingProfile",
    "DEFAULT_KDF",
    "FileSource",
    "Finding",
    "KdfParams",
    "NoProgress",
    "Node",
    "NodeType",
    "Progress",
    "Repository",
    "RepositoryStats",
    "RestoreResult",
    "Snapshot",
    "SnapshotOptions",
    "SnapstoreError",
    "Source",
    "StreamSource",
    "Summary",
    "TEST_KDF",
    "__version__",
    "check",
    "dump_file",
    "find_snapshot",
    "init_repository",
    "list_snapshots",
    "list_tree",
    "open_repository",
    "repository_stats",
    "restore",
    "take_snapshot",
]


def init_repository(
    location: str,
    password: bytes,
    *,
    kdf: KdfParams = DEFAULT_KDF,
    backend_options: Mapping[str, str] | None = None,
) -> Repository:
    """Creates an encrypted repository at a path or URL."""
    return Repository.init(open_backend(location, options=backend_options), password, kdf=kdf)


def open_repository(
    location: str,
    password: bytes,
    *,
    backend_options: Mapping[str, str] | None = None,
    load_index: bool = True,
) -> Repository:
    """Opens an existing repository; loads its index unless asked not to (e.g. for check)."""
    backend = open_backend(location, options=backend_options)
    try:
        repo = Repository.open(backend, password)
    except BaseException:
        backend.close()
        raise
    if load_index:
        repo.load_index()
    return repo


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
) -> RestoreResult:
    """Writes a snapshot (or the included paths of it) below `target`."""
    return Restorer(repo, progress).restore(snapshot, target, includes)


def list_tree(
    repo: Repository, snapshot: Snapshot, path: str = "/"
) -> Iterator[tuple[str, Node]]:
    """(display path, node) for everything at and below `path` in a snapshot."""
    node = find_node(repo, snapshot.tree, path)
    base = "/" + "/".join(p for p in path.split("/") if p and p != ".")
    if node is None:
        prefix: tuple[bytes, ...] = ()
        tree_id = snapshot.tree
    else:
        yield base, node
        if node.type is not NodeType.DIR or node.subtree is None:
            return
        tree_id = node.subtree
        prefix = ()
    for rel, child in walk(repo, tree_id, prefix):
        shown = b"/".join(rel).decode("utf-8", "surrogateescape")
        yield (base.rstrip("/") + "/" + shown), child


def dump_file(repo: Repository, snapshot: Snapshot, path: str) -> Iterator[bytes]:
    """The content of one file in a snapshot, blob by blob."""
    node = find_node(repo, snapshot.tree, path)
    if node is None or node.type is not NodeType.FILE:
        raise PathNotFound(f"{path!r} is not a file in snapshot {snapshot.short_id}")
    return stream_content(repo, node.content)


def check(repo: Repository, options: CheckOptions | None = None) -> CheckReport:
    """Checks a repository opened with load_index=False."""
    return check_repository(repo, options)


