"""What SPEC.md section 9 promises a reader that predates version 3 trees (special nodes) and
so knows only tree versions 1 and 2 (simulated by narrowing the decoder's versions): it reads
every other tree as before, refuses only the version 3 ones, and its prune stops before it
deletes anything, as for any tree it cannot read."""

from __future__ import annotations

from datetime import UTC, datetime

import msgpack
import pytest

from snapstore.archiver.archiver import Archiver, SnapshotOptions
from snapstore.archiver.source import EntryKind
from snapstore.backend.base import FileType
from snapstore.backend.memory import MemoryBackend
from snapstore.checker.checker import CheckOptions, check_repository
from snapstore.errors import UnsupportedVersion
from snapstore.pack import BlobType
from snapstore.prune import prune
from snapstore.repository.repository import Repository
from snapstore.snapshot import tree as tree_codec
from snapstore.snapshot.manifest import Snapshot
from snapstore.snapshot.store import find_node, load_tree
from tests.conftest import assert_repository_ok, reopen
from tests.support.memory_source import Dir, MemorySource, Spec, Special

WHEN = datetime(2026, 12, 7, tzinfo=UTC)


def backup(repo: Repository, spec: Spec) -> Snapshot:
    return Archiver(repo).run(MemorySource(spec), SnapshotOptions(time=WHEN)).snapshot


def test_an_older_reader_refuses_only_version_3_trees_and_its_prune_deletes_nothing(
    repo: Repository, backend: MemoryBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = backup(repo, {"etc/hosts": b"127.0.0.1 localhost\n"})
    special = backup(repo, {
        "run": Dir(),
        "run/initctl": Special(EntryKind.FIFO),
        "run/sub/kept.txt": b"named only below the version 3 tree",
    })  # fmt: skip
    gone = backup(repo, {"tmp/junk": b"x" * 100_000})
    assert gone.id is not None
    repo.remove_object(FileType.SNAPSHOT, gone.id.hex())  # prune would free its blob
    run = find_node(repo, special.tree, "run")
    assert run is not None and run.subtree is not None
    assert msgpack.unpackb(repo.load_blob(BlobType.TREE, run.subtree))["v"] == 3
    assert msgpack.unpackb(repo.load_blob(BlobType.TREE, special.tree))["v"] == 1
    stored = {i.handle: backend.load(i.handle) for t in FileType for i in backend.list(t)}

    monkeypatch.setattr(tree_codec, "_VERSIONS", (1, 2))  # a reader from before version 3
    older = reopen(repo)
    assert [n.name for n in load_tree(older, plain.tree)] == [b"etc"]
    assert [n.name for n in load_tree(older, special.tree)] == [b"run"]  # a version 1 tree
    with pytest.raises(UnsupportedVersion, match="tree version 3"):
        load_tree(older, run.subtree)
    assert not check_repository(older, CheckOptions()).ok
    with pytest.raises(UnsupportedVersion):
        prune(older)
    after = {i.handle: backend.load(i.handle) for t in FileType for i in backend.list(t)
             if t is not FileType.LOCK}
    assert after == {h: d for h, d in stored.items() if h.type is not FileType.LOCK}

    monkeypatch.undo()
    report = prune(reopen(repo))  # today's reader: the junk goes, the special tree stays
    assert report.bytes_freed > 0
    assert find_node(reopen(repo), special.tree, "run/sub/kept.txt") is not None
    assert_repository_ok(repo)
