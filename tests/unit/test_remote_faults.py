"""A flaky store under the repository: transient faults are retried and the snapshot completes;
a permanent fault fails it, and what it leaves behind still checks clean."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

import snapstore
from snapstore.backend.base import FileType
from snapstore.backend.faulty import FaultyBackend
from snapstore.backend.memory import MemoryBackend
from snapstore.backend.retry import RetryBackend
from snapstore.crypto.kdf import TEST_KDF
from snapstore.errors import BackendError, TransientBackendError
from snapstore.repository.repository import Repository
from snapstore.snapshot.store import list_snapshots
from tests.conftest import PASSWORD, assert_repository_ok
from tests.support.memory_source import MemorySource, expected_tree, read_tree

FILES: dict[str, bytes] = {
    f"dir{i % 3}/file{i}.bin": random.Random(i).randbytes(150_000) for i in range(12)
}


def flaky_repository() -> tuple[Repository, FaultyBackend, list[float]]:
    faulty = FaultyBackend(MemoryBackend())
    waits: list[float] = []
    retrying = RetryBackend(faulty, sleep=waits.append, jitter=lambda: 0.0)
    repo = Repository.init(retrying, PASSWORD, kdf=TEST_KDF, pack_size=256 << 10)
    repo.connections = 4
    return repo, faulty, waits


def test_transient_faults_are_retried_and_the_snapshot_completes(tmp_path: Path) -> None:
    repo, faulty, waits = flaky_repository()
    faulty.fail("save", times=3, file_type=FileType.PACK)
    faulty.fail("save", times=1, file_type=FileType.INDEX)
    faulty.fail("save", times=1, file_type=FileType.SNAPSHOT)
    faulty.fail("list", times=1, file_type=FileType.PACK, after_items=0)
    result = snapstore.take_snapshot(repo, MemorySource(FILES))
    assert result.complete
    assert len(waits) == 6  # one backoff per injected fault
    faulty.fail("load", times=2, file_type=FileType.PACK)
    snapstore.restore(repo, result.snapshot, tmp_path / "out")
    assert read_tree(tmp_path / "out") == expected_tree(FILES)
    repo.close()
    assert_repository_ok(repo)


def test_a_permanent_fault_fails_the_snapshot_and_leaves_the_repository_clean() -> None:
    repo, faulty, waits = flaky_repository()
    faulty.fail("save", error=BackendError("s3://bucket/repo/data/..: permission denied (403)"),
                file_type=FileType.PACK, times=None)  # fmt: skip
    with pytest.raises(BackendError, match="permission denied") as caught:
        snapstore.take_snapshot(repo, MemorySource(FILES))
    assert not isinstance(caught.value, TransientBackendError)
    assert waits == []  # not retried
    repo.close()
    faulty.clear()
    assert list_snapshots(repo) == []
    assert_repository_ok(repo)


def test_faults_that_outlast_the_retries_fail_cleanly() -> None:
    repo, faulty, waits = flaky_repository()
    faulty.fail("save", times=None, file_type=FileType.SNAPSHOT)
    with pytest.raises(TransientBackendError, match="giving up"):
        snapstore.take_snapshot(repo, MemorySource(FILES))
    assert len(waits) == 9  # ten attempts
    repo.close()
    faulty.clear()
    assert list_snapshots(repo) == []
    assert_repository_ok(repo)
