"""The progress display's counting and rendering (cli/progress.py), below the command line: a
fake clock, no terminal, no threads but the counters' callers."""

from __future__ import annotations

import io
import json
import threading

import pytest

from snapstore.cli.output import Level
from snapstore.cli.progress import (
    Counters,
    Reporter,
    Status,
    place_line,
    status_line,
    status_message,
    summary_message,
)
from snapstore.progress import ItemStatus

MiB = 1024 * 1024


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_percentage_rate_and_eta_follow_the_bytes() -> None:
    clock = Clock()
    counters = Counters(clock)
    counters.phase("snapshot", "files")
    counters.totals(4, 100 * MiB, final=True)
    clock.now += 10
    counters.advance(25 * MiB, 5 * MiB)
    counters.item_done()
    status = counters.status()
    assert status.percent_done == 0.25
    assert status.bytes_per_second == 2.5 * MiB
    assert status.seconds_remaining == 30  # 10 s for a quarter: 30 s for the rest
    assert status_line(status) == "[0:10]  25.0%  1/4 files  25.0 MiB/100.0 MiB  2.5 MiB/s  ETA 0:30  0 errors"


def test_no_eta_while_the_scan_is_counting_and_a_plus_on_its_totals() -> None:
    clock = Clock()
    counters = Counters(clock)
    counters.phase("snapshot", "files")
    counters.totals(1000, 10 * MiB, final=False)
    clock.now += 2
    counters.advance(MiB, 0)
    status = counters.status()
    assert status.seconds_remaining is None
    assert "1000+ files" in status_line(status) and "10.0 MiB+" in status_line(status)


def test_a_stream_shows_bytes_and_rate_without_percentage() -> None:
    clock = Clock()
    counters = Counters(clock)
    counters.phase("snapshot", "files")
    clock.now += 4
    counters.advance(8 * MiB, MiB)
    status = counters.status()
    assert status.percent_done is None and status.seconds_remaining is None
    assert status_line(status) == "[0:04]  8.0 MiB  2.0 MiB/s  0 errors"
    message = status_message(status)
    assert message["percent_done"] is None and message["total_bytes"] is None
    assert message["bytes_added"] == MiB


def test_items_decide_the_percentage_when_bytes_are_unknown() -> None:
    counters = Counters(Clock())
    counters.phase("copy", "snapshots")
    counters.totals(4, None)
    counters.item_done()
    assert counters.status().percent_done == 0.25
    assert "1/4 snapshots" in status_line(counters.status())


def test_a_new_phase_starts_from_zero_and_errors_add_up_over_phases() -> None:
    counters = Counters(Clock())
    counters.phase("snapshots", "snapshots")
    counters.totals(2, None)
    counters.item_done()
    counters.error()
    counters.phase("read data", "packs")
    status = counters.status()
    assert (status.items_done, status.total_items, status.unit) == (0, None, "packs")
    assert status.errors == 1 and "1 error" in status_line(status)


def test_the_percentage_never_passes_100_when_files_grew() -> None:
    counters = Counters(Clock())
    counters.totals(1, 100)
    counters.advance(150, 0)
    assert counters.status().percent_done == 1.0


def test_the_place_line_cuts_the_path_at_the_front() -> None:
    status = Status("restore", "files", 1.0, 1, 10, True, 0, 0, 0, 0, "/very/long/" + "x" * 200)
    line = place_line(status, 60)
    assert line.startswith("restore  …") and line.endswith("x" * 20) and len(line) <= 60
    added = Status("snapshot", "files", 1.0, 1, 10, True, 0, 0, 3 * MiB, 0, "/a")
    assert place_line(added, 80) == "snapshot  added 3.0 MiB  /a"


def test_advance_from_many_threads_loses_nothing() -> None:
    counters = Counters(Clock())

    def work() -> None:
        for _ in range(20_000):
            counters.advance(3, 1)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    status = counters.status()
    assert (status.bytes_done, status.bytes_added) == (240_000, 80_000)


def _reporter(level: Level, as_json: bool) -> tuple[Reporter, io.StringIO]:
    out = io.StringIO()
    return Reporter(as_json=as_json, terminal=False, level=level, clock=Clock(), stdout=out), out


@pytest.mark.parametrize(
    ("level", "listed"),
    [
        (Level.QUIET, []),
        (Level.NORMAL, []),
        (Level.VERBOSE, ["new       /n", "changed   /c"]),
        (Level.VERY_VERBOSE, ["new       /n", "changed   /c", "unchanged /u"]),
    ],
)
def test_verbose_levels_list_files_by_status(level: Level, listed: list[str]) -> None:
    reporter, out = _reporter(level, as_json=False)
    with reporter:
        reporter.item_done("/n", ItemStatus.NEW)
        reporter.item_done("/c", ItemStatus.CHANGED)
        reporter.item_done("/u", ItemStatus.UNCHANGED)
        reporter.item_done("/pack")  # no status: counted, never listed
    assert out.getvalue().splitlines() == listed
    assert reporter.counters.status().items_done == 0  # no display, no JSON: not counted


def test_files_done_are_counted_where_the_counts_show() -> None:
    for as_json, terminal, level, counted in [(True, False, Level.NORMAL, 2), (False, True, Level.NORMAL, 2),
                                              (True, False, Level.QUIET, 0), (False, False, Level.NORMAL, 0)]:
        reporter = Reporter(as_json=as_json, terminal=terminal, level=level, clock=Clock(), stdout=io.StringIO())
        reporter.item_done("/n", ItemStatus.NEW)
        reporter.item_done("/u", ItemStatus.UNCHANGED)
        assert reporter.counters.status().items_done == counted, (as_json, terminal, level)


def test_json_mode_ends_with_a_status_and_lists_verbose_files_as_messages() -> None:
    reporter, out = _reporter(Level.VERBOSE, as_json=True)
    with reporter:
        reporter.phase("snapshot")
        reporter.totals(1, 10)
        reporter.advance(10, 4)
        reporter.item_done("/n", ItemStatus.NEW)
    messages = [json.loads(line) for line in out.getvalue().splitlines()]
    assert messages[0] == {"message_type": "verbose_status", "action": "new", "item": "/n"}
    last = messages[-1]
    assert last["message_type"] == "status" and last["percent_done"] == 1.0
    assert (last["items_done"], last["total_items"], last["bytes_done"], last["bytes_added"]) == (1, 1, 10, 4)


def test_json_mode_with_quiet_writes_no_status() -> None:
    reporter, out = _reporter(Level.QUIET, as_json=True)
    with reporter:
        reporter.advance(10, 0)
    assert out.getvalue() == ""


def test_the_summary_message_puts_its_type_first() -> None:
    assert list(summary_message({"snapshot_id": "ab", "files": 1})) == ["message_type", "snapshot_id", "files"]


@pytest.mark.parametrize(
    ("level", "as_json", "terminal", "wanted"),
    [
        (Level.NORMAL, False, True, True),  # the live display shows them
        (Level.VERBOSE, False, True, True),
        (Level.QUIET, False, True, False),  # -q: no display
        (Level.NORMAL, False, False, False),  # no terminal, no --json: nothing shows them
        (Level.NORMAL, True, False, True),  # JSON status lines carry them
        (Level.NORMAL, True, True, True),
        (Level.QUIET, True, False, False),  # --json -q: the summary alone
    ],
)
def test_totals_are_wanted_only_where_something_shows_them(
    level: Level, as_json: bool, terminal: bool, wanted: bool
) -> None:
    """The library runs its scan for totals only when `wants_totals` (snapstore.progress)."""
    reporter = Reporter(as_json=as_json, terminal=terminal, level=level, clock=Clock(), stdout=io.StringIO())
    assert reporter.wants_totals is wanted
