"""How the library reports progress: a callback protocol. The library itself never prints.

A command's work comes in stages (`phase`): reading the index, walking snapshots, reading
packs. Within a stage the library says how much there is when it knows (`totals`: a scan
running beside the work may call it many times, growing, before its `final` call), which item
it is on (`item`), how much content it got through (`advance`, per chunk or pack: keep it
cheap, a renderer only adds to counters there) and when an item is done (`item_done`, with
how a snapshot's file compares with the parent snapshot's). `advance` may be called from
worker threads; the other calls come from one thread at a time, except `totals` from a scan
thread.

A progress that shows no totals (nothing on screen, -q) says so with a `wants_totals`
attribute that is False (`wants_totals` below; NoProgress's is): then no scan runs for them.
The scan walks the work a second time beside it, and on a run that only stats 200,000
unchanged files it costs a fifth of the time, contending with the work for the interpreter.
"""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Callable, Iterator
from typing import Protocol


class ItemStatus(enum.Enum):
    """How a file of a new snapshot compares with the parent snapshot's copy (restic's -v)."""

    NEW = "new"  # no file at this path in the parent snapshot (or no parent)
    CHANGED = "changed"  # read again: its size, times or inode differ (or --force)
    UNCHANGED = "unchanged"  # the parent's content taken without reading it


class Progress(Protocol):
    def phase(self, name: str, unit: str = "files") -> None:
        """A new stage begins (a few words: "read data"), whose items are `unit` (files,
        packs, snapshots); its counts start from zero."""

    def totals(self, items: int, nbytes: int | None, *, final: bool = True) -> None:
        """This stage holds `items` (files, packs, snapshots) of `nbytes` in all (None: not
        known, as for a stream); `final` False while a scan is still counting."""

    def item(self, path: str) -> None:
        """Started on a file or directory (a display path), a pack or a snapshot."""

    def advance(self, bytes_done: int, bytes_added: int) -> None:
        """More content was got through (read, written, verified, or found unchanged), of
        which `bytes_added` was new to the repository."""

    def item_done(self, path: str, status: ItemStatus | None = None) -> None:
        """An item counted by `totals` is finished; a snapshot's file says how it compares
        with the parent snapshot's."""

    def warning(self, path: str, message: str) -> None:
        """A non-fatal problem, such as an unreadable file."""


def wants_totals(progress: Progress) -> bool:
    """Whether `progress` shows or records totals, so a scan for them is worth running: its
    `wants_totals` attribute, True when it has none (a progress that does not say)."""
    return bool(getattr(progress, "wants_totals", True))


class NoProgress:
    """Reports nothing."""

    wants_totals = False

    def phase(self, name: str, unit: str = "files") -> None:
        pass

    def totals(self, items: int, nbytes: int | None, *, final: bool = True) -> None:
        pass

    def item(self, path: str) -> None:
        pass

    def advance(self, bytes_done: int, bytes_added: int) -> None:
        pass

    def item_done(self, path: str, status: ItemStatus | None = None) -> None:
        pass

    def warning(self, path: str, message: str) -> None:
        pass


SCAN_REPORT_INTERVAL = 0.25
"""Seconds between a running scan's `totals` calls."""


class Scan:
    """Counts the work in a thread of its own while the work runs, as restic's scanner does:
    `sizes` yields the size of each item the work will meet (files of a source, of a snapshot
    being restored); `totals` is called with what it has counted every SCAN_REPORT_INTERVAL
    seconds, and once more, final, when it is through. A scan that fails says nothing more
    (the work reports the problem itself). `stop` ends it early and waits for the thread.

    Use as a context manager around the work: when the work is through, the scan is waited
    for (it has less to do, so it is done or nearly), so the last totals are final; when the
    work fails, it is stopped. For a progress that does not want totals (`wants_totals`) it
    does nothing: `sizes` is never called.
    """

    def __init__(self, sizes: Callable[[], Iterator[int]], progress: Progress) -> None:
        self._sizes = sizes
        self._progress = progress
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="snapstore-scan", daemon=True)

    def __enter__(self) -> Scan:
        if wants_totals(self._progress):
            self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if exc_type is None and self._thread.ident is not None:  # started: let it finish
            self._thread.join()
        self.stop()

    def stop(self) -> None:
        self._stopped = True
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        items = nbytes = 0
        next_report = time.monotonic() + SCAN_REPORT_INTERVAL
        try:
            for size in self._sizes():
                if self._stopped:
                    return
                items += 1
                nbytes += size
                if time.monotonic() >= next_report:
                    self._progress.totals(items, nbytes, final=False)
                    next_report = time.monotonic() + SCAN_REPORT_INTERVAL
        except Exception:  # the work meets the same problem and reports it
            return
        self._progress.totals(items, nbytes, final=True)
