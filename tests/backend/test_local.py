"""The local filesystem backend: the conformance suite, its layout on disk, and OS errors."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from snapstore.backend.base import Backend, FileType, Handle
from snapstore.backend.local import LocalBackend
from snapstore.errors import BackendError, ObjectNotFound, PermissionDenied
from tests.backend.conformance import BackendConformance

PACK = Handle(FileType.PACK, "abcdef0123")


class TestLocalBackend(BackendConformance):
    @pytest.fixture
    def backend(self, tmp_path: Path) -> Iterator[Backend]:
        backend = LocalBackend(tmp_path / "repo")
        backend.create()
        yield backend
        backend.close()

    def plant_stray(self, backend: Backend, relative_path: str, data: bytes) -> None:
        path = Path(backend.location, *relative_path.split("/"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def test_files_land_where_the_layout_says(tmp_path: Path) -> None:
    backend = LocalBackend(tmp_path)
    backend.create()
    backend.save(PACK, b"p")
    backend.save(Handle(FileType.CONFIG), b"c")
    backend.save(Handle(FileType.SNAPSHOT, "s1"), b"s")
    assert (tmp_path / "data" / "ab" / "abcdef0123").read_bytes() == b"p"
    assert (tmp_path / "config").read_bytes() == b"c"
    assert (tmp_path / "snapshots" / "s1").read_bytes() == b"s"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "config",
        "data",
        "index",
        "keys",
        "locks",
        "snapshots",
    ]


def test_save_leaves_no_temporary_files(tmp_path: Path) -> None:
    backend = LocalBackend(tmp_path)
    backend.create()
    for i in range(10):
        backend.save(Handle(FileType.PACK, f"ab{i}"), b"x" * i)
    assert sorted(os.listdir(tmp_path / "data" / "ab")) == [f"ab{i}" for i in range(10)]


def test_files_are_private(tmp_path: Path) -> None:
    backend = LocalBackend(tmp_path)
    backend.create()
    backend.save(PACK, b"p")
    assert (tmp_path / "data" / "ab" / "abcdef0123").stat().st_mode & 0o077 == 0


def test_without_fsync(tmp_path: Path) -> None:
    backend = LocalBackend(tmp_path, fsync=False)
    backend.create()
    backend.save(PACK, b"quick")
    assert backend.load(PACK) == b"quick"


def test_save_before_create_names_the_problem(tmp_path: Path) -> None:
    backend = LocalBackend(tmp_path / "not-created")
    with pytest.raises(BackendError, match="not-created") as caught:
        backend.save(PACK, b"p")
    assert not isinstance(caught.value, ObjectNotFound)
    assert not (tmp_path / "not-created").exists(), "save must not recreate a missing root"


def test_list_before_create_is_empty(tmp_path: Path) -> None:
    backend = LocalBackend(tmp_path / "not-created")
    for file_type in FileType:
        assert list(backend.list(file_type)) == []


def test_disk_full_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    backend = LocalBackend(tmp_path)
    backend.create()

    def no_space(fd: int, data: object) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "write", no_space)
    with pytest.raises(BackendError, match=r"abcdef0123.*disk is full") as caught:
        backend.save(PACK, b"p" * 100)
    assert not isinstance(caught.value, ObjectNotFound)
    monkeypatch.undo()
    assert os.listdir(tmp_path / "data" / "ab") == [], "the temporary file must be removed"
    assert list(backend.list(FileType.PACK)) == []


def test_other_os_errors_name_the_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    backend = LocalBackend(tmp_path)
    backend.create()
    backend.save(PACK, b"p")

    def broken(*args: object) -> bytes:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(os, "pread", broken)
    with pytest.raises(BackendError, match=r"cannot load .*abcdef0123: Input/output error"):
        backend.load(PACK)


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_permission_denied_is_permanent(tmp_path: Path) -> None:
    backend = LocalBackend(tmp_path)
    backend.create()
    backend.save(PACK, b"p")
    (tmp_path / "data" / "ab" / "abcdef0123").chmod(0)
    with pytest.raises(BackendError, match="Permission denied"):
        backend.load(PACK)


@pytest.mark.parametrize("code", [errno.EROFS, errno.EACCES, errno.EPERM])
def test_a_refused_write_is_permission_denied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    """What a read-only mount (EROFS) or a folder not ours (EACCES) answers a save with: the
    error a repository opened for reading falls back to no lock on."""
    backend = LocalBackend(tmp_path)
    backend.create()
    real_open = os.open

    def refusing(path: str, flags: int, *args: int) -> int:
        if flags & os.O_WRONLY:
            raise OSError(code, os.strerror(code), path)
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", refusing)
    with pytest.raises(PermissionDenied, match=f"cannot save .*abcdef0123: {os.strerror(code)}"):
        backend.save(PACK, b"p")


def test_a_folder_is_not_an_object(tmp_path: Path) -> None:
    backend = LocalBackend(tmp_path)
    backend.create()
    (tmp_path / "keys" / "k1").mkdir()
    with pytest.raises(ObjectNotFound):
        backend.stat(Handle(FileType.KEY, "k1"))
    assert list(backend.list(FileType.KEY)) == []
