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

import contextlib
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from snapstore.errors import PathNotFound, UsageError
from snapstore.repository.repository import Repository
from snapstore.restorer.stream import stream_file
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
    directory = target.parent
    try:
        old: os.stat_result | None = os.stat(target)
    except FileNotFoundError:
        old = None
    fd, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w+b") as out:
            for chunk in stream_file(repo, node):
                out.write(chunk)
            out.flush()
            size = out.tell()
            version = check_rdb(out, size, f"{rdb_path} in snapshot {snapshot.short_id}")
            _copy_ownership(out.fileno(), old, os.stat(directory))
            os.fsync(out.fileno())
        os.replace(temp_name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise
    _fsync_dir(directory)
    return RdbRestoreResult(target, size, version)


def _copy_ownership(fd: int, old: os.stat_result | None, directory: os.stat_result) -> None:
    owner = old if old is not None else directory
    if os.geteuid() == 0:
        os.fchown(fd, owner.st_uid, owner.st_gid)
    os.fchmod(fd, stat.S_IMODE(old.st_mode) if old is not None else 0o600)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
