"""A wrapper that retries operations that failed with a TransientBackendError.

The wrapped backend decides what is transient (see `fsspec._map_errors`); everything else,
including ObjectNotFound and permission errors, passes through at once. Waits grow
exponentially with jitter, so many clients hitting a throttled store spread out. `save` is
retried whole, which is safe because a save either replaces the object entirely or not at all.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

from snapstore.backend.base import Backend, FileInfo, FileType, Handle
from snapstore.errors import ObjectNotFound, TransientBackendError

T = TypeVar("T")

RetryNotifier = Callable[[str, TransientBackendError, int, float], None]
"""Called before each wait with (operation, error, failed attempts so far, seconds to wait)."""


class RetryBackend:
    """Retry `inner`'s transient failures, making at most `max_attempts` tries per operation.

    The wait before try n+1 is `initial_delay * 2**(n-1)`, capped at `max_delay`, then scaled
    by a factor between 0.5 and 1 drawn from `jitter()` (a float in [0, 1)).
    """

    def __init__(
        self,
        inner: Backend,
        *,
        max_attempts: int = 10,
        initial_delay: float = 0.5,
        max_delay: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
        on_retry: RetryNotifier | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._inner = inner
        self._max_attempts = max_attempts
        self._initial_delay = initial_delay
        self._max_delay = max_delay
        self._sleep = sleep
        self._jitter = jitter
        self._on_retry = on_retry

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
        failures = 0
        while True:
            try:
                for info in self._inner.list(file_type):
                    if info.handle not in seen:
                        seen.add(info.handle)
                        yield info
                return
            except TransientBackendError as exc:
                failures += 1
                self._wait_or_give_up(f"list {file_type.value}", exc, failures)

    def close(self) -> None:
        self._inner.close()

    def _call(self, operation: str, action: Callable[[], T]) -> T:
        failures = 0
        while True:
            try:
                return action()
            except TransientBackendError as exc:
                failures += 1
                self._wait_or_give_up(operation, exc, failures)

    def _wait_or_give_up(self, operation: str, exc: TransientBackendError, failures: int) -> None:
        if failures >= self._max_attempts:
            raise TransientBackendError(
                f"{operation} on {self.location} failed {failures} times, giving up: {exc}"
            ) from exc
        delay = min(self._max_delay, self._initial_delay * 2 ** (failures - 1))
        delay *= 0.5 + 0.5 * self._jitter()
        if self._on_retry is not None:
            self._on_retry(operation, exc, failures, delay)
        self._sleep(delay)
