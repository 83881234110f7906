"""The archiver's side of issue 6: parents, alignment, deltas and chunk lists."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from snapstore.archiver.archiver import Archiver, BackupResult, SnapshotOptions
from snapstore.archiver.parent import ParentStream, find_parent
from snapstore.archiver.source import ChunkingProfile
from snapstore.backend.memory import MemoryBackend
from snapstore.crypto.kdf import TEST_KDF
from snapstore.ids import Id
from snapstore.index import deltas
from snapstore.pack import BlobType
from snapstore.repository.repository import Repository
from snapstore.snapshot.content import chunk_ids
from snapstore.snapshot.store import find_node
from tests.conftest import PASSWORD, assert_repository_ok, reopen
from tests.support.memory_source import File, MemorySource

WHEN = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def rows(count: int, edited: set[int] = frozenset(), seed: int = 3) -> bytes:  # type: ignore[assignment]
    """Text like a dump's COPY data; `edited` rows change a little (and grow)."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        line = f"{i}\t{rng.randrange(10**6)}\tuser{rng.randrange(10**4)} wrote {rng.randrange(10**9)}"
        out.append(line + (" (edited, longer)" if i in edited else "") + "\n")
    return "".join(out).encode()


def backup(
    repo: Repository, data: bytes, *, day: int = 0, archiver: Archiver | None = None, **options: object
) -> BackupResult:
    source = MemorySource({"db.dump": File(data, profile=ChunkingProfile.DATABASE)})
    opts = SnapshotOptions(time=WHEN + timedelta(days=day), host="test-host", user="tester")
    for key, value in options.items():
        setattr(opts, key, value)
    return (archiver or Archiver(repo)).run(source, opts)


def content(repo: Repository, result: BackupResult) -> bytes:
    node = find_node(repo, result.snapshot.tree, "db.dump")
    assert node is not None
    return b"".join(repo.load_blob(BlobType.DATA, i) for i in chunk_ids(repo, node))


@pytest.fixture(scope="module")
def days() -> tuple[bytes, bytes]:
    count = 40_000
    edited = set(random.Random(4).sample(range(count), count // 50))
    return rows(count), rows(count, edited)


def test_day_two_finds_its_parent_and_stores_deltas(repo: Repository, days: tuple[bytes, bytes]) -> None:
    first = backup(repo, days[0])
    second = backup(repo, days[1], day=1)
    assert second.snapshot.parent == first.snapshot.id
    summary = second.snapshot.summary
    assert summary.deltas_added > 0
    assert summary.bytes_added < first.snapshot.summary.bytes_added / 5
    again = reopen(repo)
    assert content(again, second) == days[1] and content(again, first) == days[0]
    assert_repository_ok(repo)


def test_no_parent_means_no_deltas(repo: Repository, days: tuple[bytes, bytes]) -> None:
    backup(repo, days[0])
    second = backup(repo, days[1], day=1, use_parent=False)
    assert second.snapshot.parent is None and second.snapshot.summary.deltas_added == 0


def test_a_repository_without_the_feature_gets_no_deltas_and_no_chunk_lists(days: tuple[bytes, bytes]) -> None:
    repo = Repository.init(MemoryBackend(), PASSWORD, kdf=TEST_KDF)
    object.__setattr__(repo.config, "features", ())
    archiver = Archiver(repo, inline_chunk_limit=2)
    backup(repo, days[0], archiver=archiver)
    second = backup(repo, days[1], day=1, archiver=archiver)
    assert second.snapshot.parent is None and second.snapshot.summary.deltas_added == 0
    node = find_node(repo, second.snapshot.tree, "db.dump")
    assert node is not None and node.content and not node.content_lists


def test_without_chains_deltas_are_never_chained(repo: Repository, days: tuple[bytes, bytes]) -> None:
    """In a repository with `delta-v1` only, day 3 against day 2, whose chunks are deltas: the
    bases are day 1's whole blobs."""
    object.__setattr__(repo.config, "features", ("delta-v1",))
    backup(repo, days[0])
    backup(repo, days[1], day=1)
    edited = set(random.Random(9).sample(range(40_000), 800))
    third = backup(repo, rows(40_000, edited), day=2)
    assert third.snapshot.summary.deltas_added > 0
    for blob_id, location in repo.index.entries():
        if location.is_delta:
            base = repo.delta_base_of(blob_id)
            assert base is not None
            base_location = repo.index.lookup(base)
            assert base_location is not None and not base_location.is_delta
    assert_repository_ok(repo)


def test_with_chains_bases_follow_the_data(repo: Repository) -> None:
    """Night after night of a dump with a few rows changing each night: each changed chunk is
    stored against its skip-delta base (mostly the night before), chains stay within
    `deltas.MAX_DEPTH`, every night restores byte for byte, and the check is clean."""
    count = 20_000
    rng = random.Random(5)
    edited: set[int] = set()
    nights, results = [], []
    for night in range(10):
        edited |= set(rng.sample(range(count), 40))
        nights.append(rows(count, edited, seed=3) + str(night).encode())
        results.append(backup(repo, nights[-1], day=night))
    assert all(r.snapshot.summary.deltas_added > 0 for r in results[1:])
    depths = {}
    against_delta = 0
    for blob_id, location in repo.index.entries():
        if location.is_delta:
            depths[bytes(blob_id)] = deltas.depth(repo.index, blob_id)
            base = repo.delta_base_of(blob_id)
            assert base is not None and location.flags >> 1 >= 1  # a generation is recorded
            base_location = repo.index.lookup(base)
            assert base_location is not None
            against_delta += base_location.is_delta
    assert against_delta > 0  # chains: some bases are deltas themselves
    assert all(d is not None and d <= deltas.MAX_DEPTH for d in depths.values())
    for result, data in zip(results, nights, strict=True):
        assert content(repo, result) == data
    assert_repository_ok(repo)


def test_parent_is_the_latest_of_the_same_source_and_paths(repo: Repository) -> None:
    a = backup(repo, b"a" * 1000, host="one")
    b = backup(repo, b"b" * 1000, day=1, host="two")
    assert b.snapshot.parent == a.snapshot.id  # another host only when none of this host's
    c = backup(repo, b"c" * 1000, day=2, host="one")
    assert c.snapshot.parent == a.snapshot.id  # this host's, though b is newer
    other = MemorySource({"x": b"y"})
    other.kind = "other"
    Archiver(repo).run(other, SnapshotOptions(time=WHEN + timedelta(days=3), host="one"))
    found = find_parent(repo, "memory", MemorySource({}).describe(), "one")
    assert found is not None and found.id == c.snapshot.id
    explicit = backup(repo, b"d" * 1000, day=4, host="one", parent=b.snapshot)
    assert explicit.snapshot.parent == b.snapshot.id


def test_huge_files_list_their_chunks_in_blobs_that_are_deltas(repo: Repository, days: tuple[bytes, bytes]) -> None:
    archiver = Archiver(repo, inline_chunk_limit=4)
    first = backup(repo, days[0], archiver=archiver)
    node = find_node(repo, first.snapshot.tree, "db.dump")
    assert node is not None and node.content_lists and not node.content
    # only some chunks change: the list blob of day 2 is a delta against day 1's
    changed = bytearray(days[0])
    changed[len(changed) // 2 : len(changed) // 2 + 5] = b"XXXXX"
    second = backup(repo, bytes(changed), day=1, archiver=archiver)
    node2 = find_node(repo, second.snapshot.tree, "db.dump")
    assert node2 is not None and node2.content_lists
    new_lists = set(node2.content_lists) - set(node.content_lists)
    assert new_lists and all(repo.index.lookup(i).is_delta for i in new_lists)  # type: ignore[union-attr]
    assert content(reopen(repo), second) == bytes(changed)
    assert_repository_ok(repo)


def bases_for(stream: ParentStream, blob_id: bytes, size: int) -> list[Id]:
    """The ids of the bases the stream offers for a new chunk."""
    return [offer.base for offer in stream.candidates(blob_id, size)]


def stream_with(repo: Repository, chunks: list[bytes]) -> tuple[ParentStream, list[Id]]:
    ids = [repo.save_blob(BlobType.DATA, c).id for c in chunks]
    repo.flush()
    return ParentStream(repo, b"".join(ids)), ids


def test_alignment_offers_the_chunk_at_the_same_offset_into_the_gap(repo: Repository) -> None:
    chunks = [bytes([n]) * 1000 for n in range(10)]
    stream, ids = stream_with(repo, chunks)
    assert bases_for(stream, ids[0], 1000) == []  # a match: no bases
    assert bases_for(stream, ids[1], 1000) == []
    # parent chunks 2..4 replaced by new ones of the same sizes
    assert bases_for(stream, b"\x01" * 32, 1000)[0] == ids[2]
    assert bases_for(stream, b"\x02" * 32, 1000)[0] == ids[3]
    assert set(bases_for(stream, b"\x03" * 32, 1000)) == {ids[4], ids[5], ids[3]}
    assert bases_for(stream, ids[5], 1000) == []
    # a longer new chunk after a match: the parent chunk under its middle comes first
    assert bases_for(stream, b"\x04" * 32, 1800)[0] == ids[6]
    assert bases_for(stream, b"\x05" * 32, 1000)[0] == ids[8]


def test_kept_deltas_move_the_alignment(repo: Repository) -> None:
    chunks = [bytes([n]) * 1000 for n in range(20)]
    stream, ids = stream_with(repo, chunks)
    # nothing matches: without news from the packer, offsets align one to one
    assert bases_for(stream, b"\x10" * 32, 1000)[0] == ids[0]
    start = stream.offset
    offered = bases_for(stream, b"\x11" * 32, 1000)
    assert offered[0] == ids[1] and ids[2] in offered
    # the packer kept the chunk at 1000 as a delta against parent chunk 2 (at 2000): the
    # new stream runs a chunk behind the parent from here
    stream.kept(start, ids[2])
    assert bases_for(stream, b"\x12" * 32, 1000)[0] == ids[3]
    assert bases_for(stream, b"\x13" * 32, 1000)[0] == ids[4]
    # a base that was never offered for that chunk teaches nothing
    start = stream.offset
    bases_for(stream, b"\x14" * 32, 1000)
    stream.kept(start, ids[15])
    assert bases_for(stream, b"\x15" * 32, 1000)[0] == ids[6]
