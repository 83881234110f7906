"""Rotating verification: partial `--read-data` runs read the packs verified least recently
first, remember what they read in the cache directory, stop cleanly at a time limit, and never
forget damage."""

from __future__ import annotations

import os
from itertools import count
from pathlib import Path

import pytest

from snapstore.backend.base import FileType, Handle
from snapstore.checker import findings as F
from snapstore.checker import rotation
from snapstore.checker.checker import CheckOptions, CheckReport, check_repository
from snapstore.ids import Id
from snapstore.repository.repository import Repository
from tests.conftest import reopen
from tests.unit.checker.test_checker import backup, flip

DAY = 86400.0


class Clocks:
    """A wall clock for the record (a night apart per check) and a monotonic one for
    --max-duration that moves a second each time it is read."""

    def __init__(self) -> None:
        self.wall = 1_800_000_000.0
        self._ticks = count()

    def monotonic(self) -> float:
        return float(next(self._ticks))

    def now(self) -> float:
        return self.wall


@pytest.fixture
def packs(repo: Repository) -> list[Id]:
    for n in range(6):  # 6 snapshots, each flushing a data pack and a tree pack
        backup(repo, {f"file{n}": os.urandom(3000)})
    found = [Id.from_hex(i.handle.name) for i in repo.backend.list(FileType.PACK)]
    assert len(found) == 12
    return found


def night(
    repo: Repository, cache: Path, clocks: Clocks, read_data: bool = True, **options: object
) -> CheckReport:
    report = check_repository(
        reopen(repo, load_index=False),
        CheckOptions(read_data=read_data, cache_dir=cache, clock=clocks.monotonic,
                     now=clocks.now, **options),  # type: ignore[arg-type]
    )
    clocks.wall += DAY
    return report


def test_three_nights_of_a_third_cover_every_pack_oldest_first(
    repo: Repository, packs: list[Id], tmp_path: Path
) -> None:
    clocks = Clocks()
    nights = [night(repo, tmp_path, clocks, fraction=0.34) for _ in range(3)]
    read = [set(r.verified) for r in nights]
    assert [len(r) for r in read] == [5, 5, 5]  # ceil(0.34 * 12)
    assert set().union(*read) == set(packs)
    assert read[0].isdisjoint(read[1])  # never-verified packs before any verified one
    assert nights[2].coverage is not None and nights[2].coverage.packs == 12
    assert nights[2].coverage.bytes == nights[2].coverage.bytes_total
    # the fourth night reads the packs verified longest ago: the first night's
    fourth = night(repo, tmp_path, clocks, fraction=0.34)
    assert set(fourth.verified) <= read[0] | (read[1] - read[2])
    assert read[0] - read[2] <= set(fourth.verified)
    # a week on, only what was read in the last 7 days counts
    clocks.wall += 6 * DAY
    coverage = night(repo, tmp_path, clocks, read_data=False).coverage
    assert coverage is not None and coverage.packs == len(set(fourth.verified))


def test_max_duration_stops_cleanly_and_remembers(repo: Repository, packs: list[Id], tmp_path: Path) -> None:
    clocks = Clocks()
    first = night(repo, tmp_path, clocks, max_duration=0)
    assert first.ok and first.time_up and first.packs_selected == 12
    assert 1 <= first.packs_read < 12 and len(first.verified) == first.packs_read
    record = rotation.load(rotation.record_path(tmp_path, repo.repository_id))
    assert set(record.verified) == set(first.verified)
    rest = night(repo, tmp_path, clocks)
    assert not rest.time_up and rest.packs_read == 12
    assert rest.verified[: 12 - first.packs_read] == sorted(set(packs) - set(first.verified))


def test_damage_is_not_forgotten(repo: Repository, packs: list[Id], tmp_path: Path) -> None:
    clocks = Clocks()
    victim = max(repo.backend.list(FileType.PACK), key=lambda i: i.size)
    flip(repo.backend, victim.handle, 100)
    bad = Id.from_hex(victim.handle.name)
    found = night(repo, tmp_path, clocks)
    assert not found.ok and bad not in found.verified
    # a run too short to read it again still fails on it, and the next reads it first
    short = night(repo, tmp_path, clocks, max_duration=0, fraction=0.01)
    assert not short.ok
    finding = next(f for f in short.errors if f.kind == F.PACK_DAMAGED)
    assert finding.subject == bad.hex()
    coverage = short.coverage
    assert coverage is not None and coverage.packs == 11
    # repaired (here: the pack put back whole), the next read clears it
    flip(repo.backend, victim.handle, 100)
    healed = night(repo, tmp_path, clocks, fraction=0.01)
    assert healed.ok and healed.verified[0] == bad


def test_without_a_cache_directory_nothing_is_remembered(repo: Repository, packs: list[Id]) -> None:
    clocks = Clocks()
    report = check_repository(
        reopen(repo, load_index=False),
        CheckOptions(read_data=True, fraction=0.25, clock=clocks.monotonic, now=clocks.now),
    )
    assert report.ok and report.packs_read == 3 and report.coverage is None


def test_an_unreadable_record_counts_as_never_verified(tmp_path: Path) -> None:
    path = tmp_path / "verified-packs.json"
    path.write_text("{not json")
    assert rotation.load(path) == rotation.VerificationRecord()
    missing = rotation.load(tmp_path / "nothing.json")
    assert missing.order([Id(b"\x02" * 32), Id(b"\x01" * 32)]) == [Id(b"\x01" * 32), Id(b"\x02" * 32)]


def test_gone_packs_leave_the_record(repo: Repository, packs: list[Id], tmp_path: Path) -> None:
    clocks = Clocks()
    night(repo, tmp_path, clocks)
    repo.backend.remove(Handle(FileType.PACK, packs[0].hex()))
    night(repo, tmp_path, clocks, fraction=0.01)
    record = rotation.load(rotation.record_path(tmp_path, repo.repository_id))
    assert packs[0] not in record.verified and len(record.verified) == 11
