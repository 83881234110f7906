"""Progress of a long command, rendered: a live display on a terminal, JSON lines with --json,
nothing otherwise (issue 15, item 1; restic's internal/ui).

The library reports through snapstore.Progress; `Counters` only adds up what it reports (the
per-chunk `advance` takes a lock and adds two numbers, nothing else), `status` turns the counts
into one `Status` at a moment (percentage, rate, ETA), and a renderer shows a Status on a
timer: rich's own refresh thread for the live display, a thread of ours for JSON `status`
lines every second. The JSON messages are documented in the README ("Progress and JSON
output"); `status_message` and `summary_message` are their one definition.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

import click

from snapstore import ItemStatus
from snapstore.cli.output import Level, format_duration, human_size, output_level, set_line_sink

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions
    from rich.live import Live
    from rich.text import Text

JSON_STATUS_INTERVAL = 1.0
"""Seconds between JSON status lines."""
TERMINAL_REFRESH_PER_SECOND = 4


@dataclass(frozen=True)
class Status:
    """What a command has got through at one moment, in its current phase."""

    phase: str
    unit: str  # what an item is: files, packs, snapshots
    seconds_elapsed: float
    total_items: int | None
    total_bytes: int | None
    totals_final: bool  # False while a scan is still counting
    items_done: int
    bytes_done: int
    bytes_added: int
    errors: int
    current: str

    @property
    def percent_done(self) -> float | None:
        """0 to 1, by bytes where their total is known, else by items; None for a stream."""
        if self.total_bytes:
            share = self.bytes_done / self.total_bytes
        elif self.total_items:
            share = self.items_done / self.total_items
        elif self.totals_final and self.total_items == 0:
            share = 1.0
        else:
            return None
        return min(share, 1.0)

    @property
    def bytes_per_second(self) -> float:
        return self.bytes_done / self.seconds_elapsed if self.seconds_elapsed > 0 else 0.0

    @property
    def seconds_remaining(self) -> float | None:
        """Time left at the pace so far, once the totals are final and some work is done."""
        share = self.percent_done
        if not self.totals_final or share is None or share <= 0 or self.seconds_elapsed <= 0:
            return None
        return self.seconds_elapsed * (1 - share) / share


class Counters:
    """What the library has reported in the current phase; any thread may report."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._phase, self._unit = "", "files"
        self._phase_started = clock()
        self._total_items: int | None = None
        self._total_bytes: int | None = None
        self._final = False
        self._items = self._bytes = self._added = self._errors = 0
        self._current = ""

    def phase(self, name: str, unit: str) -> None:
        with self._lock:
            self._phase, self._unit, self._phase_started = name, unit, self._clock()
            self._total_items = self._total_bytes = None
            self._final = False
            self._items = self._bytes = self._added = 0
            self._current = ""

    def totals(self, items: int, nbytes: int | None, final: bool = True) -> None:
        with self._lock:
            self._total_items, self._total_bytes, self._final = items, nbytes, final

    def item(self, path: str) -> None:
        self._current = path  # one assignment: no lock needed

    def advance(self, bytes_done: int, bytes_added: int) -> None:
        with self._lock:
            self._bytes += bytes_done
            self._added += bytes_added

    def item_done(self) -> None:
        with self._lock:
            self._items += 1

    def error(self) -> None:
        with self._lock:
            self._errors += 1

    def status(self) -> Status:
        with self._lock:
            return Status(
                phase=self._phase, unit=self._unit,
                seconds_elapsed=max(self._clock() - self._phase_started, 0.0),
                total_items=self._total_items, total_bytes=self._total_bytes,
                totals_final=self._final, items_done=self._items, bytes_done=self._bytes,
                bytes_added=self._added, errors=self._errors, current=self._current,
            )  # fmt: skip


def status_line(status: Status) -> str:
    """The live display's first line, as restic's: `[0:12]  45.3%  1234/2345 files
    456.7 MiB/1.0 GiB  38.1 MiB/s  ETA 0:15  0 errors`; a stream has no percentage, totals
    or ETA; a total still being counted ends with `+`."""
    parts = [f"[{format_duration(status.seconds_elapsed)}]"]
    share = status.percent_done
    if share is not None:
        parts.append(f"{100 * share:.1f}%")
    more = "" if status.totals_final else "+"
    if status.total_items is not None:
        parts.append(f"{status.items_done}/{status.total_items}{more} {status.unit}")
    elif status.items_done:
        parts.append(f"{status.items_done} {status.unit}")
    size = human_size(status.bytes_done)
    if status.total_bytes is not None:
        size += f"/{human_size(status.total_bytes)}{more}"
    parts += [size, f"{human_size(status.bytes_per_second)}/s"]
    remaining = status.seconds_remaining
    if remaining is not None:
        parts.append(f"ETA {format_duration(remaining)}")
    parts.append(f"{status.errors} error{'' if status.errors == 1 else 's'}")
    return "  ".join(parts)


def place_line(status: Status, width: int) -> str:
    """The second line: the phase, what was added (when something is), the current path
    cut at the front to fit `width`."""
    head = status.phase
    if status.bytes_added:
        head += f"  added {human_size(status.bytes_added)}"
    room = max(width - len(head) - 2, 10)
    current = status.current
    if len(current) > room:
        current = "…" + current[-(room - 1):]
    return f"{head}  {current}" if current else head


def status_message(status: Status) -> dict[str, Any]:
    """A JSON `status` line (README: "Progress and JSON output")."""
    share, remaining = status.percent_done, status.seconds_remaining
    return {
        "message_type": "status",
        "phase": status.phase,
        "unit": status.unit,
        "seconds_elapsed": round(status.seconds_elapsed, 3),
        "seconds_remaining": None if remaining is None else round(remaining),
        "percent_done": None if share is None else round(share, 4),
        "total_items": status.total_items,
        "items_done": status.items_done,
        "total_bytes": status.total_bytes,
        "bytes_done": status.bytes_done,
        "bytes_added": status.bytes_added,
        "bytes_per_second": round(status.bytes_per_second),
        "totals_final": status.totals_final,
        "error_count": status.errors,
        "current": status.current,
    }


def summary_message(record: dict[str, Any]) -> dict[str, Any]:
    """The one JSON `summary` line: the command's result fields after `message_type`."""
    return {"message_type": "summary", **record}


def verbose_message(action: str, item: str) -> dict[str, Any]:
    """A JSON `verbose_status` line (-v with --json): a file of a snapshot, as restic."""
    return {"message_type": "verbose_status", "action": action, "item": item}


_VERBOSE_LEVEL = {
    ItemStatus.NEW: Level.VERBOSE,
    ItemStatus.CHANGED: Level.VERBOSE,
    ItemStatus.UNCHANGED: Level.VERY_VERBOSE,
}


class Reporter:
    """snapstore.Progress for a command: counts, and renders as the output level and --json
    say (a live display on stderr when it is a terminal; JSON status lines on stdout; -v's
    file list). Use as a context manager around the work: on the way out the display is
    cleared (before the summary is printed) and --json's last status line is written."""

    def __init__(
        self, *, as_json: bool = False, terminal: bool | None = None,
        level: Level | None = None, clock: Callable[[], float] = time.monotonic,
        stdout: TextIO | None = None,
    ) -> None:
        self.counters = Counters(clock)
        self._json = as_json
        self._level = output_level() if level is None else level
        if terminal is None:
            terminal = sys.stderr.isatty()
        self._live_wanted = terminal and not as_json and self._level is not Level.QUIET
        #: Files done are counted only where the counts show (`wants_totals`), and looked at
        #: only where -v lists them: this is called for each of 200,000 unchanged files.
        self._counting = self._live_wanted or (as_json and self._level is not Level.QUIET)
        self._listing = self._level.value >= Level.VERBOSE.value
        self._stdout = stdout
        self._out_lock = threading.Lock()
        self._live: Live | None = None
        self._console: Console | None = None
        self._ticker: threading.Thread | None = None
        self._stop = threading.Event()

    # -- context ------------------------------------------------------------------------
    def __enter__(self) -> Reporter:
        if self._live_wanted:
            from rich.console import Console
            from rich.live import Live

            self._console = Console(stderr=True)
            self._live = Live(
                _Renderable(self), console=self._console, transient=True,
                refresh_per_second=TERMINAL_REFRESH_PER_SECOND,
                redirect_stdout=False, redirect_stderr=False,
            )  # fmt: skip
            self._live.start(refresh=True)  # drawn at once, then on rich's timer
        elif self._json and self._level is not Level.QUIET:
            self._ticker = threading.Thread(target=self._tick, name="snapstore-status", daemon=True)
            self._ticker.start()
        set_line_sink(self._line)
        return self

    def __exit__(self, *exc: object) -> None:
        set_line_sink(None)
        if self._live is not None:
            self._live.stop()  # transient: the display is cleared
            self._live = None
        if self._ticker is not None:
            self._stop.set()
            self._ticker.join()
            self._ticker = None
            if exc[0] is None:
                self._write_json(status_message(self.counters.status()))

    # -- snapstore.Progress ---------------------------------------------------------------
    @property
    def wants_totals(self) -> bool:
        """Whether anything shows the totals (the live display, JSON status lines): without
        either (-q, no terminal and no --json) the library runs no scan for them."""
        return self._counting

    def phase(self, name: str, unit: str = "files") -> None:
        self.counters.phase(name, unit)

    def totals(self, items: int, nbytes: int | None, *, final: bool = True) -> None:
        self.counters.totals(items, nbytes, final)

    def item(self, path: str) -> None:
        self.counters.item(path)

    def advance(self, bytes_done: int, bytes_added: int) -> None:
        self.counters.advance(bytes_done, bytes_added)

    def item_done(self, path: str, status: ItemStatus | None = None) -> None:
        if self._counting:
            self.counters.item_done()
        if status is not None and self._listing and self._level.value >= _VERBOSE_LEVEL[status].value:
            if self._json:
                self._write_json(verbose_message(status.value, path))
            else:
                self._line(f"{status.value:<9} {path}", err=False)

    def warning(self, path: str, message: str) -> None:
        self.counters.error()
        self._line(f"snapstore: warning: {path}: {message}", err=True)

    # -- rendering ----------------------------------------------------------------------
    def render(self, width: int) -> Text:
        from rich.text import Text

        status = self.counters.status()
        return Text(f"{status_line(status)}\n{place_line(status, width)}", no_wrap=True,
                    overflow="ellipsis")  # fmt: skip

    def _line(self, text: str, err: bool) -> None:
        """A line above the live display (where it shares its terminal), or on its stream."""
        console = self._console
        if self._live is not None and console is not None and (err or sys.stdout.isatty()):
            console.print(text, markup=False, highlight=False, emoji=False, soft_wrap=True)
        else:
            with self._out_lock:
                click.echo(text, err=err, file=None if err else self._stdout)

    def _write_json(self, message: dict[str, Any]) -> None:
        with self._out_lock:
            out = self._stdout or sys.stdout
            out.write(json.dumps(message) + "\n")
            out.flush()

    def _tick(self) -> None:
        while not self._stop.wait(JSON_STATUS_INTERVAL):
            self._write_json(status_message(self.counters.status()))


class _Renderable:
    """What rich's refresh thread asks for: the status at that moment."""

    def __init__(self, reporter: Reporter) -> None:
        self._reporter = reporter

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Text]:
        yield self._reporter.render(options.max_width)


def print_summary(record: dict[str, Any], text: str, *, as_json: bool) -> None:
    """A command's result: one JSON `summary` line with --json, else its line(s) of text on
    stdout, unless -q."""
    if as_json:
        click.echo(json.dumps(summary_message(record), default=str))
    elif output_level() is not Level.QUIET:
        click.echo(text)
