"""diff_snapshots: added, removed, content and metadata changes, size changes and totals, and
identical subtrees skipped without being read (an unreadable one does not stop the diff)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from snapstore.archiver.archiver import Archiver, SnapshotOptions
from snapstore.archiver.source import EntryKind
from snapstore.errors import IntegrityError, PathNotFound
from snapstore.pack import BlobType
from snapstore.repository.repository import Repository
from snapstore.snapshot.diff import DiffSummary, diff_snapshots
from snapstore.snapshot.manifest import Snapshot
from snapstore.snapshot.store import find_node
from snapstore.snapshot.walk import Walker
from tests.conftest import assert_repository_ok
from tests.support.memory_source import MTIME, Dir, File, Link, MemorySource, Spec, Special

DAY1 = datetime(2026, 5, 1, 3, tzinfo=UTC)

OLD: Spec = {
    "srv": Dir(),
    "srv/same": Dir(),
    **{f"srv/same/f{i}.txt": b"unchanged %d" % i for i in range(20)},
    "srv/gone": Dir(),
    "srv/gone/a.txt": b"12345",
    "srv/gone/sub/b.txt": b"123",
    "srv/grows.txt": b"abc",
    "srv/chmod.txt": File(b"mode", mode=0o644),
    "srv/touched.txt": File(b"time", mtime_ns=MTIME),
    "srv/link": Link(b"grows.txt"),
    "srv/was-file": b"now a directory",
    "srv/removed.bin": b"x" * 100,
}
NEW: Spec = {
    "srv": Dir(),
    "srv/same": Dir(),
    **{f"srv/same/f{i}.txt": b"unchanged %d" % i for i in range(20)},
    "srv/added": Dir(),
    "srv/added/new.txt": b"new!",
    "srv/grows.txt": b"abcdefgh",
    "srv/chmod.txt": File(b"mode", mode=0o600),
    "srv/touched.txt": File(b"time", mtime_ns=MTIME + 10**9),
    "srv/link": Link(b"chmod.txt"),
    "srv/was-file/inside.txt": b"in",
}


def backup(repo: Repository, spec: Spec, day: int) -> Snapshot:
    options = SnapshotOptions(time=DAY1 + timedelta(days=day))
    return Archiver(repo).run(MemorySource(spec), options).snapshot


@pytest.fixture
def pair(repo: Repository) -> tuple[Snapshot, Snapshot]:
    return backup(repo, OLD, 0), backup(repo, NEW, 1)


def test_every_kind_of_change_in_path_order(repo: Repository, pair: tuple[Snapshot, Snapshot]) -> None:
    changes = diff_snapshots(repo, *pair)
    lines = [(e.change.value, e.path, e.size_change) for e in changes]
    assert lines == [
        ("+", "/srv/added", 0),
        ("+", "/srv/added/new.txt", 4),
        ("U", "/srv/chmod.txt", 0),
        ("-", "/srv/gone", 0),
        ("-", "/srv/gone/a.txt", -5),
        ("-", "/srv/gone/sub", 0),
        ("-", "/srv/gone/sub/b.txt", -3),
        ("M", "/srv/grows.txt", 5),
        ("M", "/srv/link", 0),
        ("-", "/srv/removed.bin", -100),
        ("U", "/srv/touched.txt", 0),
        ("-", "/srv/was-file", -15),
        ("+", "/srv/was-file", 0),
        ("+", "/srv/was-file/inside.txt", 2),
    ]
    assert changes.summary == DiffSummary(
        files_added=2, files_removed=4, files_changed=1, dirs_added=2, dirs_removed=2,
        others_changed=1, metadata_changed=2, bytes_added=4 + 5 + 2, bytes_removed=5 + 3 + 100 + 15,
    )
    assert_repository_ok(repo)


def test_reversed_and_below_a_path(repo: Repository, pair: tuple[Snapshot, Snapshot]) -> None:
    old, new = pair
    back = [(e.change.value, e.path) for e in diff_snapshots(repo, new, old, "/srv/gone")]
    assert back == [("+", "/srv/gone/a.txt"), ("+", "/srv/gone/sub"), ("+", "/srv/gone/sub/b.txt")]
    gone = [(e.change.value, e.path) for e in diff_snapshots(repo, old, new, "/srv/gone")]
    assert gone == [("-", "/srv/gone/a.txt"), ("-", "/srv/gone/sub"), ("-", "/srv/gone/sub/b.txt")]
    assert list(diff_snapshots(repo, old, old)) == []
    assert list(diff_snapshots(repo, old, new, "/srv/same")) == []
    with pytest.raises(PathNotFound):
        diff_snapshots(repo, old, new, "/nowhere")
    with pytest.raises(PathNotFound):
        diff_snapshots(repo, old, new, "/srv/grows.txt")


def test_identical_subtrees_are_not_read(
    repo: Repository, pair: tuple[Snapshot, Snapshot], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The unchanged directory's tree blob made unreadable: the diff must not need it."""
    old, new = pair
    same = find_node(repo, new.tree, "/srv/same")
    assert same is not None and same.subtree is not None
    real = repo.load_blob

    def unreadable(blob_type: BlobType, wanted: bytes) -> bytes:
        if blob_type is BlobType.TREE and bytes(wanted) == bytes(same.subtree):  # type: ignore[arg-type]
            raise IntegrityError("deliberately unreadable")
        return real(blob_type, wanted)

    monkeypatch.setattr(repo, "load_blob", unreadable)
    with pytest.raises(IntegrityError):  # a walk of the whole snapshot needs it
        list(Walker(repo, each_tree_once=False).pre_order(new.tree))

    changes = diff_snapshots(repo, old, new)
    assert len(list(changes)) == 14 and changes.summary.files_changed == 1


def test_special_nodes_added_removed_changed_and_retyped(repo: Repository) -> None:
    """A device naming another device is changed (M); a FIFO's new mode is metadata (U); a
    FIFO that became a socket is removed and added; all count as others."""
    old = backup(repo, {
        "dev": Dir(),
        "dev/disk": Special(EntryKind.BLOCKDEV, rdev=(8, 0)),
        "dev/fifo": Special(EntryKind.FIFO, mode=0o600),
        "dev/gone": Special(EntryKind.CHARDEV, rdev=(1, 3)),
        "dev/same": Special(EntryKind.CHARDEV, rdev=(1, 5)),
        "dev/was-fifo": Special(EntryKind.FIFO),
    }, 0)  # fmt: skip
    new = backup(repo, {
        "dev": Dir(),
        "dev/disk": Special(EntryKind.BLOCKDEV, rdev=(8, 16)),
        "dev/fifo": Special(EntryKind.FIFO, mode=0o660),
        "dev/new": Special(EntryKind.SOCKET),
        "dev/same": Special(EntryKind.CHARDEV, rdev=(1, 5)),
        "dev/was-fifo": Special(EntryKind.SOCKET),
    }, 1)  # fmt: skip
    changes = diff_snapshots(repo, old, new)
    assert [(e.change.value, e.path) for e in changes] == [
        ("M", "/dev/disk"),
        ("U", "/dev/fifo"),
        ("-", "/dev/gone"),
        ("+", "/dev/new"),
        ("-", "/dev/was-fifo"),
        ("+", "/dev/was-fifo"),
    ]
    assert changes.summary == DiffSummary(
        others_added=2, others_removed=2, others_changed=1, metadata_changed=1
    )
    assert_repository_ok(repo)
