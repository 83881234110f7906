"""Unchanged files are not read (issue 13, item 1): the rule on its own, then the archiver over
real files, counting which ones it opens."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO

import pytest

from snapstore.archiver.archiver import Archiver, BackupResult, SnapshotOptions
from snapstore.archiver.source import EntryKind, ErrorCallback, SourceEntry
from snapstore.archiver.unchanged import ChangeRule, is_unchanged, keeps_node
from snapstore.backend.base import FileType, Handle
from snapstore.pack import BlobType
from snapstore.repair import repair_index
from snapstore.repository.repository import Repository
from snapstore.snapshot.content import chunk_ids
from snapstore.snapshot.store import walk
from snapstore.snapshot.tree import Node, NodeType
from snapstore.sources.files import FileSource
from tests.conftest import assert_repository_ok, reopen

WHEN = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)
FACTS = {"inode": 1234, "device": 2049, "ctime_ns": 1_765_000_000_000_000_000}


# -- the rule ---------------------------------------------------------------------------------


def entry(**changes: object) -> SourceEntry:
    extra = dict(FACTS)
    for key in FACTS:
        if key in changes:
            extra[key] = changes.pop(key)
    fields: dict[str, object] = {"size": 10, "mtime_ns": 5, **changes}
    return SourceEntry((b"f",), EntryKind.FILE, extra=extra, **fields)  # type: ignore[arg-type]


def node(**extra: object) -> Node:
    return Node(b"f", NodeType.FILE, size=10, mtime_ns=5, extra={**FACTS, **extra})


@pytest.mark.parametrize("change", [{"size": 11}, {"mtime_ns": 6}, {"ctime_ns": 1},
                                    {"inode": 99}, {"device": 7}])
def test_each_fact_that_differs_makes_a_file_changed(change: dict[str, int]) -> None:
    assert is_unchanged(entry(), node(), ChangeRule())
    assert not is_unchanged(entry(**change), node(), ChangeRule())


def test_ignore_ctime_compares_all_but_ctime() -> None:
    rule = ChangeRule(ignore_ctime=True)
    assert is_unchanged(entry(ctime_ns=1), node(), rule)
    for change in ({"inode": 99}, {"device": 7}, {"size": 11}, {"mtime_ns": 6}):
        assert not is_unchanged(entry(**change), node(), rule)


def test_ignore_inode_also_ignores_device_and_ctime_as_restic_does() -> None:
    rule = ChangeRule(ignore_inode=True)
    assert is_unchanged(entry(inode=99, device=7, ctime_ns=1), node(), rule)
    assert not is_unchanged(entry(size=11), node(), rule)
    assert not is_unchanged(entry(mtime_ns=6), node(), rule)


def test_a_stream_or_a_node_without_facts_never_matches() -> None:
    stream = SourceEntry((b"f",), EntryKind.FILE, size=10, mtime_ns=5)
    both_ignored = ChangeRule(ignore_inode=True, ignore_ctime=True)
    assert not is_unchanged(stream, node(), both_ignored)
    older = Node(b"f", NodeType.FILE, size=10, mtime_ns=5)  # written before the facts
    assert not is_unchanged(entry(), older, ChangeRule())
    assert not is_unchanged(entry(), Node(b"f", NodeType.DIR, size=10, mtime_ns=5,
                                          extra=dict(FACTS)), ChangeRule())


def test_the_parents_node_is_kept_when_every_field_is_the_same() -> None:
    assert keeps_node(entry(), node())
    assert keeps_node(entry(), node(profile="database"))  # cut as a database: kept so
    changes: list[dict[str, object]] = [
        {"mode": 0o600}, {"uid": 1}, {"gid": 1}, {"user": "bob"}, {"group": "staff"},
        {"size": 11}, {"mtime_ns": 6}, {"ctime_ns": 1}, {"inode": 99},
    ]  # fmt: skip
    for change in changes:
        assert not keeps_node(entry(**change), node()), change
    assert not keeps_node(entry(), node(nlink=2))  # a fact the file no longer has
    with_xattrs = SourceEntry((b"f",), EntryKind.FILE, size=10, mtime_ns=5,
                              extra={**FACTS, "xattrs": [[b"user.a", b"1"]]})  # fmt: skip
    assert not keeps_node(with_xattrs, node())
    assert not keeps_node(with_xattrs, node(xattrs=[[b"user.a", b"2"]]))
    assert keeps_node(with_xattrs, node(xattrs=[[b"user.a", b"1"]]))


def test_the_parents_node_is_kept_only_with_its_extra_in_the_same_order() -> None:
    # the same facts in another order are other bytes: the tree would not be the same
    reordered = Node(b"f", NodeType.FILE, size=10, mtime_ns=5, extra=dict(reversed(FACTS.items())))
    assert is_unchanged(entry(), reordered, ChangeRule())
    assert not keeps_node(entry(), reordered)
    profile_first = Node(b"f", NodeType.FILE, size=10, mtime_ns=5,
                         extra={"profile": "database", **FACTS})  # fmt: skip
    assert not keeps_node(entry(), profile_first)


def test_keeps_node_compares_every_field_of_a_node() -> None:
    """keeps_node compares a file node's fields one by one (name and content are the
    parent's by construction; a file has no subtree, target nor device number): a field
    added to Node must be compared there too, and added here."""
    assert [f.name for f in dataclasses.fields(Node)] == [
        "name", "type", "mode", "uid", "gid", "user", "group", "mtime_ns", "size", "content",
        "content_lists", "subtree", "target", "rdev_major", "rdev_minor", "extra",
    ]  # fmt: skip


# -- the archiver over real files -------------------------------------------------------------


class Counting:
    """A FileSource whose files note when they are opened."""

    def __init__(self, root: Path) -> None:
        self._files = FileSource([root])
        self.opened: list[str] = []

    @property
    def kind(self) -> str:
        return self._files.kind

    def describe(self) -> list[str]:
        return self._files.describe()

    def metadata(self) -> dict[str, object]:
        return self._files.metadata()

    def entries(self, on_error: ErrorCallback) -> Iterator[SourceEntry]:
        for item in self._files.entries(on_error):
            if item.open_content is not None:
                item.open_content = self._noting(item.path[-1].decode(), item.open_content)
            yield item

    def _noting(self, name: str, opener: Callable[[], AbstractContextManager[BinaryIO]]
                ) -> Callable[[], AbstractContextManager[BinaryIO]]:
        def open_content() -> AbstractContextManager[BinaryIO]:
            self.opened.append(name)
            return opener()

        return open_content


def backup(repo: Repository, root: Path, day: int = 0, **options: object) -> tuple[BackupResult, list[str]]:
    source = Counting(root)
    opts = SnapshotOptions(time=WHEN + timedelta(days=day), host="h", user="u")
    for key, value in options.items():
        setattr(opts, key, value)
    result = Archiver(repo, inline_chunk_limit=2).run(source, opts)
    assert result.complete, result.errors
    return result, sorted(source.opened)


def files_in(repo: Repository, result: BackupResult) -> dict[str, tuple[Node, bytes]]:
    out = {}
    for path, item in walk(repo, result.snapshot.tree):
        if item.type is NodeType.FILE:
            data = b"".join(repo.load_blob(BlobType.DATA, i) for i in chunk_ids(repo, item))
            out[path[-1].decode()] = (item, data)
    return out


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "media"
    (root / "a").mkdir(parents=True)
    (root / "a" / "one.jpg").write_bytes(b"one" * 1000)
    (root / "a" / "two.png").write_bytes(b"two" * 500)
    (root / "empty").write_bytes(b"")
    (root / "big.mp4").write_bytes(os.urandom(5 << 20))  # several chunks: in chunk lists
    return root


ALL = ["big.mp4", "empty", "one.jpg", "two.png"]


def test_a_second_snapshot_opens_no_unchanged_file_and_its_tree_is_the_same(
    repo: Repository, tree: Path
) -> None:
    first, opened = backup(repo, tree)
    assert opened == ALL and first.snapshot.summary.files_unchanged == 0
    second, opened = backup(repo, tree, day=1)
    assert opened == []
    summary = second.snapshot.summary
    assert (summary.files, summary.files_unchanged, summary.bytes_read) == (4, 4, 0)
    assert second.snapshot.parent == first.snapshot.id
    assert second.snapshot.tree == first.snapshot.tree  # the same nodes, byte for byte
    assert summary.blobs_added == 0
    assert files_in(repo, second)["big.mp4"][0].content_lists  # reused as chunk lists
    assert {k: v[1] for k, v in files_in(repo, second).items()} == {
        k: v[1] for k, v in files_in(repo, first).items()
    }
    assert_repository_ok(repo)


class Renamed(Counting):
    """As if the owner of one.jpg had been renamed in /etc/passwd: no stat fact changes."""

    def entries(self, on_error: ErrorCallback) -> Iterator[SourceEntry]:
        for item in super().entries(on_error):
            if item.path[-1] == b"one.jpg":
                item.user = "renamed"
            yield item


def test_an_unchanged_file_whose_owner_was_renamed_gets_a_node_of_its_own(
    repo: Repository, tree: Path
) -> None:
    first, _ = backup(repo, tree)
    source = Renamed(tree)
    opts = SnapshotOptions(time=WHEN + timedelta(days=1), host="h", user="u")
    second = Archiver(repo, inline_chunk_limit=2).run(source, opts)
    assert source.opened == [] and second.snapshot.summary.files_unchanged == 4
    assert second.snapshot.tree != first.snapshot.tree
    renamed, kept = files_in(repo, second), files_in(repo, first)
    assert renamed["one.jpg"][0].user == "renamed" and renamed["one.jpg"][1] == kept["one.jpg"][1]
    assert renamed["one.jpg"][0].content == kept["one.jpg"][0].content
    assert {k: v for k, v in renamed.items() if k != "one.jpg"} == {
        k: v for k, v in kept.items() if k != "one.jpg"
    }
    third, opened = backup(repo, tree, day=2)  # the name back: the first snapshot's tree
    assert opened == [] and third.snapshot.tree == first.snapshot.tree
    assert_repository_ok(repo)


def test_a_changed_size_or_mtime_is_read_again(repo: Repository, tree: Path) -> None:
    backup(repo, tree)
    (tree / "a" / "one.jpg").write_bytes(b"one" * 1001)
    two = tree / "a" / "two.png"
    stat = two.stat()
    os.utime(two, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    # ignore_inode leaves size and mtime alone to decide
    second, opened = backup(repo, tree, day=1, ignore_inode=True)
    assert opened == ["one.jpg", "two.png"]
    assert second.snapshot.summary.files_unchanged == 2
    assert files_in(repo, second)["one.jpg"][1] == b"one" * 1001
    assert_repository_ok(repo)


def rewrite_keeping_mtime(path: Path, data: bytes) -> None:
    """New content of the same size with the old mtime: only ctime tells (as an editor or a
    restore that sets times back would leave it)."""
    stat = path.stat()
    assert len(data) == stat.st_size
    path.write_bytes(data)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def replace_keeping_mtime(path: Path, data: bytes) -> None:
    """Another file (another inode) renamed over it, same size and mtime."""
    stat = path.stat()
    fresh = path.with_name(path.name + ".tmp")
    fresh.write_bytes(data)
    os.utime(fresh, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    fresh.rename(path)
    assert path.stat().st_ino != stat.st_ino


def test_a_changed_ctime_is_read_again_unless_ignored(repo: Repository, tree: Path) -> None:
    backup(repo, tree)
    rewrite_keeping_mtime(tree / "a" / "one.jpg", b"ONE" * 1000)
    second, opened = backup(repo, tree, day=1)
    assert opened == ["one.jpg"]
    assert files_in(repo, second)["one.jpg"][1] == b"ONE" * 1000
    rewrite_keeping_mtime(tree / "a" / "one.jpg", b"eno" * 1000)
    third, opened = backup(repo, tree, day=2, ignore_ctime=True)
    assert opened == []  # what --ignore-ctime trades away: this edit goes unseen
    assert files_in(repo, third)["one.jpg"][1] == b"ONE" * 1000
    assert_repository_ok(repo)


def test_a_changed_inode_is_read_again_unless_ignored(repo: Repository, tree: Path) -> None:
    backup(repo, tree)
    replace_keeping_mtime(tree / "a" / "two.png", b"TWO" * 500)
    second, opened = backup(repo, tree, day=1, ignore_ctime=True)  # the inode alone tells
    assert opened == ["two.png"]
    assert files_in(repo, second)["two.png"][1] == b"TWO" * 500
    replace_keeping_mtime(tree / "a" / "two.png", b"owt" * 500)
    third, opened = backup(repo, tree, day=2, ignore_inode=True)
    assert opened == []
    assert files_in(repo, third)["two.png"][1] == b"TWO" * 500
    assert_repository_ok(repo)


def test_force_reads_every_file(repo: Repository, tree: Path) -> None:
    first, _ = backup(repo, tree)
    second, opened = backup(repo, tree, day=1, force=True)
    assert opened == ALL and second.snapshot.summary.files_unchanged == 0
    assert second.snapshot.tree == first.snapshot.tree


def test_no_parent_reads_every_file(repo: Repository, tree: Path) -> None:
    backup(repo, tree)
    second, opened = backup(repo, tree, day=1, use_parent=False)
    assert opened == ALL and second.snapshot.parent is None


def test_a_named_parent_is_the_one_compared_with(repo: Repository, tree: Path) -> None:
    first, _ = backup(repo, tree)
    (tree / "a" / "one.jpg").write_bytes(b"changed")
    second, _ = backup(repo, tree, day=1)
    # against the first snapshot, one.jpg differs again (its node there is the old one)
    third, opened = backup(repo, tree, day=2, parent=first.snapshot)
    assert opened == ["one.jpg"] and third.snapshot.parent == first.snapshot.id
    assert third.snapshot.tree == second.snapshot.tree


def test_a_parent_whose_blobs_are_gone_is_read_again(repo: Repository, tree: Path) -> None:
    first, _ = backup(repo, tree)
    nodes = files_in(repo, first)
    lost = {repo.index.lookup(bytes(nodes[name][0].content[0])) for name in ("one.jpg", "two.png")}
    lists = nodes["big.mp4"][0].content_lists
    lost.add(repo.index.lookup(bytes(lists[0])))
    packs = {loc.pack_id for loc in lost if loc is not None}
    for pack_id in packs:  # the data packs holding them: gone, as after damage
        repo.backend.remove(Handle(FileType.PACK, pack_id.hex()))
    again = reopen(repo)
    second, opened = backup(again, tree, day=1)
    assert {"one.jpg", "two.png", "big.mp4"} <= set(opened)
    for name, (_, data) in files_in(again, second).items():
        assert data == nodes[name][1], name
    # the damaged first snapshot goes, the index forgets the lost packs: what is left is whole
    assert first.snapshot.id is not None
    again.backend.remove(Handle(FileType.SNAPSHOT, first.snapshot.id.hex()))
    repair_index(again)
    assert_repository_ok(again)
