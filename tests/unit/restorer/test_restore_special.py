"""FIFOs, sockets and device nodes on restore (issue 13, item 4): FIFOs and (as root) device
nodes are made with their metadata and never opened; sockets are left out; without the right
to mknod each device is named as an error. Nothing here may open a FIFO in the target: it
would block, and the timeout marks turn such a hang into a failure."""

from __future__ import annotations

import os
import socket
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from snapstore.archiver.archiver import Archiver, SnapshotOptions
from snapstore.repository.repository import Repository
from snapstore.restorer.restorer import Overwrite, RestoreOptions, Restorer
from snapstore.snapshot.manifest import Snapshot
from snapstore.sources.files import FileSource
from tests.conftest import assert_repository_ok, reopen
from tests.support import require_root

WHEN = datetime(2026, 12, 7, tzinfo=UTC)
MTIME = 1_700_000_000_123_456_789


@pytest.fixture
def source(tmp_path: Path) -> Iterator[Path]:
    """A folder with a FIFO, a listening socket and, as root, a character device."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "plain").write_text("x")
    os.mkfifo(src / "fifo")
    os.chmod(src / "fifo", 0o620)
    os.utime(src / "fifo", ns=(MTIME, MTIME))
    if os.geteuid() == 0:
        os.mknod(src / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        os.chmod(src / "null", 0o640)
        os.chown(src / "null", 12, 34)
        os.utime(src / "null", ns=(MTIME, MTIME + 1))
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(src / "sock"))
        yield src


def backup(repo: Repository, src: Path) -> Snapshot:
    result = Archiver(repo).run(FileSource([src]), SnapshotOptions(time=WHEN))
    assert result.complete, result.errors
    return result.snapshot


def restore(repo: Repository, snap: Snapshot, target: Path, owners: bool = False,
            **options: Any) -> Any:
    return Restorer(reopen(repo), owners=owners).restore(snap, target, options=RestoreOptions(**options))


def restored(target: Path, src: Path) -> Path:
    return target / os.path.relpath(src, "/")


@pytest.mark.timeout(60)
def test_a_fifo_is_made_with_its_metadata_and_a_socket_is_left_out(
    repo: Repository, source: Path, tmp_path: Path
) -> None:
    snap = backup(repo, source)
    result = restore(repo, snap, tmp_path / "target")
    out = restored(tmp_path / "target", source)
    fifo = os.lstat(out / "fifo")
    assert stat.S_ISFIFO(fifo.st_mode) and stat.S_IMODE(fifo.st_mode) == 0o620
    assert fifo.st_mtime_ns == MTIME
    assert not os.path.lexists(out / "sock")
    assert result.sockets_skipped == 1 and (out / "plain").read_text() == "x"
    assert result.errors == [] and result.special == (2 if os.geteuid() == 0 else 1)
    assert_repository_ok(repo)


@pytest.mark.timeout(60)
def test_a_device_node_is_made_as_root(repo: Repository, source: Path, tmp_path: Path) -> None:
    require_root("mknod")
    snap = backup(repo, source)
    result = restore(repo, snap, tmp_path / "target", owners=True, verify=True)
    assert result.errors == [] and result.special == 2
    null = os.lstat(restored(tmp_path / "target", source) / "null")
    assert stat.S_ISCHR(null.st_mode) and (os.major(null.st_rdev), os.minor(null.st_rdev)) == (1, 3)
    assert stat.S_IMODE(null.st_mode) == 0o640 and (null.st_uid, null.st_gid) == (12, 34)
    assert null.st_mtime_ns == MTIME + 1
    assert_repository_ok(repo)


@pytest.mark.timeout(60)
def test_a_device_node_that_cannot_be_made_is_named(
    repo: Repository, source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without CAP_MKNOD (not root) mknod fails: the device is an error, the rest restored."""
    require_root("mknod")  # to have a device in the snapshot at all
    snap = backup(repo, source)

    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "mknod", refuse)
    result = restore(repo, snap, tmp_path / "target")
    (error,) = result.errors
    assert error.endswith("null: character device 1,3 not created (creating device nodes needs root)")
    out = restored(tmp_path / "target", source)
    assert not os.path.lexists(out / "null") and stat.S_ISFIFO(os.lstat(out / "fifo").st_mode)
    assert_repository_ok(repo)


@pytest.mark.timeout(60)
def test_overwrite_delete_and_verify_never_open_a_fifo(
    repo: Repository, source: Path, tmp_path: Path
) -> None:
    snap = backup(repo, source)
    target = tmp_path / "target"
    out = restored(target, source)
    out.mkdir(parents=True)
    os.mkfifo(out / "plain")  # where the snapshot has a file
    os.mkfifo(out / "extra")  # what the snapshot lacks
    # --overwrite never keeps the FIFO where the file belongs; --verify must say so, unopened
    kept = restore(repo, snap, target, overwrite=Overwrite.NEVER, verify=True)
    assert any(e.endswith("plain: verify: not a regular file in the target") for e in kept.errors)
    assert stat.S_ISFIFO(os.lstat(out / "plain").st_mode)
    # the default replaces it; --delete removes the extra FIFO; the restored FIFO verifies
    again = restore(repo, snap, target, verify=True, delete=True)
    assert again.errors == [], again.errors
    assert (out / "plain").read_text() == "x" and not os.path.lexists(out / "extra")
    assert again.deleted == 1
    # an unchanged FIFO is left as it is (if-changed: same kind and mtime)
    inode = os.lstat(out / "fifo").st_ino
    third = restore(repo, snap, target)
    assert os.lstat(out / "fifo").st_ino == inode
    assert third.files_skipped == (3 if os.geteuid() == 0 else 2)  # plain, fifo (, null)
    assert_repository_ok(repo)


@pytest.mark.timeout(60)
def test_verify_names_a_fifo_that_is_now_something_else(
    repo: Repository, source: Path, tmp_path: Path
) -> None:
    snap = backup(repo, source)
    target = tmp_path / "target"
    restore(repo, snap, target)
    out = restored(target, source)
    os.unlink(out / "fifo")
    (out / "fifo").write_text("a file now")
    os.utime(out / "fifo", ns=(MTIME, MTIME))
    result = restore(repo, snap, target, overwrite=Overwrite.NEVER, verify=True)
    assert any(e.endswith("fifo: verify: not the FIFO of the snapshot") for e in result.errors)
    assert_repository_ok(repo)


def test_a_dry_run_counts_without_making_anything(
    repo: Repository, source: Path, tmp_path: Path
) -> None:
    snap = backup(repo, source)
    result = restore(repo, snap, tmp_path / "target", dry_run=True)
    assert result.special == (2 if os.geteuid() == 0 else 1) and result.sockets_skipped == 1
    assert not (tmp_path / "target").exists()
    assert_repository_ok(repo)
