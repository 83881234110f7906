"""retag_snapshots and rewrite_snapshots: a changed snapshot is a new object recording its
`original`, saved before the old one is removed; rewrite drops the matching paths (and what is
below a matching directory) and nothing else."""

from __future__ import annotations

import os

import pytest

import snapstore
from snapstore.backend.base import FileType
from snapstore.errors import UsageError
from snapstore.prune import PruneOptions, prune
from snapstore.repository.repository import Repository
from snapstore.snapshot.rewrite import ORIGINAL, retag_snapshots, rewrite_snapshots
from snapstore.snapshot.store import list_snapshots, load_snapshot
from snapstore.snapshot.tree import NodeType
from tests.conftest import assert_repository_ok
from tests.unit.checker.test_checker import backup

SECRET = os.urandom(5000)
TREE = {
    "etc/app/config.yml": b"setting: 1\n",
    "etc/app/secret.key": SECRET,
    "etc/app/cache/a.bin": os.urandom(3000),
    "home/u/notes.txt": b"notes\n",
    "home/u/secret.key": b"another secret\n",
}


def files(repo: Repository, snap: snapstore.Snapshot) -> dict[str, bytes]:
    return {
        path: b"".join(snapstore.dump_file(repo, snap, path))
        for path, node in snapstore.list_tree(repo, snap)
        if node.type is NodeType.FILE
    }


def stored(repo: Repository) -> set[str]:
    return {i.handle.name for i in repo.list_objects(FileType.SNAPSHOT)}


def test_tags_add_remove_set(repo: Repository) -> None:
    snap = backup(repo, {"a": b"x"})
    assert snap.id is not None
    [added] = retag_snapshots(repo, [snap.id.hex()[:8]], add=["b", "a"])
    assert added.new is not None and added.new.tags == ["a", "b"] and added.original_removed
    assert added.new.metadata[ORIGINAL] == snap.id.hex()
    assert added.new.id is not None and stored(repo) == {added.new.id.hex()}
    [removed] = retag_snapshots(repo, ["latest"], remove=["a"])
    assert removed.new is not None and removed.new.tags == ["b"]
    assert removed.new.metadata[ORIGINAL] == snap.id.hex()  # the first original, as restic
    [same] = retag_snapshots(repo, ["latest"], add=["b"])
    assert same.new is None and not same.original_removed  # nothing to change
    [cleared] = retag_snapshots(repo, ["latest"], set_to=[])
    assert cleared.new is not None and cleared.new.tags == []
    assert len(stored(repo)) == 1 and load_snapshot(repo, next(iter(stored(repo)))).tree == snap.tree
    with pytest.raises(UsageError):
        retag_snapshots(repo, ["latest"], add=["x"], set_to=["y"])
    assert_repository_ok(repo)


def test_rewrite_removes_matching_paths_only(repo: Repository) -> None:
    snap = backup(repo, TREE)
    before = files(repo, snap)
    [entry] = rewrite_snapshots(repo, ["latest"], ["*.key", "/etc/app/cache"])
    assert entry.removed_paths == ["/etc/app/cache", "/etc/app/secret.key", "/home/u/secret.key"]
    assert entry.new is not None and not entry.original_removed
    assert entry.new.tags == ["rewrite"] and entry.new.metadata[ORIGINAL] == snap.id.hex()  # type: ignore[union-attr]
    after = files(repo, entry.new)
    assert after == {p: d for p, d in before.items() if not p.endswith(".key") and "cache" not in p}
    assert len(stored(repo)) == 2  # the original stays without forget
    assert_repository_ok(repo)


def test_rewrite_forget_then_prune_drops_the_secret(repo: Repository) -> None:
    backup(repo, TREE)
    secret_id = repo.hash_blob(SECRET)
    assert repo.lookup(secret_id) is not None
    [dry] = rewrite_snapshots(repo, ["latest"], ["secret.key"], dry_run=True)
    assert dry.new is None and len(dry.removed_paths) == 2 and len(stored(repo)) == 1
    [entry] = rewrite_snapshots(repo, ["latest"], ["secret.key"], forget=True)
    assert entry.original_removed and entry.new is not None and entry.new.tags == []
    assert [s.id for s in list_snapshots(repo)] == [entry.new.id]
    prune(repo, PruneOptions(max_unused=0.0))
    repo.load_index()
    assert repo.lookup(secret_id) is None
    assert_repository_ok(repo)


def test_rewrite_of_nothing_matching_changes_nothing(repo: Repository) -> None:
    snap = backup(repo, TREE)
    [entry] = rewrite_snapshots(repo, ["latest"], ["*.nothing"])
    assert not entry.changed and stored(repo) == {snap.id.hex()}  # type: ignore[union-attr]
    with pytest.raises(UsageError):
        rewrite_snapshots(repo, ["latest"], [])
