"""The fault-injecting test double itself: schedules, effects and corruption."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from snapstore.backend.base import Backend, FileType, Handle
from snapstore.backend.faulty import Effect, FaultyBackend, SimulatedCrash
from snapstore.backend.memory import MemoryBackend
from snapstore.errors import BackendError, TransientBackendError
from tests.backend.conformance import BackendConformance

PACK = Handle(FileType.PACK, "abcdef")
INDEX = Handle(FileType.INDEX, "i1")


class TestFaultyBackendWithoutFaults(BackendConformance):
    @pytest.fixture
    def backend(self) -> Iterator[Backend]:
        backend = FaultyBackend(MemoryBackend())
        backend.create()
        yield backend


@pytest.fixture
def store() -> MemoryBackend:
    return MemoryBackend()


@pytest.fixture
def faulty(store: MemoryBackend) -> FaultyBackend:
    return FaultyBackend(store)


def test_fails_the_next_n_calls_then_recovers(faulty: FaultyBackend) -> None:
    faulty.fail("save", times=2)
    for _ in range(2):
        with pytest.raises(TransientBackendError, match="injected"):
            faulty.save(PACK, b"x")
    faulty.save(PACK, b"x")
    assert faulty.load(PACK) == b"x"
    assert faulty.calls("save") == 3


def test_permanent_error_as_given(faulty: FaultyBackend, store: MemoryBackend) -> None:
    store.save(PACK, b"x")
    denied = BackendError("denied")
    faulty.fail("load", error=denied)
    with pytest.raises(BackendError) as caught:
        faulty.load(PACK)
    assert caught.value is denied
    assert faulty.load(PACK) == b"x"


def test_faults_apply_in_order(faulty: FaultyBackend) -> None:
    faulty.fail("stat", error=BackendError("first"))
    faulty.fail("stat", error=BackendError("second"))
    with pytest.raises(BackendError, match="first"):
        faulty.stat(PACK)
    with pytest.raises(BackendError, match="second"):
        faulty.stat(PACK)


def test_faults_can_target_one_file_type(faulty: FaultyBackend) -> None:
    faulty.fail("save", file_type=FileType.INDEX)
    faulty.save(PACK, b"pack is fine")
    with pytest.raises(TransientBackendError):
        faulty.save(INDEX, b"index fails")
    faulty.save(INDEX, b"index works now")


def test_forever_until_cleared(faulty: FaultyBackend) -> None:
    faulty.fail("remove", times=None)
    for _ in range(5):
        with pytest.raises(TransientBackendError):
            faulty.remove(PACK)
    faulty.clear()
    faulty.save(PACK, b"x")
    faulty.remove(PACK)


def test_failed_save_writes_nothing_by_default(faulty: FaultyBackend, store: MemoryBackend) -> None:
    faulty.fail("save")
    with pytest.raises(TransientBackendError):
        faulty.save(PACK, b"0123456789")
    assert list(store.list(FileType.PACK)) == []


def test_crash_mid_upload_leaves_half_an_object(
    faulty: FaultyBackend, store: MemoryBackend
) -> None:
    faulty.fail("save", effect=Effect.PARTIAL, error=SimulatedCrash())
    with pytest.raises(SimulatedCrash):
        try:
            faulty.save(PACK, b"0123456789")
        except Exception:  # noqa: BLE001 - proving that this does not catch it
            pytest.fail("a simulated crash must not be an Exception")
    assert store.load(PACK) == b"01234"


def test_lost_reply_after_complete_save(faulty: FaultyBackend, store: MemoryBackend) -> None:
    faulty.fail("save", effect=Effect.COMPLETE)
    with pytest.raises(TransientBackendError):
        faulty.save(PACK, b"0123456789")
    assert store.load(PACK) == b"0123456789"


def test_effects_only_where_they_make_sense(faulty: FaultyBackend) -> None:
    with pytest.raises(ValueError):
        faulty.fail("remove", effect=Effect.PARTIAL)
    with pytest.raises(ValueError):
        faulty.fail("load", effect=Effect.COMPLETE)
    with pytest.raises(ValueError):
        faulty.fail("save", after_items=2)


def test_corrupt_flips_one_bit(faulty: FaultyBackend, store: MemoryBackend) -> None:
    data = bytes(100)
    store.save(PACK, data)
    faulty.corrupt()
    damaged = faulty.load(PACK)
    assert len(damaged) == len(data)
    assert sum(a != b for a, b in zip(damaged, data, strict=True)) == 1
    assert faulty.load(PACK) == data


def test_corrupt_truncates(faulty: FaultyBackend, store: MemoryBackend) -> None:
    store.save(PACK, b"0123456789")
    faulty.corrupt(how="truncate", times=2)
    assert faulty.load(PACK) == b"01234"
    assert faulty.load(PACK, 2, 4) == b"23"
    assert faulty.load(PACK) == b"0123456789"


def test_list_fails_after_some_items(faulty: FaultyBackend, store: MemoryBackend) -> None:
    for i in range(5):
        store.save(Handle(FileType.KEY, f"k{i}"), b"k")
    faulty.fail("list", after_items=2)
    seen = []
    with pytest.raises(TransientBackendError):
        for info in faulty.list(FileType.KEY):
            seen.append(info.handle.name)
    assert len(seen) == 2
    assert len(list(faulty.list(FileType.KEY))) == 5
