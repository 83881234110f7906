"""Read-only descriptors of packs kept open between reads.

A delta chain reads one blob from each of several packs, and a new delta's base is such a
chain: open, fstat and close around every ranged read cost more than the read itself, and
each is one more trip through the GIL for the threads that read in parallel. Packs never
change once written (their name is the hash of their content), so a descriptor stays good
until the pack is removed. At most `limit` stay open; a descriptor is closed only when no
read is using it, so its number is never reused under a reader.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

DEFAULT_LIMIT = 64


@dataclass(eq=False)
class _Open:
    fd: int
    size: int
    readers: int = 0
    dropped: bool = False


class OpenFiles:
    """Open descriptors by path, least recently used dropped first."""

    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        self._limit = limit
        self._lock = threading.Lock()
        self._open: OrderedDict[str, _Open] = OrderedDict()
        # a backend dropped without close() (a library user's, a test's) leaves nothing open
        weakref.finalize(self, _close_all, self._open)

    @contextmanager
    def reading(self, path: str) -> Iterator[tuple[int, int]]:
        """The descriptor of `path` and its size when opened, for the length of the block.
        OSError from opening it propagates as from os.open."""
        entry = self._take(path)
        try:
            yield entry.fd, entry.size
        finally:
            self._give_back(entry)

    def drop(self, path: str) -> None:
        """Forgets `path` (removed or replaced): the next read opens it anew."""
        with self._lock:
            entry = self._open.pop(path, None)
            closing = entry is not None and self._dropped(entry)
        if closing:
            os.close(entry.fd)  # type: ignore[union-attr]

    def close(self) -> None:
        with self._lock:
            entries = list(self._open.values())
            self._open.clear()
            closing = [entry for entry in entries if self._dropped(entry)]
        for entry in closing:
            os.close(entry.fd)

    def _take(self, path: str) -> _Open:
        with self._lock:
            entry = self._open.get(path)
            if entry is not None:
                self._open.move_to_end(path)
                entry.readers += 1
                return entry
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        try:
            size = os.fstat(fd).st_size
        except BaseException:
            os.close(fd)
            raise
        closing: list[int] = []
        with self._lock:
            entry = self._open.get(path)
            if entry is not None:  # another thread opened it meanwhile
                closing.append(fd)
                self._open.move_to_end(path)
            else:
                entry = self._open[path] = _Open(fd, size)
                while len(self._open) > self._limit:
                    _, oldest = self._open.popitem(last=False)
                    if self._dropped(oldest):
                        closing.append(oldest.fd)
            entry.readers += 1
        for unused in closing:
            os.close(unused)
        return entry

    def _give_back(self, entry: _Open) -> None:
        with self._lock:
            entry.readers -= 1
            closing = entry.dropped and entry.readers == 0
        if closing:
            os.close(entry.fd)

    @staticmethod
    def _dropped(entry: _Open) -> bool:
        """Marks `entry` dropped; True when nobody reads it, so the caller closes it now."""
        entry.dropped = True
        return entry.readers == 0


def _close_all(entries: OrderedDict[str, _Open]) -> None:
    """Closes what an OpenFiles that is gone kept open (no read can be using it then)."""
    for entry in entries.values():
        os.close(entry.fd)
    entries.clear()
