"""Progress and output levels through the installed command (issue 15, items 1 and 2): the live
display on a real pseudo-terminal, cleared before the summary; --json lines checked against
the schema the README documents; -q silent on success and not on failure; -v and -vv listing
files."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import Cli, snapstore_command

pexpect = pytest.importorskip("pexpect")

README = Path(__file__).resolve().parents[2] / "README.md"
ERASE_LINE, CURSOR_UP = "\x1b[2K", "\x1b[1A"


def documented_status_fields() -> set[str]:
    """The field names of the README's `status` table."""
    text = README.read_text()
    table = text[text.index("| `status` field | meaning |"):].split("\n\n", 1)[0]
    fields: set[str] = set()
    for row in table.splitlines()[2:]:
        fields.update(re.findall(r"`([a-z_]+)`", row.split("|")[1]))
    return fields


def json_lines(out: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.decode().splitlines()]


def check_messages(messages: list[dict[str, Any]], phases: set[str]) -> dict[str, Any]:
    """Status lines (each with exactly the documented fields, in a known phase) and then one
    summary, the last line; returns the summary."""
    *statuses, summary = messages
    assert summary["message_type"] == "summary"
    assert statuses and all(m["message_type"] == "status" for m in statuses)
    fields = documented_status_fields()
    assert len(fields) >= 14
    for status in statuses:
        assert set(status) == fields | {"message_type"}, status
        assert status["phase"] in phases
        assert status["percent_done"] is None or 0 <= status["percent_done"] <= 1
    return summary


def make_tree(root: Path) -> None:
    (root / "sub").mkdir(parents=True)
    (root / "a.txt").write_bytes(b"a" * 10_000)
    (root / "sub" / "b.bin").write_bytes(os.urandom(200_000))


def test_json_lines_of_snapshot_restore_and_check(initialised: Cli, tmp_path: Path) -> None:
    make_tree(tmp_path / "src")
    done = initialised("snapshot", "files", str(tmp_path / "src"), "--json")
    assert done.code == 0, done.err
    messages = json_lines(done.out)
    summary = check_messages(messages, {"snapshot"})
    assert summary["files"] == 2 and summary["bytes_read"] == 210_000
    last = messages[-2]  # the status written as the work ended: the scan's totals, all done
    assert (last["total_items"], last["items_done"], last["total_bytes"], last["bytes_done"]) == (
        2, 2, 210_000, 210_000)
    assert last["percent_done"] == 1 and last["totals_final"] is True

    done = initialised("restore", "latest", "--target", str(tmp_path / "out"), "--json")
    assert done.code == 0, done.err
    messages = json_lines(done.out)
    summary = check_messages(messages, {"restore"})
    assert summary["files"] == 2 and summary["bytes_written"] == 210_000
    assert messages[-2]["items_done"] == messages[-2]["total_items"] == 2

    done = initialised("check", "--read-data", "--json")
    assert done.code == 0, done.err
    summary = check_messages(json_lines(done.out), {"index", "snapshots", "read data"})
    assert summary["ok"] is True and summary["packs_read"] == summary["packs"]


def test_quiet_prints_nothing_on_success_and_still_reports_failure(
    initialised: Cli, tmp_path: Path
) -> None:
    make_tree(tmp_path / "src")
    for args in (["-q", "snapshot", "files", str(tmp_path / "src")],
                 ["snapshot", "files", str(tmp_path / "src"), "--quiet"],
                 ["-q", "check"], ["-q", "restore", "latest", "--target", str(tmp_path / "out")]):
        done = initialised(*args)
        assert (done.code, done.out, done.err) == (0, b"", ""), args
    assert (tmp_path / "out" / str(tmp_path / "src" / "a.txt").lstrip("/")).exists()

    done = initialised("-q", "snapshot", "files", str(tmp_path / "nowhere"))
    assert done.code == 1 and done.out == b""
    assert "nowhere: No such file or directory" in done.err

    unreadable = tmp_path / "src" / "locked"
    unreadable.write_bytes(b"secret")
    unreadable.chmod(0)
    done = initialised("-q", "snapshot", "files", str(tmp_path / "src"), unprivileged=True)
    assert done.code == 3 and done.out == b""
    assert f"warning: {unreadable}: Permission denied" in done.err

    both = initialised("-q", "snapshot", "files", str(tmp_path / "src"), "-v")
    assert both.code == 2 and "cannot be used together" in both.err


def test_default_prints_the_summary_on_stdout_alone(initialised: Cli, tmp_path: Path) -> None:
    make_tree(tmp_path / "src")
    done = initialised("snapshot", "files", str(tmp_path / "src"))
    assert done.code == 0 and done.err == ""
    assert re.fullmatch(r"snapshot [0-9a-f]{8} saved: 2 files \(0 unchanged\), read 205\.1 KiB, "
                        r"added [0-9.]+ KiB in [0-9.]+ s\n", done.text), done.text


def test_verbose_lists_new_and_changed_files_and_vv_unchanged_ones(
    initialised: Cli, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    make_tree(src)
    assert initialised("snapshot", "files", str(src)).code == 0
    (src / "new.txt").write_bytes(b"new")
    (src / "a.txt").write_bytes(b"b" * 10_001)
    done = initialised("-v", "snapshot", "files", str(src))
    assert done.code == 0, done.err
    lines = done.text.splitlines()
    assert f"new       {src / 'new.txt'}" in lines
    assert f"changed   {src / 'a.txt'}" in lines
    assert not any(str(src / "sub" / "b.bin") in line for line in lines)
    assert lines[-1].startswith("snapshot ")

    done = initialised("snapshot", "files", str(src), "-vv")
    assert done.code == 0, done.err
    lines = done.text.splitlines()
    assert {f"unchanged {src / name}" for name in ("a.txt", "new.txt", "sub/b.bin")} <= set(lines)

    done = initialised("snapshot", "files", str(src), "-v", "--json")
    listed = [m for m in json_lines(done.out) if m["message_type"] == "verbose_status"]
    assert listed == []  # nothing new or changed
    (src / "later").write_bytes(b"x")
    done = initialised("snapshot", "files", str(src), "-v", "--json")
    listed = [m for m in json_lines(done.out) if m["message_type"] == "verbose_status"]
    assert listed == [{"message_type": "verbose_status", "action": "new", "item": str(src / "later")}]


def _spawn(cli: Cli, *args: str) -> Any:
    command = snapstore_command()
    env = dict(cli.env, TERM="xterm", COLUMNS="120", LINES="30")
    return pexpect.spawn(command[0], [*command[1:], *args], env=env, timeout=120,
                         dimensions=(30, 120), encoding="utf-8", codec_errors="replace")


def test_the_live_display_runs_on_a_terminal_and_is_cleared_before_the_summary(
    initialised: Cli, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    os.mkfifo(gate)
    # a stream that stays open until the test has seen the display: no timing involved
    producer = f"head -c 3000000 /dev/urandom; cat {gate}"
    child = _spawn(initialised, "snapshot", "command", "--name", "stream", "--", "sh", "-c", producer)
    # bytes and rate: a stream has no total, percentage nor ETA
    child.expect(r"\] +[0-9.]+ (B|KiB|MiB)  [0-9.]+ (B|KiB|MiB|GiB)/s  0 errors")
    seen = child.before + child.after
    child.expect(r"snapshot")  # the second line: the phase
    with open(gate, "wb") as release:
        release.write(b"end")
    child.expect(r"snapshot [0-9a-f]{8} saved: [^\r\n]*\r\n")
    before_summary = child.before
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert "[0:0" in seen  # the elapsed time
    # after the last frame of the display comes its erasure, then the summary on a clean line
    tail = before_summary[before_summary.rindex("errors"):]
    assert ERASE_LINE in tail and CURSOR_UP in tail
    assert tail.rstrip("\r\n").endswith(ERASE_LINE)


def test_a_restore_s_summary_starts_on_a_line_of_its_own(initialised: Cli, tmp_path: Path) -> None:
    make_tree(tmp_path / "src")
    assert initialised("snapshot", "files", str(tmp_path / "src")).code == 0
    child = _spawn(initialised, "restore", "latest", "--target", str(tmp_path / "out"))
    child.expect(r"restored snapshot [0-9a-f]{8}: 2 files[^\r\n]*\r\n")
    before = child.before
    summary = child.after
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert "added" not in summary
    # the display was drawn (at once, as it starts), then erased before the summary
    tail = before[before.rindex("errors"):]
    assert "restore" in before and tail.rstrip("\r\n").endswith(ERASE_LINE), repr(before[-300:])
