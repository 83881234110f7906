"""The connection pool: one thread per member at a time, at most `size` members, and a
member that failed transiently is replaced."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from snapstore.backend.base import Backend, FileType, Handle
from snapstore.backend.faulty import FaultyBackend
from snapstore.backend.memory import MemoryBackend
from snapstore.backend.pool import PooledBackend
from snapstore.errors import TransientBackendError
from tests.backend.conformance import BackendConformance


class Member(FaultyBackend):
    """A pass-through member that notices being used by two threads at once."""

    def __init__(self, inner: Backend, log: list[str]) -> None:
        super().__init__(inner)
        self.busy = threading.Lock()
        self.closed = False
        self._log = log

    def load(self, handle: Handle, offset: int = 0, length: int | None = None) -> bytes:
        if not self.busy.acquire(blocking=False):
            self._log.append("shared between threads")
            return super().load(handle, offset, length)
        try:
            time.sleep(0.005)
            return super().load(handle, offset, length)
        finally:
            self.busy.release()

    def close(self) -> None:
        self.closed = True


class TestPooledBackend(BackendConformance):
    @pytest.fixture
    def backend(self) -> Iterator[Backend]:
        store = MemoryBackend()
        pool = PooledBackend(lambda: Member(store, []), size=3, location="pool")
        yield pool
        pool.close()


def test_members_serve_one_thread_at_a_time_and_are_bounded() -> None:
    store = MemoryBackend()
    store.save(Handle(FileType.PACK, "ab01"), b"data")
    log: list[str] = []
    made: list[Member] = []

    def factory() -> Member:
        member = Member(store, log)
        made.append(member)
        return member

    pool = PooledBackend(factory, size=3, location="pool")
    threads = [
        threading.Thread(target=lambda: [pool.load(Handle(FileType.PACK, "ab01")) for _ in range(10)])
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert log == []
    assert len(made) == 3
    pool.close()
    assert all(member.closed for member in made)


def test_a_member_that_failed_transiently_is_replaced() -> None:
    store = MemoryBackend()
    store.save(Handle(FileType.PACK, "ab01"), b"data")
    made: list[Member] = []

    def factory() -> Member:
        made.append(Member(store, []))
        return made[-1]

    pool = PooledBackend(factory, size=1, location="pool")
    pool.load(Handle(FileType.PACK, "ab01"))
    made[0].fail("load")
    with pytest.raises(TransientBackendError):
        pool.load(Handle(FileType.PACK, "ab01"))
    assert made[0].closed
    assert pool.load(Handle(FileType.PACK, "ab01")) == b"data"
    assert len(made) == 2


def test_a_failing_connect_frees_its_place() -> None:
    attempts = []

    def factory() -> Backend:
        attempts.append(1)
        if len(attempts) == 1:
            raise TransientBackendError("no route to host")
        return MemoryBackend()

    pool = PooledBackend(factory, size=1, location="pool")
    with pytest.raises(TransientBackendError):
        pool.create()
    pool.create()
    assert len(attempts) == 2
