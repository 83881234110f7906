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
from typing import Literal

from snapstore.archiver.archiver import PROGRAM_VERSION, Archiver, BackupResult, SnapshotOptions
from snapstore.archiver.source import ChunkingProfile, Source
from snapstore.backend.base import Backend
from snapstore.backend.cache import CacheBackend
from snapstore.backend.location import DEFAULT_CONNECTIONS, is_local, open_backend
from snapstore.backend.retry import Interrupt, RetryPolicy
from snapstore.checker.checker import CheckOptions, CheckReport, check_repository
from snapstore.checker.findings import Finding
from snapstore.copy import CopyResult, copy_snapshots
from snapstore.crypto.kdf import DEFAULT_KDF, TEST_KDF, KdfParams
from snapstore.errors import PathNotFound, SnapstoreError
from snapstore.forget import ForgetResult
from snapstore.forget import forget_snapshots as forget
from snapstore.progress import NoProgress, Progress
from snapstore.prune import PruneOptions, PruneReport, prune
from snapstore.repair import (
    IndexRepairReport,
    RepairChange,
    RepairedSnapshot,
    SnapshotsRepairReport,
    repair_index,
    repair_snapshots,
)
from snapstore.repository.lock import LockInfo, StoredLock, remove_locks
from snapstore.repository.repository import DamagedObject, OnDamaged, Repository
from snapstore.restorer.restorer import Overwrite, RestoreOptions, Restorer, RestoreResult
from snapstore.restorer.stream import stream_file
from snapstore.retention import Decision, Duration, RetentionPolicy
from snapstore.snapshot.manifest import Snapshot, Summary
from snapstore.snapshot.store import find_node, find_snapshot, list_snapshots
from snapstore.snapshot.tree import Node, NodeType
from snapstore.snapshot.walk import Walker
from snapstore.sources.drill import DrillCheck, DrillReport, drill, latest_database_snapshot
from snapstore.sources.drill_history import DEFAULT_MAX_SHRINK
from snapstore.sources.files import FileSource
from snapstore.sources.mastodon import MastodonOptions, MastodonSource
from snapstore.sources.mastodon_restore import ADMIN_USER as INSTANCE_ADMIN_USER
from snapstore.sources.mastodon_restore import PARTS as INSTANCE_PARTS
from snapstore.sources.mastodon_restore import (
    InstanceRestoreOptions,
    InstanceRestoreReport,
    latest_instance_snapshot,
    restore_instance,
)
from snapstore.sources.pg_client import PgConnection
from snapstore.sources.pg_restore import (
    DatabaseRestoreOptions,
    DatabaseRestoreResult,
    restore_database,
)
from snapstore.sources.postgres import PostgresOptions, PostgresSource
from snapstore.sources.program import ProgramSource
from snapstore.sources.redis import RedisOptions, RedisSource
from snapstore.sources.redis_restore import RdbRestoreResult, restore_redis_rdb
from snapstore.sources.snapshot_server import ServerOverrides, SnapshotServer, snapshot_server
from snapstore.sources.stdin import StreamSource
from snapstore.stats import RepositoryStats, repository_stats

__version__ = PROGRAM_VERSION.split()[-1]

__all__ = [
    "Backend",
    "BackupResult",
    "CheckOptions",
    "CheckReport",
    "ChunkingProfile",
    "CopyResult",
    "DEFAULT_KDF",
    "DEFAULT_MAX_SHRINK",
    "DamagedObject",
    "DatabaseRestoreOptions",
    "DatabaseRestoreResult",
    "Decision",
    "Duration",
    "DrillCheck",
    "DrillReport",
    "FileSource",
    "Finding",
    "ForgetResult",
    "INSTANCE_ADMIN_USER",
    "INSTANCE_PARTS",
    "IndexRepairReport",
    "InstanceRestoreOptions",
    "InstanceRestoreReport",
    "Interrupt",
    "KdfParams",
    "LockInfo",
    "MastodonOptions",
    "MastodonSource",
    "NoProgress",
    "Node",
    "NodeType",
    "OnDamaged",
    "Overwrite",
    "PgConnection",
    "PostgresOptions",
    "PostgresSource",
    "ProgramSource",
    "Progress",
    "PruneOptions",
    "PruneReport",
    "RdbRestoreResult",
    "RedisOptions",
    "RedisSource",
    "RepairChange",
    "RepairedSnapshot",
    "Repository",
    "RepositoryStats",
    "RestoreOptions",
    "RestoreResult",
    "RetentionPolicy",
    "RetryPolicy",
    "ServerOverrides",
    "Snapshot",
    "SnapshotOptions",
    "SnapshotServer",
    "SnapshotsRepairReport",
    "SnapstoreError",
    "Source",
    "StoredLock",
    "StreamSource",
    "Summary",
    "TEST_KDF",
    "__version__",
    "check",
    "copy_snapshots",
    "drill",
    "dump_file",
    "find_snapshot",
    "forget",
    "init_repository",
    "latest_database_snapshot",
    "latest_instance_snapshot",
    "list_snapshots",
    "list_tree",
    "open_repository",
    "prune",
    "repair_index",
    "restore_instance",
    "repair_snapshots",
    "repository_stats",
    "restore",
    "restore_database",
    "restore_redis_rdb",
    "snapshot_server",
    "take_snapshot",
    "unlock",
]


def init_repository(
    location: str,
    password: bytes,
    *,
    kdf: KdfParams = DEFAULT_KDF,
    backend_options: Mapping[str, str] | None = None,
    pack_size: int | None = None,
    connections: int | None = None,
    cache_dir: str | Path | None = None,
    retry: RetryPolicy | None = None,
) -> Repository:
    """Creates an encrypted repository at a path or URL (`pack_size`: target bytes per pack).

    `connections`, `cache_dir` and `retry` are as for `open_repository`.
    """
    backend = open_backend(location, options=backend_options, connections=connections, retry=retry)
    if pack_size is None:
        repo = Repository.init(backend, password, kdf=kdf)
    else:
        repo = Repository.init(backend, password, kdf=kdf, pack_size=pack_size)
    _set_up(repo, location, connections, cache_dir)
    return repo


def open_repository(
    location: str,
    password: bytes,
    *,
    backend_options: Mapping[str, str] | None = None,
    load_index: bool = True,
    lock: Literal["shared", "exclusive"] | None = None,
    retry_lock: float = 0.0,
    connections: int | None = None,
    cache_dir: str | Path | None = None,
    retry: RetryPolicy | None = None,
    on_damaged: OnDamaged | None = None,
) -> Repository:
    """Opens an existing repository; loads its index unless asked not to (e.g. for check).

    With `lock`, takes a shared or exclusive lock first, waiting up to `retry_lock` seconds
    for a conflicting one to go (else RepositoryLocked); `close()` releases it.

    `connections` bounds parallel transfers (pack uploads; a remote store's connections);
    default 5. With `cache_dir`, a remote repository's index, snapshots, keys and trees are
    kept in `cache_dir/<repository id>` (see snapstore.backend.cache); local repositories
    are not cached. `retry` says how long a remote repository's transient failures are retried
    (default 5 minutes), whom each retry is reported to, and what interrupts the waits.

    One damaged object does not block the others: an index file or snapshot that cannot be
    read is left out, recorded in `repo.damaged` and handed to `on_damaged` as it is met.
    What a damaged index file described is found again from the packs' own headers (a writer
    names those packs in a new index file before it stores anything); listing snapshots, as
    `latest` does, leaves a damaged one out. `repair_index` and `repair_snapshots` remove the
    damage.
    """
    backend = open_backend(location, options=backend_options, connections=connections, retry=retry)
    try:
        repo = Repository.open(backend, password)
    except BaseException:
        backend.close()
        raise
    _set_up(repo, location, connections, cache_dir)
    try:
        if lock is not None:
            repo.lock(exclusive=lock == "exclusive", retry=retry_lock)
        repo.on_damaged = on_damaged or _record_only
        if load_index:
            repo.load_index()
            if any(d.kind == "index" for d in repo.damaged):
                repo.index_unindexed_packs()
    except BaseException:
        repo.close()
        raise
    return repo


def _record_only(damaged: DamagedObject) -> None:
    """The default `on_damaged`: the damage is only recorded, in `repo.damaged`."""


def _set_up(
    repo: Repository, location: str, connections: int | None, cache_dir: str | Path | None
) -> None:
    """Transfer limits and the metadata cache, which is keyed by the repository id and so
    can only go in front of the backend once the config has been read."""
    repo.connections = connections or DEFAULT_CONNECTIONS
    if cache_dir is not None and not is_local(location):
        repo.backend = CacheBackend(repo.backend, Path(cache_dir) / repo.repository_id)


def unlock(repo: Repository, *, remove_all: bool = False) -> list[StoredLock]:
    """Removes stale locks (all locks with `remove_all`); returns the ones removed."""
    return remove_locks(repo, remove_all=remove_all)


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


def dump_file(repo: Repository, snapshot: Snapshot, path: str) -> Iterator[bytes]:
    """The content of one file in a snapshot, blob by blob."""
    node = find_node(repo, snapshot.tree, path)
    if node is None or node.type is not NodeType.FILE:
        raise PathNotFound(f"{path!r} is not a file in snapshot {snapshot.short_id}")
    return stream_file(repo, node)


def check(repo: Repository, options: CheckOptions | None = None) -> CheckReport:
    """Checks a repository opened with load_index=False."""
    return check_repository(repo, options)
