"""snapstore: a deduplicating, encrypted snapshot store.

The public API, used by the command line and by anyone scripting snapstore:

    repo = snapstore.init_repository("/srv/backup", b"secret")
    result = snapstore.take_snapshot(repo, snapstore.FileSource(["/etc"]))
    snapstore.restore(repo, snapstore.find_snapshot(repo, "latest"), "/tmp/restore")

Everything else inside the package is private to it.

Each name is imported from its module when it is first used (PEP 562), so that `snapstore
--help`, or a cron job listing snapshots of a local repository, does not pay for numpy, the
S3 and SFTP stacks, or the Mastodon sources. `_EXPORTS` says where each name lives; the
imports under TYPE_CHECKING say the same to type checkers (a test keeps the two in step).
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from snapstore.api import check, dump_archive, dump_file, list_tree, restore, take_snapshot
    from snapstore.archiver.archiver import BackupResult, SnapshotOptions
    from snapstore.archiver.source import ChunkingProfile, Source
    from snapstore.backend.base import Backend
    from snapstore.backend.retry import Interrupt, RetryPolicy
    from snapstore.checker.checker import CheckOptions, CheckReport
    from snapstore.checker.findings import Finding
    from snapstore.copy import CopyResult, copy_snapshots
    from snapstore.crypto.kdf import DEFAULT_KDF, TEST_KDF, KdfParams
    from snapstore.errors import SnapstoreError
    from snapstore.forget import ForgetResult
    from snapstore.forget import forget_snapshots as forget
    from snapstore.health import (
        CheckRecord,
        HealthOptions,
        HealthReport,
        assess_health,
        load_check_record,
        save_check_record,
    )
    from snapstore.mount.fs import MountOptions
    from snapstore.mount.fuse_ops import mount_snapshots
    from snapstore.progress import ItemStatus, NoProgress, Progress
    from snapstore.prune import PruneOptions, PruneReport, prune
    from snapstore.repair import (
        IndexRepairReport,
        RepairChange,
        RepairedSnapshot,
        SnapshotsRepairReport,
        repair_index,
        repair_snapshots,
    )
    from snapstore.repository.keyring import (
        StoredKey,
        add_key,
        change_password,
        check_paper_line,
        export_paper_key,
        list_keys,
        remove_key,
    )
    from snapstore.repository.lock import LockInfo, StoredLock
    from snapstore.repository.migrations import Migration, apply_migrations, migration_states
    from snapstore.repository.opening import (
        init_repository,
        open_repository,
        recover_repository,
        unlock,
    )
    from snapstore.repository.repository import DamagedObject, OnDamaged, Repository
    from snapstore.restorer.archive import ArchiveFormat, ArchiveResult
    from snapstore.restorer.restorer import Overwrite, RestoreOptions, RestoreResult
    from snapstore.retention import Decision, Duration, GroupKey, RetentionPolicy, group_snapshots
    from snapstore.snapshot.diff import (
        DiffChange,
        DiffEntry,
        DiffSummary,
        SnapshotDiff,
        diff_snapshots,
    )
    from snapstore.snapshot.manifest import Snapshot, Summary
    from snapstore.snapshot.rewrite import RewrittenSnapshot, retag_snapshots, rewrite_snapshots
    from snapstore.snapshot.search import PathMatch, find_paths
    from snapstore.snapshot.selection import SnapshotFilter
    from snapstore.snapshot.store import find_node as find_node  # not public; tests use it
    from snapstore.snapshot.store import find_snapshot, list_snapshots, select_snapshots
    from snapstore.snapshot.tree import Node, NodeType
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
    from snapstore.storage_options import STORAGE_OPTIONS, StorageOption

    __version__: str

__all__ = [
    "ArchiveFormat",
    "ArchiveResult",
    "Backend",
    "BackupResult",
    "CheckOptions",
    "CheckRecord",
    "CheckReport",
    "ChunkingProfile",
    "CopyResult",
    "DEFAULT_KDF",
    "DEFAULT_MAX_SHRINK",
    "DamagedObject",
    "DatabaseRestoreOptions",
    "DatabaseRestoreResult",
    "Decision",
    "DiffChange",
    "DiffEntry",
    "DiffSummary",
    "Duration",
    "DrillCheck",
    "DrillReport",
    "FileSource",
    "GroupKey",
    "HealthOptions",
    "HealthReport",
    "Finding",
    "ForgetResult",
    "INSTANCE_ADMIN_USER",
    "INSTANCE_PARTS",
    "IndexRepairReport",
    "InstanceRestoreOptions",
    "InstanceRestoreReport",
    "Interrupt",
    "ItemStatus",
    "KdfParams",
    "LockInfo",
    "MastodonOptions",
    "MastodonSource",
    "MountOptions",
    "NoProgress",
    "Node",
    "NodeType",
    "OnDamaged",
    "Overwrite",
    "PathMatch",
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
    "RewrittenSnapshot",
    "RepositoryStats",
    "RestoreOptions",
    "RestoreResult",
    "RetentionPolicy",
    "RetryPolicy",
    "ServerOverrides",
    "Snapshot",
    "SnapshotDiff",
    "SnapshotFilter",
    "SnapshotOptions",
    "SnapshotServer",
    "SnapshotsRepairReport",
    "SnapstoreError",
    "Source",
    "STORAGE_OPTIONS",
    "StorageOption",
    "StoredKey",
    "StoredLock",
    "StreamSource",
    "Summary",
    "TEST_KDF",
    "__version__",
    "add_key",
    "change_password",
    "check_paper_line",
    "assess_health",
    "check",
    "copy_snapshots",
    "diff_snapshots",
    "drill",
    "dump_archive",
    "dump_file",
    "export_paper_key",
    "find_paths",
    "find_snapshot",
    "group_snapshots",
    "forget",
    "init_repository",
    "latest_database_snapshot",
    "latest_instance_snapshot",
    "list_keys",
    "list_snapshots",
    "list_tree",
    "load_check_record",
    "mount_snapshots",
    "open_repository",
    "prune",
    "recover_repository",
    "remove_key",
    "repair_index",
    "restore_instance",
    "repair_snapshots",
    "repository_stats",
    "restore",
    "retag_snapshots",
    "rewrite_snapshots",
    "restore_database",
    "restore_redis_rdb",
    "save_check_record",
    "select_snapshots",
    "snapshot_server",
    "take_snapshot",
    "unlock",
    "Migration",
    "apply_migrations",
    "migration_states",
]

_EXPORTS: dict[str, tuple[str, ...]] = {
    "snapstore.repository.migrations": ("Migration", "apply_migrations", "migration_states"),
    "snapstore.api": ("check", "dump_archive", "dump_file", "list_tree", "restore", "take_snapshot"),
    "snapstore.archiver.archiver": ("BackupResult", "SnapshotOptions"),
    "snapstore.archiver.source": ("ChunkingProfile", "Source"),
    "snapstore.backend.base": ("Backend",),
    "snapstore.backend.retry": ("Interrupt", "RetryPolicy"),
    "snapstore.checker.checker": ("CheckOptions", "CheckReport"),
    "snapstore.checker.findings": ("Finding",),
    "snapstore.copy": ("CopyResult", "copy_snapshots"),
    "snapstore.crypto.kdf": ("DEFAULT_KDF", "TEST_KDF", "KdfParams"),
    "snapstore.errors": ("SnapstoreError",),
    "snapstore.forget": ("ForgetResult", "forget=forget_snapshots"),
    "snapstore.health": (
        "CheckRecord", "HealthOptions", "HealthReport", "assess_health", "load_check_record",
        "save_check_record",
    ),
    "snapstore.mount.fs": ("MountOptions",),
    "snapstore.mount.fuse_ops": ("mount_snapshots",),
    "snapstore.progress": ("ItemStatus", "NoProgress", "Progress"),
    "snapstore.prune": ("PruneOptions", "PruneReport", "prune"),
    "snapstore.repair": (
        "IndexRepairReport", "RepairChange", "RepairedSnapshot", "SnapshotsRepairReport",
        "repair_index", "repair_snapshots",
    ),
    "snapstore.repository.keyring": (
        "StoredKey", "add_key", "change_password", "check_paper_line", "export_paper_key",
        "list_keys", "remove_key",
    ),
    "snapstore.repository.lock": ("LockInfo", "StoredLock"),
    "snapstore.repository.opening": (
        "init_repository", "open_repository", "recover_repository", "unlock",
    ),
    "snapstore.repository.repository": ("DamagedObject", "OnDamaged", "Repository"),
    "snapstore.restorer.archive": ("ArchiveFormat", "ArchiveResult"),
    "snapstore.restorer.restorer": ("Overwrite", "RestoreOptions", "RestoreResult"),
    "snapstore.retention": (
        "Decision", "Duration", "GroupKey", "RetentionPolicy", "group_snapshots",
    ),
    "snapstore.snapshot.diff": (
        "DiffChange", "DiffEntry", "DiffSummary", "SnapshotDiff", "diff_snapshots",
    ),
    "snapstore.snapshot.manifest": ("Snapshot", "Summary"),
    "snapstore.snapshot.rewrite": ("RewrittenSnapshot", "retag_snapshots", "rewrite_snapshots"),
    "snapstore.snapshot.search": ("PathMatch", "find_paths"),
    "snapstore.snapshot.selection": ("SnapshotFilter",),
    "snapstore.snapshot.store": ("find_node", "find_snapshot", "list_snapshots", "select_snapshots"),
    "snapstore.snapshot.tree": ("Node", "NodeType"),
    "snapstore.sources.drill": ("DrillCheck", "DrillReport", "drill", "latest_database_snapshot"),
    "snapstore.sources.drill_history": ("DEFAULT_MAX_SHRINK",),
    "snapstore.sources.files": ("FileSource",),
    "snapstore.sources.mastodon": ("MastodonOptions", "MastodonSource"),
    "snapstore.sources.mastodon_restore": (
        "INSTANCE_ADMIN_USER=ADMIN_USER", "INSTANCE_PARTS=PARTS", "InstanceRestoreOptions",
        "InstanceRestoreReport", "latest_instance_snapshot", "restore_instance",
    ),
    "snapstore.sources.pg_client": ("PgConnection",),
    "snapstore.sources.pg_restore": (
        "DatabaseRestoreOptions", "DatabaseRestoreResult", "restore_database",
    ),
    "snapstore.sources.postgres": ("PostgresOptions", "PostgresSource"),
    "snapstore.sources.program": ("ProgramSource",),
    "snapstore.sources.redis": ("RedisOptions", "RedisSource"),
    "snapstore.sources.redis_restore": ("RdbRestoreResult", "restore_redis_rdb"),
    "snapstore.sources.snapshot_server": ("ServerOverrides", "SnapshotServer", "snapshot_server"),
    "snapstore.sources.stdin": ("StreamSource",),
    "snapstore.stats": ("RepositoryStats", "repository_stats"),
    "snapstore.storage_options": ("STORAGE_OPTIONS", "StorageOption"),
}  # fmt: skip
"""Module -> the public names it defines; `public=private` where the public name differs."""


def _locations() -> dict[str, tuple[str, str]]:
    """Public name -> (module, name in that module)."""
    where = {}
    for module, names in _EXPORTS.items():
        for name in names:
            public, _, private = name.partition("=")
            where[public] = (module, private or public)
    return where


_WHERE = _locations()


def _version() -> str:
    """From the archiver, which records it in every snapshot; read on first use only."""
    from snapstore.archiver.archiver import PROGRAM_VERSION

    return PROGRAM_VERSION.split()[-1]


if not TYPE_CHECKING:  # type checkers see the imports above, not a catch-all

    def __getattr__(name: str) -> Any:
        if name == "__version__":
            value: Any = _version()
        elif name in _WHERE:
            module, private = _WHERE[name]
            value = getattr(importlib.import_module(module), private)
        else:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        globals()[name] = value  # the next lookup is an ordinary one
        return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


class _Package(types.ModuleType):
    """Keeps a public function from being replaced by the submodule of the same name.

    `prune` and `forget` are functions here and modules below (snapstore/prune.py,
    snapstore/forget.py). Importing such a submodule, from anywhere, makes the import system
    set it as an attribute of this package; with the imports done eagerly, the function's
    import came later and won, so it must win here too.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _WHERE and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
