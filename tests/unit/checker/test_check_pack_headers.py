"""Plain `check` (without --read-data) reads every pack's header: a pack cut short, extended,
or with a damaged header or trailer is found (issue 10, item 6)."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from snapstore.archiver.archiver import Archiver, SnapshotOptions
from snapstore.backend.base import FileType, Handle
from snapstore.checker import findings as F
from snapstore.checker.checker import CheckOptions, check_repository
from snapstore.repository.repository import Repository
from tests.conftest import reopen
from tests.support.memory_source import MemorySource

WHEN = datetime(2026, 5, 1, tzinfo=UTC)


def _cut(data: bytes) -> bytes:
    return data[:-100]


def _extend(data: bytes) -> bytes:
    return data + b"\0" * 100


def _flip_trailer(data: bytes) -> bytes:
    return data[:-3] + bytes([data[-3] ^ 1]) + data[-2:]


def _flip_header(data: bytes) -> bytes:
    at = len(data) - 30
    return data[:at] + bytes([data[at] ^ 1]) + data[at + 1 :]


@pytest.mark.parametrize("damage", [_cut, _extend, _flip_trailer, _flip_header])
def test_plain_check_reads_pack_headers(repo: Repository, damage: Callable[[bytes], bytes]) -> None:
    snap = Archiver(repo).run(MemorySource({"f": os.urandom(50_000)}), SnapshotOptions(time=WHEN)).snapshot
    data_pack = max(repo.backend.list(FileType.PACK), key=lambda i: i.size).handle
    repo.backend.save(data_pack, damage(repo.backend.load(data_pack)))
    report = check_repository(reopen(repo, load_index=False), CheckOptions())
    (finding,) = report.errors
    assert finding.kind == F.PACK_DAMAGED and finding.subject == data_pack.name
    assert finding.snapshots == [snap.short_id]


def test_plain_check_of_a_whole_repository_reads_no_pack_data(repo: Repository) -> None:
    Archiver(repo).run(MemorySource({"f": os.urandom(200_000)}), SnapshotOptions(time=WHEN))
    again = reopen(repo, load_index=False)
    loads: list[tuple[Handle, int, int | None]] = []
    original = again.backend.load

    def counting(handle: Handle, offset: int = 0, length: int | None = None) -> bytes:
        loads.append((handle, offset, length))
        return original(handle, offset, length)

    again.backend.load = counting  # type: ignore[method-assign]
    assert check_repository(again, CheckOptions()).ok
    pack_reads = [(h, n) for h, _, n in loads if h.type is FileType.PACK]
    assert pack_reads and all(n is not None and n <= 64 * 1024 for _, n in pack_reads)
