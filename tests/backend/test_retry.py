"""The retry wrapper, driven by the faulty backend: what is retried, how often, how long,
what it reports, and how an interrupt ends it."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from snapstore.backend.base import Backend, FileType, Handle
from snapstore.backend.faulty import Effect, FaultyBackend
from snapstore.backend.memory import MemoryBackend
from snapstore.backend.retry import Interrupt, RetryBackend, RetryPolicy
from snapstore.errors import BackendError, ObjectNotFound, TransientBackendError
from tests.backend.conformance import BackendConformance

PACK = Handle(FileType.PACK, "abcdef")


class Harness:
    """A memory backend behind a faulty one behind the retry wrapper, with a fake clock that
    the waits advance."""

    def __init__(
        self,
        retry_for: float = 7.0,
        jitter: float = 1.0,
        max_delay: float = 60.0,
        max_attempts: int | None = None,
    ) -> None:
        self.store = MemoryBackend()
        self.faulty = FaultyBackend(self.store)
        self.now = 1000.0
        self.sleeps: list[float] = []
        self.warnings: list[tuple[str, str]] = []
        self.interrupt = Interrupt()
        self.backend = RetryBackend(
            self.faulty,
            retry_for=retry_for,
            warn=lambda where, message: self.warnings.append((where, message)),
            interrupt=self.interrupt,
            max_attempts=max_attempts,
            initial_delay=0.5,
            max_delay=max_delay,
            sleep=self.sleep,
            clock=lambda: self.now,
            jitter=lambda: jitter,
        )

        self.meanwhile: Callable[[], object] = lambda: None  # what happens during a wait

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        self.meanwhile()


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


def test_each_retry_is_reported_before_its_wait(harness: Harness) -> None:
    harness.faulty.fail("save", times=2)
    harness.backend.save(PACK, b"data")
    assert [where for where, _ in harness.warnings] == ["memory", "memory"]
    first, second = (message for _, message in harness.warnings)
    assert first.startswith(f"save {PACK} failed (")
    assert first.endswith("; retrying in 0.5 s (try 2), giving up in 7.0 s")
    assert second.endswith("; retrying in 1.0 s (try 3), giving up in 6.5 s")


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


def test_retry_time_is_bounded(harness: Harness) -> None:
    harness.faulty.fail("load", times=None)
    harness.store.save(PACK, b"data")
    with pytest.raises(TransientBackendError, match="failed 5 times, giving up") as caught:
        harness.backend.load(PACK)
    # 0.5 + 1 + 2 + 3.5 (4, cut to what is left of the 7 s): the last try comes at the limit
    assert harness.sleeps == [0.5, 1.0, 2.0, 3.5]
    assert harness.faulty.calls("load") == 5
    assert isinstance(caught.value.__cause__, TransientBackendError)
    assert len(harness.warnings) == 4


def test_zero_retry_time_means_no_retry() -> None:
    harness = Harness(retry_for=0)
    harness.faulty.fail("save")
    with pytest.raises(TransientBackendError):
        harness.backend.save(PACK, b"data")
    assert harness.sleeps == [] and harness.warnings == []
    with pytest.raises(ValueError):
        RetryBackend(MemoryBackend(), retry_for=-1)
    with pytest.raises(ValueError):
        RetryPolicy(retry_for=-1)


def test_attempts_can_be_bounded_too() -> None:
    harness = Harness(retry_for=1e9, max_attempts=3)
    harness.faulty.fail("stat", times=None)
    with pytest.raises(TransientBackendError, match="failed 3 times"):
        harness.backend.stat(PACK)
    assert harness.sleeps == [0.5, 1.0]
    with pytest.raises(ValueError):
        RetryBackend(MemoryBackend(), max_attempts=0)


def test_an_outage_is_waited_out_once_not_per_operation(harness: Harness) -> None:
    """After one operation gave up on a store that stays down, the next ones (the index of what
    was uploaded, the lock) get one try each, not the whole retry time again."""
    harness.faulty.fail("save", times=None)
    harness.faulty.fail("remove", times=None)
    with pytest.raises(TransientBackendError):
        harness.backend.save(PACK, b"data")
    waited = sum(harness.sleeps)
    with pytest.raises(TransientBackendError, match="failed 1 times"):
        harness.backend.save(Handle(FileType.INDEX, "i1"), b"index")
    with pytest.raises(TransientBackendError, match="failed 1 times"):
        harness.backend.remove(Handle(FileType.LOCK, "l1"))
    assert sum(harness.sleeps) == waited


def test_a_success_ends_the_outage(harness: Harness) -> None:
    harness.faulty.fail("save", times=None)
    with pytest.raises(TransientBackendError):
        harness.backend.save(PACK, b"data")
    harness.faulty.clear()
    harness.backend.save(PACK, b"data")  # the store is back
    harness.faulty.fail("save", times=3)
    harness.backend.save(PACK, b"data")  # so this one gets the whole retry time again
    assert harness.faulty.calls("save") >= 4


def test_one_failing_operation_is_bounded_while_others_succeed(harness: Harness) -> None:
    """Other operations' successes end the outage, but not this operation's own count."""
    harness.store.save(PACK, b"data")
    harness.faulty.fail("stat", times=None)
    harness.meanwhile = lambda: harness.backend.load(PACK)  # another thread's, succeeding
    with pytest.raises(TransientBackendError, match="giving up"):
        harness.backend.stat(PACK)
    assert sum(harness.sleeps) == pytest.approx(7.0)


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
    capped = Harness(retry_for=19.5, max_delay=4.0)
    capped.faulty.fail("stat", times=None)
    with pytest.raises(TransientBackendError):
        capped.backend.stat(PACK)
    assert capped.sleeps == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0]

    jittered = Harness(retry_for=1.75, jitter=0.0)
    jittered.faulty.fail("stat", times=None)
    with pytest.raises(TransientBackendError):
        jittered.backend.stat(PACK)
    assert jittered.sleeps == [0.25, 0.5, 1.0]


def test_real_jitter_stays_between_half_and_full_delay() -> None:
    sleeps: list[float] = []
    faulty = FaultyBackend(MemoryBackend())
    faulty.fail("stat", times=30)
    backend = RetryBackend(
        faulty, max_attempts=None, initial_delay=1.0, max_delay=1.0, sleep=sleeps.append,
        jitter=random.random,
    )  # fmt: skip
    backend.save(PACK, b"data")
    backend.stat(PACK)
    assert len(sleeps) == 30
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
    assert sum(harness.sleeps) == pytest.approx(7.0)


# -- interrupts ------------------------------------------------------------------------------


def test_nothing_is_retried_once_interrupted(harness: Harness) -> None:
    """After Ctrl-C each operation still gets its one try (the lock is released on the way
    out), but a failure is final."""
    harness.interrupt.set()
    harness.faulty.fail("save", times=1)
    with pytest.raises(TransientBackendError, match="interrupted"):
        harness.backend.save(PACK, b"data")
    assert harness.sleeps == [] and harness.warnings == []
    harness.backend.save(PACK, b"data")
    assert harness.store.load(PACK) == b"data"


def test_an_interrupt_during_a_wait_ends_the_operation(harness: Harness) -> None:
    harness.faulty.fail("load", times=None)
    harness.store.save(PACK, b"data")

    def interrupt_in_the_second_wait() -> None:
        if len(harness.sleeps) == 2:
            harness.interrupt.set()

    harness.meanwhile = interrupt_in_the_second_wait
    with pytest.raises(TransientBackendError, match="interrupted"):
        harness.backend.load(PACK)
    assert harness.faulty.calls("load") == 2


def test_a_keyboard_interrupt_through_the_wrapper_stops_other_threads_retrying(
    harness: Harness,
) -> None:
    def ctrl_c() -> None:
        raise KeyboardInterrupt

    harness.meanwhile = ctrl_c
    harness.faulty.fail("stat", times=1)
    harness.store.save(PACK, b"data")
    with pytest.raises(KeyboardInterrupt):
        harness.backend.stat(PACK)
    assert harness.interrupt.is_set()


def test_a_worker_asleep_in_a_real_backoff_wakes_when_interrupted() -> None:
    """The default wait polls the interrupt: a worker thread, which never sees Ctrl-C itself,
    stops within a moment instead of sleeping out a minute-long back-off."""
    faulty = FaultyBackend(MemoryBackend())
    faulty.fail("stat", times=None)
    interrupt = Interrupt()
    backend = RetryBackend(faulty, interrupt=interrupt, initial_delay=60.0, max_delay=60.0)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            backend.stat(PACK)
        except BaseException as exc:  # noqa: BLE001 - inspected below
            errors.append(exc)

    thread = threading.Thread(target=worker)
    thread.start()
    while faulty.calls("stat") == 0:
        time.sleep(0.01)
    interrupt.set()
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert len(errors) == 1 and "interrupted" in str(errors[0])
