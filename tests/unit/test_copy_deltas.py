"""`copy_snapshots` of files whose chunks are deltas or listed in chunk-list blobs: the copy
keeps a delta where the destination holds its base whole, builds chunk lists of its own, and
restores byte for byte without the source."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

import snapstore
from snapstore import copy as copy_module
from snapstore.backend.memory import MemoryBackend
from snapstore.crypto.kdf import TEST_KDF
from snapstore.ids import ID_SIZE, Id
from snapstore.pack import BlobType
from snapstore.repository.repository import Repository
from snapstore.snapshot.content import INLINE_CHUNK_LIMIT, chunk_ids, split_chunk_list
from snapstore.snapshot.store import list_snapshots, load_tree
from snapstore.snapshot.tree import Node
from tests.conftest import PASSWORD, assert_repository_ok
from tests.unit.chunk_list_files import MANY, Built, build


@pytest.fixture
def src() -> Iterator[Repository]:
    repo = Repository.init(MemoryBackend("src"), PASSWORD, kdf=TEST_KDF, pack_size=256 << 10)
    yield repo
    repo.close()


@pytest.fixture
def dst_backend() -> MemoryBackend:
    return MemoryBackend("dst")


@pytest.fixture
def dst(dst_backend: MemoryBackend) -> Iterator[Repository]:
    repo = Repository.init(dst_backend, PASSWORD, kdf=TEST_KDF, pack_size=256 << 10)
    yield repo
    repo.close()


def _reopened(backend: MemoryBackend) -> Repository:
    repo = Repository.open(backend, PASSWORD)
    repo.load_index()
    return repo


def _read_dir(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in root.iterdir()}


def _nodes(repo: Repository, tree: Id) -> dict[str, Node]:
    return {n.name.decode(): n for n in load_tree(repo, tree)}


def _copy_and_close_source(src: Repository, dst: Repository, which: str) -> Built:
    built = build(src)
    chosen = [built.new] if which == "new" else [built.old, built.new]
    result = snapstore.copy_snapshots(src, dst, chosen)
    assert [s.metadata["copied_from"] for _, s in result.copied] == [str(s.id) for s in chosen]
    src.close()  # everything below reads the destination only
    return built


@pytest.mark.parametrize("which", ["new", "all"])
def test_copies_restore_byte_identically_from_the_destination_alone(
    src: Repository, dst: Repository, dst_backend: MemoryBackend, tmp_path: Path, which: str
) -> None:
    built = _copy_and_close_source(src, dst, which)
    dst.close()
    again = _reopened(dst_backend)
    for snap in list_snapshots(again):
        tag = snap.tags[0]
        target = tmp_path / snap.short_id
        snapstore.restore(again, snap, target)
        assert _read_dir(target) == built.files[tag]
        for name, want in built.files[tag].items():
            assert b"".join(snapstore.dump_file(again, snap, name)) == want
    # the data chunks that are deltas in the source are deltas in the copy too when their
    # bases (in "old") were copied first; when only "new" was, the destination never had them
    stored_as_deltas = {bytes(i) for i, loc in again.index.entries() if loc.is_delta}
    source_deltas = [built.chunks[i] for i in built.deltas if i in built.chunks]
    assert len(source_deltas) == 2  # A' and C'; the changed chunk lists are built again whole
    want = {bytes(again.hash_blob(data)) for data in source_deltas} if which == "all" else set()
    assert stored_as_deltas == want
    for blob_id in want:
        base = again.delta_base_of(blob_id)
        assert base is not None and not again.index.lookup(base).is_delta  # type: ignore[union-attr]
    assert_repository_ok(again)


def _assert_lists_built_again(dst_backend: MemoryBackend) -> None:
    again = _reopened(dst_backend)
    [old, new] = list_snapshots(again)
    nodes = _nodes(again, new.tree) | _nodes(again, old.tree)
    # few chunks: inline, whatever the source did; many: lists cut by the destination's ids
    for name in ("new.bin", "listed.bin", "old.bin"):
        assert nodes[name].content and not nodes[name].content_lists
    for name in ("both.bin", "old-listed.bin"):
        node = nodes[name]
        assert node.content_lists and not node.content
        ids = chunk_ids(again, node)
        assert len(ids) == MANY > INLINE_CHUNK_LIMIT
        assert node.content_lists == [again.hash_blob(p) for p in split_chunk_list(ids)]
    assert_repository_ok(again)


def test_chunk_lists_are_built_again_in_the_destination(
    src: Repository, dst: Repository, dst_backend: MemoryBackend
) -> None:
    _copy_and_close_source(src, dst, "all")
    dst.close()
    _assert_lists_built_again(dst_backend)


def test_small_batches_cut_the_same_lists(
    src: Repository, dst: Repository, dst_backend: MemoryBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(copy_module, "COPY_BATCH", 37)
    _copy_and_close_source(src, dst, "all")
    dst.close()
    _assert_lists_built_again(dst_backend)


@pytest.mark.parametrize("which", ["new", "all"])
def test_a_destination_without_the_delta_feature_gets_inline_ids_and_no_deltas(
    src: Repository, dst: Repository, dst_backend: MemoryBackend, tmp_path: Path, which: str
) -> None:
    dst.config = dataclasses.replace(dst.config, features=())  # as an older repository's
    built = _copy_and_close_source(src, dst, which)
    dst.close()
    again = _reopened(dst_backend)
    for snap in list_snapshots(again):
        nodes = _nodes(again, snap.tree)
        assert all(n.content and not n.content_lists for n in nodes.values())
        snapstore.restore(again, snap, tmp_path / snap.short_id)
        assert _read_dir(tmp_path / snap.short_id) == built.files[snap.tags[0]]
    # with "all", the bases of "new"'s deltas are there, but its readers may predate deltas
    assert not any(loc.is_delta for _, loc in again.index.entries())


def test_copied_stats_match(src: Repository, dst: Repository, dst_backend: MemoryBackend) -> None:
    built = build(src)
    snapstore.copy_snapshots(src, dst)
    src_stats = snapstore.repository_stats(src)
    dst.close()
    again = _reopened(dst_backend)
    dst_stats = snapstore.repository_stats(again)
    assert dst_stats.logical_bytes == src_stats.logical_bytes
    # the same chunks; only the chunk lists differ (the copy's are cut by its own ids)
    chunks = sum(len(v) for v in built.chunks.values())
    assert src_stats.unique_content_bytes == chunks + sum(len(v) for v in built.lists.values())
    dst_lists = {
        bytes(i)
        for s in list_snapshots(again)
        for n in load_tree(again, s.tree)
        for i in n.content_lists
    }
    assert dst_lists
    assert dst_stats.unique_content_bytes == chunks + sum(
        len(again.load_blob(BlobType.DATA, i)) for i in dst_lists
    )


@pytest.mark.parametrize("seed", range(4))
def test_chunk_lists_in_batches_equal_one_split(seed: int) -> None:
    rng = random.Random(seed)
    ids = [Id(rng.randbytes(ID_SIZE)) for _ in range(rng.choice([900, 1025, 30_000]))]
    saved: list[bytes] = []

    def save(plaintext: bytes) -> Id:
        saved.append(plaintext)
        return Id(len(saved).to_bytes(ID_SIZE, "big"))

    lists = copy_module._ChunkLists(save, listing_allowed=True)
    at = 0
    while at < len(ids):
        step = rng.randint(1, 5000)
        lists.extend(ids[at : at + step])
        at += step
    content, content_lists = lists.finish()
    if len(ids) <= INLINE_CHUNK_LIMIT:
        assert content == ids and content_lists == [] and saved == []
    else:
        assert content == [] and saved == split_chunk_list(ids)
        assert content_lists == [Id(n.to_bytes(ID_SIZE, "big")) for n in range(1, len(saved) + 1)]
