"""`snapstore mount` through the installed command on a real FUSE mount: browsed with ls, cat,
stat and find and compared with the source tree; a snapshot taken while mounted appears;
SIGTERM and `fusermount3 -u` unmount and release the lock; a damaged pack fails only the reads
of the file it holds, naming the blob. Without /dev/fuse, fusermount3 or mfusepy the tests skip,
and fail under CI=true."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import require_root, server_unavailable
from tests.support.cli import Cli
from tests.support.processes import finish, objects, start, wait_for
from tests.support.trees import make_tree


@pytest.fixture(autouse=True)
def fuse_available() -> None:
    if not os.path.exists("/dev/fuse"):
        server_unavailable("FUSE unavailable: no /dev/fuse")
    if shutil.which("fusermount3") is None:
        server_unavailable("FUSE unavailable: no fusermount3 (apt install fuse3)")
    try:
        import mfusepy  # noqa: F401
    except (ImportError, OSError) as exc:
        server_unavailable(f"FUSE unavailable: mfusepy does not load: {exc}")


@contextlib.contextmanager
def mounted(cli: Cli, mountpoint: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`snapstore mount` running until the block ends; unmounted and stopped even if it fails."""
    mountpoint.mkdir(exist_ok=True)
    proc = start(cli, "mount", str(mountpoint))
    try:
        wait_for(lambda: os.path.ismount(mountpoint) or proc.poll() is not None, timeout=30, what="the mount")
        if proc.poll() is not None:
            code, _, err = finish(proc)
            pytest.fail(f"snapstore mount exited {code}: {err}")
        yield proc
    finally:
        if proc.poll() is None and os.path.ismount(mountpoint):
            subprocess.run(["fusermount3", "-u", "-z", str(mountpoint)], check=False)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=15)
        if proc.poll() is None:
            proc.kill()


def run(*args: str) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def facts(path: Path) -> tuple[object, ...]:
    """What the mount must show as backed up (atime and ctime are not backed up)."""
    st = path.lstat()
    kind = "link" if path.is_symlink() else "dir" if path.is_dir() else "file"
    what: object = os.readlink(path) if kind == "link" else path.read_bytes() if kind == "file" else None
    size = st.st_size if kind == "file" else None
    return kind, st.st_mode & 0o7777 if kind != "link" else None, st.st_mtime_ns if kind != "dir" else None, \
        st.st_uid, st.st_gid, size, what


def snapshot_names(mountpoint: Path) -> list[str]:
    return sorted(p.name for p in (mountpoint / "snapshots").iterdir() if p.name != "latest")


def test_browse_a_mounted_repository_then_sigterm(cli: Cli, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    make_tree(src)
    os.chown(src / "small.txt", 1234, 5678)
    assert cli("snapshot", "files", str(src), "--tag", "nightly").code == 0
    mnt = tmp_path / "mnt"
    with mounted(cli, mnt) as proc:
        [first] = snapshot_names(mnt)
        assert sorted(os.listdir(mnt)) == ["hosts", "latest", "snapshots", "tags"]
        assert os.readlink(mnt / "latest") == f"snapshots/{first}"
        assert os.listdir(mnt / "tags" / "nightly") == [first, "latest"]
        inside = mnt / "latest" / src.relative_to("/")
        listing = run("ls", "-lR", str(mnt / "snapshots" / first))
        assert "nested.txt" in listing and "link -> ../small.txt" in listing
        assert run("cat", str(inside / "sub" / "nested.txt")) == "nested\n" * 1000
        stat_format = "%A %s %u %g %Y"
        assert run("stat", "-c", stat_format, str(inside / "small.txt")) == \
            run("stat", "-c", stat_format, str(src / "small.txt"))
        found, expected = (  # files and links (a directory's size is the filesystem's own)
            sorted(run("find", str(root), "-not", "-type", "d", "-printf", "%P %y %m %s %T@ %U %G %l\n").splitlines())
            for root in (inside, src)
        )
        assert found == expected and len(found) == 7
        for dirpath, dirnames, filenames in os.walk(src):
            for name in dirnames + filenames:
                path = Path(dirpath) / name
                assert facts(inside / path.relative_to(src)) == facts(path), path
        # a snapshot taken while mounted appears
        (src / "small.txt").write_text("changed\n")
        assert cli("snapshot", "files", str(src)).code == 0
        wait_for(lambda: len(snapshot_names(mnt)) == 2, timeout=15, what="the new snapshot")
        assert (mnt / "latest" / src.relative_to("/") / "small.txt").read_text() == "changed\n"
        proc.send_signal(signal.SIGTERM)
        code, _, err = finish(proc, timeout=15)
        assert code == 0, err
        assert "unmounted" in err
    assert not os.path.ismount(mnt)
    assert objects(cli.repo, "locks") == []
    assert cli("prune").code == 0  # an exclusive lock is free to take


def test_a_damaged_pack_fails_one_file_and_fusermount_unmounts(cli: Cli, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    make_tree(src)
    assert cli("snapshot", "files", str(src)).code == 0
    biggest = max(objects(cli.repo, "data"), key=lambda p: p.stat().st_size)
    damaged = bytearray(biggest.read_bytes())
    damaged[len(damaged) // 3] ^= 0xFF  # inside big.bin's chunks
    biggest.chmod(0o644)
    biggest.write_bytes(bytes(damaged))
    mnt = tmp_path / "mnt"
    with mounted(cli, mnt) as proc:
        inside = mnt / "latest" / src.relative_to("/")
        failed = subprocess.run(["cat", str(inside / "big.bin")], capture_output=True, timeout=60)
        assert failed.returncode != 0 and b"Input/output error" in failed.stderr
        assert (inside / "small.txt").read_text() == "hello\n"
        run("fusermount3", "-u", str(mnt))
        code, _, err = finish(proc, timeout=15)
    assert code == 0, err
    [line, *_] = [line for line in err.splitlines() if "error" in line]  # cat may retry
    assert re.fullmatch(rf"snapstore: error: reading /snapshots/[^/]+/{src.relative_to('/')}/big.bin: "
                        r"blob [0-9a-f]{64}\b.*", line), line
    assert not os.path.ismount(mnt)
    assert objects(cli.repo, "locks") == []


def test_special_nodes_in_the_mount(cli: Cli, tmp_path: Path) -> None:
    """A FIFO, a socket and a device node show their type, mode and device number (stat and
    ls -l as on the source); the FIFO opened without blocking reads nothing, and the device
    cannot be opened at all (the mount is nodev)."""
    require_root("a device node (mknod)")
    src = tmp_path / "src"
    src.mkdir()
    os.mkfifo(src / "pipe", 0o640)
    os.mknod(src / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(src / "sock"))
        done = cli("snapshot", "files", str(src))
        assert done.code == 0, done.err
    mnt = tmp_path / "mnt"
    with mounted(cli, mnt):
        inside = mnt / "latest" / src.relative_to("/")
        stat_format = "%F %a %t %T %Y"  # type, mode, major and minor (hex), mtime
        for name in ("pipe", "null"):
            assert run("stat", "-c", stat_format, str(inside / name)) == \
                run("stat", "-c", stat_format, str(src / name)), name
        assert stat.S_ISSOCK(os.lstat(inside / "sock").st_mode)
        assert run("ls", "-l", str(inside)).count("\n") == 4  # total, null, pipe, sock
        fd = os.open(inside / "pipe", os.O_RDONLY | os.O_NONBLOCK)
        try:
            assert os.read(fd, 100) == b""  # an empty pipe with no writer: end of file at once
        finally:
            os.close(fd)
        with pytest.raises(PermissionError):
            os.open(inside / "null", os.O_RDONLY)
