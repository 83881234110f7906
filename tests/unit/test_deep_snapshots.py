"""A snapshot thousands of directories deep (`deep_trees.DEPTH`) through the library: ls,
stats, check, prune and copy (issue 10 item 2; each of them used to fail with RecursionError
from about 1,000 levels)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

import snapstore
from snapstore.backend.base import FileType, Handle
from snapstore.backend.memory import MemoryBackend
from snapstore.checker import findings as F
from snapstore.checker.checker import CheckOptions, CheckReport, check_repository
from snapstore.crypto.kdf import TEST_KDF
from snapstore.errors import IntegrityError
from snapstore.ids import Id
from snapstore.repository.repository import Repository
from snapstore.snapshot.manifest import Snapshot
from snapstore.snapshot.store import list_snapshots
from snapstore.snapshot.walk import Walker
from tests.conftest import PASSWORD, assert_repository_ok, reopen
from tests.support.deep_trees import DEPTH, WHEN, deep_path, deep_snapshot
from tests.support.memory_source import MemorySource

LEAF = b"at the bottom\n"
OTHER_LEAF = b"another leaf\n"


@pytest.fixture
def deep(repo: Repository) -> Snapshot:
    return deep_snapshot(repo, LEAF)


def check(repo: Repository, read_data: bool) -> CheckReport:
    return check_repository(reopen(repo, load_index=False), CheckOptions(read_data=read_data))


def assert_deep_listing(repo: Repository, snap: Snapshot) -> None:
    count = 0
    for count, (path, node) in enumerate(snapstore.list_tree(repo, snap), 1):
        assert path == deep_path(count - 1)
        assert node.type is (snapstore.NodeType.DIR if count <= DEPTH else snapstore.NodeType.FILE)
    assert count == DEPTH + 1


def bottom_tree(repo: Repository, snap: Snapshot) -> Id:
    return next(Walker(repo).post_order(snap.tree)).tree_id


def test_ls_lists_every_level_in_order(repo: Repository, deep: Snapshot) -> None:
    assert_deep_listing(repo, deep)
    # from a directory half way down: itself first, then what is below it
    half = "/".join(["d"] * (DEPTH // 2))
    entries = snapstore.list_tree(repo, deep, half)
    assert next(entries)[0] == "/" + half
    assert [path for path, _ in entries][-1] == deep_path(DEPTH)
    assert_repository_ok(repo)


def test_stats_counts_shared_deep_trees_for_every_snapshot(repo: Repository, deep: Snapshot) -> None:
    deep_snapshot(repo, LEAF, when=WHEN + timedelta(days=1))  # the very same trees
    deep_snapshot(repo, OTHER_LEAF)  # every tree differs: the leaf is at the bottom
    stats = snapstore.repository_stats(reopen(repo))
    assert stats.snapshots == 3
    assert stats.logical_bytes == 2 * len(LEAF) + len(OTHER_LEAF)
    assert stats.unique_content_bytes == len(LEAF) + len(OTHER_LEAF)
    assert stats.blobs == 2 * (DEPTH + 2)
    assert_repository_ok(repo)


def test_check_walks_every_level(repo: Repository, deep: Snapshot) -> None:
    for read_data in (False, True):
        report = check(repo, read_data)
        assert report.ok and report.findings == [], [str(f) for f in report.findings]
        assert report.snapshots == 1 and report.blobs == DEPTH + 2
    assert_repository_ok(repo)


def test_damage_at_the_bottom_is_found_and_named_for_its_snapshot(
    repo: Repository, deep: Snapshot
) -> None:
    options = snapstore.SnapshotOptions(time=WHEN + timedelta(days=1))
    sound = snapstore.take_snapshot(repo, MemorySource({"a": b"a"}), options).snapshot
    bottom = bottom_tree(repo, deep)
    location = reopen(repo).index.lookup(bottom)
    assert location is not None
    handle = Handle(FileType.PACK, location.pack_id.hex())
    damaged = bytearray(repo.backend.load(handle))
    damaged[location.offset + 20] ^= 0x01
    repo.backend.save(handle, bytes(damaged))

    report = check(repo, read_data=False)
    (tree,) = report.errors
    assert (tree.kind, tree.subject, tree.snapshots) == (F.TREE_DAMAGED, bottom.hex(), [deep.short_id])
    report = check(repo, read_data=True)
    pack = next(f for f in report.errors if f.kind == F.PACK_DAMAGED)
    assert pack.snapshots == [deep.short_id] and sound.short_id not in tree.snapshots

    with pytest.raises(IntegrityError, match=f"tree {bottom.hex()[:16]} of snapshot {deep.short_id}"):
        snapstore.prune(reopen(repo))
    assert len(list_snapshots(repo)) == 2


def test_prune_keeps_a_deep_snapshot_and_frees_a_forgotten_one(
    repo: Repository, deep: Snapshot
) -> None:
    gone = deep_snapshot(repo, OTHER_LEAF, when=WHEN + timedelta(days=1))
    assert gone.id is not None
    repo.remove_object(FileType.SNAPSHOT, gone.id.hex())
    report = snapstore.prune(reopen(repo), snapstore.PruneOptions(max_unused=0))
    assert report.snapshots == 1
    assert report.blobs_used == DEPTH + 2 and report.blobs_unused == DEPTH + 2
    again = reopen(repo)
    assert len(again.index) == DEPTH + 2
    assert_deep_listing(again, deep)
    assert_repository_ok(repo)


@pytest.fixture
def dst() -> Iterator[Repository]:
    repo = Repository.init(MemoryBackend("dst"), PASSWORD, kdf=TEST_KDF, pack_size=1 << 20)
    yield repo
    repo.close()


def test_copy_copies_the_deep_snapshot_and_the_ones_after_it(
    repo: Repository, deep: Snapshot, dst: Repository
) -> None:
    options = snapstore.SnapshotOptions(time=WHEN + timedelta(days=1))
    later = snapstore.take_snapshot(repo, MemorySource({"etc/hosts": b"::1\n"}), options).snapshot
    result = snapstore.copy_snapshots(repo, dst)
    assert [(s.id, c.metadata["copied_from"]) for s, c in result.copied] == [
        (deep.id, deep.id.hex() if deep.id else None),
        (later.id, later.id.hex() if later.id else None),
    ]
    deep_copy = result.copied[0][1]
    assert_deep_listing(dst, deep_copy)
    assert snapstore.copy_snapshots(repo, dst).skipped == [deep, later]
    assert [p for p, _ in snapstore.list_tree(dst, result.copied[1][1])] == ["/etc", "/etc/hosts"]
    assert_repository_ok(dst)
    assert_repository_ok(repo)
