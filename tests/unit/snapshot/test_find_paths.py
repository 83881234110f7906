"""find_paths: matches across snapshots newest first, as restore's --exclude matches, and a
subtree without matches at the same path is not walked again in an older snapshot."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from snapstore.archiver.archiver import Archiver, SnapshotOptions
from snapstore.errors import UsageError
from snapstore.pack import BlobType
from snapstore.repository.repository import Repository
from snapstore.snapshot.manifest import Snapshot
from snapstore.snapshot.search import find_paths
from snapstore.snapshot.store import find_node
from tests.conftest import assert_repository_ok
from tests.support.memory_source import Dir, File, MemorySource, Spec

DAY1 = datetime(2026, 5, 1, 3, tzinfo=UTC)


def backup(repo: Repository, spec: Spec, day: int) -> Snapshot:
    options = SnapshotOptions(time=DAY1 + timedelta(days=day))
    return Archiver(repo).run(MemorySource(spec), options).snapshot


def tree_loads(repo: Repository, monkeypatch: pytest.MonkeyPatch) -> Counter[bytes]:
    counts: Counter[bytes] = Counter()
    real = repo.load_blob

    def counting(blob_type: BlobType, wanted: bytes) -> bytes:
        if blob_type is BlobType.TREE:
            counts[bytes(wanted)] += 1
        return real(blob_type, wanted)

    monkeypatch.setattr(repo, "load_blob", counting)
    return counts


BIG = {f"srv/media/f{i:03}.png": b"png %d" % i for i in range(50)}


def test_matches_by_name_and_by_whole_path_newest_snapshot_first(repo: Repository) -> None:
    old = backup(repo, {"srv/log/a.log": b"a", "srv/keep.txt": b"k"}, 0)
    new = backup(repo, {"srv/log/a.log": b"a2", "srv/log/b.log": b"b", "srv/keep.txt": b"k"}, 1)

    by_name = [(m.snapshot.id, m.path, m.node.size) for m in find_paths(repo, [old, new], ["*.log"])]
    assert by_name == [
        (new.id, "/srv/log/a.log", 2), (new.id, "/srv/log/b.log", 1), (old.id, "/srv/log/a.log", 1),
    ]
    whole = [m.path for m in find_paths(repo, [old, new], ["/srv/*/b.*"])]
    assert whole == ["/srv/log/b.log"]
    dirs = [(m.path, m.node.type.value) for m in find_paths(repo, [new], ["log"])]
    assert dirs == [("/srv/log", "dir")]
    assert list(find_paths(repo, [old, new, old], ["keep.txt"]))[-1].snapshot.id == old.id
    assert len(list(find_paths(repo, [old, new, old], ["keep.txt"]))) == 2  # old named twice
    assert_repository_ok(repo)


def test_a_barren_subtree_at_the_same_path_is_walked_once(
    repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    snaps = [backup(repo, {**BIG, "srv/notes/day.txt": File(b"day %d" % day)}, day) for day in range(3)]
    media = find_node(repo, snaps[0].tree, "srv/media")
    assert media is not None and media.subtree is not None
    loads = tree_loads(repo, monkeypatch)

    found = list(find_paths(repo, snaps, ["day.txt"]))

    assert [m.snapshot.id for m in found] == [s.id for s in reversed(snaps)]  # each lists its own
    assert loads[bytes(media.subtree)] == 1  # no match below: not walked in the older two
    notes = find_node(repo, snaps[0].tree, "srv/notes")
    assert notes is not None and notes.subtree is not None
    assert loads[bytes(notes.subtree)] == 1  # a different tree each day, holding the match


def test_the_same_tree_at_another_path_is_walked_there(repo: Repository) -> None:
    old = backup(repo, {"a/x/f.txt": b"same"}, 0)
    new = backup(repo, {"b/x/f.txt": b"same"}, 1)
    assert [m.path for m in find_paths(repo, [old, new], ["/b/*"])] == ["/b/x", "/b/x/f.txt"]
    assert [m.path for m in find_paths(repo, [new, old], ["/*/x/f.txt"])] == ["/b/x/f.txt", "/a/x/f.txt"]


def test_a_subtree_holding_matches_is_listed_in_every_snapshot(repo: Repository) -> None:
    snaps = [backup(repo, {"etc/app.conf": b"same", "etc": Dir()}, day) for day in range(3)]
    found = [(m.snapshot.id, m.path) for m in find_paths(repo, snaps, ["*.conf"])]
    assert found == [(s.id, "/etc/app.conf") for s in reversed(snaps)]


def test_no_pattern_is_a_usage_error(repo: Repository) -> None:
    with pytest.raises(UsageError):
        list(find_paths(repo, [], []))
