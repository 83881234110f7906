"""Prune with delta blobs and chunk lists: a kept delta keeps its base (and, in chains, the
whole chain under it), the chunks a chunk list names are used, repacked deltas stay deltas and
still decode, and prune refuses when a base or a chunk list is gone."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from snapstore.backend.base import FileType, Handle
from snapstore.backend.faulty import SimulatedCrash
from snapstore.backend.memory import MemoryBackend
from snapstore.checker import findings as F
from snapstore.checker.checker import CheckOptions, CheckReport, check_repository
from snapstore.errors import IntegrityError
from snapstore.ids import Id
from snapstore.index.deltas import depth as chain_depth
from snapstore.pack import BlobType
from snapstore.prune import PruneOptions, prune
from snapstore.repository.lock import remove_locks
from snapstore.repository.repository import Repository
from snapstore.snapshot.content import iter_chunk_ids
from snapstore.snapshot.manifest import Snapshot
from snapstore.snapshot.store import walk
from snapstore.snapshot.tree import Node, NodeType
from tests.conftest import PASSWORD, assert_repository_ok, reopen
from tests.support.deltas import edited, snapshot_of, varied
from tests.unit.test_prune import CrashingBackend, clone

BASE_SIZE = 200_000


def save(repo: Repository, data: bytes, bases: list[Id] | None = None) -> Id:
    return repo.save_blob(BlobType.DATA, data, bases=bases or []).id


def file_node(content: list[Id] | None = None, lists: list[Id] | None = None) -> Node:
    return Node(b"x", NodeType.FILE, content=content or [], content_lists=lists or [])


def contents(repo: Repository, snap: Snapshot) -> dict[str, bytes]:
    """Every file of a snapshot, each blob read with load_blob (deltas rebuilt from bases)."""
    return {
        b"/".join(path).decode(): b"".join(
            repo.load_blob(BlobType.DATA, i) for i in iter_chunk_ids(repo, node)
        )
        for path, node in walk(repo, snap.tree)
        if node.type is NodeType.FILE
    }


def state(backend: MemoryBackend) -> dict[Handle, bytes]:
    return {i.handle: backend.load(i.handle) for t in FileType for i in backend.list(t)}


def check(repo: Repository, read_data: bool) -> CheckReport:
    return check_repository(reopen(repo, load_index=False), CheckOptions(read_data=read_data))


@dataclass
class Fixture:
    a: Snapshot
    b: Snapshot
    bases: list[Id]  # A's whole blobs that B's deltas are stored against
    deltas: list[Id]  # B's blobs stored as deltas against `bases`
    a_list: Id  # A's chunk list, the base of B's chunk lists
    b_lists: list[Id]
    a_only: Id  # a blob only A uses
    replaced: Id  # a small blob A's chunk list names and B's do not
    expected_b: dict[str, bytes]


@pytest.fixture
def deltas(repo: Repository) -> Fixture:
    """A: a file listed in one chunk list (three 200 KB blobs and 200 small ones) and a 1 MB
    blob only it uses. B: the same file with the big blobs edited (stored as deltas against
    A's) in two chunk lists (both deltas against A's list), a file using one of A's big
    blobs inline, and beside its blobs one no snapshot uses (so B's packs get repacked)."""
    big = [varied(BASE_SIZE, n) for n in range(3)]
    small = [random.Random(100 + n).randbytes(1000) for n in range(200)]
    bases = [save(repo, data) for data in big]
    small_ids = [save(repo, data) for data in small]
    a_ids = bases + small_ids
    a_list = save(repo, b"".join(a_ids))  # a chunk list: a run of ids (cut by hand here)
    a_only = save(repo, random.Random(7).randbytes(1 << 20))
    a = snapshot_of(repo, {"db": file_node(lists=[a_list]), "a-only": file_node([a_only])})

    new_big = [edited(data, n) for n, data in enumerate(big)]
    delta_ids = []
    for data, base in zip(new_big, bases, strict=True):
        saved = repo.save_blob(BlobType.DATA, data, bases=[base])
        assert saved.delta and saved.added
        delta_ids.append(saved.id)
    new_small = random.Random(300).randbytes(1000)
    b_ids = delta_ids + small_ids[:100] + [save(repo, new_small)] + small_ids[101:]
    b_lists = []
    for plain in (b"".join(b_ids[:150]), b"".join(b_ids[150:])):
        saved = repo.save_blob(BlobType.DATA, plain, bases=[a_list])
        assert saved.delta  # each shares a run of small blob ids with A's list
        b_lists.append(saved.id)
    save(repo, random.Random(8).randbytes(300_000))  # junk beside B's blobs
    b = snapshot_of(
        repo, {"db": file_node(lists=b_lists), "copy": file_node([bases[1]])}
    )
    expected_b = {
        "db": b"".join(new_big) + b"".join(small[:100]) + new_small + b"".join(small[101:]),
        "copy": big[1],
    }
    assert contents(reopen(repo), b) == expected_b
    return Fixture(a, b, bases, delta_ids, a_list, b_lists, a_only, small_ids[100], expected_b)


def forget(repo: Repository, snap: Snapshot) -> None:
    assert snap.id is not None
    repo.remove_object(FileType.SNAPSHOT, snap.id.hex())


def test_prune_keeps_the_bases_of_used_deltas(
    repo: Repository, backend: MemoryBackend, deltas: Fixture
) -> None:
    forget(repo, deltas.a)
    before = reopen(repo)
    packs_before = {
        i: loc.pack_id
        for i in [*deltas.deltas, *deltas.b_lists, *deltas.bases]
        if (loc := before.lookup(i)) is not None
    }
    report = prune(reopen(repo), PruneOptions(max_unused=0.0, rebase=False))
    assert report.packs_repacked >= 2 and report.packs_written >= 1  # A's packs and B's
    fresh = reopen(repo)
    # the deltas and their bases were all copied into new packs (none of theirs was all used)
    for blob_id, pack_id in packs_before.items():
        location = fresh.lookup(blob_id)
        assert location is not None and location.pack_id != pack_id
    assert contents(fresh, deltas.b) == deltas.expected_b
    # One whole copy of each base survives (bases[1] is also used directly), and the base of
    # B's chunk lists too; the deltas stayed deltas through the repacking.
    for base in [*deltas.bases, deltas.a_list]:
        (location,) = fresh.index.lookup_all(base)
        assert not location.is_delta
    for delta, base in zip(
        [*deltas.deltas, *deltas.b_lists], [*deltas.bases, deltas.a_list, deltas.a_list], strict=True
    ):
        (location,) = fresh.index.lookup_all(delta)
        assert location.is_delta and fresh.delta_base_of(delta) == base
    # What only A used is gone: its 1 MB blob and the small blob B replaced.
    assert not fresh.has_blob(deltas.a_only)
    assert not fresh.has_blob(deltas.replaced)
    assert report.bytes_freed > 1 << 20
    assert report.unused_after == 0
    assert check(repo, read_data=False).ok
    assert_repository_ok(repo)
    # Nothing more to do: a second prune changes nothing.
    again = state(backend)
    assert prune(reopen(repo), PruneOptions(max_unused=0.0, rebase=False)).bytes_freed == 0
    assert state(backend) == again
    assert contents(reopen(repo), deltas.b) == deltas.expected_b


def test_prune_with_default_limit_keeps_deltas_readable(
    repo: Repository, deltas: Fixture
) -> None:
    forget(repo, deltas.a)
    prune(reopen(repo))
    assert contents(reopen(repo), deltas.b) == deltas.expected_b
    assert_repository_ok(repo)


def test_forgetting_the_snapshot_with_the_deltas_frees_them(
    repo: Repository, deltas: Fixture
) -> None:
    forget(repo, deltas.b)
    prune(reopen(repo), PruneOptions(max_unused=0.0))
    fresh = reopen(repo)
    assert not any(fresh.has_blob(d) for d in deltas.deltas)
    assert all(fresh.has_blob(b) for b in deltas.bases)
    assert not any(loc.is_delta for _, loc in fresh.index.entries())
    assert_repository_ok(repo)


@pytest.mark.parametrize("rebase", [False, True])
def test_dry_run_counts_the_bases_as_used(repo: Repository, deltas: Fixture, rebase: bool) -> None:
    forget(repo, deltas.a)
    predicted = prune(reopen(repo), PruneOptions(max_unused=0.0, dry_run=True, rebase=rebase))
    real = prune(reopen(repo), PruneOptions(max_unused=0.0, rebase=rebase))
    assert predicted.blobs_used == real.blobs_used
    assert (predicted.blobs_rebased, predicted.bases_freed) == (real.blobs_rebased, real.bases_freed)
    # B's tree, its 3 deltas, 200 small blobs, 2 lists, and the 3 + 1 bases; but with
    # re-basing B's deltas against A's two big blobs it uses only as bases, and its two chunk
    # lists (deltas against A's), are stored whole, and those three bases go.
    assert real.blobs_used == 1 + 3 + 200 + 2 + 4 - real.bases_freed
    assert (real.blobs_rebased, real.bases_freed) == ((4, 3) if rebase else (0, 0))
    assert contents(reopen(repo), deltas.b) == deltas.expected_b
    assert_repository_ok(repo)


def test_an_unused_delta_in_a_kept_pack_does_not_lose_its_base(
    repo: Repository, deltas: Fixture
) -> None:
    """B2 uses a blob stored beside a delta only A2 uses, whose base only A2 uses: with a
    lenient limit the pack would stay as it is, naming a delta whose base was deleted, and a
    later backup would deduplicate against a blob nobody can read. Prune repacks it instead."""
    base_data = varied(BASE_SIZE, 50)
    base = save(repo, base_data)
    a2 = snapshot_of(repo, {"f": file_node([base])})
    unused_delta = repo.save_blob(BlobType.DATA, edited(base_data, 51), bases=[base])
    assert unused_delta.delta
    kept = save(repo, random.Random(52).randbytes(600_000))  # the same pack as the delta
    both = snapshot_of(repo, {"g": file_node([kept]), "h": file_node([unused_delta.id])})
    b2 = snapshot_of(repo, {"g": file_node([kept])})
    fresh = reopen(repo)
    delta_location, kept_location = fresh.lookup(unused_delta.id), fresh.lookup(kept)
    assert delta_location and kept_location and delta_location.pack_id == kept_location.pack_id
    for snap in (a2, both):
        forget(repo, snap)
    prune(reopen(repo), PruneOptions(max_unused=1.0))  # would keep every partly used pack
    fresh = reopen(repo)
    assert not fresh.has_blob(base)
    assert not fresh.has_blob(unused_delta.id)  # repacked away with the pack it sat in
    assert fresh.load_blob(BlobType.DATA, kept) == random.Random(52).randbytes(600_000)
    assert contents(fresh, b2)["g"] == random.Random(52).randbytes(600_000)
    assert contents(fresh, deltas.b) == deltas.expected_b
    assert_repository_ok(repo)


def test_a_chunk_list_whose_base_is_gone_stops_prune(
    repo: Repository, backend: MemoryBackend, deltas: Fixture
) -> None:
    """B's chunk lists are deltas against A's, which sits in the pack removed here."""
    base_pack = reopen(repo).index.lookup(deltas.a_list)
    assert base_pack is not None
    backend.remove(Handle(FileType.PACK, base_pack.pack_id.hex()))
    forget(repo, deltas.a)
    before = state(backend)
    with pytest.raises(IntegrityError, match="nothing was deleted: chunk list.*snapstore check"):
        prune(reopen(repo))
    assert state(backend) == before


def test_a_delta_whose_base_is_in_no_pack_stops_prune(
    repo: Repository, backend: MemoryBackend
) -> None:
    """A file names a delta inline; the base's pack is gone. The snapshot's trees all read, but
    the delta cannot be kept readable: prune stops before changing anything."""
    base_data = varied(BASE_SIZE, 60)
    base = save(repo, base_data)
    repo.flush()
    delta = repo.save_blob(BlobType.DATA, edited(base_data, 61), bases=[base])
    assert delta.delta
    snapshot_of(repo, {"f": file_node([delta.id])})
    location = reopen(repo).index.lookup(base)
    assert location is not None
    backend.remove(Handle(FileType.PACK, location.pack_id.hex()))
    before = state(backend)
    with pytest.raises(IntegrityError, match="nothing was deleted.*base.*snapstore check") as err:
        prune(reopen(repo))
    assert delta.id.hex()[:16] in str(err.value) and base.hex()[:16] in str(err.value)
    assert "\n" not in str(err.value)
    assert state(backend) == before
    # check names the delta, its base and the snapshot
    report = check(repo, read_data=False)
    (finding,) = [f for f in report.findings if f.kind == F.DELTA_BASE_MISSING]
    assert finding.subject == delta.id.hex() and base.hex() in finding.message
    assert len(finding.snapshots) == 1


def test_an_unreadable_chunk_list_stops_prune(
    repo: Repository, backend: MemoryBackend, deltas: Fixture
) -> None:
    location = reopen(repo).index.lookup(deltas.b_lists[1])
    assert location is not None
    handle = Handle(FileType.PACK, location.pack_id.hex())
    damaged = bytearray(backend.load(handle))
    damaged[location.offset + 30] ^= 1
    backend.save(handle, bytes(damaged))
    forget(repo, deltas.a)
    before = state(backend)
    with pytest.raises(IntegrityError, match="nothing was deleted: chunk list .*snapstore check"):
        prune(reopen(repo))
    assert state(backend) == before


def test_the_chunks_a_chunk_list_names_are_used(repo: Repository, deltas: Fixture) -> None:
    """A's small blobs are named only inside chunk lists; after forgetting A, B's lists keep
    them (all but the one B replaced)."""
    forget(repo, deltas.a)
    report = prune(reopen(repo), PruneOptions(max_unused=0.0))
    assert report.blobs_unused >= 2  # A's 1 MB blob and the small blob B replaced, at least
    fresh = reopen(repo)
    ids = [i for n in walk(fresh, deltas.b.tree) for i in iter_chunk_ids(fresh, n[1])]
    assert len(ids) == 3 + 200 + 1  # "db" and "copy"
    assert all(fresh.has_blob(i) for i in ids)
    assert_repository_ok(repo)


def crashed_prunes(origin: MemoryBackend) -> Iterator[tuple[int, bool, MemoryBackend]]:
    """Prune (max unused 0) on copies of `origin`, crashed before and after each of its
    backend writes and deletes in turn: (crash point, after it, what the crash left, its
    dead lock removed)."""
    counter = CrashingBackend(clone(origin), crash_at=0, after=False)
    prune(Repository.open(counter, PASSWORD), PruneOptions(max_unused=0.0))
    assert counter.mutations >= 5
    for crash_at in range(1, counter.mutations + 1):
        for after in (False, True):
            crashing = CrashingBackend(clone(origin), crash_at, after)
            with pytest.raises(SimulatedCrash):
                prune(Repository.open(crashing, PASSWORD), PruneOptions(max_unused=0.0))
            remove_locks(Repository.open(crashing.inner, PASSWORD), remove_all=True)
            yield crash_at, after, crashing.inner


def test_a_crash_after_any_write_or_delete_keeps_the_deltas_readable(
    repo: Repository, backend: MemoryBackend, deltas: Fixture
) -> None:
    forget(repo, deltas.a)
    for crash_at, after, survivor in crashed_prunes(backend):
        reopened = Repository.open(survivor, PASSWORD)
        reopened.load_index()
        assert contents(reopened, deltas.b) == deltas.expected_b, (crash_at, after)
        prune(Repository.open(survivor, PASSWORD), PruneOptions(max_unused=0.0))
        assert_repository_ok(reopened)
        finished = Repository.open(survivor, PASSWORD)
        finished.load_index()
        assert contents(finished, deltas.b) == deltas.expected_b, (crash_at, after)


# -- chains (feature delta-chains) ------------------------------------------------------------


@dataclass
class Nights:
    snapshots: list[Snapshot]
    expected: list[dict[str, bytes]]
    versions: list[Id]  # the chunk's version of each night


@pytest.fixture
def nights(repo: Repository) -> Nights:
    """Ten nights of one file: a chunk edited every night, stored against the base its
    previous version offers (skip-deltas, chains several deltas deep), beside a chunk that
    never changes; one snapshot a night, each flushed to packs of its own."""
    data = varied(BASE_SIZE, 70)
    steady = varied(BASE_SIZE, 71)
    steady_id = save(repo, steady)
    versions = [save(repo, data)]
    repo.flush()
    snapshots = [snapshot_of(repo, {"db": file_node([versions[0], steady_id])})]
    expected = [{"db": data + steady}]
    for night in range(1, 10):
        data = edited(data, 70 + night)
        offer = repo.delta_offer(versions[-1])
        assert offer is not None
        saved = repo.save_blob(BlobType.DATA, data, bases=[offer])
        assert saved.delta
        versions.append(saved.id)
        repo.flush()
        snapshots.append(snapshot_of(repo, {"db": file_node([saved.id, steady_id])}))
        expected.append({"db": data + steady})
    fresh = reopen(repo)
    assert max(deltas_depth(fresh, v) for v in versions) >= 3  # real chains
    return Nights(snapshots, expected, versions)


def deltas_depth(repo: Repository, blob_id: Id) -> int:
    found = chain_depth(repo.index, blob_id)
    assert found is not None
    return found


def test_prune_keeps_the_chains_of_the_nights_kept(repo: Repository, nights: Nights) -> None:
    """Forget all but the last three nights: without re-basing, their versions and every
    version their chains rest on stay (and no deeper than before); the versions only
    forgotten nights used go."""
    for snap in nights.snapshots[:7]:
        forget(repo, snap)
    before = reopen(repo)
    depths = {bytes(v): deltas_depth(before, v) for v in nights.versions[7:]}
    needed: set[bytes] = set()
    for version in nights.versions[7:]:
        blob: Id | None = version
        while blob is not None:
            needed.add(bytes(blob))
            blob = before.delta_base_of(blob)
    report = prune(reopen(repo), PruneOptions(max_unused=0.0, rebase=False))
    assert report.blobs_unused >= 1
    after = reopen(repo)
    assert {bytes(v) for v in nights.versions if after.has_blob(v)} == needed
    for version in nights.versions[7:]:
        assert deltas_depth(after, version) <= depths[bytes(version)]
    for snap, expected in zip(nights.snapshots[7:], nights.expected[7:], strict=True):
        assert contents(after, snap) == expected
    assert_repository_ok(repo)


def test_a_crash_after_any_write_or_delete_keeps_the_chains_readable(
    repo: Repository, backend: MemoryBackend, nights: Nights
) -> None:
    for snap in nights.snapshots[:6]:
        forget(repo, snap)
    for crash_at, after, survivor in crashed_prunes(backend):
        for attempt in ("crashed", "finished"):
            reopened = Repository.open(survivor, PASSWORD)
            reopened.load_index()
            for snap, expected in zip(nights.snapshots[6:], nights.expected[6:], strict=True):
                assert contents(reopened, snap) == expected, (crash_at, after, attempt)
            if attempt == "crashed":
                prune(Repository.open(survivor, PASSWORD), PruneOptions(max_unused=0.0))
        assert_repository_ok(Repository.open(survivor, PASSWORD))


# -- re-basing: a live delta stored whole so that the dead chain under it goes -------------------


def chain_under(repo: Repository, blob_id: Id) -> list[Id]:
    """The bases a blob's indexed copy rests on, down to the whole one."""
    found = []
    base = repo.delta_base_of(blob_id)
    while base is not None:
        found.append(base)
        base = repo.delta_base_of(base)
    return found


def test_prune_stores_the_last_night_whole_so_its_dead_chain_goes(
    repo: Repository, backend: MemoryBackend, nights: Nights
) -> None:
    """Only the last night is kept: its version of the chunk is a delta on a chain of
    versions no snapshot uses, down to the first night's whole copy. Prune stores it whole
    (written through the repository's blob reader and envelope) and that chain goes."""
    for snap in nights.snapshots[:9]:
        forget(repo, snap)
    before = reopen(repo)
    last = nights.versions[9]
    dead = chain_under(before, last)
    assert dead and dead[-1] == nights.versions[0]
    predicted = prune(reopen(repo), PruneOptions(max_unused=0.0, dry_run=True))
    report = prune(reopen(repo), PruneOptions(max_unused=0.0))
    assert (report.blobs_rebased, report.bases_freed) == (1, len(dead))
    assert (predicted.blobs_rebased, predicted.bases_freed) == (1, len(dead))
    # the estimate (the first night's whole copy) is close: five bytes changed a night
    assert abs(report.rebase_bytes_written - predicted.rebase_bytes_written) < 200
    after = reopen(repo)
    location = after.lookup(last)
    assert location is not None and not location.is_delta
    assert not any(after.has_blob(v) for v in nights.versions[:9])
    assert contents(after, nights.snapshots[9]) == nights.expected[9]
    assert after.stored_blob_bytes() < before.stored_blob_bytes()
    assert check(repo, read_data=True).ok
    assert_repository_ok(repo)
    # nothing more to do, and a next night deltas against the whole copy
    again = state(backend)
    second = prune(reopen(repo), PruneOptions(max_unused=0.0))
    assert second.bytes_freed == 0 and second.blobs_rebased == 0
    assert state(backend) == again
    offer = reopen(repo).delta_offer(last)
    assert offer is not None and offer.base == last


def test_the_pack_of_a_rebased_delta_goes_whatever_the_limit(
    repo: Repository, nights: Nights
) -> None:
    """With a lenient limit the old delta copy's pack would stay; it goes all the same, and
    no index entry names a delta whose base was deleted."""
    for snap in nights.snapshots[:9]:
        forget(repo, snap)
    report = prune(reopen(repo), PruneOptions(max_unused=1.0))
    assert report.blobs_rebased == 1
    after = reopen(repo)
    assert [loc.is_delta for loc in after.index.lookup_all(nights.versions[9])] == [False]
    assert contents(after, nights.snapshots[9]) == nights.expected[9]
    assert_repository_ok(repo)


def test_a_crash_at_any_step_of_a_rebasing_prune_keeps_the_repository_valid(
    repo: Repository, backend: MemoryBackend, nights: Nights
) -> None:
    for snap in nights.snapshots[:9]:
        forget(repo, snap)
    assert prune(reopen(repo), PruneOptions(max_unused=0.0, dry_run=True)).blobs_rebased == 1
    for crash_at, after, survivor in crashed_prunes(backend):
        reopened = Repository.open(survivor, PASSWORD)
        reopened.load_index()
        assert contents(reopened, nights.snapshots[9]) == nights.expected[9], (crash_at, after)
        assert_repository_ok(reopened)
        prune(Repository.open(survivor, PASSWORD), PruneOptions(max_unused=0.0))
        finished = Repository.open(survivor, PASSWORD)
        finished.load_index()
        assert contents(finished, nights.snapshots[9]) == nights.expected[9], (crash_at, after)
        assert [loc.is_delta for loc in finished.index.lookup_all(nights.versions[9])] == [False]
        assert not finished.has_blob(nights.versions[0]), (crash_at, after)
        assert_repository_ok(finished)


def branch_point(repo: Repository, versions: list[Id]) -> tuple[int, list[int]]:
    """A night whose version is a delta two later nights' versions rest on (there is one in
    any ten nights of skip-deltas, whatever generation the chain started at), and those nights."""
    base_of = {n: repo.delta_base_of(v) for n, v in enumerate(versions)}
    for night in range(1, len(versions)):
        above = [n for n, base in base_of.items() if base == versions[night]]
        if len(above) >= 2 and base_of[night] is not None:
            return night, above
    raise AssertionError("no dead branch point in these nights")


def test_a_dead_branch_point_is_stored_whole_and_stays_as_the_base(
    repo: Repository, backend: MemoryBackend, nights: Nights
) -> None:
    """Only nights resting on one dead intermediate version are kept: storing each of them
    whole would cost a whole copy per night; prune stores that dead version whole instead (read
    through the blob reader, though no snapshot uses it), keeps it as their base and lets the
    chain under it go. Every kept night restores, `check --read-data` is clean, a second prune
    has nothing to do, and a crash at any step leaves a valid repository."""
    before = reopen(repo)
    point, above = branch_point(before, nights.versions)
    dead = chain_under(before, nights.versions[point])
    for night, snap in enumerate(nights.snapshots):
        if night not in above:
            forget(repo, snap)
    origin = clone(backend)
    predicted = prune(reopen(repo), PruneOptions(max_unused=0.0, dry_run=True))
    report = prune(reopen(repo), PruneOptions(max_unused=0.0))
    assert (report.blobs_rebased, report.bases_freed) == (1, len(dead))
    assert (predicted.blobs_rebased, predicted.bases_freed) == (1, len(dead))
    after = reopen(repo)
    assert [loc.is_delta for loc in after.index.lookup_all(nights.versions[point])] == [False]
    for night in above:
        assert after.delta_base_of(nights.versions[night]) == nights.versions[point]
        assert contents(after, nights.snapshots[night]) == nights.expected[night]
    assert not any(after.has_blob(v) for v in dead)
    assert check(repo, read_data=True).ok
    assert_repository_ok(repo)
    second = prune(reopen(repo), PruneOptions(max_unused=0.0))
    assert second.bytes_freed == 0 and second.blobs_rebased == 0

    for crash_at, crashed_after, survivor in crashed_prunes(origin):
        for attempt in ("crashed", "finished"):
            reopened = Repository.open(survivor, PASSWORD)
            reopened.load_index()
            for night in above:
                assert contents(reopened, nights.snapshots[night]) == nights.expected[night], (
                    crash_at, crashed_after, attempt
                )
            assert_repository_ok(reopened)
            if attempt == "crashed":
                prune(Repository.open(survivor, PASSWORD), PruneOptions(max_unused=0.0))
        assert not reopened.has_blob(nights.versions[0]), (crash_at, crashed_after)
