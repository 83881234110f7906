"""repair_snapshots: a file whose content is lost is removed, a directory whose tree cannot be
read is emptied, and the rest is saved as a new snapshot tagged `repaired`; the original goes
only with `forget`, as do snapshot objects that cannot be read. What it removes is exactly what
cannot be read back (each file is read through `dump_file` to know), and after `forget` and
prune the repository checks clean."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import snapstore
from snapstore.backend.base import FileType, Handle
from snapstore.errors import SnapstoreError
from snapstore.ids import Id
from snapstore.repository.repository import Repository
from snapstore.snapshot.store import list_snapshots, load_snapshot
from snapstore.snapshot.tree import NodeType
from snapstore.snapshot.walk import Walker
from tests.conftest import assert_repository_ok, reopen
from tests.support.damage import flip_blob, flip_byte
from tests.support.deep_trees import DEPTH, deep_path, deep_snapshot
from tests.unit.chunk_list_files import build


def stored_snapshots(repo: Repository) -> set[str]:
    return {info.handle.name for info in repo.list_objects(FileType.SNAPSHOT)}


def files_of(repo: Repository, snap: snapstore.Snapshot) -> dict[str, bytes | None]:
    """Every file of a snapshot and its content, None where it cannot be read."""
    out: dict[str, bytes | None] = {}
    for path, node in snapstore.list_tree(repo, snap):
        if node.type is NodeType.FILE:
            try:
                out[path] = b"".join(snapstore.dump_file(repo, snap, path))
            except SnapstoreError:
                out[path] = None
    return out


def lose_pack_of(repo: Repository, blob_id: bytes) -> Id:
    """Deletes the pack holding this blob, then repairs the index (restic's procedure)."""
    location = repo.lookup(blob_id)
    assert location is not None
    repo.backend.remove(Handle(FileType.PACK, location.pack_id.hex()))
    snapstore.repair_index(repo)
    return location.pack_id


@pytest.fixture
def source(tmp_path: Path) -> Path:
    root = tmp_path / "source"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "a.bin").write_bytes(os.urandom(1_500_000))
    (root / "b.bin").write_bytes(os.urandom(1_500_000))
    (root / "small.txt").write_text("small\n")
    (root / "sub" / "c.txt").write_text("c\n" * 1000)
    (root / "sub" / "deeper" / "d.txt").write_text("d\n")
    return root


def backup(repo: Repository, source: Path) -> snapstore.Snapshot:
    return snapstore.take_snapshot(repo, snapstore.FileSource([str(source)])).snapshot


def node_at(repo: Repository, snap: snapstore.Snapshot, suffix: str) -> snapstore.Node:
    return next(node for path, node in snapstore.list_tree(repo, snap) if path.endswith(suffix))


def test_files_whose_content_is_lost_are_removed(repo: Repository, source: Path) -> None:
    snap = backup(repo, source)
    lose_pack_of(repo, node_at(repo, snap, "/a.bin").content[0])
    repo = reopen(repo)
    before = files_of(repo, snap)
    lost = {path for path, data in before.items() if data is None}
    assert lost and len(lost) < len(before)

    report = snapstore.repair_snapshots(repo)
    (entry,) = report.repaired
    assert snap.id is not None
    assert entry.original.id == snap.id and not entry.forgotten
    assert {c.path for c in entry.changes} == lost
    assert all(c.action == "removed" for c in entry.changes)
    assert entry.repaired is not None and entry.repaired.id is not None
    repaired = load_snapshot(repo, entry.repaired.id.hex())
    assert repaired.id is not None
    assert repaired.tags == [*snap.tags, "repaired"]
    assert (repaired.time, repaired.host, repaired.paths) == (snap.time, snap.host, snap.paths)
    assert repaired.metadata["repaired_from"] == snap.id.hex()
    after = files_of(repo, repaired)
    assert after == {path: data for path, data in before.items() if data is not None}
    assert stored_snapshots(repo) == {snap.id.hex(), repaired.id.hex()}

    again = snapstore.repair_snapshots(repo)  # the original is still there: not repaired twice
    assert [e.already.id for e in again.repaired if e.already] == [repaired.id]
    assert len(stored_snapshots(repo)) == 2

    done = snapstore.repair_snapshots(repo, forget=True)
    assert done.repaired[0].forgotten
    assert stored_snapshots(repo) == {repaired.id.hex()}
    snapstore.prune(repo)
    assert_repository_ok(repo)


def test_a_directory_whose_tree_cannot_be_read_is_emptied(repo: Repository, source: Path) -> None:
    snap = backup(repo, source)
    sub = node_at(repo, snap, "/sub")
    assert sub.subtree is not None
    flip_blob(repo, sub.subtree, at=None, bit=0x01)
    repo = reopen(repo)
    report = snapstore.repair_snapshots(repo, forget=True)
    (entry,) = report.repaired
    (change,) = entry.changes
    assert change.path.endswith("/sub") and change.action == "emptied"
    assert entry.repaired is not None
    listed = [path for path, _ in snapstore.list_tree(repo, entry.repaired)]
    assert any(p.endswith("/sub") for p in listed)
    assert not any("/sub/" in p for p in listed)
    assert any(p.endswith("/small.txt") for p in listed)
    snapstore.prune(repo)
    assert_repository_ok(repo)


def test_every_snapshot_sharing_a_lost_file_names_it(repo: Repository, source: Path) -> None:
    first = backup(repo, source)
    (source / "new.txt").write_text("new\n")
    second = backup(repo, source)
    lose_pack_of(repo, node_at(repo, first, "/a.bin").content[0])
    report = snapstore.repair_snapshots(reopen(repo), dry_run=True)
    assert [e.original.id for e in report.repaired] == [first.id, second.id]
    assert report.repaired[0].changes == report.repaired[1].changes


def test_chunk_lists_and_deltas(repo: Repository) -> None:
    built = build(repo)
    base = next(iter(built.deltas))  # one delta; losing its base's pack loses it too
    location = repo.lookup(base)
    assert location is not None and location.is_delta
    candidates = repo.index.ids_with_key(location.base_key)
    lose_pack_of(repo, candidates[0])
    repo = reopen(repo)
    expected = {}
    for snap in (built.old, built.new):
        expected[snap.short_id] = {p for p, data in files_of(repo, snap).items() if data is None}
    report = snapstore.repair_snapshots(repo, forget=True)
    got = {e.original.short_id: {c.path for c in e.changes} for e in report.repaired}
    assert got == {k: v for k, v in expected.items() if v}
    assert got  # something was lost
    for snap in list_snapshots(repo):
        assert None not in files_of(repo, snap).values()
    snapstore.prune(repo)
    assert_repository_ok(repo)


def test_unreadable_snapshot_objects_go_only_with_forget(repo: Repository, source: Path) -> None:
    good = backup(repo, source)
    (source / "new.txt").write_text("new\n")
    bad = backup(repo, source)
    assert good.id is not None and bad.id is not None
    flip_byte(repo.backend, Handle(FileType.SNAPSHOT, bad.id.hex()))
    report = snapstore.repair_snapshots(repo)
    assert list(report.damaged) == [bad.id.hex()] and report.repaired == []
    assert stored_snapshots(repo) == {good.id.hex(), bad.id.hex()}
    report = snapstore.repair_snapshots(repo, forget=True)
    assert report.damaged_removed == [bad.id.hex()]
    assert stored_snapshots(repo) == {good.id.hex()}
    snapstore.prune(repo)
    assert_repository_ok(repo)


def test_a_dry_run_writes_nothing(repo: Repository, source: Path) -> None:
    snap = backup(repo, source)
    assert snap.id is not None
    lose_pack_of(repo, node_at(repo, snap, "/b.bin").content[0])
    repo = reopen(repo)
    objects = {t: {i.handle.name for i in repo.backend.list(t)} for t in FileType}
    report = snapstore.repair_snapshots(repo, dry_run=True, forget=True)
    assert report.repaired and report.repaired[0].repaired is None
    assert report.repaired[0].changes
    assert {t: {i.handle.name for i in repo.backend.list(t)} for t in FileType} == objects


def test_a_whole_repository_is_left_alone(repo: Repository, source: Path) -> None:
    backup(repo, source)
    before = stored_snapshots(repo)
    report = snapstore.repair_snapshots(repo, forget=True)
    assert report.snapshots == 1 and report.repaired == [] and report.damaged == {}
    assert stored_snapshots(repo) == before


def test_a_snapshot_thousands_of_levels_deep(repo: Repository) -> None:
    snap = deep_snapshot(repo)
    leaf = next(Walker(repo).post_order(snap.tree)).nodes[0]
    lose_pack_of(repo, leaf.content[0])
    repo = reopen(repo)
    report = snapstore.repair_snapshots(repo, forget=True)
    (entry,) = report.repaired
    assert [(c.path, c.action) for c in entry.changes] == [(deep_path(DEPTH), "removed")]
    assert entry.repaired is not None
    assert sum(1 for _ in snapstore.list_tree(repo, entry.repaired)) == DEPTH  # directories only
    snapstore.prune(repo)
    assert_repository_ok(repo)
