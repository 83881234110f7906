"""A wrapper that retries operations that failed with a TransientBackendError.

The wrapped backend decides what is transient (see `fsspec._map_errors`); everything else,
including ObjectNotFound and permission errors, passes through at once. Waits grow
exponentially with jitter, so many clients hitting a throttled store spread out. `save` is
retried whole, which is safe because a save either replaces the object entirely or not at all.

How long: an operation is retried until the store has been failing for `retry_for` seconds,
counted from the earlier of the operation's own first failed try and the start of the current
outage (the first failed try since any operation last succeeded), each from the moment that
try began. So when the store stays down,
the operation under way fails after `retry_for`, and the ones after it (the index of what was
uploaded, removing the lock) get one try each rather than `retry_for` more.

Each retry is reported before its wait through `warn(location, message)`, which has the shape
of `Progress.warning`, so a long outage is never silent.

Interrupts: Ctrl-C and SIGTERM raise in the main thread only. A worker thread asleep in a
back-off does not notice, and the main thread waits for the workers before it can exit, so
every wait here polls an `Interrupt` that the caller sets from its signal handler. Once it is
set, waits end at once and nothing is retried any more: operations still get one try, so the
lock can be released on the way out. A KeyboardInterrupt that passes through this wrapper sets
it too.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from snapstore.backend.base import Backend, FileInfo, FileType, Handle
from snapstore.errors import ObjectNotFound, TransientBackendError

T = TypeVar("T")

DEFAULT_RETRY_FOR = 300.0
"""Seconds a store may keep failing before an operation gives up, unless told otherwise."""

POLL_INTERVAL = 0.1
"""Seconds between looks at the interrupt flag while waiting."""

Warn = Callable[[str, str], None]
"""Called as warn(location, message) before each wait: the shape of `Progress.warning`."""


class Interrupt:
    """A flag saying that the command is being interrupted (Ctrl-C, SIGTERM).

    `set` only assigns an attribute, so a signal handler may call it at any moment; a
    threading.Event could deadlock there, since its lock may be held by the very thread the
    handler interrupted. Waits poll the flag every POLL_INTERVAL seconds instead.
    """

    def __init__(self) -> None:
        self._set = False

    def set(self) -> None:
        self._set = True

    def is_set(self) -> bool:
        return self._set

    def sleep(self, seconds: float) -> None:
        """Sleeps for `seconds`, or less once the flag is set."""
        deadline = time.monotonic() + seconds
        while not self._set:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            time.sleep(min(remaining, POLL_INTERVAL))


@dataclass(frozen=True)
class RetryPolicy:
    """How remote backends retry: for up to `retry_for` seconds of failures, reporting each
    retry to `warn` (like `Progress.warning`), and no more once `interrupt` is set."""

    retry_for: float = DEFAULT_RETRY_FOR
    warn: Warn | None = None
    interrupt: Interrupt | None = None

    def __post_init__(self) -> None:
        if self.retry_for < 0:
            raise ValueError("retry_for must not be negative")


class RetryBackend:
    """Retry `inner`'s transient failures for up to `retry_for` seconds of failing, and at
    most `max_attempts` tries per operation unless that is None (as `with_policy` makes it:
    there the time alone decides, so that --retry-for means what it says).

    The wait before try n+1 is `initial_delay * 2**(n-1)`, capped at `max_delay` and at the
    time left, then scaled by a factor between 0.5 and 1 drawn from `jitter()` (a float in
    [0, 1)). `sleep` and `clock` (monotonic seconds) are replaceable for tests; by default the
    waits end early when `interrupt` is set.
    """

    def __init__(
        self,
        inner: Backend,
        *,
        retry_for: float = DEFAULT_RETRY_FOR,
        warn: Warn | None = None,
        interrupt: Interrupt | None = None,
        max_attempts: int | None = 10,
        initial_delay: float = 0.5,
        max_delay: float = 60.0,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        if retry_for < 0:
            raise ValueError("retry_for must not be negative")
        if max_attempts is not None and max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._inner = inner
        self._retry_for = retry_for
        self._max_attempts = max_attempts
        self._warn = warn
        self._interrupt = interrupt if interrupt is not None else Interrupt()
        self._initial_delay = initial_delay
        self._max_delay = max_delay
        self._sleep = sleep if sleep is not None else self._interrupt.sleep
        self._clock = clock
        self._jitter = jitter
        self._state = threading.Lock()
        self._failing_since: float | None = None  # start of the current outage

    @classmethod
    def with_policy(cls, inner: Backend, policy: RetryPolicy) -> RetryBackend:
        return cls(
            inner,
            retry_for=policy.retry_for,
            warn=policy.warn,
            interrupt=policy.interrupt,
            max_attempts=None,
        )

    @property
    def location(self) -> str:
        return self._inner.location

    def create(self) -> None:
        self._call("create", self._inner.create)

    def save(self, handle: Handle, data: bytes) -> None:
        self._call(f"save {handle}", lambda: self._inner.save(handle, data))

    def load(self, handle: Handle, offset: int = 0, length: int | None = None) -> bytes:
        return self._call(f"load {handle}", lambda: self._inner.load(handle, offset, length))

    def stat(self, handle: Handle) -> FileInfo:
        return self._call(f"stat {handle}", lambda: self._inner.stat(handle))

    def remove(self, handle: Handle) -> None:
        failed_before = False

        def attempt() -> None:
            nonlocal failed_before
            try:
                self._inner.remove(handle)
            except TransientBackendError:
                failed_before = True
                raise
            except ObjectNotFound:
                # gone after a failed try: most likely that try deleted it before the error
                if not failed_before:
                    raise

        self._call(f"remove {handle}", attempt)

    def list(self, file_type: FileType) -> Iterator[FileInfo]:
        """List, restarting after a transient failure and skipping what was already yielded."""
        seen: set[Handle] = set()
        tries = _Tries(f"list {file_type.value}")
        while True:
            tries.started = self._clock()
            try:
                for info in self._inner.list(file_type):
                    if info.handle not in seen:
                        seen.add(info.handle)
                        yield info
                self._succeeded()
                return
            except TransientBackendError as exc:
                self._wait_or_give_up(tries, exc)

    def close(self) -> None:
        self._inner.close()

    def _call(self, operation: str, action: Callable[[], T]) -> T:
        tries = _Tries(operation)
        while True:
            tries.started = self._clock()
            try:
                result = action()
            except TransientBackendError as exc:
                self._wait_or_give_up(tries, exc)
                continue
            except KeyboardInterrupt:
                self._interrupt.set()
                raise
            self._succeeded()
            return result

    def _succeeded(self) -> None:
        with self._state:
            self._failing_since = None

    def _wait_or_give_up(self, tries: _Tries, exc: TransientBackendError) -> None:
        now = self._clock()
        tries.failures += 1
        if tries.first_failure is None:
            tries.first_failure = tries.started  # a try may take a while to fail
        with self._state:
            if self._failing_since is None:
                self._failing_since = tries.started
            since = min(self._failing_since, tries.first_failure)
        failing_for = now - since
        if self._interrupt.is_set():
            raise TransientBackendError(f"{tries.operation}: not retried (interrupted): {exc}") from exc
        out_of_tries = self._max_attempts is not None and tries.failures >= self._max_attempts
        if failing_for >= self._retry_for or out_of_tries:
            raise TransientBackendError(
                f"{tries.operation} on {self.location} failed {tries.failures} times, giving up "
                f"(the store has been failing for {_seconds(failing_for)}): {exc}"
            ) from exc
        growth = 2.0 ** min(tries.failures - 1, 64)
        delay = min(self._max_delay, self._initial_delay * growth)
        delay = min(delay * (0.5 + 0.5 * self._jitter()), self._retry_for - failing_for)
        if self._warn is not None:
            left = self._retry_for - failing_for
            self._warn(
                self.location,
                f"{tries.operation} failed ({exc}); retrying in {_seconds(delay)} "
                f"(try {tries.failures + 1}), giving up in {_seconds(left)}",
            )
        try:
            self._sleep(delay)
        except KeyboardInterrupt:
            self._interrupt.set()
            raise
        if self._interrupt.is_set():
            raise TransientBackendError(f"{tries.operation}: not retried (interrupted): {exc}") from exc


class _Tries:
    """One operation's tries so far: how many failed, when the first failed one and the
    latest one started."""

    def __init__(self, operation: str) -> None:
        self.operation = operation
        self.failures = 0
        self.first_failure: float | None = None
        self.started = 0.0


def _seconds(seconds: float) -> str:
    """A wait for messages: 0.4 s, 12 s, 4m30s."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}m{rest:02d}s" if rest else f"{minutes}m"
