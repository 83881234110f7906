"""FIFOs, sockets and device nodes through the installed command (issue 13, item 4): `snapshot
files` stores them (they used to be named as not stored, exit 3), `ls`, `find`, `diff` and
`dump --archive` show them, `restore` makes FIFOs and, as root, device nodes with their
metadata and leaves sockets out, and nothing ever opens a FIFO in the target (it would block:
every command here has the Cli timeout, so a hang fails the test). The device node needs
root: without it the tests skip, and fail under CI=true."""

from __future__ import annotations

import io
import json
import os
import socket
import stat
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import require_root
from tests.support.cli import Cli, snapstore_command

MTIME = 1_700_000_000_123_456_789


@pytest.fixture
def source(tmp_path: Path) -> Iterator[Path]:
    """A FIFO, a listening AF_UNIX socket, a /dev/null-like device (as root) and a file."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "plain.txt").write_text("kept\n")
    os.mkfifo(src / "pipe")
    os.chmod(src / "pipe", 0o620)
    os.utime(src / "pipe", ns=(MTIME, MTIME))
    if os.geteuid() == 0:
        os.mknod(src / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        os.chmod(src / "null", 0o640)
        os.chown(src / "null", 1234, 5678)
        os.utime(src / "null", ns=(MTIME + 1, MTIME + 1))
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(src / "sock"))
        yield src


def listed(cli: Cli, *args: str) -> dict[str, dict[str, object]]:
    done = cli("ls", "latest", *args, "--json")
    assert done.code == 0, done.err
    return {entry["path"]: entry for entry in json.loads(done.out)}


def restored(target: Path, src: Path) -> Path:
    return target / os.path.relpath(src, "/")


def test_stored_listed_and_restored(initialised: Cli, source: Path, tmp_path: Path) -> None:
    require_root("a device node (mknod)")
    done = initialised("snapshot", "files", str(source))
    assert done.code == 0, done.err
    assert "warning" not in done.err

    entries = listed(initialised)
    pipe, sock, null = (entries[str(source / n)] for n in ("pipe", "sock", "null"))
    assert (pipe["type"], pipe["mode"], pipe["size"]) == ("fifo", 0o620, 0)
    assert sock["type"] == "socket" and "rdev_major" not in sock
    assert (null["type"], null["rdev_major"], null["rdev_minor"]) == ("chardev", 1, 3)
    assert (null["uid"], null["gid"], null["mode"]) == (1234, 5678, 0o640)
    lines = {line.split()[-1]: line for line in initialised("ls", "latest").text.splitlines()}
    assert lines[str(source / "pipe")].startswith("prw--w---- ")
    assert lines[str(source / "sock")].startswith("s")
    assert lines[str(source / "null")].startswith("crw-r----- ") and " 1, 3 " in lines[str(source / "null")]

    found = initialised("find", "null", "--json")
    assert found.code == 0 and '"chardev"' in found.text

    target = tmp_path / "target"
    done = initialised("restore", "latest", "--target", str(target), "--verify")
    assert done.code == 0, done.err
    assert "2 FIFOs and devices, 1 sockets not created" in done.text
    out = restored(target, source)
    for name in ("pipe", "null"):
        want, got = os.lstat(source / name), os.lstat(out / name)
        assert stat.S_IFMT(got.st_mode) == stat.S_IFMT(want.st_mode), name
        assert stat.S_IMODE(got.st_mode) == stat.S_IMODE(want.st_mode), name
        assert (got.st_rdev, got.st_mtime_ns, got.st_uid, got.st_gid) == (
            want.st_rdev, want.st_mtime_ns, want.st_uid, want.st_gid), name
    assert stat.S_ISFIFO(os.lstat(out / "pipe").st_mode)
    assert os.lstat(out / "null").st_rdev == os.makedev(1, 3)
    assert not os.path.lexists(out / "sock")  # as restic and borg: not created
    assert (out / "plain.txt").read_text() == "kept\n"


def test_a_fifo_is_restored_without_root_too(initialised: Cli, source: Path, tmp_path: Path) -> None:
    done = initialised("snapshot", "files", str(source / "pipe"), str(source / "plain.txt"))
    assert done.code == 0, done.err
    target = tmp_path / "target"
    done = initialised("restore", "latest", "--target", str(target), unprivileged=True)
    assert done.code == 0, done.err
    got = os.lstat(restored(target, source) / "pipe")
    assert stat.S_ISFIFO(got.st_mode) and stat.S_IMODE(got.st_mode) == 0o620
    assert got.st_mtime_ns == MTIME


def test_a_device_node_that_cannot_be_made_is_named_and_the_exit_is_1(
    initialised: Cli, source: Path, tmp_path: Path
) -> None:
    """Root without CAP_MKNOD (setpriv drops it) is refused mknod, as any other user is: the
    device is named as not created, the rest restored, exit 1 as for a file not restored."""
    require_root("a device node (mknod)")
    assert initialised("snapshot", "files", str(source)).code == 0
    target = tmp_path / "target"
    done = subprocess.run(
        ["setpriv", "--bounding-set", "-mknod", *snapstore_command(),
         "restore", "latest", "--target", str(target)],
        capture_output=True, env=initialised.env, timeout=180,
    )
    err = done.stderr.decode()
    assert done.returncode == 1, err
    assert f"{str(source / 'null').lstrip('/')}: character device 1,3 not created" in err
    out = restored(target, source)
    assert not os.path.lexists(out / "null") and stat.S_ISFIFO(os.lstat(out / "pipe").st_mode)


def test_overwrite_delete_and_verify_leave_fifos_in_the_target_unopened(
    initialised: Cli, source: Path, tmp_path: Path
) -> None:
    assert initialised("snapshot", "files", str(source / "pipe"), str(source / "plain.txt")).code == 0
    target = tmp_path / "target"
    out = restored(target, source)
    out.mkdir(parents=True)
    os.mkfifo(out / "plain.txt")  # a FIFO where the snapshot has a file
    os.mkfifo(out / "stray")  # and one the snapshot lacks
    kept = initialised("restore", "latest", "--target", str(target), "--overwrite", "never", "--verify")
    assert kept.code == 1 and "plain.txt: verify: not a regular file in the target" in kept.err
    done = initialised("restore", "latest", "--target", str(target), "--delete", "--verify")
    assert done.code == 0, done.err
    assert (out / "plain.txt").read_text() == "kept\n" and not os.path.lexists(out / "stray")
    assert stat.S_ISFIFO(os.lstat(out / "pipe").st_mode)


def test_diff_and_tar_listing(initialised: Cli, source: Path, tmp_path: Path) -> None:
    require_root("a device node (mknod)")
    assert initialised("snapshot", "files", str(source)).code == 0
    os.chmod(source / "pipe", 0o600)
    os.unlink(source / "null")
    os.mknod(source / "null", 0o640 | stat.S_IFCHR, os.makedev(1, 5))
    os.unlink(source / "sock")
    done = initialised("snapshot", "files", str(source))
    assert done.code == 0, done.err
    ids = [s["short_id"] for s in json.loads(initialised("snapshots", "--json").out)]
    diff = initialised("diff", *ids)
    assert diff.code == 0, diff.err
    changes = {line.split()[-1]: line.split()[0] for line in diff.text.splitlines()
               if line and line[0] in "+-MU" and line.split()[-1].startswith(f"{source}/")
               and line.split()[-1] != f"{source}/"}
    assert changes == {str(source / "pipe"): "U", str(source / "null"): "M", str(source / "sock"): "-"}

    tar = subprocess.run(
        f"{' '.join(snapstore_command())} dump {ids[0]} {source} --archive tar | tar -tvf -",
        shell=True, capture_output=True, env=initialised.env, timeout=180,
    )
    assert tar.returncode == 0, tar.stderr
    rows = {line.split()[-1]: line for line in tar.stdout.decode().splitlines()}
    name = str(source).lstrip("/")
    assert rows[f"{name}/pipe"].startswith("prw--w----")
    assert rows[f"{name}/null"].startswith("crw-r-----") and "1,3" in rows[f"{name}/null"]
    assert f"{name}/sock" not in rows
    assert f"{source / 'sock'}: a socket, left out (tar has no sockets)" in tar.stderr.decode()
    dumped = initialised("dump", ids[0], str(source), "--archive", "tar")
    with tarfile.open(fileobj=io.BytesIO(dumped.out)) as archive:
        fifo = archive.getmember(f"{name}/pipe")
        assert fifo.isfifo() and fifo.pax_headers["mtime"] == f"{MTIME // 10**9}.{MTIME % 10**9:09d}"

    zipped = initialised("dump", ids[0], str(source), "--archive", "zip")
    assert zipped.code == 0
    for kind, what in (("pipe", "FIFO"), ("sock", "socket"), ("null", "character device")):
        assert f"{source / kind}: a {what}, left out (zip cannot hold one)" in zipped.err


def test_excludes_copy_and_rewrite(initialised: Cli, source: Path, tmp_path: Path) -> None:
    done = initialised("snapshot", "files", str(source), "--exclude", "sock")
    assert done.code == 0, done.err
    assert str(source / "sock") not in listed(initialised) and str(source / "pipe") in listed(initialised)

    offsite = tmp_path / "offsite"
    env = {"SNAPSTORE_TO_PASSWORD": initialised.env["SNAPSTORE_PASSWORD"]}
    assert initialised("init", env={"SNAPSTORE_REPOSITORY": str(offsite)}).code == 0
    copied = initialised("copy", "--to", str(offsite), env=env)
    assert copied.code == 0, copied.err
    there = initialised("ls", "latest", "--json", env={"SNAPSTORE_REPOSITORY": str(offsite)})
    assert any(e["path"] == str(source / "pipe") and e["type"] == "fifo" for e in json.loads(there.out))
    assert initialised("check", env={"SNAPSTORE_REPOSITORY": str(offsite)}).code == 0

    rewritten = initialised("rewrite", "latest", "--exclude", "pipe", "--forget")
    assert rewritten.code == 0, rewritten.err
    assert str(source / "pipe") not in listed(initialised)
    assert initialised("check").code == 0
    stats = initialised("stats", "--json")
    assert stats.code == 0, stats.err


def test_only_a_fifo_given_is_a_snapshot(initialised: Cli, tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    done = initialised("snapshot", "files", str(tmp_path / "pipe"))
    assert done.code == 0, done.err
    assert listed(initialised)[str(tmp_path / "pipe")]["type"] == "fifo"
