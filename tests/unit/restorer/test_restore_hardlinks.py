"""Hard links: stored once per (device, inode) in a snapshot, linked again on restore."""

from __future__ import annotations

import os
from pathlib import Path
from unittest import mock

from snapstore.archiver.archiver import Archiver, SnapshotOptions
from snapstore.repository.repository import Repository
from snapstore.restorer.restorer import Restorer
from snapstore.snapshot.hardlinks import NLINK, link_key
from snapstore.snapshot.store import find_node
from snapstore.sources import files
from snapstore.sources.files import FileSource
from tests.conftest import assert_repository_ok


def test_link_key_needs_several_links() -> None:
    assert link_key({"inode": 5, "device": 2, NLINK: 2}) == (2, 5)
    assert link_key({"inode": 5, "device": 2}) is None
    assert link_key({"inode": 5, "device": 2, NLINK: 1}) is None
    assert link_key({"inode": "5", "device": 2, NLINK: 2}) is None


def test_links_are_read_once_and_restored_as_links(repo: Repository, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "n").mkdir(parents=True)
    data = os.urandom(200_000)
    (src / "m-first").write_bytes(data)
    # n/second's directory is saved before m-first's (src): its chunks may be in flight
    os.link(src / "m-first", src / "n" / "second")
    os.link(src / "m-first", src / "z-third")
    (src / "single").write_bytes(b"alone")

    opened: list[bytes] = []
    real_open = files.open_regular

    def counting_open(path: bytes):  # type: ignore[no-untyped-def]
        opened.append(path)
        return real_open(path)

    with mock.patch.object(files, "open_regular", counting_open):
        result = Archiver(repo).run(FileSource([src]), SnapshotOptions(use_parent=False))
    summary = result.snapshot.summary
    assert summary.files == 4 and summary.bytes_read == len(data) + 5
    assert sorted(os.path.basename(p) for p in opened) == [b"m-first", b"single"]
    third = find_node(repo, result.snapshot.tree, str(src / "z-third"))
    assert third is not None and third.extra[NLINK] == 3 and third.size == len(data)
    single = find_node(repo, result.snapshot.tree, str(src / "single"))
    assert single is not None and NLINK not in single.extra

    target = tmp_path / "out"
    restored = Restorer(repo).restore(result.snapshot, target)
    assert not restored.errors and restored.files == 4 and restored.hardlinks == 2
    base = target / str(src).lstrip("/")
    first = os.stat(base / "m-first")
    assert first.st_nlink == 3
    assert os.stat(base / "n" / "second").st_ino == first.st_ino == os.stat(base / "z-third").st_ino
    assert (base / "n" / "second").read_bytes() == data
    assert os.stat(base / "single").st_nlink == 1
    assert_repository_ok(repo)
