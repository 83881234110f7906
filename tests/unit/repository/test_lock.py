"""Locks (SPEC.md section 10): conflicts, stale rules, refresh, retry and removal."""

from __future__ import annotations

import os
import socket
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from snapstore.backend.base import FileType, Handle
from snapstore.errors import IntegrityError, RepositoryLocked, UsageError
from snapstore.pack import BlobType
from snapstore.repository.lock import (
    LockInfo,
    RepositoryLock,
    list_locks,
    pid_alive,
    remove_locks,
)
from snapstore.repository.repository import Repository
from tests.conftest import assert_repository_ok, reopen

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def foreign_lock(
    repo: Repository,
    *,
    exclusive: bool,
    refreshed: datetime = NOW,
    host: str = "elsewhere",
    pid: int = 4242,
) -> str:
    info = LockInfo(exclusive, host, pid, "someone", refreshed, refreshed, os.urandom(16))
    return repo.save_object(FileType.LOCK, info.encode()).hex()


def dead_pid() -> int:
    """A pid no process has (a child that has exited and was reaped)."""
    child = os.fork()
    if child == 0:
        os._exit(0)
    os.waitpid(child, 0)
    assert not pid_alive(child)
    return child


def lock_names(repo: Repository) -> set[str]:
    return {i.handle.name for i in repo.list_objects(FileType.LOCK)}


def test_lock_info_round_trip_and_rejects_garbage() -> None:
    info = LockInfo.new(True, NOW)
    assert LockInfo.decode(info.encode()) == info
    assert info.pid == os.getpid() and info.host == socket.gethostname()
    with pytest.raises(IntegrityError):
        LockInfo.decode(b"\x81\xa1v\x02")
    with pytest.raises(IntegrityError):
        LockInfo.decode(b"not msgpack at all \xc1")


def test_shared_locks_coexist_and_exclusive_excludes(repo: Repository) -> None:
    first = repo.lock(exclusive=False)
    second = reopen(repo, load_index=False)
    second.lock(exclusive=False)
    assert len(lock_names(repo)) == 2
    third = reopen(repo, load_index=False)
    with pytest.raises(RepositoryLocked, match="a shared lock held by"):
        third.lock(exclusive=True)
    assert len(lock_names(repo)) == 2  # the loser backed off and removed its own lock
    second.close()
    repo.unlock()
    assert first.name is None
    third.lock(exclusive=True)
    with pytest.raises(RepositoryLocked, match="an exclusive lock"):
        reopen(repo, load_index=False).lock(exclusive=False)
    third.close()
    assert lock_names(repo) == set()
    assert_repository_ok(repo)


def test_close_releases_the_lock_and_a_handle_locks_once(repo: Repository) -> None:
    other = reopen(repo, load_index=False)
    other.lock(exclusive=True)
    with pytest.raises(UsageError):
        other.lock(exclusive=True)
    other.close()
    assert lock_names(repo) == set()


def test_a_conflict_written_between_check_and_write_is_seen(repo: Repository) -> None:
    """Step 3 of the protocol: a lock that appears after our first listing makes us back off."""
    lock = RepositoryLock(repo, exclusive=True, clock=Clock())
    original = repo.save_object
    other = reopen(repo, load_index=False)

    def save_and_race(file_type: FileType, plaintext: bytes) -> object:
        name = original(file_type, plaintext)
        foreign_lock(other, exclusive=False)  # another process, just in time
        return name

    repo.save_object = save_and_race  # type: ignore[method-assign,assignment]
    with pytest.raises(RepositoryLocked):
        lock.acquire()
    repo.save_object = original  # type: ignore[method-assign]
    assert len(lock_names(repo)) == 1  # only the other one is left


def test_stale_rules() -> None:
    here, pid = socket.gethostname(), os.getpid()
    fresh = LockInfo(False, "elsewhere", 1, "u", NOW, NOW)
    assert not fresh.is_stale(NOW + timedelta(minutes=29))
    assert fresh.is_stale(NOW + timedelta(minutes=31))
    assert not fresh.is_stale(NOW - timedelta(hours=1))  # a clock ahead of ours: not stale
    assert not LockInfo(False, here, pid, "u", NOW, NOW).is_stale(NOW)
    assert LockInfo(False, here, dead_pid(), "u", NOW, NOW).is_stale(NOW)
    # A dead pid on another host says nothing: that host's process may be alive.
    assert not LockInfo(False, "elsewhere", dead_pid(), "u", NOW, NOW).is_stale(NOW)


def test_stale_locks_do_not_block_and_unlock_removes_only_them(repo: Repository) -> None:
    old = foreign_lock(repo, exclusive=True, refreshed=NOW - timedelta(minutes=45))
    dead = foreign_lock(repo, exclusive=True, host=socket.gethostname(), pid=dead_pid())
    alive = foreign_lock(repo, exclusive=False)
    lock = RepositoryLock(repo, exclusive=False, clock=Clock())
    lock.acquire()  # neither stale exclusive lock blocks a shared one
    lock.release()
    with pytest.raises(RepositoryLocked, match="someone@elsewhere"):
        RepositoryLock(repo, exclusive=True, clock=Clock()).acquire()
    removed = remove_locks(repo, clock=Clock())
    assert {s.name for s in removed} == {old, dead}
    assert lock_names(repo) == {alive}
    assert [s.name for s in remove_locks(repo, remove_all=True, clock=Clock())] == [alive]
    assert lock_names(repo) == set()


def test_an_unreadable_lock_conflicts_until_removed_with_remove_all(repo: Repository) -> None:
    repo.backend.save(Handle(FileType.LOCK, "ab" * 32), b"garbage")
    (stored,) = list_locks(repo)
    assert stored.info is None and "unreadable" in stored.describe()
    with pytest.raises(RepositoryLocked, match="unreadable"):
        RepositoryLock(repo, exclusive=False).acquire()
    assert remove_locks(repo) == []
    assert len(remove_locks(repo, remove_all=True)) == 1
    RepositoryLock(repo, exclusive=False).acquire()


def test_retry_waits_for_the_holder_to_let_go(repo: Repository) -> None:
    holder = reopen(repo, load_index=False)
    holder.lock(exclusive=False)
    timer = threading.Timer(0.5, holder.close)
    timer.start()
    started = time.monotonic()
    with pytest.raises(RepositoryLocked):
        RepositoryLock(repo, exclusive=True).acquire(retry=0.2)
    RepositoryLock(repo, exclusive=True).acquire(retry=10)
    assert 0.4 < time.monotonic() - started < 8
    timer.join()


def test_refresh_replaces_the_object_and_keeps_the_start_time(repo: Repository) -> None:
    clock = Clock()
    lock = RepositoryLock(repo, exclusive=True, clock=clock)
    lock.acquire()
    first = lock.name
    clock.now = NOW + timedelta(minutes=5)
    lock.refresh()
    assert lock.name != first and lock_names(repo) == {lock.name}
    (stored,) = list_locks(repo)
    assert stored.info is not None
    assert stored.info.time == NOW and stored.info.refreshed == clock.now
    lock.check()
    lock.release()
    assert lock_names(repo) == set()


def test_refresh_thread_keeps_a_lock_alive(repo: Repository) -> None:
    lock = RepositoryLock(repo, exclusive=False, refresh_every=timedelta(seconds=0.05))
    lock.acquire()
    names = {lock.name}
    deadline = time.monotonic() + 5
    while len(names) < 4 and time.monotonic() < deadline:
        time.sleep(0.02)
        names.add(lock.name)
    assert len(names) >= 4
    lock.release()
    assert lock_names(repo) == set()


def test_a_removed_lock_is_lost(repo: Repository) -> None:
    lock = RepositoryLock(repo, exclusive=True)
    lock.acquire()
    lock.check()
    remove_locks(repo, remove_all=True)
    lock.refresh()
    with pytest.raises(RepositoryLocked, match="removed by someone else"):
        lock.check()
    lock.release()


def test_a_lock_not_refreshed_in_time_is_lost(repo: Repository) -> None:
    lock = RepositoryLock(
        repo, exclusive=True, stale_after=timedelta(seconds=0.1), refresh_every=timedelta(hours=1)
    )
    lock.acquire()
    lock.check()
    time.sleep(0.15)
    with pytest.raises(RepositoryLocked, match="could not be refreshed"):
        lock.check()
    lock.release()
    with pytest.raises(RepositoryLocked, match="not held"):
        lock.check()


def test_a_writer_whose_lock_was_lost_commits_nothing(repo: Repository) -> None:
    """Its packs may be gone (a prune took the lost lock for stale): no index, no snapshot."""
    writer = reopen(repo)
    lock = writer.lock(exclusive=False)
    writer.save_blob(BlobType.DATA, b"some data")
    remove_locks(repo, remove_all=True)
    lock.refresh()
    with pytest.raises(RepositoryLocked):
        writer.flush()
    with pytest.raises(RepositoryLocked):
        writer.save_object(FileType.SNAPSHOT, b"a snapshot")
    assert not list(repo.list_objects(FileType.INDEX))
    assert not list(repo.list_objects(FileType.SNAPSHOT))
    writer.close()
