"""The checker: typed findings for each kind of damage, attributed to the snapshots it hurts."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import pytest

from snapstore.archiver.archiver import Archiver, SnapshotOptions
from snapstore.backend.base import FileType, Handle
from snapstore.checker import findings as F
from snapstore.checker.checker import CheckOptions, CheckReport, check_repository
from snapstore.checker.findings import Finding
from snapstore.checker.read_data import selected
from snapstore.ids import Id
from snapstore.pack import BlobType
from snapstore.progress import NoProgress
from snapstore.repository.repository import Repository
from snapstore.snapshot.manifest import Snapshot
from snapstore.snapshot.store import save_snapshot
from snapstore.snapshot.tree import Node, NodeType, encode_tree
from tests.conftest import PASSWORD, assert_repository_ok, reopen
from tests.support.damage import flip_byte as flip
from tests.support.memory_source import MemorySource, Spec

WHEN = datetime(2026, 5, 1, tzinfo=UTC)


def backup(repo: Repository, spec: Spec) -> Snapshot:
    return Archiver(repo).run(MemorySource(spec), SnapshotOptions(time=WHEN)).snapshot


def check(repo: Repository, read_data: bool = True, **options: object) -> CheckReport:
    return check_repository(
        reopen(repo, load_index=False),
        CheckOptions(read_data=read_data, **options),  # type: ignore[arg-type]
    )


def pack_of(repo: Repository, blob_id: bytes) -> Id:
    location = reopen(repo).index.lookup(blob_id)
    assert location is not None
    return location.pack_id


def only(report: CheckReport, kind: str) -> Finding:
    found = [f for f in report.findings if f.kind == kind]
    assert len(found) == 1, [str(f) for f in report.findings]
    return found[0]


@pytest.fixture
def two_snapshots(repo: Repository) -> tuple[Snapshot, Snapshot, bytes, bytes]:
    """Snapshot 1 holds `shared`; snapshot 2 holds `shared` and `own` (in a later pack)."""
    shared, own = os.urandom(50_000), os.urandom(50_000)
    first = backup(repo, {"shared": shared})
    second = backup(repo, {"shared": shared, "own": own})
    return first, second, shared, own


def test_clean_repository(repo: Repository, two_snapshots: tuple[Snapshot, ...]) -> None:
    report = check(repo)
    assert report.ok and report.findings == []
    assert report.snapshots == 2
    assert report.packs == len(list(repo.backend.list(FileType.PACK))) == report.packs_read == 4  # a data and a tree pack each
    assert report.blobs == 2 + 2  # two data blobs, two root trees
    assert check(repo, read_data=False).packs_read == 0
    assert_repository_ok(repo)


def test_empty_repository(repo: Repository) -> None:
    report = check(repo)
    assert report.ok and (report.snapshots, report.packs, report.blobs) == (0, 0, 0)
    assert_repository_ok(repo)


def test_flipped_byte_in_a_pack(
    repo: Repository, two_snapshots: tuple[Snapshot, Snapshot, bytes, bytes]
) -> None:
    first, second, shared, _ = two_snapshots
    damaged = pack_of(repo, repo.hash_blob(shared))
    location = reopen(repo).index.lookup(repo.hash_blob(shared))
    assert location is not None
    flip(repo.backend, Handle(FileType.PACK, damaged.hex()), location.offset + 1000)

    assert check(repo, read_data=False).ok  # structure is whole: the damage is in data
    report = check(repo)
    assert not report.ok
    finding = only(report, F.PACK_DAMAGED)
    assert finding.error and finding.subject == damaged.hex()
    assert "1 of 1 blobs damaged" in finding.message  # the data blob (trees have packs of their own)
    assert sorted(finding.snapshots) == sorted([first.short_id, second.short_id])
    assert damaged.hex() in str(finding) and first.short_id in str(finding)
    assert report.errors == [finding]


def test_damage_attributed_only_to_the_snapshots_it_hurts(
    repo: Repository, two_snapshots: tuple[Snapshot, Snapshot, bytes, bytes]
) -> None:
    _, second, shared, own = two_snapshots
    damaged = pack_of(repo, repo.hash_blob(own))
    assert damaged != pack_of(repo, repo.hash_blob(shared))
    location = reopen(repo).index.lookup(repo.hash_blob(own))
    assert location is not None
    flip(repo.backend, Handle(FileType.PACK, damaged.hex()), location.offset + 30)
    finding = only(check(repo), F.PACK_DAMAGED)
    assert finding.subject == damaged.hex()
    assert finding.snapshots == [second.short_id]


def test_damaged_pack_header(
    repo: Repository, two_snapshots: tuple[Snapshot, Snapshot, bytes, bytes]
) -> None:
    _, _, shared, _ = two_snapshots
    damaged = pack_of(repo, repo.hash_blob(shared))
    size = repo.backend.stat(Handle(FileType.PACK, damaged.hex())).size
    flip(repo.backend, Handle(FileType.PACK, damaged.hex()), size - 20)  # inside the header tag
    finding = only(check(repo), F.PACK_DAMAGED)
    assert "header" in finding.message and finding.subject == damaged.hex()


def test_deleted_pack(
    repo: Repository, two_snapshots: tuple[Snapshot, Snapshot, bytes, bytes]
) -> None:
    _, second, _, own = two_snapshots
    missing = pack_of(repo, repo.hash_blob(own))
    repo.backend.remove(Handle(FileType.PACK, missing.hex()))
    report = check(repo, read_data=False)
    assert not report.ok
    finding = only(report, F.PACK_MISSING)
    assert finding.subject == missing.hex() and finding.error
    assert finding.snapshots == [second.short_id]
    # Its trees are in a tree pack of their own, which is whole.
    assert not [f for f in report.findings if f.kind == F.TREE_DAMAGED]


def test_truncated_pack(
    repo: Repository, two_snapshots: tuple[Snapshot, Snapshot, bytes, bytes]
) -> None:
    _, second, _, own = two_snapshots
    pack_id = pack_of(repo, repo.hash_blob(own))
    handle = Handle(FileType.PACK, pack_id.hex())
    repo.backend.save(handle, repo.backend.load(handle)[:1000])
    finding = only(check(repo, read_data=False), F.PACK_DAMAGED)
    assert finding.subject == pack_id.hex() and finding.snapshots == [second.short_id]


def test_pack_without_index_is_a_note(repo: Repository) -> None:
    """A crash after a pack upload but before its index file leaves an unindexed pack."""
    backup(repo, {"kept": b"kept"})
    indexes_before = {i.handle for i in repo.backend.list(FileType.INDEX)}
    repo.save_blob(BlobType.DATA, os.urandom(1000))
    repo.flush()
    (new_index,) = {i.handle for i in repo.backend.list(FileType.INDEX)} - indexes_before
    repo.backend.remove(new_index)
    for read_data in (False, True):
        report = check(repo, read_data=read_data)
        assert report.ok, [str(f) for f in report.findings]
        note = only(report, F.PACK_UNINDEXED)
        assert not note.error and len(note.subject) == 64
    assert_repository_ok(repo)


def test_damaged_index_file(repo: Repository) -> None:
    snap = backup(repo, {"f": b"content"})
    (index,) = [i.handle for i in repo.backend.list(FileType.INDEX)]
    flip(repo.backend, index, 40)
    report = check(repo, read_data=False)
    assert not report.ok
    finding = only(report, F.INDEX_DAMAGED)
    assert finding.error and index.name.startswith(finding.subject)
    # The checker keeps going: without that index the snapshot's tree is unaccounted for.
    assert only(report, F.BLOB_MISSING).snapshots == [snap.short_id]
    unindexed = [f for f in report.findings if f.kind == F.PACK_UNINDEXED]
    assert len(unindexed) == 2 and not any(f.error for f in unindexed)  # a data and a tree pack


def test_damaged_snapshot_object(repo: Repository) -> None:
    backup(repo, {"f": b"content"})
    (handle,) = [i.handle for i in repo.backend.list(FileType.SNAPSHOT)]
    flip(repo.backend, handle, 30)
    finding = only(check(repo, read_data=False), F.SNAPSHOT_DAMAGED)
    assert handle.name.startswith(finding.subject)


def test_blob_missing_from_the_index(repo: Repository) -> None:
    phantom = Id(os.urandom(32))
    tree = repo.save_blob(
        BlobType.TREE, encode_tree([Node(b"f", NodeType.FILE, content=[phantom])])
    )
    repo.flush()
    snap = Snapshot(WHEN, "h", "u", [], "test", [], tree.id)
    save_snapshot(repo, snap)
    report = check(repo)
    finding = only(report, F.BLOB_MISSING)
    assert finding.subject == phantom.hex() and finding.snapshots == [snap.short_id]
    assert not report.ok


def test_several_problems_are_all_reported(
    repo: Repository, two_snapshots: tuple[Snapshot, Snapshot, bytes, bytes]
) -> None:
    _, _, shared, own = two_snapshots
    repo.backend.remove(Handle(FileType.PACK, pack_of(repo, repo.hash_blob(own)).hex()))
    damaged = pack_of(repo, repo.hash_blob(shared))
    location = reopen(repo).index.lookup(repo.hash_blob(shared))
    assert location is not None
    flip(repo.backend, Handle(FileType.PACK, damaged.hex()), location.offset + 99)
    kinds = sorted(f.kind for f in check(repo).errors)
    assert kinds == sorted([F.PACK_MISSING, F.PACK_DAMAGED])  # trees are in packs of their own


class PacksDone(NoProgress):
    """Counts the packs check reports read."""

    def __init__(self) -> None:
        self.stage = ""
        self.count = 0

    def phase(self, name: str, unit: str = "files") -> None:
        self.stage = name

    def item_done(self, path: str, status: object = None) -> None:
        self.count += self.stage == "read data"


def test_subset_selection(repo: Repository) -> None:
    for n in range(12):  # 12 snapshots, each flushing a data pack and a tree pack
        backup(repo, {f"file{n}": os.urandom(2000)})
    packs = [Id.from_hex(i.handle.name) for i in repo.backend.list(FileType.PACK)]
    assert len(packs) == 24
    for m in (1, 2, 3, 5):
        chosen = [[p for p in packs if selected(p, (n, m))] for n in range(1, m + 1)]
        assert sorted(p for part in chosen for p in part) == sorted(packs)  # a partition
        packs_done = PacksDone()
        read = 0
        for n in range(1, m + 1):
            report = check_repository(
                reopen(repo, load_index=False),
                CheckOptions(read_data=True, subset=(n, m)),
                progress=packs_done,
            )
            assert report.ok and report.packs_read == len(chosen[n - 1])
            read += report.packs_read
        assert read == packs_done.count == 24
    assert_repository_ok(repo)


def test_subset_only_reads_its_packs(repo: Repository) -> None:
    for n in range(8):
        backup(repo, {f"file{n}": os.urandom(2000)})
    # a byte inside a data blob: only --read-data of that pack's slice can see it (a flip in
    # a header is found by every check, which reads all headers)
    biggest = max(repo.backend.list(FileType.PACK), key=lambda i: i.size)
    victim = Id.from_hex(biggest.handle.name)
    flip(repo.backend, biggest.handle, 100)
    m = 4
    owner = next(n for n in range(1, m + 1) if selected(victim, (n, m)))
    for n in range(1, m + 1):
        report = check(repo, subset=(n, m))
        assert report.ok is (n != owner)


def test_finding_text() -> None:
    finding = Finding(F.PACK_DAMAGED, "ab" * 32, "bad", snapshots=["12345678", "9abcdef0"])
    assert str(finding) == f"pack damaged {'ab' * 32}: bad (affects snapshots 12345678, 9abcdef0)"
    assert str(Finding(F.PACK_MISSING, "x", "gone")) == "pack missing x: gone"


def test_a_store_failing_a_snapshot_read_stops_the_check_and_is_no_damage(
    repo: Repository,
) -> None:
    """A read the store failed says nothing about the snapshot: the check stops (the command
    exits 1 naming the store), and never reports the snapshot damaged (found by the fault
    runs: 'snapshot damaged ...: load snapshots/... failed 4 times, giving up')."""
    from snapstore.backend.faulty import FaultyBackend
    from snapstore.errors import TransientBackendError

    backup(repo, {"a": b"x" * 100})
    faulty = FaultyBackend(repo.backend)
    flaky = Repository.open(faulty, PASSWORD)
    faulty.fail("load", file_type=FileType.SNAPSHOT, error=TransientBackendError("reset"))
    with pytest.raises(TransientBackendError):
        check_repository(flaky, CheckOptions())
    faulty.clear()
    assert check_repository(Repository.open(faulty, PASSWORD), CheckOptions()).ok
