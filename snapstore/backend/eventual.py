"""A test double whose listings lag behind writes and deletes, as an eventually consistent
object store's do (S3 before December 2020, some S3 work-alikes, Swift; kopia's
`blobtesting/eventually_consistent.go` plays the same part for kopia).

    lagging = EventuallyConsistentBackend(MemoryBackend(), lag=20)

Every call is one operation on the wrapper's clock, whatever its kind or file type. A listing
shows the store as it was `lag` operations ago: an object saved within the last `lag`
operations is left out (or listed with its old size, if the save replaced it), and one removed
within them is still listed. Loads and stats see the present (read-after-write), so an object
a listing shows may turn out to be gone, and one a load finds may be missing from the listing.
`lag=0` is a strongly consistent store. `settle()` lets the listings catch up at once, as
waiting long enough would.

Only listings lag: a store that also served stale reads would let a reader see an object after
its deletion, which no store snapstore supports does for long.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

from snapstore.backend.base import Backend, FileInfo, FileType, Handle
from snapstore.errors import ObjectNotFound


@dataclass
class _History:
    """An object's changes within the window: its size before them (None: absent), then each
    change as (operation number, size after it, or None when it was removed)."""

    before: int | None
    changes: list[tuple[int, int | None]] = field(default_factory=list)

    def latest(self) -> int | None:
        return self.changes[-1][1] if self.changes else self.before

    def as_of(self, operation: int) -> int | None:
        """The size a listing as of `operation` shows (None: left out)."""
        state = self.before
        for number, size in self.changes:
            if number > operation:
                break
            state = size
        return state


class EventuallyConsistentBackend:
    """Pass every call to `inner`; make `list` show the store as it was `lag` operations ago."""

    def __init__(self, inner: Backend, lag: int) -> None:
        if lag < 0:
            raise ValueError("lag must not be negative")
        self._inner = inner
        self.lag = lag
        self._operations = 0
        self._history: dict[Handle, _History] = {}  # objects changed within the window
        self._lock = threading.Lock()

    @property
    def operations(self) -> int:
        """Calls made so far."""
        with self._lock:
            return self._operations

    def settle(self) -> None:
        """Make listings show the present, as if the store had caught up."""
        with self._lock:
            self._history.clear()

    # -- the Backend protocol -------------------------------------------------------------

    @property
    def location(self) -> str:
        return self._inner.location

    def create(self) -> None:
        self._tick()
        self._inner.create()

    def save(self, handle: Handle, data: bytes) -> None:
        self._tick()
        before = self._known_size(handle)
        try:
            self._inner.save(handle, data)
        finally:
            self._record(handle, before)

    def load(self, handle: Handle, offset: int = 0, length: int | None = None) -> bytes:
        self._tick()
        return self._inner.load(handle, offset, length)

    def stat(self, handle: Handle) -> FileInfo:
        self._tick()
        return self._inner.stat(handle)

    def remove(self, handle: Handle) -> None:
        self._tick()
        before = self._known_size(handle)
        try:
            self._inner.remove(handle)
        finally:
            self._record(handle, before)

    def list(self, file_type: FileType) -> Iterator[FileInfo]:
        now = self._tick()
        listed = {info.handle: info for info in self._inner.list(file_type)}
        with self._lock:
            horizon = now - self.lag
            changed = {h: hist.as_of(horizon) for h, hist in self._history.items() if h.type is file_type}
        for handle, size in changed.items():
            if size is None:
                listed.pop(handle, None)
            else:
                listed[handle] = FileInfo(handle, size)
        return iter(list(listed.values()))

    def close(self) -> None:
        self._inner.close()

    # -- internals ----------------------------------------------------------------------

    def _tick(self) -> int:
        with self._lock:
            self._operations += 1
            now = self._operations
            horizon = now - self.lag
            # changes older than the window are what the inner store lists anyway
            settled = [h for h, hist in self._history.items() if hist.changes[-1][0] <= horizon]
            for handle in settled:
                del self._history[handle]
            return now

    def _known_size(self, handle: Handle) -> int | None:
        """The object's size now (None: absent), before a save or remove changes it."""
        with self._lock:
            history = self._history.get(handle)
            if history is not None:
                return history.latest()
        try:
            return self._inner.stat(handle).size
        except ObjectNotFound:
            return None

    def _record(self, handle: Handle, before: int | None) -> None:
        """Note what a save or remove did (it may have failed half-way: ask the store)."""
        try:
            after: int | None = self._inner.stat(handle).size
        except ObjectNotFound:
            after = None
        with self._lock:
            history = self._history.setdefault(handle, _History(before))
            if after != history.latest():
                history.changes.append((self._operations, after))
            elif not history.changes:
                del self._history[handle]
