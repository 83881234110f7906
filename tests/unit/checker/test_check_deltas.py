"""The checker with delta blobs and chunk lists: a delta's base must be stored whole, damage to
a base is reported on the base's pack and on every delta built on it, and chunk lists are
walked like trees."""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest

from snapstore.backend.base import Backend, FileType, Handle
from snapstore.checker import findings as F
from snapstore.checker.checker import CheckOptions, CheckReport, check_repository
from snapstore.checker.findings import Finding
from snapstore.errors import IntegrityError
from snapstore.ids import Id
from snapstore.pack import BlobType
from snapstore.prune import PruneOptions, prune
from snapstore.repository.repository import Repository
from snapstore.snapshot.manifest import Snapshot
from snapstore.snapshot.tree import Node, NodeType
from tests.conftest import PASSWORD, assert_repository_ok, reopen
from tests.support import damage
from tests.support.deltas import edited, repository_with_features, snapshot_of, varied


def file_node(content: list[Id] | None = None, lists: list[Id] | None = None) -> Node:
    return Node(b"x", NodeType.FILE, content=content or [], content_lists=lists or [])


def check(repo: Repository, read_data: bool = True) -> CheckReport:
    return check_repository(reopen(repo, load_index=False), CheckOptions(read_data=read_data))


def findings(report: CheckReport, kind: str) -> list[Finding]:
    return [f for f in report.findings if f.kind == kind]


def only(report: CheckReport, kind: str) -> Finding:
    found = findings(report, kind)
    assert len(found) == 1, [str(f) for f in report.findings]
    return found[0]


def pack_of(repo: Repository, blob_id: bytes) -> Id:
    location = reopen(repo).index.lookup(blob_id)
    assert location is not None
    return location.pack_id


def flip_blob(repo: Repository, blob_id: bytes, at: int = 30) -> Id:
    """Changes one byte inside a blob's envelope in its pack; returns the pack."""
    return Id(bytes.fromhex(damage.flip_blob(reopen(repo), blob_id, at, bit=0x01).name))


def state(backend: Backend) -> dict[Handle, bytes]:
    return {i.handle: backend.load(i.handle) for t in FileType for i in backend.list(t)}


@dataclass
class Deltas:
    a: Snapshot  # uses `base` and `other_base` whole
    b: Snapshot  # uses `delta` inline and, through a chunk list, `other_delta`
    base: Id
    other_base: Id
    delta: Id
    other_delta: Id
    chunk_list: Id


@pytest.fixture
def deltas(repo: Repository) -> Deltas:
    """Bases in A's pack; B's deltas, and its chunk list, in a later pack."""
    first, second = varied(150_000, 1), varied(150_000, 2)
    base = repo.save_blob(BlobType.DATA, first).id
    other_base = repo.save_blob(BlobType.DATA, second).id
    a = snapshot_of(repo, {"f": file_node([base, other_base])})
    delta = repo.save_blob(BlobType.DATA, edited(first, 3), bases=[base])
    other_delta = repo.save_blob(BlobType.DATA, edited(second, 4), bases=[other_base])
    assert delta.delta and other_delta.delta
    chunk_list = repo.save_blob(BlobType.DATA, bytes(other_delta.id) + bytes(base)).id
    b = snapshot_of(repo, {"g": file_node([delta.id]), "h": file_node(lists=[chunk_list])})
    assert pack_of(repo, delta.id) != pack_of(repo, base)
    return Deltas(a, b, base, other_base, delta.id, other_delta.id, chunk_list)


def test_a_repository_with_deltas_and_chunk_lists_is_clean(
    repo: Repository, deltas: Deltas
) -> None:
    for read_data in (False, True):
        report = check(repo, read_data)
        assert report.ok and report.findings == [], [str(f) for f in report.findings]
    assert check(repo).blobs == 2 + 2 + 1 + 2  # data blobs, deltas, chunk list, root trees
    assert_repository_ok(repo)


def test_a_damaged_base_is_reported_on_its_pack_and_on_its_deltas(
    repo: Repository, deltas: Deltas
) -> None:
    damaged = flip_blob(repo, deltas.base)
    assert check(repo, read_data=False).ok  # the structure is whole: the damage is in data
    report = check(repo)
    assert not report.ok
    pack = only(report, F.PACK_DAMAGED)
    assert pack.subject == damaged.hex() and "1 of" in pack.message
    # A uses the base; B uses a delta built on it, so it is hurt too.
    assert sorted(pack.snapshots) == sorted([deltas.a.short_id, deltas.b.short_id])
    blob = only(report, F.BLOB_DAMAGED)
    assert blob.error and blob.subject == deltas.delta.hex()
    assert deltas.base.hex() in blob.message
    assert blob.snapshots == [deltas.b.short_id]
    # the deltas' own pack is whole, and not reported: only the base's is
    assert pack_of(repo, deltas.delta).hex() not in {f.subject for f in report.findings}


def test_a_damaged_base_under_a_chunk_list_hurts_the_snapshot_through_it(
    repo: Repository, deltas: Deltas
) -> None:
    damaged = flip_blob(repo, deltas.other_base)
    report = check(repo)
    pack = only(report, F.PACK_DAMAGED)
    assert pack.subject == damaged.hex()
    assert sorted(pack.snapshots) == sorted([deltas.a.short_id, deltas.b.short_id])
    blob = only(report, F.BLOB_DAMAGED)
    assert blob.subject == deltas.other_delta.hex() and blob.snapshots == [deltas.b.short_id]


def test_a_damaged_delta_is_its_own_packs_damage(repo: Repository, deltas: Deltas) -> None:
    damaged = flip_blob(repo, deltas.delta)
    report = check(repo)
    pack = only(report, F.PACK_DAMAGED)
    assert pack.subject == damaged.hex() and pack.snapshots == [deltas.b.short_id]
    assert not findings(report, F.BLOB_DAMAGED)


def test_a_missing_base_is_reported_for_each_delta_and_stops_prune(
    repo: Repository, deltas: Deltas
) -> None:
    gone = pack_of(repo, deltas.base)
    repo.backend.remove(Handle(FileType.PACK, gone.hex()))
    report = check(repo, read_data=False)
    assert not report.ok
    assert only(report, F.PACK_MISSING).subject == gone.hex()
    missing = {f.subject: f for f in findings(report, F.DELTA_BASE_MISSING)}
    assert set(missing) == {deltas.delta.hex(), deltas.other_delta.hex()}
    assert deltas.base.hex() in missing[deltas.delta.hex()].message
    assert deltas.other_base.hex() in missing[deltas.other_delta.hex()].message
    for finding in missing.values():
        assert finding.error and finding.snapshots == [deltas.b.short_id]
    # --read-data says the same, and does not call the deltas' intact pack damaged
    read = check(repo)
    assert {f.subject for f in findings(read, F.DELTA_BASE_MISSING)} == set(missing)
    assert not findings(read, F.PACK_DAMAGED)
    # A's tree was in that pack too; without A, prune gets as far as the deltas' bases
    assert deltas.a.id is not None
    repo.backend.remove(Handle(FileType.SNAPSHOT, deltas.a.id.hex()))
    before = state(repo.backend)
    with pytest.raises(IntegrityError, match="nothing was deleted.*snapstore check"):
        prune(reopen(repo))
    assert state(repo.backend) == before


@pytest.mark.parametrize("chains", [False, True], ids=["delta-v1", "delta-chains"])
def test_a_delta_whose_base_is_only_a_delta(backend: Backend, chains: bool) -> None:
    """`mid` is stored whole, `top` as a delta against it; then `mid`'s whole copy goes and a
    delta copy of it (against `root`) is all that is left: a chain two levels deep. Without
    `delta-chains` that is a finding; with it, a chain like any other."""
    repo = repository_with_features(backend, ("delta-v1", "delta-chains") if chains else ("delta-v1",), PASSWORD)
    root_data = varied(150_000, 10)
    mid_data = edited(root_data, 11)
    root = repo.save_blob(BlobType.DATA, root_data).id
    repo.flush()
    indexes = {i.handle for i in repo.backend.list(FileType.INDEX)}
    mid = repo.save_blob(BlobType.DATA, mid_data).id
    repo.flush()
    (mid_index,) = {i.handle for i in repo.backend.list(FileType.INDEX)} - indexes
    top = repo.save_blob(BlobType.DATA, edited(mid_data, 12), bases=[mid])
    assert top.delta
    snap = snapshot_of(repo, {"f": file_node([top.id])})
    mid_pack = pack_of(repo, mid)
    # another writer, knowing only `root`, stores `mid` again: as a delta against `root`
    other = reopen(repo, load_index=False)
    root_location = reopen(repo).index.lookup(root)
    assert root_location is not None
    other.index.add_pack(root_location.pack_id, reopen(repo).read_pack_header(root_location.pack_id))
    assert other.save_blob(BlobType.DATA, mid_data, bases=[root]).delta
    other.flush()
    other.close()
    repo.backend.remove(Handle(FileType.PACK, mid_pack.hex()))
    repo.backend.remove(mid_index)
    report = check(repo, read_data=False)
    if chains:
        assert report.ok and check(repo).ok
        assert reopen(repo).load_blob(BlobType.DATA, top.id) == edited(mid_data, 12)
        return
    chain = only(report, F.DELTA_CHAIN)
    assert chain.error and chain.subject == top.id.hex() and mid.hex() in chain.message
    assert chain.snapshots == [snap.short_id]
    read = check(repo)
    assert [f.subject for f in read.errors] == [top.id.hex()], [str(f) for f in read.errors]
    with pytest.raises(IntegrityError, match="nothing was deleted.*chain of bases ends in no whole copy"):
        prune(reopen(repo))


def test_a_damaged_chunk_list_is_found_without_reading_data(
    repo: Repository, deltas: Deltas
) -> None:
    flip_blob(repo, deltas.chunk_list)
    report = check(repo, read_data=False)
    finding = only(report, F.CHUNK_LIST_DAMAGED)
    assert finding.error and finding.subject == deltas.chunk_list.hex()
    assert finding.snapshots == [deltas.b.short_id]


def test_a_chunk_list_naming_a_missing_blob(repo: Repository) -> None:
    phantom = Id(os.urandom(32))
    kept = repo.save_blob(BlobType.DATA, b"kept").id
    chunk_list = repo.save_blob(BlobType.DATA, bytes(kept) + bytes(phantom)).id
    snap = snapshot_of(repo, {"f": file_node(lists=[chunk_list])})
    report = check(repo, read_data=False)
    finding = only(report, F.BLOB_MISSING)
    assert finding.subject == phantom.hex() and finding.snapshots == [snap.short_id]


def test_a_missing_chunk_list(repo: Repository) -> None:
    phantom = Id(os.urandom(32))
    snap = snapshot_of(repo, {"f": file_node(lists=[phantom])})
    finding = only(check(repo, read_data=False), F.BLOB_MISSING)
    assert finding.subject == phantom.hex() and finding.snapshots == [snap.short_id]
    with pytest.raises(IntegrityError, match="chunk list"):
        prune(reopen(repo))


def test_an_unused_delta_whose_base_is_gone_is_an_error_prune_fixes(repo: Repository) -> None:
    """No snapshot uses it, but it is indexed: a backup would deduplicate against it."""
    data = varied(150_000, 20)
    base = repo.save_blob(BlobType.DATA, data).id
    repo.flush()
    base_indexes = {i.handle for i in repo.backend.list(FileType.INDEX)}
    delta = repo.save_blob(BlobType.DATA, edited(data, 21), bases=[base])
    assert delta.delta
    kept = repo.save_blob(BlobType.DATA, os.urandom(200_000)).id
    snapshot_of(repo, {"f": file_node([kept])})
    repo.backend.remove(Handle(FileType.PACK, pack_of(repo, base).hex()))
    for handle in base_indexes:
        repo.backend.remove(handle)
    finding = only(check(repo, read_data=False), F.DELTA_BASE_MISSING)
    assert finding.error and finding.subject == delta.id.hex() and not finding.snapshots
    assert f"its base {base.hex()} is not in the index" in finding.message  # read from index files
    assert "prune" in finding.message
    prune(reopen(repo), PruneOptions(max_unused=1.0))
    assert not reopen(repo).has_blob(delta.id)
    assert_repository_ok(repo)
