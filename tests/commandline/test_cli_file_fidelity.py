"""Metadata a restore keeps, through the installed command (issue 13, item 4): hard links come
back as links (read once at backup), extended attributes and ACLs come back, and holes in a
sparse file stay holes."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest

from tests.support.cli import Cli

ACL = "system.posix_acl_access"
#: user::rw- user:1234:r-- group::r-- mask::r-- other::--- in the kernel's binary format
ACL_VALUE = struct.pack("<I", 2) + b"".join(
    struct.pack("<HHI", tag, perm, ident)
    for tag, perm, ident in ((1, 6, 0xFFFFFFFF), (2, 4, 1234), (4, 4, 0xFFFFFFFF),
                             (0x10, 4, 0xFFFFFFFF), (0x20, 0, 0xFFFFFFFF))
)  # fmt: skip
SPARSE_SIZE = 64 * 1024 * 1024


def user_xattrs_supported(directory: Path) -> str | None:
    """None when this filesystem takes user.* attributes, else why not (detected once)."""
    probe = directory / "xattr-probe"
    probe.write_bytes(b"")
    try:
        os.setxattr(probe, "user.probe", b"1")
    except OSError as exc:
        return str(exc)
    finally:
        probe.unlink()
    return None


def test_links_attributes_and_holes_round_trip(initialised: Cli, tmp_path: Path) -> None:
    refused = user_xattrs_supported(tmp_path)
    if refused and os.environ.get("CI") == "true":
        pytest.fail(f"the CI filesystem refuses user.* extended attributes: {refused}")
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    data = os.urandom(300_000)
    (src / "a-first").write_bytes(data)
    os.link(src / "a-first", src / "sub" / "second")
    os.link(src / "a-first", src / "z-third")
    with open(src / "sparse", "wb") as sparse:  # data at both ends, a 64 MiB hole between
        sparse.write(b"head")
        sparse.seek(SPARSE_SIZE - 4)
        sparse.write(b"tail")
    if not refused:
        os.setxattr(src / "a-first", "user.comment", b"kept")
        os.setxattr(src / "sub", "user.dir", b"too")
        try:
            os.setxattr(src / "sub" / "second", ACL, ACL_VALUE)
        except OSError:
            pass  # no ACLs on this filesystem: the user.* attributes still count

    done = initialised("snapshot", "files", str(src), "--json")
    assert done.code == 0, done.err
    summary = done.json()
    # the linked file's 300,000 bytes once, and the sparse file's 64 MiB (holes are read)
    assert summary["bytes_read"] == len(data) + SPARSE_SIZE, summary

    restored = initialised("restore", summary["snapshot_id"], "--target", str(tmp_path / "out"))
    assert restored.code == 0, restored.err
    assert "warning" not in restored.err
    out = tmp_path / "out" / str(src).lstrip("/")
    first = os.stat(out / "a-first")
    assert first.st_nlink == 3
    assert os.stat(out / "sub" / "second").st_ino == first.st_ino == os.stat(out / "z-third").st_ino
    assert (out / "z-third").read_bytes() == data
    if not refused:
        assert os.getxattr(out / "a-first", "user.comment") == b"kept"
        assert os.getxattr(out / "sub", "user.dir") == b"too"
        try:
            expected = os.getxattr(src / "sub" / "second", ACL)
        except OSError:
            expected = None
        if expected is not None:
            assert os.getxattr(out / "sub" / "second", ACL) == expected
    sparse_out = os.stat(out / "sparse")
    assert sparse_out.st_size == SPARSE_SIZE
    assert sparse_out.st_blocks * 512 < 1024 * 1024, "the hole was written out"
    with open(out / "sparse", "rb") as restored_sparse:
        assert restored_sparse.read(4) == b"head"
        restored_sparse.seek(SPARSE_SIZE - 4)
        assert restored_sparse.read(4) == b"tail"
