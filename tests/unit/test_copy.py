"""`copy_snapshots`: between repositories with different keys, idempotent, shared data once."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

import snapstore
from snapstore.archiver.source import EntryKind
from snapstore.backend.faulty import FaultyBackend
from snapstore.backend.memory import MemoryBackend
from snapstore.crypto.kdf import TEST_KDF
from snapstore.repository.repository import Repository
from snapstore.snapshot.content import chunk_ids
from snapstore.snapshot.store import list_snapshots
from snapstore.snapshot.tree import NodeType
from tests.conftest import PASSWORD, assert_repository_ok
from tests.support.memory_source import Dir, MemorySource, Special, read_tree

FILES: dict[str, bytes] = {
    "etc/hosts": b"127.0.0.1 localhost\n",
    "etc/big.bin": random.Random(5).randbytes(2_000_000),
    "var/log/app.log": b"line\n" * 20_000,
    "var/empty": b"",
}


@pytest.fixture
def src() -> Iterator[Repository]:
    repo = Repository.init(MemoryBackend("src"), PASSWORD, kdf=TEST_KDF, pack_size=256 << 10)
    yield repo
    repo.close()


@pytest.fixture
def dst_backend() -> FaultyBackend:
    return FaultyBackend(MemoryBackend("dst"))


@pytest.fixture
def dst(dst_backend: FaultyBackend) -> Iterator[Repository]:
    repo = Repository.init(dst_backend, PASSWORD, kdf=TEST_KDF, pack_size=256 << 10)
    yield repo
    repo.close()


def backup(repo: Repository, files: dict[str, bytes], tag: str) -> snapstore.Snapshot:
    options = snapstore.SnapshotOptions(tags=[tag], host="db1")
    return snapstore.take_snapshot(repo, MemorySource(files), options).snapshot


def test_copy_restores_identically_with_new_ids(
    src: Repository, dst: Repository, tmp_path: Path
) -> None:
    original = backup(src, FILES, "first")
    result = snapstore.copy_snapshots(src, dst)
    [(source, copy)] = result.copied
    assert source.id == original.id
    assert copy.tree != original.tree  # keyed ids differ between the repositories
    assert (copy.time, copy.host, copy.tags, copy.paths, copy.source) == (
        original.time, original.host, original.tags, original.paths, original.source
    )  # fmt: skip
    assert copy.metadata["copied_from"] == original.id.hex()
    assert result.blobs_added > 0
    [stored] = list_snapshots(dst)
    assert stored.id == copy.id
    snapstore.restore(dst, stored, tmp_path / "out")
    assert read_tree(tmp_path / "out") == read_tree_of(src, original, tmp_path / "ref")
    assert_repository_ok(dst)


def read_tree_of(repo: Repository, snap: snapstore.Snapshot, target: Path) -> object:
    snapstore.restore(repo, snap, target)
    return read_tree(target)


def test_copying_again_copies_nothing(
    src: Repository, dst: Repository, dst_backend: FaultyBackend
) -> None:
    backup(src, FILES, "first")
    snapstore.copy_snapshots(src, dst)
    saves = dst_backend.calls("save")
    again = snapstore.copy_snapshots(src, dst)
    assert again.copied == [] and len(again.skipped) == 1
    assert again.blobs_read == 0
    assert dst_backend.calls("save") == saves
    assert len(list_snapshots(dst)) == 1
    assert_repository_ok(dst)


def test_only_new_data_is_stored_and_shared_data_is_read_once(
    src: Repository, dst: Repository
) -> None:
    backup(src, FILES, "first")
    changed = dict(FILES, **{"etc/hosts": b"10.0.0.1 db\n"})
    second = backup(src, changed, "second")
    first_copy = snapstore.copy_snapshots(src, dst, [list_snapshots(src)[0]])
    rest = snapstore.copy_snapshots(src, dst)
    assert [s.id for s, _ in rest.copied] == [second.id]
    assert rest.blobs_added <= 3  # the changed file, its folder and the root tree
    assert rest.bytes_added < first_copy.bytes_added / 10
    [(_, copy)] = rest.copied
    assert copy.parent is None or copy.parent == first_copy.copied[0][1].id
    assert_repository_ok(dst)


def test_one_run_reads_shared_subtrees_once(src: Repository, dst: Repository) -> None:
    backup(src, FILES, "first")
    backup(src, FILES, "again")  # the same tree
    result = snapstore.copy_snapshots(src, dst)
    assert len(result.copied) == 2
    assert result.copied[0][1].tree == result.copied[1][1].tree
    distinct_data = {bytes(b) for n in _file_nodes(src) for b in n}
    assert result.blobs_read == len(distinct_data)
    assert_repository_ok(dst)


def _file_nodes(repo: Repository) -> list[list[bytes]]:
    snap = list_snapshots(repo)[0]
    return [
        [bytes(b) for b in chunk_ids(repo, node)]
        for _, node in snapstore.list_tree(repo, snap)
        if node.type is NodeType.FILE
    ]


def test_a_copy_of_a_copy_records_its_own_source(src: Repository, dst: Repository) -> None:
    backup(src, FILES, "first")
    snapstore.copy_snapshots(src, dst)
    third = Repository.init(MemoryBackend("third"), PASSWORD, kdf=TEST_KDF)
    dst.load_index()
    [made] = snapstore.copy_snapshots(dst, third).copied
    assert made[1].metadata["copied_from"] == made[0].id.hex()  # type: ignore[union-attr]
    assert_repository_ok(third)


def test_special_nodes_are_copied_also_into_a_repository_without_delta_v1(
    src: Repository, dst: Repository, tmp_path: Path
) -> None:
    """Version 3 trees need no feature: a repository older than delta-v1 takes them too."""
    dst.config = dataclasses.replace(dst.config, features=())  # as an older repository's
    spec = {
        "dev": Dir(),
        "dev/initctl": Special(EntryKind.FIFO, mode=0o620),
        "dev/log": Special(EntryKind.SOCKET),
        "dev/null": Special(EntryKind.CHARDEV, mode=0o666, rdev=(1, 3)),
        "etc/hosts": FILES["etc/hosts"],
    }
    original = backup(src, spec, "dev")
    [(_, copy)] = snapstore.copy_snapshots(src, dst).copied
    nodes = {p: n for p, n in snapstore.list_tree(dst, copy, "/dev")}
    assert {p: n.type for p, n in nodes.items()} == {
        "/dev": NodeType.DIR, "/dev/initctl": NodeType.FIFO, "/dev/log": NodeType.SOCKET,
        "/dev/null": NodeType.CHARDEV,
    }  # fmt: skip
    assert (nodes["/dev/null"].rdev_major, nodes["/dev/null"].rdev_minor) == (1, 3)
    assert nodes["/dev/initctl"].mode == 0o620
    before = {p: n.type for p, n in snapstore.list_tree(src, original, "/dev")}
    assert before == {p: n.type for p, n in nodes.items()}
    assert_repository_ok(dst)
