"""The doubles themselves: a listing that lags by N calls, and seeded random faults."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from snapstore.backend.base import Backend, FileInfo, FileType, Handle
from snapstore.backend.eventual import EventuallyConsistentBackend
from snapstore.backend.faulty import FaultyBackend
from snapstore.backend.memory import MemoryBackend
from snapstore.backend.retry import RetryBackend
from snapstore.errors import TransientBackendError
from tests.backend.conformance import BackendConformance


def pack(name: str) -> Handle:
    return Handle(FileType.PACK, name)


def names(backend: Backend, file_type: FileType = FileType.PACK) -> dict[str, int]:
    return {info.handle.name: info.size for info in backend.list(file_type)}


class TestConsistentWithoutLag(BackendConformance):
    @pytest.fixture
    def backend(self) -> Iterator[Backend]:
        yield EventuallyConsistentBackend(MemoryBackend(), lag=0)


class TestFaultyWithoutFaultsDrawn(BackendConformance):
    @pytest.fixture
    def backend(self) -> Iterator[Backend]:
        faulty = FaultyBackend(MemoryBackend())
        faulty.randomly(1, errors=0.0, delay=0.0001)
        yield faulty


# -- the lagging listing ----------------------------------------------------------------------
def test_a_new_object_is_listed_once_lag_calls_have_passed() -> None:
    lagging = EventuallyConsistentBackend(MemoryBackend(), lag=3)
    lagging.save(pack("aa"), b"new")  # call 1
    assert lagging.load(pack("aa")) == b"new"  # 2: reads see it at once
    assert names(lagging) == {}  # 3: 3 - 3 = 0 < 1
    assert names(lagging) == {"aa": 3}  # 4: as of call 1


def test_a_removed_object_is_listed_with_its_size_for_lag_calls() -> None:
    store = MemoryBackend()
    store.save(pack("aa"), b"old")
    lagging = EventuallyConsistentBackend(store, lag=2)
    lagging.remove(pack("aa"))  # call 1
    assert names(lagging) == {"aa": 3}  # 2
    assert names(lagging) == {}  # 3


def test_a_replaced_object_keeps_its_old_size_until_the_lag_passes() -> None:
    lagging = EventuallyConsistentBackend(MemoryBackend(), lag=0)
    lagging.save(Handle(FileType.LOCK, "l1"), b"12345")
    lagging.lag = 2
    lagging.save(Handle(FileType.LOCK, "l1"), b"1234567")
    assert names(lagging, FileType.LOCK) == {"l1": 5}
    assert names(lagging, FileType.LOCK) == {"l1": 7}


def test_each_listing_shows_the_store_as_of_lag_calls_ago() -> None:
    lagging = EventuallyConsistentBackend(MemoryBackend(), lag=5)
    lagging.save(pack("aa"), b"x")  # call 1
    lagging.remove(pack("aa"))  # call 2
    seen = [("aa" in names(lagging)) for _ in range(6)]  # calls 3 to 8: as of -2 to 3
    assert seen == [False, False, False, True, False, False]


def test_settle_shows_the_present_at_once_and_types_lag_alike() -> None:
    lagging = EventuallyConsistentBackend(MemoryBackend(), lag=100)
    lagging.save(pack("aa"), b"x")
    lagging.save(Handle(FileType.SNAPSHOT, "s1"), b"y")
    assert names(lagging) == {} and names(lagging, FileType.SNAPSHOT) == {}
    lagging.settle()
    assert names(lagging) == {"aa": 1} and names(lagging, FileType.SNAPSHOT) == {"s1": 1}


def test_a_failed_save_is_recorded_as_what_the_store_holds() -> None:
    faulty_store = FaultyBackend(MemoryBackend())
    lagging = EventuallyConsistentBackend(faulty_store, lag=1)
    faulty_store.fail("save")
    with pytest.raises(TransientBackendError):
        lagging.save(pack("aa"), b"x")
    assert names(lagging) == {} and names(lagging) == {}  # nothing was stored


# -- random faults ----------------------------------------------------------------------------
def outcomes(seed: int, calls: int = 300) -> list[str]:
    faulty = FaultyBackend(MemoryBackend())
    faulty.save(pack("aa"), b"x")
    faulty.randomly(seed, errors={"load": 0.3, "save": 0.3, "remove": 0.3})
    seen = []
    for number in range(calls):
        handle = pack(f"{number:04x}")
        try:
            faulty.save(handle, b"data")
            seen.append("saved")
        except TransientBackendError:
            seen.append("saved anyway" if names(faulty).get(handle.name) else "not saved")
        try:
            faulty.load(pack("aa"))
            seen.append("loaded")
        except TransientBackendError:
            seen.append("load failed")
    return seen


def test_random_faults_are_drawn_from_the_seed() -> None:
    first = outcomes(7)
    assert first == outcomes(7)
    assert first != outcomes(8)
    counts = {kind: first.count(kind) for kind in set(first)}
    assert 120 < counts["saved"] < 260 and 100 < counts["loaded"] < 260, counts
    assert counts["saved anyway"] and counts["not saved"] and counts["load failed"], counts


def test_a_failing_random_list_yields_a_few_items_then_fails_and_retry_lists_each_once() -> None:
    faulty = FaultyBackend(MemoryBackend())
    for number in range(40):
        faulty.save(pack(f"{number:02x}"), b"x")
    faulty.randomly(3, errors={"list": 0.5})
    cut_short = 0
    for _ in range(20):
        got: list[FileInfo] = []
        try:
            got.extend(faulty.list(FileType.PACK))
        except TransientBackendError:
            cut_short += 1
            assert len(got) < 8
    assert 3 < cut_short < 18
    retrying = RetryBackend(faulty, max_attempts=None, retry_for=60, sleep=lambda s: None)
    for _ in range(10):
        listed = [info.handle.name for info in retrying.list(FileType.PACK)]
        assert sorted(listed) == [f"{n:02x}" for n in range(40)]
    assert faulty.injected > 5


def test_queued_faults_come_first_and_clear_stops_random_ones() -> None:
    faulty = FaultyBackend(MemoryBackend())
    faulty.randomly(1, errors=1.0)
    with pytest.raises(TransientBackendError, match="injected"):
        faulty.stat(pack("aa"))
    faulty.clear()
    faulty.save(pack("aa"), b"x")
    assert faulty.load(pack("aa")) == b"x"


def test_random_faults_are_safe_from_many_threads() -> None:
    faulty = FaultyBackend(MemoryBackend())
    faulty.randomly(5, errors=0.2, delay=0.0005)
    failures = []

    def work(base: int) -> None:
        for number in range(50):
            try:
                faulty.save(pack(f"{base:02x}{number:02x}"), b"x")
            except TransientBackendError:
                failures.append(1)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert faulty.injected == len(failures) and 10 < len(failures) < 80
    assert faulty.calls("save") == 200


def test_random_fault_settings_are_checked() -> None:
    faulty = FaultyBackend(MemoryBackend())
    with pytest.raises(ValueError):
        faulty.randomly(1, errors=1.5)
    with pytest.raises(ValueError):
        faulty.randomly(1, delay=-1)
    with pytest.raises(ValueError):
        faulty.randomly(1, errors={"fetch": 0.1})  # type: ignore[dict-item]
