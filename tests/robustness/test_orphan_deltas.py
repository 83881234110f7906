"""What a prune killed while it deletes packs leaves: packs no index names, some holding deltas
whose base's pack it deleted already (found by the kill loop). A backup's resume (SPEC.md
section 11, rule 7) and `repair index` read such packs' headers; they must not index a delta
whose base is stored whole nowhere, or a backup deduplicates against it and saves a snapshot
that cannot be restored.
"""

from __future__ import annotations

from pathlib import Path

import snapstore
from snapstore.archiver.source import ChunkingProfile
from snapstore.backend.base import FileType, Handle
from snapstore.backend.memory import MemoryBackend
from snapstore.crypto.kdf import TEST_KDF
from snapstore.pack import BlobType
from snapstore.repository.repository import Repository
from tests.conftest import PASSWORD, assert_repository_ok
from tests.support.deltas import edited, varied
from tests.support.memory_source import File, MemorySource, expected_tree, read_tree

BASE = varied(12_000, 1)  # one chunk (smaller than the database profile's least)
CHANGED = edited(BASE, 2)  # stored as a delta against BASE by a backup whose parent has BASE


def dump(data: bytes) -> MemorySource:
    return MemorySource({"db.dump": File(data, profile=ChunkingProfile.DATABASE)})


def opened(backend: MemoryBackend) -> Repository:
    repo = Repository.open(backend, PASSWORD)
    repo.load_index()
    return repo


def orphaned_delta(backend: MemoryBackend, *, beside: bytes = b"") -> Handle:
    """Backs up BASE, then CHANGED (a delta against it, with a whole blob `beside` it in its
    pack if given), forgets both and prunes; puts the delta's pack back afterwards, as if
    prune had been killed after deleting the base's pack and before the delta's. Returns the
    delta's pack."""
    Repository.init(backend, PASSWORD, kdf=TEST_KDF, pack_size=1 << 20).close()
    with opened(backend) as repo:
        snapstore.take_snapshot(repo, MemorySource({"keep.bin": varied(50_000, 3)}))
    for data in (BASE, CHANGED):
        source = dump(data)
        if beside and data is CHANGED:
            source.tree = {**source.tree, "other": beside}
        with opened(backend) as repo:
            snapstore.take_snapshot(repo, source)
    with opened(backend) as repo:
        delta_id = repo.hash_blob(CHANGED)
        location = repo.lookup(delta_id)
        assert location is not None and location.is_delta
        delta_pack = Handle(FileType.PACK, location.pack_id.hex())
        kept = backend.load(delta_pack)
        for snap in snapstore.list_snapshots(repo)[1:]:
            repo.remove_object(FileType.SNAPSHOT, (snap.id or b"").hex())
        report = snapstore.prune(repo)
        assert report.packs_deleted >= 2
    backend.save(delta_pack, kept)
    return delta_pack


def test_a_backup_after_such_a_prune_does_not_deduplicate_against_the_orphan(
    tmp_path: Path,
) -> None:
    backend = MemoryBackend()
    orphaned_delta(backend)
    with opened(backend) as repo:
        snap = snapstore.take_snapshot(repo, MemorySource({"g": CHANGED})).snapshot  # no parent
    with opened(backend) as repo:
        result = snapstore.restore(repo, snap, tmp_path / "out")
        assert not result.errors, result.errors
    assert read_tree(tmp_path / "out") == expected_tree({"g": CHANGED})
    with opened(backend) as repo:
        snapstore.prune(repo)  # and the orphan goes
    assert_repository_ok(opened(backend))


def test_repair_index_does_not_index_the_orphan(tmp_path: Path) -> None:
    backend = MemoryBackend()
    delta_pack = orphaned_delta(backend)
    with opened(backend) as repo:
        report = snapstore.repair_index(repo)
    assert report.packs_from_headers == 0, report
    with opened(backend) as repo:
        assert repo.lookup(repo.hash_blob(CHANGED)) is None
        assert delta_pack.name not in {p.hex() for p in repo.index.pack_ids()}
        snapstore.prune(repo)
    assert_repository_ok(opened(backend))


def test_a_delta_whose_base_is_in_another_unindexed_pack_is_indexed_with_it() -> None:
    """A killed backup's packs: a delta and its base, both unindexed, are both taken in."""
    backend = MemoryBackend()
    orphaned_delta(backend)
    with opened(backend) as repo:
        snapstore.take_snapshot(repo, MemorySource({"g": BASE}))  # the base again, indexed
    with opened(backend) as repo:
        assert repo.recover_unindexed_packs() == 1
        found = repo.lookup(repo.hash_blob(CHANGED))
        assert found is not None and found.is_delta
        assert repo.load_blob(BlobType.DATA, repo.hash_blob(CHANGED)) == CHANGED


def test_check_takes_the_orphan_for_a_leftover_not_an_error() -> None:
    backend = MemoryBackend()
    orphaned_delta(backend)
    assert_repository_ok(opened(backend))


def test_check_after_repair_index_takes_the_orphan_for_a_leftover_not_an_error() -> None:
    backend = MemoryBackend()
    orphaned_delta(backend, beside=varied(5_000, 4))
    with opened(backend) as repo:
        report = snapstore.repair_index(repo)
    assert report.deltas_left_out == 1 and report.packs_from_headers == 1
    assert_repository_ok(opened(backend))
