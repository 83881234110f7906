"""The retry wrapper, driven by the faulty backend: what is retried, how often, how long."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from snapstore.backend.base import Backend, FileType, Handle
from snapstore.backend.faulty import Effect, FaultyBackend
from snapstore.backend.memory import MemoryBackend
from snapstore.backend.retry import RetryBackend
from snapstore.errors import BackendError, ObjectNotFound, TransientBackendError
from tests.backend.conformance import BackendConformance

PACK = Handle(FileType.PACK, "abcdef")


class Harness:
    """A memory backend behind a faulty one behind the retry wrapper, with a fake clock."""

    def __init__(self, max_attempts: int = 5, jitter: float = 1.0, max_delay: float = 60.0):
        self.store = MemoryBackend()
        self.faulty = FaultyBackend(self.store)
        self.sleeps: list[float] = []
        self.notices: list[tuple[str, int, float]] = []
        self.backend = RetryBackend(
            self.faulty,
            max_attempts=max_attempts,
            initial_delay=0.5,
            max_delay=max_delay,
            sleep=self.sleeps.append,
            jitter=lambda: jitter,
            on_retry=lambda op, exc, n, delay: self.notices.append((op, n, delay)),
        )


@pytest.fixture
def harness() -> Harness:
    return Harness()


class TestRetryBackend(BackendConformance):
    """With nothing failing, the wrapper is invisible."""

    @pytest.fixture
    def backend(self) -> Iterator[Backend]:
        backend = RetryBackend(MemoryBackend(), sleep=lambda _: pytest.fail("no retry expected"))
        backend.create()
        yield backend


def test_transient_save_failures_are_retried_until_success(harness: Harness) -> None:
    harness.faulty.fail("save", times=3)
    harness.backend.save(PACK, b"data")
    assert harness.store.load(PACK) == b"data"
    assert harness.faulty.calls("save") == 4
    assert harness.sleeps == [0.5, 1.0, 2.0]
    assert [(op, n) for op, n, _ in harness.notices] == [(f"save {PACK}", n) for n in (1, 2, 3)]


@pytest.mark.parametrize("method", ["load", "stat"])
def test_transient_read_failures_are_retried(harness: Harness, method: str) -> None:
    harness.store.save(PACK, b"data")
    harness.faulty.fail(method, times=2)  # type: ignore[arg-type]
    if method == "load":
        assert harness.backend.load(PACK, 1, 2) == b"at"
    else:
        assert harness.backend.stat(PACK).size == 4
    assert harness.faulty.calls(method) == 3  # type: ignore[arg-type]


def test_create_is_retried(harness: Harness) -> None:
    harness.faulty.fail("create")
    harness.backend.create()
    assert harness.faulty.calls("create") == 2


def test_attempts_are_bounded(harness: Harness) -> None:
    harness.faulty.fail("load", times=None)
    harness.store.save(PACK, b"data")
    with pytest.raises(TransientBackendError, match="failed 5 times") as caught:
        harness.backend.load(PACK)
    assert harness.faulty.calls("load") == 5
    assert len(harness.sleeps) == 4
    assert isinstance(caught.value.__cause__, TransientBackendError)


def test_a_single_attempt_means_no_retry() -> None:
    harness = Harness(max_attempts=1)
    harness.faulty.fail("save")
    with pytest.raises(TransientBackendError):
        harness.backend.save(PACK, b"data")
    assert harness.sleeps == []
    with pytest.raises(ValueError):
        RetryBackend(MemoryBackend(), max_attempts=0)


@pytest.mark.parametrize("method", ["save", "load", "stat", "remove"])
def test_permanent_errors_are_not_retried(harness: Harness, method: str) -> None:
    harness.store.save(PACK, b"data")
    denied = BackendError("permission denied")
    harness.faulty.fail(method, error=denied)  # type: ignore[arg-type]
    call = {
        "save": lambda: harness.backend.save(PACK, b"data"),
        "load": lambda: harness.backend.load(PACK),
        "stat": lambda: harness.backend.stat(PACK),
        "remove": lambda: harness.backend.remove(PACK),
    }[method]
    with pytest.raises(BackendError) as caught:
        call()
    assert caught.value is denied
    assert harness.faulty.calls(method) == 1  # type: ignore[arg-type]
    assert harness.sleeps == []


def test_missing_objects_are_not_retried(harness: Harness) -> None:
    with pytest.raises(ObjectNotFound):
        harness.backend.load(PACK)
    assert harness.faulty.calls("load") == 1
    assert harness.sleeps == []


def test_other_exceptions_are_not_retried(harness: Harness) -> None:
    harness.faulty.fail("stat", error=RuntimeError("a bug"))
    with pytest.raises(RuntimeError):
        harness.backend.stat(PACK)
    assert harness.sleeps == []


def test_backoff_grows_exponentially_with_cap_and_jitter() -> None:
    capped = Harness(max_attempts=8, max_delay=4.0)
    capped.faulty.fail("stat", times=None)
    with pytest.raises(TransientBackendError):
        capped.backend.stat(PACK)
    assert capped.sleeps == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0]

    jittered = Harness(max_attempts=4, jitter=0.0)
    jittered.faulty.fail("stat", times=None)
    with pytest.raises(TransientBackendError):
        jittered.backend.stat(PACK)
    assert jittered.sleeps == [0.25, 0.5, 1.0]


def test_real_jitter_stays_between_half_and_full_delay() -> None:
    sleeps: list[float] = []
    faulty = FaultyBackend(MemoryBackend())
    faulty.fail("stat", times=None)
    backend = RetryBackend(
        faulty, max_attempts=30, initial_delay=1.0, max_delay=1.0, sleep=sleeps.append
    )
    with pytest.raises(TransientBackendError):
        backend.stat(PACK)
    assert all(0.5 <= s <= 1.0 for s in sleeps)
    assert len(set(sleeps)) > 1


@pytest.mark.parametrize("effect", [Effect.NONE, Effect.PARTIAL, Effect.COMPLETE])
def test_save_is_retried_whole(harness: Harness, effect: Effect) -> None:
    data = bytes(range(256)) * 100
    harness.faulty.fail("save", effect=effect)
    harness.backend.save(PACK, data)
    assert harness.store.load(PACK) == data


def test_remove_whose_reply_was_lost_counts_as_done(harness: Harness) -> None:
    harness.store.save(PACK, b"data")
    harness.faulty.fail("remove", effect=Effect.COMPLETE)
    harness.backend.remove(PACK)
    assert list(harness.store.list(FileType.PACK)) == []
    with pytest.raises(ObjectNotFound):
        harness.backend.remove(PACK)


def test_list_resumes_without_duplicates(harness: Harness) -> None:
    names = [f"ab{i:02d}" for i in range(10)]
    for name in names:
        harness.store.save(Handle(FileType.PACK, name), b"p")
    harness.faulty.fail("list", after_items=3)
    harness.faulty.fail("list", after_items=7)
    listed = [info.handle.name for info in harness.backend.list(FileType.PACK)]
    assert sorted(listed) == names
    assert harness.faulty.calls("list") == 3
    assert len(harness.sleeps) == 2


def test_list_attempts_are_bounded(harness: Harness) -> None:
    harness.store.save(PACK, b"p")
    harness.faulty.fail("list", times=None)
    with pytest.raises(TransientBackendError, match="list data"):
        list(harness.backend.list(FileType.PACK))
    assert harness.faulty.calls("list") == 5
