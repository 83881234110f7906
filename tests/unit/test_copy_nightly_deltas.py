"""`copy_snapshots` of nightly database dumps: the off-site copy keeps the deltas.

Night 2 of a dump with scattered small changes is stored in the source as deltas against
night 1's chunks; copied to a destination that holds night 1, its new chunks become deltas
against the destination's own copies of those chunks, so the destination grows about as
little as the source did.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

import snapstore
from snapstore.archiver.archiver import Archiver, SnapshotOptions
from snapstore.archiver.source import ChunkingProfile
from snapstore.backend.memory import MemoryBackend
from snapstore.crypto.kdf import TEST_KDF
from snapstore.repository.repository import Repository
from snapstore.snapshot.store import list_snapshots
from tests.conftest import PASSWORD, assert_repository_ok
from tests.support.deltas import dump_rows
from tests.support.memory_source import File, MemorySource

ROWS = 40_000
NIGHT_1 = datetime(2026, 5, 1, 3, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def nights() -> tuple[bytes, bytes]:
    edited = frozenset(random.Random(4).sample(range(ROWS), ROWS // 100))  # 1%, scattered
    return dump_rows(ROWS), dump_rows(ROWS, edited)


@pytest.fixture
def src() -> Iterator[Repository]:
    repo = Repository.init(MemoryBackend("src"), PASSWORD, kdf=TEST_KDF, pack_size=256 << 10)
    yield repo
    repo.close()


@pytest.fixture
def dst_backend() -> MemoryBackend:
    return MemoryBackend("dst")


@pytest.fixture
def dst(dst_backend: MemoryBackend) -> Iterator[Repository]:
    repo = Repository.init(dst_backend, PASSWORD, kdf=TEST_KDF, pack_size=256 << 10)
    yield repo
    repo.close()


def backup(repo: Repository, data: bytes, night: int) -> snapstore.Snapshot:
    source = MemorySource({"db.dump": File(data, profile=ChunkingProfile.DATABASE)})
    options = SnapshotOptions(time=NIGHT_1 + timedelta(days=night), host="db1", user="mastodon")
    return Archiver(repo).run(source, options).snapshot


def copy_growth(src: Repository, dst: Repository) -> tuple[int, snapstore.CopyResult]:
    """Copies what `dst` lacks; what the destination's packs grew by, and the result."""
    before = dst.bytes_uploaded
    result = snapstore.copy_snapshots(src, dst)
    return dst.bytes_uploaded - before, result


@pytest.mark.parametrize("runs", ["nightly", "at once"])
def test_night_two_costs_the_destination_about_what_it_cost_the_source(
    src: Repository,
    dst: Repository,
    dst_backend: MemoryBackend,
    nights: tuple[bytes, bytes],
    runs: str,
) -> None:
    first = backup(src, nights[0], 0)
    grown_1 = 0
    if runs == "nightly":  # night 1's chunks reach the destination in an earlier run
        grown_1, copied_1 = copy_growth(src, dst)
        assert copied_1.deltas_added == 0
    second = backup(src, nights[1], 1)
    cost_1, cost_2 = first.summary.bytes_added, second.summary.bytes_added  # in the source
    assert second.summary.deltas_added > 10 and cost_2 < cost_1 / 5, "the fixture must make deltas"
    grown, copied = copy_growth(src, dst)
    expected = [first.id, second.id] if runs == "at once" else [second.id]
    assert [s.id for s, _ in copied.copied] == expected
    # night 2's bases: hashed from the source's plaintext after an earlier run, from the run's
    # map in one run
    assert copied.deltas_added >= second.summary.deltas_added // 2, copied
    # whole, night 2 would cost the destination about what night 1 did; as deltas, about
    # what it cost the source (plus its tree and chunk-list blobs: 16 KiB is plenty)
    assert grown_1 + grown < cost_1 + 1.5 * cost_2 + (16 << 10), (grown_1, grown, cost_1, cost_2)

    src.close()  # everything below reads the destination alone
    dst.close()
    again = Repository.open(dst_backend, PASSWORD)
    again.load_index()
    copies = list_snapshots(again)
    assert [c.metadata["copied_from"] for c in copies] == [first.id.hex(), second.id.hex()]  # type: ignore[union-attr]
    for copy, data in zip(copies, nights, strict=True):
        assert b"".join(snapstore.dump_file(again, copy, "db.dump")) == data
    assert_repository_ok(again)  # with --read-data: every delta and its whole base
    again.close()
