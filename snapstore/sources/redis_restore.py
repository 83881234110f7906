"""Put a snapshot's Redis RDB where Redis will load it, atomically.

The RDB (`redis/dump.rdb` by default) is written to a temporary file in the target's own
directory, checked (header and end-of-file opcode, as when it was backed up), flushed to
disk, and renamed over the target, so the target is at every moment either the old file
or the complete new one. The new file gets the old file's owner and mode; without an old
file, mode 0600 and (when running as root) the owner of the directory, which for
/var/lib/redis is the redis user.

Redis must be stopped while its RDB is replaced: a running server overwrites dump.rdb at
its next save or at shutdown, and reads it only when it starts.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from snapstore.errors import PathNotFound, UsageError
from snapstore.repository.repository import Repository
from snapstore.restorer.single_file import write_file_atomically
from snapstore.snapshot.manifest import Snapshot
from snapstore.snapshot.store import find_node
from snapstore.snapshot.tree import NodeType
from snapstore.sources.redis import check_rdb

RDB_PATH = "redis/dump.rdb"


@dataclass
class RdbRestoreResult:
    path: Path
    size: int
    rdb_version: int


def restore_redis_rdb(
    repo: Repository, snapshot: Snapshot, target: str | Path, rdb_path: str = RDB_PATH
) -> RdbRestoreResult:
    """Write the snapshot's RDB to `target` (a file path) by temp file and rename."""
    node = find_node(repo, snapshot.tree, rdb_path)
    if node is None or node.type is not NodeType.FILE:
        raise PathNotFound(f"{rdb_path!r} is not a file in snapshot {snapshot.short_id}")
    target = Path(os.path.abspath(target))
    if target.is_dir():
        raise UsageError(f"{target} is a directory: give the RDB file's path")
    try:
        old: os.stat_result | None = os.stat(target)
    except FileNotFoundError:
        old = None
    # The old file's owner and mode; without one, the directory's owner (for /var/lib/redis,
    # the redis user) and 0600.
    like = old if old is not None else os.stat(target.parent)
    mode = stat.S_IMODE(old.st_mode) if old is not None else 0o600
    where = f"{rdb_path} in snapshot {snapshot.short_id}"
    versions: list[int] = []
    size = write_file_atomically(
        repo, node, target, mode=mode, owner=(like.st_uid, like.st_gid),
        check=lambda out, size: versions.append(check_rdb(out, size, where)),
    )  # fmt: skip
    version = versions[0]
    return RdbRestoreResult(target, size, version)
