"""open_repository(read_only=True) (issue 14, item 7): a repository that refuses to store its
lock (PermissionDenied: a read-only disk, a read-only S3 key) is read without one and the caller
is told why; without a lock the handle refuses every write; a writer is never let through."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

import snapstore
from snapstore.backend.base import FileType, Handle
from snapstore.backend.local import LocalBackend
from snapstore.errors import PermissionDenied, UsageError

PASSWORD = b"read-only test"


@pytest.fixture
def location(tmp_path: Path) -> str:
    path = str(tmp_path / "repo")
    with snapstore.init_repository(path, PASSWORD, kdf=snapstore.TEST_KDF) as repo:
        source = snapstore.StreamSource(io.BytesIO(b"hello\n"), "hello.txt")
        snapstore.take_snapshot(repo, source)
    return path


@pytest.fixture
def refusing_writes(monkeypatch: pytest.MonkeyPatch) -> list[Handle]:
    """Local saves refused as a read-only mount refuses them; the handles tried, in order."""
    tried: list[Handle] = []

    def refuse(self: LocalBackend, handle: Handle, data: bytes) -> None:
        tried.append(handle)
        raise PermissionDenied(f"cannot save {handle}: Read-only file system")

    monkeypatch.setattr(LocalBackend, "save", refuse)
    return tried


def test_a_reader_goes_on_without_the_lock_it_cannot_store(location: str, refusing_writes: list[Handle]) -> None:
    told: list[PermissionDenied] = []
    with snapstore.open_repository(location, PASSWORD, lock="shared", read_only=True,
                                   on_read_only=told.append) as repo:
        assert [h.type for h in refusing_writes] == [FileType.LOCK]  # the lock was tried
        assert repo.held_lock is None
        assert len(told) == 1 and "Read-only file system" in str(told[0])
        latest = snapstore.find_snapshot(repo, "latest")
        assert b"".join(snapstore.dump_file(repo, latest, "hello.txt")) == b"hello\n"
        assert list(repo.list_objects(FileType.LOCK)) == []


def test_a_writer_is_refused(location: str, refusing_writes: list[Handle]) -> None:
    with pytest.raises(PermissionDenied, match="Read-only file system"):
        snapstore.open_repository(location, PASSWORD, lock="shared")
    with pytest.raises(UsageError, match="exclusive"):
        snapstore.open_repository(location, PASSWORD, lock="exclusive", read_only=True)


def test_without_a_lock_the_handle_refuses_writes(location: str) -> None:
    """--no-lock on a writable repository: nothing stored, not even by mistake."""
    with snapstore.open_repository(location, PASSWORD, read_only=True) as repo:
        assert repo.held_lock is None
        with pytest.raises(PermissionDenied, match="read-only"):
            repo.save_object(FileType.SNAPSHOT, b"not a snapshot")
        assert len(snapstore.list_snapshots(repo)) == 1
    # a read-only caller that can lock does lock (and the handle stays writable for its lock)
    with snapstore.open_repository(location, PASSWORD, lock="shared", read_only=True,
                                   on_read_only=pytest.fail) as repo:
        assert repo.held_lock is not None
        assert len(list(repo.list_objects(FileType.LOCK))) == 1
