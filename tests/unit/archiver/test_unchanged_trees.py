"""Trees of unchanged directories (issue 13, item 7): a directory whose every child is the
parent snapshot's own node takes the parent's tree id without encoding or hashing it, and its
directory node stands in its own parent's tree, so the unchanged part of a snapshot costs no
tree work."""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from snapstore.archiver import archiver as archiver_module
from snapstore.archiver.archiver import Archiver, BackupResult, SnapshotOptions
from snapstore.archiver.parent import ParentTree
from snapstore.ids import Id
from snapstore.pack import BlobType
from snapstore.repository.repository import Repository
from snapstore.snapshot.store import walk
from snapstore.snapshot.tree import Node, NodeType, decode_tree, encode_tree
from snapstore.sources.files import FileSource, to_components
from tests.conftest import assert_repository_ok, reopen

WHEN = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "media"
    for name, data in {"a/one.jpg": b"one" * 1000, "a/two.png": b"two" * 500,
                       "b/three.gif": b"three", "b/four.gif": b"four", "b/c/five": b"",
                       "empty": b"", "big.mp4": os.urandom(3 << 20)}.items():  # fmt: skip
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


class Encoded:
    """Counts the trees the archiver encodes, by the names of their nodes."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.trees: list[list[bytes]] = []
        monkeypatch.setattr(archiver_module, "encode_tree", self._encode)

    def _encode(self, nodes: Sequence[Node]) -> bytes:
        self.trees.append(sorted(n.name for n in nodes))
        return encode_tree(nodes)


def backup(repo: Repository, root: Path, day: int) -> BackupResult:
    opts = SnapshotOptions(time=WHEN + timedelta(days=day), host="h", user="u")
    result = Archiver(repo, inline_chunk_limit=2).run(FileSource([root]), opts)
    assert result.complete, result.errors
    return result


def tree_ids(repo: Repository, result: BackupResult) -> dict[tuple[bytes, ...], Id]:
    """Each directory's tree id, the root's at ()."""
    assert result.snapshot.tree is not None
    out = {(): result.snapshot.tree}
    for path, item in walk(repo, result.snapshot.tree):
        if item.type is NodeType.DIR and item.subtree is not None:
            out[tuple(path)] = item.subtree
    return out


def test_an_unchanged_snapshot_encodes_no_tree_and_each_reused_id_is_what_encoding_gives(
    repo: Repository, tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = backup(repo, tree, 0)
    encoded = Encoded(monkeypatch)
    repo = reopen(repo)
    second = backup(repo, tree, 1)
    assert encoded.trees == []  # not one, the root's neither
    assert second.snapshot.tree == first.snapshot.tree
    assert second.snapshot.summary.files_unchanged == 7
    # the proof: every reused tree, decoded and encoded again, hashes to the id it took
    for path, tree_id in tree_ids(repo, second).items():
        nodes = decode_tree(repo.load_blob(BlobType.TREE, tree_id))
        assert repo.hash_blob(encode_tree(nodes)) == tree_id, path
    # and the same run with the reuse turned off encodes every directory into the same ids
    monkeypatch.setattr(Archiver, "_unchanged_tree", lambda self, children, before: None)
    repo = reopen(repo)
    third = backup(repo, tree, 2)
    assert len(encoded.trees) == len(tree_ids(repo, third)) > 4
    assert tree_ids(repo, third) == tree_ids(repo, second)
    assert_repository_ok(repo)


def test_a_changed_file_encodes_only_the_directories_on_its_way(
    repo: Repository, tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = backup(repo, tree, 0)
    (tree / "a" / "one.jpg").write_bytes(b"changed")
    encoded = Encoded(monkeypatch)
    repo = reopen(repo)
    second = backup(repo, tree, 1)
    # a, media and each directory above them up to the root; b and b/c are the parent's
    assert len(encoded.trees) == len(to_components(tree / "a")) + 1
    assert [b"one.jpg", b"two.png"] in encoded.trees
    assert not any(b"three.gif" in names or b"five" in names for names in encoded.trees)
    before, after = tree_ids(repo, first), tree_ids(repo, second)
    b = to_components(tree / "b")
    assert after[b] == before[b] and after[b + (b"c",)] == before[b + (b"c",)]
    assert after[to_components(tree / "a")] != before[to_components(tree / "a")]
    assert_repository_ok(repo)


def test_a_removed_file_makes_its_directory_a_new_tree(
    repo: Repository, tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every child left is the parent's node: only the count tells the tree is not the same."""
    backup(repo, tree, 0)
    (tree / "b" / "four.gif").unlink()
    encoded = Encoded(monkeypatch)
    repo = reopen(repo)
    second = backup(repo, tree, 1)
    assert [b"c", b"three.gif"] in encoded.trees
    b_tree = tree_ids(repo, second)[to_components(tree / "b")]
    assert sorted(n.name for n in decode_tree(repo.load_blob(BlobType.TREE, b_tree))) == [b"c", b"three.gif"]
    assert_repository_ok(repo)


def test_a_directory_whose_own_metadata_changed_keeps_its_tree_but_not_its_node(
    repo: Repository, tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = backup(repo, tree, 0)
    os.chmod(tree / "b", 0o700)
    encoded = Encoded(monkeypatch)
    repo = reopen(repo)
    second = backup(repo, tree, 1)
    assert not any(b"three.gif" in names for names in encoded.trees)  # b's tree: the parent's
    assert [b"a", b"b", b"big.mp4", b"empty"] in encoded.trees  # media's: b's node is new
    b = to_components(tree / "b")
    assert tree_ids(repo, second)[b] == tree_ids(repo, first)[b]
    media = decode_tree(repo.load_blob(BlobType.TREE, tree_ids(repo, second)[to_components(tree)]))
    assert next(n for n in media if n.name == b"b").mode == 0o700
    assert_repository_ok(repo)


def test_tree_at_gives_a_parent_directory_s_tree_id_and_nodes(repo: Repository, tree: Path) -> None:
    first = backup(repo, tree, 0)
    assert first.snapshot.tree is not None
    parent = ParentTree(repo, first.snapshot.tree)
    ids = tree_ids(repo, first)
    found = parent.tree_at(to_components(tree))
    assert found is not None and found[0] == ids[to_components(tree)]
    assert sorted(found[1]) == [b"a", b"b", b"big.mp4", b"empty"]
    one = parent.file_at(to_components(tree / "a" / "one.jpg"))
    a = parent.tree_at(to_components(tree / "a"))
    assert a is not None and a[1][b"one.jpg"] is one  # the nodes file_at gives
    root = parent.tree_at(())
    assert root is not None and root[0] == first.snapshot.tree
    assert parent.tree_at(to_components(tree / "missing")) is None
    assert parent.tree_at(to_components(tree / "empty")) is None  # a file, not a directory
