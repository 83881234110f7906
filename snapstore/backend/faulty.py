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

Besides that schedule, a flaky store at random, reproducible from a seed:

    faulty.randomly(seed=7, errors=0.05, delay={"save": 0.002})

Each call not taken by a queued fault then fails with a TransientBackendError with the chance
`errors` gives its method, and is first held up for up to `delay` seconds. A failing create,
save or remove did its work or not, at even odds (the request was lost, or the reply); a
failing list yields a few items first. Nothing is ever left half-written: stores snapstore
supports write atomically. The draws follow the order of the calls, so calls from several
threads meet them in whatever order the threads run.
"""

from __future__ import annotations

import enum
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Literal

from snapstore.backend.base import Backend, FileInfo, FileType, Handle
from snapstore.errors import TransientBackendError

Method = Literal["create", "save", "load", "stat", "remove", "list"]
METHODS: tuple[Method, ...] = ("create", "save", "load", "stat", "remove", "list")
Corruption = Literal["flip", "truncate"]
#: A failing random list yields fewer than this many items first.
_RANDOM_LIST_ITEMS = 8


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
        self._random: _Randomly | None = None
        self._injected = 0

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

    def randomly(
        self,
        seed: int,
        *,
        errors: float | Mapping[Method, float] = 0.0,
        delay: float | Mapping[Method, float] = 0.0,
    ) -> None:
        """From now on fail calls at random with these chances (per method, or one for all)
        and hold them up for a random time of up to `delay` seconds, drawn from `seed`."""
        chances, delays = _per_method(errors), _per_method(delay)
        if any(not 0 <= p <= 1 for p in chances.values()):
            raise ValueError("error chances must be between 0 and 1")
        if any(d < 0 for d in delays.values()):
            raise ValueError("delays must not be negative")
        with self._lock:
            self._random = _Randomly(random.Random(seed), chances, delays)

    def clear(self) -> None:
        """Drop every fault still queued, and stop failing at random."""
        with self._lock:
            self._faults.clear()
            self._random = None

    @property
    def injected(self) -> int:
        """How many calls failed at random so far."""
        with self._lock:
            return self._injected

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

    def _take(self, method: Method, file_type: FileType | None) -> _Fault | None:
        """Count the call and consume the first queued fault that matches it; else, when
        failing at random, hold the call up and maybe fail it."""
        with self._lock:
            self._calls[method] += 1
            for fault in self._faults.get(method, []):
                if fault.matches(file_type):
                    if fault.remaining is not None:
                        fault.remaining -= 1
                    return fault
            if self._random is None:
                return None
            pause, drawn = self._random.draw(method)
            self._injected += drawn is not None
        if pause:
            time.sleep(pause)
        return drawn

    @staticmethod
    def _raise_if_failing(fault: _Fault | None, what: str) -> None:
        if fault is None:
            return
        if fault.error is not None:
            raise fault.error
        raise TransientBackendError(f"injected fault: {what}")


@dataclass
class _Randomly:
    """Random faults: a seeded generator and, per method, a chance to fail and a longest delay."""

    rng: random.Random
    chances: dict[Method, float]
    delays: dict[Method, float]

    def draw(self, method: Method) -> tuple[float, _Fault | None]:
        """(seconds to wait, the fault or None) for one call; the caller holds the lock."""
        longest = self.delays[method]
        pause = self.rng.uniform(0, longest) if longest else 0.0
        if self.rng.random() >= self.chances[method]:
            return pause, None
        effect = Effect.NONE
        if method in ("create", "save", "remove") and self.rng.random() < 0.5:
            effect = Effect.COMPLETE
        after = self.rng.randrange(_RANDOM_LIST_ITEMS) if method == "list" else 0
        return pause, _Fault(1, None, None, effect, after)


def _per_method(value: float | Mapping[Method, float]) -> dict[Method, float]:
    if isinstance(value, Mapping):
        unknown = set(value) - set(METHODS)
        if unknown:
            raise ValueError(f"unknown methods {sorted(unknown)}")
        return {m: float(value.get(m, 0.0)) for m in METHODS}
    return dict.fromkeys(METHODS, float(value))


def _damage(data: bytes, how: Corruption) -> bytes:
    if not data:
        return data
    if how == "truncate":
        return data[: len(data) // 2]
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0x01]) + data[middle + 1 :]
