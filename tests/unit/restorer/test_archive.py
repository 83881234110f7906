"""dump_archive: a directory of a snapshot as tar or zip, written to a pipe, with modes,
times, owners and symlinks; content of another length than recorded is refused."""

from __future__ import annotations

import io
import stat
import struct
import tarfile
import zipfile
from datetime import UTC, datetime

import pytest

from snapstore.api import dump_archive, dump_file
from snapstore.archiver.archiver import Archiver, SnapshotOptions
from snapstore.archiver.source import EntryKind
from snapstore.errors import IntegrityError, PathIsDirectory
from snapstore.pack import BlobType
from snapstore.repository.repository import Repository
from snapstore.snapshot.manifest import Snapshot
from snapstore.snapshot.store import save_snapshot
from snapstore.snapshot.tree import Node, NodeType, encode_tree
from snapstore.snapshot.walk import load_tree
from tests.conftest import assert_repository_ok
from tests.support.memory_source import MTIME, Dir, File, Link, MemorySource, Special

BIG = bytes(range(256)) * 12_000  # 3 MB, many chunks

SPEC = {
    "srv": Dir(mode=0o750),
    "srv/www": Dir(mode=0o755),
    "srv/www/index.html": File(b"<html>", mode=0o640),
    "srv/www/big.bin": File(BIG),
    "srv/www/run.sh": File(b"#!/bin/sh\n", mode=0o4755),
    "srv/www/current": Link(b"index.html"),
    "srv/www/empty": Dir(mode=0o700),
    "srv/other.txt": b"not below www",
}


class Pipe(io.RawIOBase):
    """A write-only stream that cannot seek or tell, as standard output into a pipe."""

    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, b: bytes) -> int:  # type: ignore[override]
        self.data += b
        return len(b)

    def tell(self) -> int:
        raise OSError("illegal seek")


@pytest.fixture
def snap(repo: Repository) -> Snapshot:
    return Archiver(repo).run(MemorySource(SPEC), SnapshotOptions(time=datetime(2026, 5, 1, tzinfo=UTC))).snapshot


def test_tar_of_a_directory(repo: Repository, snap: Snapshot) -> None:
    pipe = Pipe()
    result = dump_archive(repo, snap, "/srv/www", pipe, "tar")  # type: ignore[arg-type]
    assert result.entries == 6 and result.bytes == len(BIG) + 6 + 10

    with tarfile.open(fileobj=io.BytesIO(pipe.data), mode="r:") as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert list(members) == ["srv/www", "srv/www/big.bin", "srv/www/current", "srv/www/empty",
                                 "srv/www/index.html", "srv/www/run.sh"]
        assert members["srv/www"].isdir() and members["srv/www"].mode == 0o755
        assert members["srv/www/run.sh"].mode == 0o4755
        assert members["srv/www/current"].issym() and members["srv/www/current"].linkname == "index.html"
        index = members["srv/www/index.html"]
        assert index.mode == 0o640 and index.pax_headers["mtime"] == f"{MTIME // 10**9}.{MTIME % 10**9:09d}"
        assert (index.uid, index.gid) == (snap_node(repo, snap, "index.html").uid,
                                          snap_node(repo, snap, "index.html").gid)
        big = tar.extractfile(members["srv/www/big.bin"])
        assert big is not None and big.read() == BIG


def test_zip_of_the_whole_snapshot(repo: Repository, snap: Snapshot) -> None:
    pipe = Pipe()
    dump_archive(repo, snap, "/", pipe, "zip")  # type: ignore[arg-type]
    with zipfile.ZipFile(io.BytesIO(pipe.data)) as archive:
        infos = {i.filename: i for i in archive.infolist()}
        assert "srv/other.txt" in infos and "srv/www/empty/" in infos
        assert archive.read("srv/www/big.bin") == BIG
        assert archive.read("srv/www/current") == b"index.html"
        mode = infos["srv/www/current"].external_attr >> 16
        assert stat.S_ISLNK(mode)
        assert stat.S_IMODE(infos["srv/www/run.sh"].external_attr >> 16) == 0o4755
        assert stat.S_ISDIR(infos["srv/"].external_attr >> 16)
        extra = infos["srv/www/index.html"].extra
        assert struct.pack("<HHBi", 0x5455, 5, 1, MTIME // 10**9) in extra
        assert archive.testzip() is None


def test_dumping_a_directory_as_a_file_says_it_is_one(repo: Repository, snap: Snapshot) -> None:
    with pytest.raises(PathIsDirectory, match="is a directory"):
        dump_file(repo, snap, "/srv/www")
    with pytest.raises(PathIsDirectory):
        dump_file(repo, snap, "/")


@pytest.mark.parametrize("archive_format", ["tar", "zip"])
@pytest.mark.parametrize("recorded", [len(BIG) + 1, len(BIG) - 1])
def test_content_of_another_length_stops_the_archive_unfinished(
    repo: Repository, snap: Snapshot, archive_format: str, recorded: int
) -> None:
    www = snap_node(repo, snap, "big.bin")
    lying = Node(b"big.bin", NodeType.FILE, size=recorded, content=www.content,
                 content_lists=www.content_lists)
    tree = repo.save_blob(BlobType.TREE, encode_tree([lying])).id
    repo.flush()
    bad = Snapshot(time=snap.time, host="h", user="u", tags=[], source="t", paths=[], tree=tree)
    save_snapshot(repo, bad)
    pipe = Pipe()
    with pytest.raises(IntegrityError, match="/big.bin: its content is"):
        dump_archive(repo, bad, "/", pipe, archive_format)  # type: ignore[arg-type]
    if archive_format == "zip":
        with pytest.raises(zipfile.BadZipFile):
            zipfile.ZipFile(io.BytesIO(pipe.data))
    else:  # cut inside the member: no reader takes the archive for whole
        with pytest.raises(tarfile.ReadError), tarfile.open(fileobj=io.BytesIO(pipe.data)) as tar:
            for member in tar:
                content = tar.extractfile(member)
                assert content is not None and content.read()


def snap_node(repo: Repository, snap: Snapshot, name: str) -> Node:
    srv = next(n for n in load_tree(repo, snap.tree) if n.name == b"srv")
    assert srv.subtree is not None
    www = next(n for n in load_tree(repo, srv.subtree) if n.name == b"www")
    assert www.subtree is not None
    return next(n for n in load_tree(repo, www.subtree) if n.name == name.encode())


SPECIAL = {
    "dev": Dir(),
    "dev/initctl": Special(EntryKind.FIFO, mode=0o620),
    "dev/log": Special(EntryKind.SOCKET, mode=0o666),
    "dev/null": Special(EntryKind.CHARDEV, mode=0o666, rdev=(1, 3)),
    "dev/sda1": Special(EntryKind.BLOCKDEV, mode=0o660, rdev=(8, 4097)),
    "dev/motd": b"hello",
}


def test_tar_holds_fifos_and_devices_and_leaves_sockets_out(repo: Repository) -> None:
    options = SnapshotOptions(time=datetime(2026, 5, 1, tzinfo=UTC))
    snap = Archiver(repo).run(MemorySource(SPECIAL), options).snapshot
    pipe = Pipe()
    result = dump_archive(repo, snap, "/dev", pipe, "tar")  # type: ignore[arg-type]
    assert result.skipped == [("/dev/log", "a socket, left out (tar has no sockets)")]
    with tarfile.open(fileobj=io.BytesIO(pipe.data), mode="r:") as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert sorted(members) == ["dev", "dev/initctl", "dev/motd", "dev/null", "dev/sda1"]
    fifo, null, disk = members["dev/initctl"], members["dev/null"], members["dev/sda1"]
    assert fifo.isfifo() and fifo.mode == 0o620 and fifo.size == 0
    assert null.ischr() and (null.devmajor, null.devminor, null.mode) == (1, 3, 0o666)
    assert disk.isblk() and (disk.devmajor, disk.devminor) == (8, 4097)
    assert fifo.pax_headers["mtime"] == f"{MTIME // 10**9}.{MTIME % 10**9:09d}"
    assert result.entries == 5
    assert_repository_ok(repo)


def test_zip_leaves_every_special_node_out_and_says_so(repo: Repository) -> None:
    options = SnapshotOptions(time=datetime(2026, 5, 1, tzinfo=UTC))
    snap = Archiver(repo).run(MemorySource(SPECIAL), options).snapshot
    pipe = Pipe()
    result = dump_archive(repo, snap, "/", pipe, "zip")  # type: ignore[arg-type]
    assert [path for path, _ in result.skipped] == ["/dev/initctl", "/dev/log", "/dev/null", "/dev/sda1"]
    assert result.skipped[2][1] == "a character device, left out (zip cannot hold one)"
    with zipfile.ZipFile(io.BytesIO(pipe.data)) as archive:
        assert archive.namelist() == ["dev/", "dev/motd"]
        assert archive.testzip() is None
    assert_repository_ok(repo)
