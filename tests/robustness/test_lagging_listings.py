"""Prune, forget --prune and check on a store whose listings lag behind writes and deletes.

The danger (kopia guards it with time margins, restic by requiring consistent stores): a prune
right after a backup lists the backup's first packs but not yet its snapshot, takes them for
unused and deletes them; the snapshot, once listed, names data that is gone. And a check right
after a prune lists the old index files prune deleted and not the new one, and reports damage
that is not there. A lock is held only once the listing of locks/ shows it
(`Repository.lock`), so everything its holder lists afterwards shows what was stored before.

Where a lag bites depends on how many calls each step makes, which any change to the commands
shifts: each test tries every lag in LAGS (or every third).
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

import snapstore
from snapstore.backend.base import FileType
from snapstore.backend.eventual import EventuallyConsistentBackend
from snapstore.backend.memory import MemoryBackend
from snapstore.checker.checker import CheckOptions, check_repository
from snapstore.crypto.kdf import TEST_KDF
from snapstore.errors import BackendError
from snapstore.repository.repository import Repository
from tests.conftest import PASSWORD
from tests.support.flaky_store import FlakyStore, assert_restores, snapshots_by_id
from tests.support.memory_source import MemorySource

LAGS = range(1, 41)


def backups(store: FlakyStore, seed: int) -> dict[bytes, dict[str, bytes]]:
    """A small snapshot, then a larger one (a dozen packs) just before the next command.

    Each file is one chunk (smaller than the files profile's least chunk) and uploads go one at
    a time, so the calls come in the same order whatever the repository's chunker seed."""
    rng = random.Random(seed)
    saved = {}
    first = {"a.bin": rng.randbytes(300_000)}
    second = {f"b/{i:02}.bin": rng.randbytes(250_000) for i in range(12)}
    for files in (first, second):
        with store.open(lock="shared", connections=1) as repo:
            snapshot = snapstore.take_snapshot(repo, MemorySource(files)).snapshot
        saved[bytes(snapshot.id or b"")] = files
    return saved


def assert_all_there(
    store: FlakyStore, saved: dict[bytes, dict[str, bytes]], scratch: Path, where: str
) -> None:
    """The truth checks clean and every snapshot in `saved` restores as saved."""
    with store.clean(load_index=False) as clean:
        report = check_repository(clean, CheckOptions(read_data=True))
    assert report.ok, f"{where}: " + "\n".join(str(f) for f in report.errors)
    with store.clean() as clean:
        present = snapshots_by_id(clean)
        for snap_id, files in saved.items():
            assert snap_id in present, f"{where}: snapshot {snap_id.hex()[:8]} is gone"
            assert_restores(clean, present[snap_id], files, scratch)


def test_prune_right_after_a_backup_keeps_what_the_backup_stored(tmp_path: Path) -> None:
    for lag in LAGS:  # without the wait for the lock, lags 18 and 19 lost the second backup
        store = FlakyStore(lag, lag=lag)
        saved = backups(store, lag)
        with store.open(lock="exclusive", load_index=False) as repo:
            report = snapstore.prune(repo, snapstore.PruneOptions(max_unused=0.0))
        assert_all_there(store, saved, tmp_path, f"lag {lag}")
        assert (report.snapshots, report.packs_deleted) == (2, 0), f"lag {lag}"


def test_check_right_after_prune_finds_no_damage_that_is_not_there(tmp_path: Path) -> None:
    for lag in LAGS[::3]:
        store = FlakyStore(lag, lag=lag)
        saved = backups(store, lag)
        with store.open(lock="exclusive", load_index=False) as repo:  # forget the first, prune
            first = min(saved)
            del saved[first]
            repo.remove_object(FileType.SNAPSHOT, first.hex())
            report = snapstore.prune(repo, snapstore.PruneOptions(max_unused=0.0))
        assert report.index_files_written and report.index_files_deleted and report.packs_deleted
        with store.open(lock="shared", load_index=False) as repo:
            checked = check_repository(repo, CheckOptions(read_data=True))
        assert checked.ok, f"lag {lag}: " + "\n".join(str(f) for f in checked.errors)
        assert_all_there(store, saved, tmp_path, f"lag {lag}")


def test_forget_then_prune_in_one_lock_passes_over_the_snapshots_it_just_removed(
    tmp_path: Path,
) -> None:
    """The listing prune reads still shows what forget removed a moment earlier."""
    for lag in LAGS[::3]:
        store = FlakyStore(lag, lag=lag)
        saved = backups(store, lag)
        with store.open(lock="exclusive", load_index=False) as repo:
            result = snapstore.forget(repo, snapstore.RetentionPolicy(keep_last=1), group_by=[""])
            [removed] = result.removed
            report = snapstore.prune(repo)
        del saved[bytes(removed.id or b"")]
        assert report.snapshots == 1 and report.packs_deleted, f"lag {lag}"
        assert_all_there(store, saved, tmp_path, f"lag {lag}")


def test_a_lock_is_held_once_the_listing_shows_it() -> None:
    lagging = EventuallyConsistentBackend(MemoryBackend(), lag=0)
    Repository.init(lagging, PASSWORD, kdf=TEST_KDF).close()
    lagging.lag = 25
    repo = Repository.open(lagging, PASSWORD)
    repo.listing_poll = 0.0
    lock = repo.lock(exclusive=True)
    names = {info.handle.name for info in lagging.list(FileType.LOCK)}
    assert lock.name in names
    repo.close()


def test_a_listing_that_never_shows_the_lock_gives_up_and_leaves_no_lock() -> None:
    lagging = EventuallyConsistentBackend(MemoryBackend(), lag=0)
    Repository.init(lagging, PASSWORD, kdf=TEST_KDF).close()
    lagging.lag = 10**9
    repo = Repository.open(lagging, PASSWORD)
    repo.listing_poll, repo.listing_wait = 0.01, 0.2
    started = time.monotonic()
    with pytest.raises(BackendError, match="listing of locks/ still lacks the lock"):
        repo.lock(exclusive=True)
    assert time.monotonic() - started < 5
    assert repo.held_lock is None
    lagging.settle()
    assert not list(lagging.list(FileType.LOCK))
    repo.close()
