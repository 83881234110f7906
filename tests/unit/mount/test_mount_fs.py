"""The mounted filesystem's logic without FUSE: the folders above the snapshots, lookups and
attributes, reads at any offset through the blob reader (inline chunks and chunk lists),
read-ahead, snapshots taken while mounted, damage answered with EIO, bounded memory."""

from __future__ import annotations

import errno
import os
import random
import stat
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from snapstore.archiver.archiver import Archiver, SnapshotOptions
from snapstore.archiver.source import EntryKind
from snapstore.backend.base import FileType, Handle
from snapstore.backend.memory import MemoryBackend
from snapstore.errors import SnapstoreError, UsageError
from snapstore.mount.file_reader import ChunkMap
from snapstore.mount.fs import MountOptions, SnapshotFilesystem
from snapstore.mount.fuse_ops import mount_snapshots
from snapstore.mount.layout import entry_name, snapshot_name
from snapstore.pack import BlobType
from snapstore.repository.repository import Repository
from snapstore.snapshot.manifest import Snapshot
from snapstore.snapshot.selection import SnapshotFilter
from snapstore.snapshot.store import find_node
from snapstore.snapshot.tree import NodeType
from tests.conftest import assert_repository_ok, reopen
from tests.support.memory_source import MTIME, Dir, File, Link, MemorySource, Spec, Special
from tests.unit import chunk_list_files

DAY1 = datetime(2026, 5, 1, 3, 15, tzinfo=UTC)
BIG = random.Random(5).randbytes(6_000_000)  # several chunks (about 1 MiB each)
SPEC: Spec = {
    "etc": Dir(mode=0o755),
    "etc/nginx.conf": File(b"server { listen 443; }\n", mode=0o640),
    "etc/big.bin": BIG,
    "etc/current": Link(b"nginx.conf"),
    (b"etc", b"caf\xe9"): b"latin-1 name",  # not UTF-8: comes and goes unchanged
    "home": Dir(mode=0o700),
    "home/avatar.png": b"\x89PNG" + bytes(1000),
}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def backup(repo: Repository, spec: Spec, day: int, host: str = "db1", tags: tuple[str, ...] = ()) -> Snapshot:
    options = SnapshotOptions(time=DAY1 + timedelta(days=day), host=host, tags=list(tags))
    return Archiver(repo).run(MemorySource(spec), options).snapshot


def mount(repo: Repository, clock: Clock | None = None, **options: object) -> tuple[SnapshotFilesystem, list[str]]:
    errors: list[str] = []

    def report(what: str, error: SnapstoreError) -> None:
        errors.append(f"{what}: {error}")

    fs = SnapshotFilesystem(
        repo, MountOptions(on_error=report, **options),  # type: ignore[arg-type]
        clock=clock or Clock(), uid=4242, gid=4343,
    )
    return fs, errors


def names(fs: SnapshotFilesystem, path: str) -> list[str]:
    return [name for name, _ in fs.readdir(path)]


def read_all(fs: SnapshotFilesystem, path: str, step: int = 128 * 1024) -> bytes:
    handle = fs.open(path)
    try:
        out = bytearray()
        while piece := fs.read(handle, step, len(out)):
            out += piece
        return bytes(out)
    finally:
        fs.release(handle)


@pytest.fixture
def snaps(repo: Repository) -> Iterator[list[Snapshot]]:
    first = backup(repo, SPEC, 0, tags=("nightly",))
    second = backup(repo, {**SPEC, "etc/nginx.conf": b"changed\n"}, 1, host="web/1", tags=("nightly", "pre-upgrade"))
    yield [first, second]
    assert_repository_ok(repo)


def test_the_folders_above_the_snapshots(repo: Repository, snaps: list[Snapshot]) -> None:
    fs, errors = mount(repo)
    first, second = (snapshot_name(s) for s in snaps)
    assert first.startswith(DAY1.astimezone().strftime("%Y-%m-%dT%H:%M:%S_"))
    assert first.endswith("_" + snaps[0].short_id)
    assert names(fs, "/") == ["snapshots", "hosts", "tags", "latest"]
    assert names(fs, "/snapshots") == [first, second, "latest"]
    assert fs.readlink("/latest") == f"snapshots/{second}"
    assert fs.readlink("/snapshots/latest") == second
    assert names(fs, "/hosts") == ["db1", "web%2F1"] == [entry_name("db1"), entry_name("web/1")]
    assert names(fs, "/hosts/db1") == [first, "latest"]
    assert names(fs, "/tags") == ["nightly", "pre-upgrade"]
    assert names(fs, "/tags/nightly") == [first, second, "latest"]
    assert fs.readlink("/tags/pre-upgrade/latest") == second
    # the same snapshot under every folder that lists it
    assert names(fs, f"/hosts/web%2F1/{second}/etc") == names(fs, f"/snapshots/{second}/etc")
    root = fs.getattr(f"/tags/nightly/{first}")
    assert root.type is NodeType.DIR and (root.uid, root.gid) == (4242, 4343)
    assert root.mtime_ns == int(DAY1.timestamp()) * 10**9
    link = fs.getattr("/latest")
    assert stat.S_ISLNK(link.st_mode) and link.size == len(f"snapshots/{second}")
    assert [entry_name(t) for t in ("", ".", "..", "a%b")] == ["%", "%2E", "%2E%2E", "a%25b"]
    assert errors == []


def test_a_selection_shows_only_its_snapshots(repo: Repository, snaps: list[Snapshot]) -> None:
    """mount --host/--tag/--path: the folders and every `latest` see the chosen snapshots only,
    and a snapshot taken while mounted that it does not match stays out."""
    clock = Clock()
    fs, errors = mount(repo, clock, selection=SnapshotFilter(hosts=["db1"]))
    first = snapshot_name(snaps[0])
    assert names(fs, "/snapshots") == [first, "latest"]
    assert fs.readlink("/latest") == f"snapshots/{first}"
    assert names(fs, "/hosts") == ["db1"] and names(fs, "/tags") == ["nightly"]
    later = backup(repo, SPEC, 2, host="web/1")
    mine = backup(repo, SPEC, 3, host="db1")
    clock.now += 10
    assert names(fs, "/snapshots") == [first, snapshot_name(mine), "latest"]
    assert snapshot_name(later) not in names(fs, "/snapshots")
    tagged, _ = mount(repo, selection=SnapshotFilter(tags=["nightly,pre-upgrade"]))
    assert names(tagged, "/snapshots") == [snapshot_name(snaps[1]), "latest"]
    assert errors == []


def test_lookups_and_attributes_as_backed_up(repo: Repository, snaps: list[Snapshot]) -> None:
    fs, _ = mount(repo)
    top = f"/snapshots/{snapshot_name(snaps[0])}"
    assert names(fs, top) == ["etc", "home"]
    assert names(fs, f"{top}/etc") == ["big.bin", "caf\udce9", "current", "nginx.conf"]
    conf = fs.getattr(f"{top}/etc/nginx.conf")
    assert (conf.type, stat.S_IMODE(conf.st_mode), conf.size, conf.mtime_ns) == (NodeType.FILE, 0o640, 23, MTIME)
    assert stat.S_ISREG(conf.st_mode) and conf.nlink == 1
    node = find_node(repo, snaps[0].tree, "etc/nginx.conf")
    assert node is not None and (conf.uid, conf.gid) == (node.uid, node.gid)
    home = fs.getattr(f"{top}/home")
    assert stat.S_ISDIR(home.st_mode) and stat.S_IMODE(home.st_mode) == 0o700
    assert stat.S_ISLNK(fs.getattr(f"{top}/etc/current").st_mode)
    assert fs.readlink(f"{top}/etc/current") == "nginx.conf"
    assert read_all(fs, f"{top}/etc/caf\udce9") == b"latin-1 name"
    assert read_all(fs, f"/snapshots/{snapshot_name(snaps[1])}/etc/nginx.conf") == b"changed\n"
    for path, code in [
        (f"{top}/etc/missing", errno.ENOENT),
        ("/snapshots/2020-01-01T00:00:00_00000000", errno.ENOENT),
        (f"{top}/etc/nginx.conf/x", errno.ENOTDIR),
        ("/latest/etc", errno.ENOTDIR),  # a link: the kernel follows it, not the filesystem
    ]:
        with pytest.raises(OSError) as caught:
            fs.getattr(path)
        assert caught.value.errno == code, path
    for call, code in [
        (lambda: fs.open(f"{top}/etc"), errno.EISDIR),
        (lambda: fs.open(f"{top}/etc/nginx.conf", 0o1), errno.EROFS),  # O_WRONLY
        (lambda: fs.readlink(f"{top}/etc/nginx.conf"), errno.EINVAL),
        (lambda: list(fs.readdir(f"{top}/etc/nginx.conf")), errno.ENOTDIR),
    ]:
        with pytest.raises(OSError) as caught:
            call()
        assert caught.value.errno == code


def test_reads_at_any_offset_cross_chunk_boundaries(repo: Repository, snaps: list[Snapshot]) -> None:
    fs, errors = mount(repo)
    path = f"/snapshots/{snapshot_name(snaps[0])}/etc/big.bin"
    node = find_node(repo, snaps[0].tree, "etc/big.bin")
    assert node is not None and len(node.content) >= 3
    chunks = list(ChunkMap(repo, node).chunks_from(0))
    assert [c.start for c in chunks[1:]] == [c.end for c in chunks[:-1]] and chunks[-1].end == len(BIG)
    handle = fs.open(path)
    rng = random.Random(1)
    cases = [(c.start - 1, 2) for c in chunks[1:]] + [(c.start, c.length) for c in chunks]
    cases += [(chunks[0].end - 10, chunks[1].length + 20), (0, len(BIG) + 100), (len(BIG) - 1, 10)]
    cases += [(rng.randrange(len(BIG)), rng.randrange(1, 300_000)) for _ in range(40)]
    for offset, size in cases:
        assert fs.read(handle, size, offset) == BIG[offset : offset + size], (offset, size)
    assert fs.read(handle, 10, len(BIG)) == b"" and fs.read(handle, 10, len(BIG) + 5) == b""
    fs.release(handle)
    assert read_all(fs, path, step=4096) == BIG and read_all(fs, path, step=1 << 20) == BIG
    assert fs.open_files == 0 and errors == []


def test_sequential_reads_fetch_ahead_in_one_planned_read(repo: Repository, snaps: list[Snapshot], monkeypatch: pytest.MonkeyPatch) -> None:
    fs, _ = mount(repo, read_ahead=64 << 20)
    paths = [f"/snapshots/{snapshot_name(s)}/etc/big.bin" for s in snaps]
    for path in paths:
        fs.getattr(path)  # trees read now, so only data reads are counted
    calls: Counter[str] = Counter()
    for name in ("load_blob", "read_blobs"):
        real = getattr(repo, name)

        def counting(*args: object, _real: object = real, _name: str = name) -> object:
            calls[_name] += 1
            return _real(*args)  # type: ignore[operator]

        monkeypatch.setattr(repo, name, counting)
    assert read_all(fs, paths[0]) == BIG
    assert calls == Counter(read_blobs=1)  # the whole file planned at the first read
    calls.clear()
    handle = fs.open(paths[1])  # the same chunks
    assert fs.read(handle, 5, 2_000_000) == BIG[2_000_000:2_000_005]
    assert calls == Counter()  # from the cache
    fs.release(handle)


def test_big_files_read_their_chunk_lists_as_reads_reach_them(repo: Repository, monkeypatch: pytest.MonkeyPatch) -> None:
    built = chunk_list_files.build(repo)
    fs, errors = mount(repo, read_ahead=0)
    lists_read: list[bytes] = []
    real = repo.load_blob

    def counting(blob_type: BlobType, wanted: bytes) -> bytes:
        if bytes(wanted) in built.lists:
            lists_read.append(bytes(wanted))
        return real(blob_type, wanted)

    monkeypatch.setattr(repo, "load_blob", counting)
    for tag, files in built.files.items():
        snap = built.old if tag == "old" else built.new
        for name, data in files.items():
            path = f"/tags/{tag}/{snapshot_name(snap)}/{name}"
            assert fs.getattr(path).size == len(data)
            assert read_all(fs, path, step=777) == data, name
    data = built.files["old"]["old-listed.bin"]
    path = f"/snapshots/{snapshot_name(built.old)}/old-listed.bin"
    node = find_node(repo, built.old.tree, "old-listed.bin")
    assert node is not None and len(node.content_lists) > 3
    lists_read.clear()
    handle = fs.open(path)
    assert fs.read(handle, 100, 0) == data[:100]
    assert lists_read == [bytes(node.content_lists[0])]  # only the first list
    rng = random.Random(2)
    for offset in [len(data) - 50, 0, len(data) // 2, *(rng.randrange(len(data)) for _ in range(30))]:
        assert fs.read(handle, 3000, offset) == data[offset : offset + 3000], offset
    fs.release(handle)
    assert errors == []
    assert_repository_ok(repo)


def test_snapshots_taken_while_mounted_appear(repo: Repository, snaps: list[Snapshot]) -> None:
    clock = Clock()
    fs, errors = mount(repo, clock)
    writer = reopen(repo)  # another process: its blobs are in index files this handle has not read
    third = backup(writer, {"etc/new.conf": b"brand new"}, 2, host="db1")
    writer.close()
    assert snapshot_name(third) not in names(fs, "/snapshots")  # listed 0 s ago
    clock.now += 3.0
    assert snapshot_name(third) in names(fs, "/hosts/db1")
    assert fs.readlink("/latest") == f"snapshots/{snapshot_name(third)}"
    assert read_all(fs, f"/snapshots/{snapshot_name(third)}/etc/new.conf") == b"brand new"
    fourth = backup(reopen(repo), {"x": b"x"}, 3)
    clock.now += 3.0  # a lookup of a name not listed yet lists again
    assert read_all(fs, f"/snapshots/{snapshot_name(fourth)}/x") == b"x"
    assert errors == []


def test_a_damaged_blob_fails_that_read_only(repo: Repository, backend: MemoryBackend, snaps: list[Snapshot]) -> None:
    fs, errors = mount(repo)
    node = find_node(repo, snaps[0].tree, "etc/big.bin")
    assert node is not None
    victim = node.content[1]
    location = repo.lookup(victim)
    assert location is not None
    handle = Handle(FileType.PACK, location.pack_id.hex())
    original = backend.load(handle)
    damaged = bytearray(original)
    damaged[location.offset + 40] ^= 0xFF
    _overwrite(backend, handle, bytes(damaged))
    top = f"/snapshots/{snapshot_name(snaps[0])}"
    opened = fs.open(f"{top}/etc/big.bin")
    chunks = list(ChunkMap(repo, node).chunks_from(0))
    assert fs.read(opened, 100, 0) == BIG[:100]
    with pytest.raises(OSError) as caught:
        fs.read(opened, 100, chunks[1].start + 5)
    assert caught.value.errno == errno.EIO
    assert len(errors) == 1 and errors[0].startswith(f"reading {top}/etc/big.bin: ")
    assert victim.hex() in errors[0]
    assert fs.read(opened, 100, chunks[2].start) == BIG[chunks[2].start : chunks[2].start + 100]
    assert read_all(fs, f"{top}/etc/nginx.conf") == SPEC["etc/nginx.conf"].data
    fs.release(opened)
    _overwrite(backend, handle, original)  # for the fixture's check


def _overwrite(backend: MemoryBackend, handle: Handle, data: bytes) -> None:
    backend.remove(handle)
    backend.save(handle, data)


def test_walking_a_wide_snapshot_keeps_no_state_per_file(repo: Repository) -> None:
    spec: Spec = {f"d{d:02}/f{f:03}": f"{d}/{f}".encode() for d in range(40) for f in range(100)}
    snap = backup(repo, spec, 0)
    fs, errors = mount(repo, tree_cache_nodes=250)
    top = f"/snapshots/{snapshot_name(snap)}"
    seen = 0
    stack = [top]
    while stack:  # what `ls -lR` asks: every directory listed, every entry stat'ed
        path = stack.pop()
        for name, kind in fs.readdir(path):
            fs.getattr(f"{path}/{name}")
            seen += 1
            if kind is NodeType.DIR:
                stack.append(f"{path}/{name}")
        assert fs._trees.weight <= 250 + 100
    assert seen == 40 + 4000 and errors == [] and fs.open_files == 0
    assert len(fs._trees) <= 3
    assert_repository_ok(repo)


def test_without_mfusepy_the_error_says_what_to_install(repo: Repository, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(UsageError, match="not a directory"):
        mount_snapshots(repo, tmp_path / "missing")
    monkeypatch.setitem(sys.modules, "mfusepy", None)  # import fails
    with pytest.raises(SnapstoreError, match=r"pip install 'snapstore\[mount\]' and apt install fuse3"):
        mount_snapshots(repo, tmp_path)


def test_special_nodes_have_their_type_and_device_number_and_open_nothing(repo: Repository) -> None:
    """FIFOs, sockets and devices appear as such (st_mode, st_rdev); open refuses them with
    ENXIO (under a real mount the kernel opens them itself: snapstore/mount/fs.py)."""
    snap = backup(repo, {
        "dev": Dir(),
        "dev/initctl": Special(EntryKind.FIFO, mode=0o600),
        "dev/log": Special(EntryKind.SOCKET, mode=0o666),
        "dev/null": Special(EntryKind.CHARDEV, mode=0o666, rdev=(1, 3)),
        "dev/sda1": Special(EntryKind.BLOCKDEV, mode=0o660, rdev=(8, 1)),
    }, 0)  # fmt: skip
    fs, errors = mount(repo)
    top = f"/snapshots/{snapshot_name(snap)}/dev"
    assert dict(fs.readdir(top)) == {
        "initctl": NodeType.FIFO, "log": NodeType.SOCKET,
        "null": NodeType.CHARDEV, "sda1": NodeType.BLOCKDEV,
    }  # fmt: skip
    fifo, sock = fs.getattr(f"{top}/initctl"), fs.getattr(f"{top}/log")
    null, disk = fs.getattr(f"{top}/null"), fs.getattr(f"{top}/sda1")
    assert stat.filemode(fifo.st_mode) == "prw-------" and fifo.rdev == 0 and fifo.size == 0
    assert stat.filemode(sock.st_mode) == "srw-rw-rw-"
    assert stat.filemode(null.st_mode) == "crw-rw-rw-" and null.rdev == os.makedev(1, 3)
    assert stat.S_ISBLK(disk.st_mode) and (os.major(disk.rdev), os.minor(disk.rdev)) == (8, 1)
    assert fifo.mtime_ns == MTIME and fifo.nlink == 1
    for name in ("initctl", "log", "null", "sda1"):
        with pytest.raises(OSError) as caught:
            fs.open(f"{top}/{name}")
        assert caught.value.errno == errno.ENXIO
    assert fs.open_files == 0 and errors == []
    assert_repository_ok(repo)
