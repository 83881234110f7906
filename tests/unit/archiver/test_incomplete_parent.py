"""The delta parent is never an incomplete snapshot unless it is asked for (issue 12, item 4):
a night whose files or parts failed is not what the next night is stored against."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from snapstore.archiver.archiver import Archiver, BackupResult, SnapshotOptions
from snapstore.archiver.parent import find_parent
from snapstore.archiver.source import ChunkingProfile
from snapstore.repository.repository import Repository
from snapstore.snapshot.manifest import Snapshot
from tests.conftest import assert_repository_ok
from tests.support.memory_source import File, MemorySource

WHEN = datetime(2026, 5, 1, 3, 0, tzinfo=UTC)
DUMP = bytes(range(256)) * 64


def backup(repo: Repository, day: int, *, fail: bool, parent: Snapshot | None = None) -> BackupResult:
    broken = File(b"", open_error=OSError(5, "Input/output error"))
    source = MemorySource({"db.dump": File(DUMP + bytes([day]), profile=ChunkingProfile.DATABASE),
                           "media.bin": broken if fail else b"media"})
    options = SnapshotOptions(time=WHEN + timedelta(days=day), host="h", user="u", parent=parent)
    return Archiver(repo).run(source, options)


def test_an_incomplete_snapshot_is_never_the_parent_found(repo: Repository) -> None:
    good = backup(repo, 0, fail=False).snapshot
    bad = backup(repo, 1, fail=True).snapshot
    assert not bad.complete and bad.parent == good.id
    found = find_parent(repo, "memory", ["memory"], "h")
    assert found is not None and found.id == good.id
    assert backup(repo, 2, fail=False).snapshot.parent == good.id
    assert_repository_ok(repo)


def test_an_incomplete_snapshot_is_the_parent_when_asked_for(repo: Repository) -> None:
    bad = backup(repo, 0, fail=True).snapshot
    assert find_parent(repo, "memory", ["memory"], "h") is None
    assert backup(repo, 1, fail=False).snapshot.parent is None
    assert backup(repo, 2, fail=False, parent=bad).snapshot.parent == bad.id
    assert_repository_ok(repo)
