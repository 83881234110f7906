"""Extended attributes and POSIX ACLs: read by the files source, kept in the node, restored."""

from __future__ import annotations

import errno
import os
import struct
from pathlib import Path

import pytest

from snapstore.archiver.archiver import Archiver, SnapshotOptions
from snapstore.repository.repository import Repository
from snapstore.restorer import file_writer
from snapstore.restorer.restorer import Restorer
from snapstore.snapshot.store import find_node
from snapstore.snapshot.tree import Node, NodeType
from snapstore.snapshot.xattrs import XATTRS, decode_xattrs
from snapstore.sources.files import FileSource
from tests.conftest import assert_repository_ok

ACL = "system.posix_acl_access"


def posix_acl(*entries: tuple[int, int, int]) -> bytes:
    """The kernel's binary ACL: version 2, then (tag, perm, id) entries sorted by tag."""
    return struct.pack("<I", 2) + b"".join(struct.pack("<HHI", *e) for e in entries)


#: user::rw- user:1234:r-- group::r-- mask::r-- other::---
ACL_VALUE = posix_acl((0x01, 6, 0xFFFFFFFF), (0x02, 4, 1234), (0x04, 4, 0xFFFFFFFF),
                      (0x10, 4, 0xFFFFFFFF), (0x20, 0, 0xFFFFFFFF))  # fmt: skip


def require_user_xattrs(directory: Path) -> None:
    """Skips when this filesystem takes no user.* attributes; under CI that is a failure."""
    probe = directory / "xattr-probe"
    probe.write_bytes(b"")
    try:
        os.setxattr(probe, "user.probe", b"1")
    except OSError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI filesystem refuses user.* extended attributes: {exc}")
        pytest.skip(f"this filesystem refuses user.* extended attributes: {exc}")
    finally:
        probe.unlink()


def test_xattrs_and_acls_round_trip(repo: Repository, tmp_path: Path) -> None:
    require_user_xattrs(tmp_path)
    src = tmp_path / "src"
    (src / "dir").mkdir(parents=True)
    (src / "dir" / "file").write_text("x")
    (src / "plain").write_text("y")
    os.setxattr(src / "dir" / "file", "user.comment", b"\x00binary\xff")
    os.setxattr(src / "dir", "user.dir", b"on a directory")
    acl = True
    try:
        os.setxattr(src / "dir" / "file", ACL, ACL_VALUE)
    except OSError as exc:
        assert exc.errno in (errno.EOPNOTSUPP, errno.EINVAL), exc
        acl = False
    result = Archiver(repo).run(FileSource([src]), SnapshotOptions(use_parent=False))
    node = find_node(repo, result.snapshot.tree, str(src / "dir" / "file"))
    assert node is not None
    assert (b"user.comment", b"\x00binary\xff") in decode_xattrs(node.extra)
    plain = find_node(repo, result.snapshot.tree, str(src / "plain"))
    assert plain is not None and XATTRS not in plain.extra

    restored = Restorer(repo).restore(result.snapshot, tmp_path / "out")
    assert not restored.errors and not restored.warnings
    out = tmp_path / "out" / str(src).lstrip("/")
    assert os.getxattr(out / "dir" / "file", "user.comment") == b"\x00binary\xff"
    assert os.getxattr(out / "dir", "user.dir") == b"on a directory"
    if acl:
        assert os.getxattr(out / "dir" / "file", ACL) == os.getxattr(src / "dir" / "file", ACL)
        assert os.stat(out / "dir" / "file").st_mode & 0o777 == os.stat(src / "dir" / "file").st_mode & 0o777
    assert_repository_ok(repo)


def test_refused_attributes_are_warnings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A filesystem that refuses an attribute: the rest is restored, the refusal named;
    privileged namespaces are not even tried without owners."""
    node = Node(b"f", NodeType.FILE, extra={XATTRS: [[b"trusted.x", b"1"], [b"user.bad\xff", b"2"]]})
    path = tmp_path / "f"
    path.write_bytes(b"")
    fd = os.open(path, os.O_RDONLY)
    calls: list[bytes] = []

    def refusing(fd: int, name: bytes, value: bytes) -> None:
        calls.append(name)
        raise OSError(errno.EOPNOTSUPP, "Operation not supported")

    monkeypatch.setattr(file_writer.os, "setxattr", refusing)
    try:
        refused = file_writer.apply_metadata(fd, node, owners=False)
    finally:
        os.close(fd)
    assert calls == [b"user.bad\xff"]
    assert refused == ["extended attribute user.bad\udcff not restored: Operation not supported"]
