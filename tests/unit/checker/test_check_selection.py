"""check --host/--tag/--path (issue 14, item 5): only the trees of the snapshots chosen are
walked; every snapshot object is still read, so a damaged one is found whatever the filters."""

from __future__ import annotations

import os
from datetime import UTC, datetime

from snapstore.archiver.archiver import Archiver, SnapshotOptions
from snapstore.backend.base import FileType
from snapstore.checker import findings as F
from snapstore.checker.checker import CheckOptions, CheckReport, check_repository
from snapstore.ids import Id
from snapstore.pack import BlobType
from snapstore.repository.repository import Repository
from snapstore.snapshot.manifest import Snapshot
from snapstore.snapshot.selection import SnapshotFilter
from snapstore.snapshot.store import save_snapshot
from snapstore.snapshot.tree import Node, NodeType, encode_tree
from tests.conftest import reopen
from tests.support.memory_source import MemorySource

WHEN = datetime(2026, 5, 1, tzinfo=UTC)


def check(repo: Repository, selection: SnapshotFilter | None = None) -> CheckReport:
    return check_repository(reopen(repo, load_index=False), CheckOptions(selection=selection))


def test_only_the_chosen_snapshots_trees_are_walked(repo: Repository) -> None:
    good = Archiver(repo).run(MemorySource({"f": b"content"}), SnapshotOptions(time=WHEN, host="web1"))
    phantom = Id(os.urandom(32))
    tree = repo.save_blob(BlobType.TREE, encode_tree([Node(b"f", NodeType.FILE, content=[phantom])]))
    repo.flush()
    broken = Snapshot(WHEN, "web2", "u", ["db"], "test", ["/srv"], tree.id)
    save_snapshot(repo, broken)

    everything = check(repo)
    assert not everything.ok and everything.snapshots == 2
    assert [f.snapshots for f in everything.findings if f.kind == F.BLOB_MISSING] == [[broken.short_id]]
    web1 = check(repo, SnapshotFilter(hosts=["web1"]))
    assert web1.ok and web1.findings == [] and web1.snapshots == 1
    assert not check(repo, SnapshotFilter(tags=["db"])).ok
    assert not check(repo, SnapshotFilter(paths=["/srv"])).ok

    # a damaged snapshot object is a finding whatever the filters choose
    assert good.snapshot.id is not None
    name = good.snapshot.id.hex()
    handle = next(i.handle for i in repo.backend.list(FileType.SNAPSHOT) if i.handle.name == name)
    data = bytearray(repo.backend.load(handle))
    data[30] ^= 1
    repo.backend.save(handle, bytes(data))
    damaged = check(repo, SnapshotFilter(hosts=["web2"]))
    assert [f.kind for f in damaged.findings if f.kind == F.SNAPSHOT_DAMAGED] == [F.SNAPSHOT_DAMAGED]
