"""Writing a snapshot's RDB back: atomic, checked, owner and mode kept."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import pytest

from snapstore.archiver.archiver import Archiver
from snapstore.errors import PathNotFound, SourceError, UsageError
from snapstore.repository.repository import Repository
from snapstore.snapshot.manifest import Snapshot
from snapstore.sources.redis import RedisSource
from snapstore.sources.redis_restore import restore_redis_rdb
from snapstore.sources.stdin import StreamSource
from tests.conftest import assert_repository_ok

RDB = b"REDIS0011" + bytes(range(256)) * 300 + b"\xff" + b"\x01" * 8


def rdb_snapshot(repo: Repository, tmp_path: Path) -> Snapshot:
    source_file = tmp_path / "source.rdb"
    source_file.write_bytes(RDB)
    return Archiver(repo).run(RedisSource(rdb_file=source_file)).snapshot


def test_restores_byte_identical_and_keeps_the_old_mode(repo: Repository, tmp_path: Path) -> None:
    snapshot = rdb_snapshot(repo, tmp_path)
    target = tmp_path / "data" / "dump.rdb"
    target.parent.mkdir()
    target.write_bytes(b"old")
    target.chmod(0o640)
    result = restore_redis_rdb(repo, snapshot, target)
    assert target.read_bytes() == RDB
    assert (result.size, result.rdb_version) == (len(RDB), 11)
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert os.listdir(target.parent) == ["dump.rdb"]
    assert_repository_ok(repo)


def test_a_new_file_is_private(repo: Repository, tmp_path: Path) -> None:
    target = tmp_path / "fresh.rdb"
    restore_redis_rdb(repo, rdb_snapshot(repo, tmp_path), target)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_content_that_is_not_an_rdb_leaves_the_target_alone(
    repo: Repository, tmp_path: Path
) -> None:
    snapshot = Archiver(repo).run(StreamSource(io.BytesIO(b"not redis at all"), "bad.rdb")).snapshot
    target = tmp_path / "dump.rdb"
    target.write_bytes(b"old")
    with pytest.raises(SourceError, match="not an RDB"):
        restore_redis_rdb(repo, snapshot, target, rdb_path="bad.rdb")
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["dump.rdb"]


def test_missing_rdb_and_directory_target(repo: Repository, tmp_path: Path) -> None:
    snapshot = Archiver(repo).run(StreamSource(io.BytesIO(b"x"), "other")).snapshot
    with pytest.raises(PathNotFound):
        restore_redis_rdb(repo, snapshot, tmp_path / "dump.rdb")
    with pytest.raises(UsageError, match="directory"):
        restore_redis_rdb(repo, rdb_snapshot(repo, tmp_path), tmp_path)
