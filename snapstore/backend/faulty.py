"""A test double that breaks a backend on purpose, on a schedule the test sets up.

Faults are queued per method and consumed in order by the calls they match:

    faulty = FaultyBackend(MemoryBackend())
    faulty.fail("save", times=2)                      # next two saves: TransientBackendError
    faulty.fail("load", error=BackendError("gone"))   # next load: a permanent error
    faulty.fail("save", effect=Effect.PARTIAL, error=SimulatedCrash())
    faulty.fail("remove", effect=Effect.COMPLETE)     # removed, but the reply is lost
    faulty.corrupt(times=1, how="flip")               # next load returns a damaged copy

`Effect` chooses what a failing call does before it raises: nothing; for save only, the first
half of the object under its real name (what a crash mid-upload leaves on a store whose writes
are not atomic); or the whole operation (it worked but the reply was lost). `SimulatedCrash`
derives from BaseException so that no `except Exception` on the way up can swallow a
simulated kill.
"""

from __future__ import annotations

import enum
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from snapstore.backend.base import Backend, FileInfo, FileType, Handle
from snapstore.errors import TransientBackendError

Method = Literal["create", "save", "load", "stat", "remove", "list"]
Corruption = Literal["flip", "truncate"]


class SimulatedCrash(BaseException):
    """Stands for the process dying at this point; only the test itself should catch it."""


class Effect(enum.Enum):
    """What a failing call does to the wrapped backend before it raises."""

    NONE = "none"
    PARTIAL = "partial"  # save only: the first half of the data
    COMPLETE = "complete"


@dataclass
class _Fault:
    remaining: int | None  # None: every matching call until clear()
    file_type: FileType | None
    error: BaseException | None = None
    effect: Effect = Effect.NONE
    after_items: int = 0
    corruption: Corruption | None = None

    def matches(self, file_type: FileType | None) -> bool:
        live = self.remaining is None or self.remaining > 0
        return live and (self.file_type is None or self.file_type is file_type)


class FaultyBackend:
    """Pass calls to `inner` except where a queued fault says otherwise; counts every call."""

    def __init__(self, inner: Backend) -> None:
        self._inner = inner
        self._faults: dict[str, list[_Fault]] = {}
        self._calls: Counter[str] = Counter()
        self._lock = threading.Lock()

    # -- arranging faults ---------------------------------------------------------------

    def fail(
        self,
        method: Method,
        *,
        times: int | None = 1,
        error: BaseException | None = None,
        file_type: FileType | None = None,
        effect: Effect = Effect.NONE,
        after_items: int = 0,
    ) -> None:
        """Make the next `times` matching calls raise `error` (default: transient).

        `effect` applies to create, save and remove (PARTIAL to save only); `after_items` to
        list only (how many items it yields before failing).
        """
        if effect is Effect.PARTIAL and method != "save":
            raise ValueError("only save can take effect partially")
        if effect is not Effect.NONE and method not in ("create", "save", "remove"):
            raise ValueError(f"{method} changes nothing, so it has no effect to apply")
        if after_items and method != "list":
            raise ValueError("`after_items` only applies to list")
        fault = _Fault(times, file_type, error, effect, after_items)
        with self._lock:
            self._faults.setdefault(method, []).append(fault)

    def corrupt(
        self,
        *,
        times: int | None = 1,
        how: Corruption = "flip",
        file_type: FileType | None = None,
    ) -> None:
        """Damage what the next `times` loads return: flip one bit, or cut off the second half."""
        with self._lock:
            self._faults.setdefault("load", []).append(_Fault(times, file_type, corruption=how))

    def clear(self) -> None:
        """Drop every fault still queued."""
        with self._lock:
            self._faults.clear()

    def calls(self, method: Method) -> int:
        """How many times `method` was called, failed or not."""
        with self._lock:
            return self._calls[method]

    # -- the Backend protocol -------------------------------------------------------------

    @property
    def location(self) -> str:
        return self._inner.location

    def create(self) -> None:
        fault = self._take("create", None)
        if fault is None or fault.effect is Effect.COMPLETE:
            self._inner.create()
        self._raise_if_failing(fault, "create")

    def save(self, handle: Handle, data: bytes) -> None:
        fault = self._take("save", handle.type)
        if fault is None:
            self._inner.save(handle, data)
            return
        if fault.effect is Effect.PARTIAL:
            self._inner.save(handle, bytes(data[: len(data) // 2]))
        elif fault.effect is Effect.COMPLETE:
            self._inner.save(handle, data)
        self._raise_if_failing(fault, f"save {handle}")

    def load(self, handle: Handle, offset: int = 0, length: int | None = None) -> bytes:
        fault = self._take("load", handle.type)
        if fault is not None and fault.corruption is None:
            self._raise_if_failing(fault, f"load {handle}")
        data = self._inner.load(handle, offset, length)
        if fault is not None and fault.corruption is not None:
            data = _damage(data, fault.corruption)
        return data

    def stat(self, handle: Handle) -> FileInfo:
        self._raise_if_failing(self._take("stat", handle.type), f"stat {handle}")
        return self._inner.stat(handle)

    def remove(self, handle: Handle) -> None:
        fault = self._take("remove", handle.type)
        if fault is None or fault.effect is Effect.COMPLETE:
            self._inner.remove(handle)
        self._raise_if_failing(fault, f"remove {handle}")

    def list(self, file_type: FileType) -> Iterator[FileInfo]:
        fault = self._take("list", file_type)
        if fault is None:
            yield from self._inner.list(file_type)
            return
        for count, info in enumerate(self._inner.list(file_type)):
            if count == fault.after_items:
                break
            yield info
        self._raise_if_failing(fault, f"list {file_type.value}")

    def close(self) -> None:
        self._inner.close()

    # -- internals ----------------------------------------------------------------------

    def _take(self, method: str, file_type: FileType | None) -> _Fault | None:
        """Count the call and consume the first queued fault that matches it."""
        with self._lock:
            self._calls[method] += 1
            for fault in self._faults.get(method, []):
                if fault.matches(file_type):
                    if fault.remaining is not None:
                        fault.remaining -= 1
                    return fault
        return None

    @staticmethod
    def _raise_if_failing(fault: _Fault | None, what: str) -> None:
        if fault is None:
            return
        if fault.error is not None:
            raise fault.error
        raise TransientBackendError(f"injected fault: {what}")


def _damage(data: bytes, how: Corruption) -> bytes:
    if not data:
        return data
    if how == "truncate":
        return data[: len(data) // 2]
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0x01]) + data[middle + 1 :]
