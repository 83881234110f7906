"""Reading files whose chunks are delta blobs, or listed in chunk-list blobs, or both:
restore, dump, the streaming read-ahead and stats all give back the same bytes."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

import snapstore
from snapstore.backend.base import FileType, Handle
from snapstore.errors import SnapstoreError
from snapstore.ids import Id
from snapstore.pack import BlobType
from snapstore.repository.repository import Repository
from snapstore.restorer import stream
from snapstore.restorer.restorer import Restorer
from snapstore.snapshot.content import chunk_ids, split_chunk_list
from snapstore.snapshot.manifest import Snapshot
from snapstore.snapshot.store import find_node, load_tree, save_snapshot
from snapstore.snapshot.tree import Node, NodeType, encode_tree
from tests.conftest import assert_repository_ok, reopen
from tests.unit.chunk_list_files import Built, build, varied_text


@pytest.fixture
def built(repo: Repository) -> Built:
    return build(repo)


def _read_dir(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in root.iterdir()}


def test_the_fixture_has_what_it_claims(repo: Repository, built: Built) -> None:
    again = reopen(repo)
    nodes = {n.name.decode(): n for n in load_tree(again, built.new.tree)}
    assert nodes["new.bin"].content and not nodes["new.bin"].content_lists
    assert {bytes(i) for i in nodes["new.bin"].content} & built.deltas
    assert len(nodes["listed.bin"].content_lists) > 2 and not nodes["listed.bin"].content
    assert {bytes(i) for i in nodes["both.bin"].content_lists} & built.deltas  # delta lists
    assert {bytes(i) for i in chunk_ids(again, nodes["both.bin"])} & built.deltas  # delta chunks
    for blob_id in built.deltas:
        assert again.delta_base_of(blob_id) is not None
    assert_repository_ok(repo)


@pytest.mark.parametrize("tag", ["old", "new"])
def test_restore_is_byte_identical(
    repo: Repository, built: Built, tmp_path: Path, tag: str
) -> None:
    snap = built.old if tag == "old" else built.new
    result = Restorer(reopen(repo), owners=False).restore(snap, tmp_path / "out")
    assert _read_dir(tmp_path / "out") == built.files[tag]
    assert result.bytes_written == sum(len(v) for v in built.files[tag].values())
    assert_repository_ok(repo)


def test_restore_of_one_included_file(repo: Repository, built: Built, tmp_path: Path) -> None:
    snapstore.restore(reopen(repo), built.new, tmp_path / "out", includes=["both.bin"])
    assert _read_dir(tmp_path / "out") == {"both.bin": built.files["new"]["both.bin"]}


@pytest.mark.parametrize("name", ["new.bin", "listed.bin", "both.bin"])
def test_dump_file_is_byte_identical(repo: Repository, built: Built, name: str) -> None:
    got = b"".join(snapstore.dump_file(reopen(repo), built.new, name))
    assert got == built.files["new"][name]


def test_chunk_lists_cut_anywhere_read_the_same(repo: Repository, built: Built) -> None:
    """Readers follow the lists whatever their cuts: one list, or a list per chunk."""
    again = reopen(repo)
    node = find_node(again, built.new.tree, "both.bin")
    assert node is not None
    ids = chunk_ids(again, node)
    for modulus, max_ids in ((1 << 16, 1 << 20), (1, 1), (4, 8)):
        lists = [
            repo.save_blob(BlobType.DATA, p).id for p in split_chunk_list(ids, modulus, max_ids)
        ]
        repo.flush()
        recut = Node(b"x", NodeType.FILE, size=node.size, content_lists=lists)
        assert b"".join(stream.stream_file(reopen(repo), recut)) == built.files["new"]["both.bin"]
    assert_repository_ok(repo)


def test_a_listed_file_streams_in_order_and_its_ids_are_taken_a_window_at_a_time(
    repo: Repository, built: Built
) -> None:
    again = reopen(repo)
    node = find_node(again, built.new.tree, "both.bin")
    assert node is not None
    assert b"".join(stream.stream_file(again, node)) == built.files["new"]["both.bin"]

    pulled = 0

    def ids() -> Iterator[tuple[BlobType, Id]]:
        nonlocal pulled
        for blob_id in chunk_ids(again, node):
            pulled += 1
            yield BlobType.DATA, blob_id

    lazy = again.reader.read(ids(), window_blobs=2)
    next(lazy)
    assert pulled <= 3 * 2  # this window and the two fetched ahead, no more
    del lazy


def test_stream_content_takes_any_iterable(repo: Repository, built: Built) -> None:
    again = reopen(repo)
    node = find_node(again, built.new.tree, "new.bin")
    assert node is not None
    want = built.files["new"]["new.bin"]
    assert b"".join(stream.stream_content(again, iter(node.content))) == want
    assert b"".join(stream.stream_content(again, iter(node.content[:1]))) == want[:60_000]
    assert list(stream.stream_content(again, iter([]))) == []
    assert b"".join(stream.stream_content(again, tuple(node.content))) == want


def test_stats_count_chunk_lists_and_the_chunks_they_list(repo: Repository, built: Built) -> None:
    stats = snapstore.repository_stats(reopen(repo))
    assert stats.snapshots == 2
    assert stats.logical_bytes == sum(len(v) for f in built.files.values() for v in f.values())
    used_chunks = sum(len(v) for v in built.chunks.values())
    used_lists = sum(len(v) for v in built.lists.values())
    assert stats.unique_content_bytes == used_chunks + used_lists
    assert stats.blobs == len(built.chunks) + len(built.lists) + 2  # and two trees


# -- a delta whose base is gone ---------------------------------------------------------------


def test_a_delta_without_its_base_fails_naming_both(repo: Repository, tmp_path: Path) -> None:
    base_text = varied_text(random.Random(3), 80_000)
    base = repo.save_blob(BlobType.DATA, base_text).id
    repo.flush()
    base_only = {
        i.handle.name for t in (FileType.INDEX, FileType.PACK) for i in repo.list_objects(t)
    }
    delta = repo.save_blob(BlobType.DATA, base_text[:-1] + b"!", bases=[base])
    assert delta.delta
    other = repo.save_blob(BlobType.DATA, os.urandom(1000)).id
    node = Node(b"f", NodeType.FILE, size=80_000 + 1000, content=[delta.id, other])
    tree = repo.save_blob(BlobType.TREE, encode_tree([node])).id
    repo.flush()
    snap = Snapshot(datetime(2026, 5, 1, tzinfo=UTC), "h", "u", [], "files", ["/"], tree)
    save_snapshot(repo, snap)
    for file_type in (FileType.INDEX, FileType.PACK):
        for name in base_only:
            if any(i.handle.name == name for i in repo.list_objects(file_type)):
                repo.backend.remove(Handle(file_type, name))

    again = reopen(repo)
    assert again.lookup(base) is None and again.lookup(delta.id) is not None
    restored = snapstore.restore(again, snap, tmp_path / "out")
    with pytest.raises(SnapstoreError) as dumped:
        b"".join(snapstore.dump_file(again, snap, "f"))
    (error,) = restored.errors  # the file is named, the restore went on
    assert error.startswith("/f: ")
    for message in (error, str(dumped.value)):
        assert base.hex() in message and delta.id.hex() in message
