"""Locks between processes: shared locks coexist, prune waits for or fails on them (exit 11),
a killed holder's lock is stale, SIGTERM lets go of the lock and keeps what was uploaded."""

from __future__ import annotations

import random
import signal
import subprocess
import time

from tests.support.cli import Cli
from tests.support.processes import finish, objects, start, wait_for

EXIT_LOCKED = 11


def hold_shared_lock(cli: Cli, name: str = "held") -> subprocess.Popen[bytes]:
    """A snapshot of standard input that holds its shared lock until its input is closed."""
    proc = start(cli, "snapshot", "stdin", "--name", name)
    assert proc.stdin is not None
    before = len(objects(cli.repo, "locks"))
    proc.stdin.write(b"first bytes of a slow stream\n")
    proc.stdin.flush()
    wait_for(
        lambda: len(objects(cli.repo, "locks")) > before or proc.poll() is not None, what="the lock"
    )
    assert proc.poll() is None, proc.communicate()
    return proc


def let_go(proc: subprocess.Popen[bytes]) -> None:
    assert proc.stdin is not None
    proc.stdin.close()
    code, _, err = finish(proc)
    assert code == 0, err


def test_prune_fails_or_waits_while_a_snapshot_runs(initialised: Cli) -> None:
    holder = hold_shared_lock(initialised)
    try:
        refused = initialised("prune")
        assert refused.code == EXIT_LOCKED, refused.err
        (line,) = refused.err.strip().splitlines()
        assert "locked" in line and "shared lock held by" in line and f"pid {holder.pid}" in line
        # Shared locks coexist: another snapshot and a check run meanwhile.
        other = initialised("snapshot", "stdin", "--name", "other", input=b"other data")
        assert other.code == 0, other.err
        assert initialised("check").code == 0
        assert len(objects(initialised.repo, "locks")) == 1

        waiting = start(initialised, "prune", "--retry-lock", "2m")
        time.sleep(1.5)
        assert waiting.poll() is None  # still waiting for the snapshot
    finally:
        released_at = time.monotonic()
        let_go(holder)
    code, out, err = finish(waiting)
    assert code == 0, err
    assert time.monotonic() - released_at < 30
    assert b"free" in out
    assert objects(initialised.repo, "locks") == []
    assert len(initialised("snapshots", "--json").json()) == 2


def test_a_killed_holder_leaves_a_stale_lock(initialised: Cli) -> None:
    killed = hold_shared_lock(initialised, "killed")
    killed.kill()
    killed.wait()
    assert len(objects(initialised.repo, "locks")) == 1
    alive = hold_shared_lock(initialised, "alive")
    try:
        assert len(objects(initialised.repo, "locks")) == 2
        # The dead process's lock does not count, the live one does.
        assert initialised("prune").code == EXIT_LOCKED
        removed = initialised("unlock")
        assert removed.code == 0 and removed.out.strip() == b"removed 1 lock", removed.err
        assert f"pid {killed.pid}" in removed.err
        assert len(objects(initialised.repo, "locks")) == 1
        assert initialised("unlock").out.strip() == b"removed 0 locks"
        assert initialised("unlock", "--remove-all").out.strip() == b"removed 1 lock"
        assert objects(initialised.repo, "locks") == []
    finally:
        alive.kill()
        alive.wait()
    assert initialised("prune").code == 0


def test_sigterm_releases_the_lock_and_keeps_the_upload(cli: Cli) -> None:
    assert cli("init", "--pack-size", "65536").code == 0
    data = random.Random(7).randbytes(12 << 20)
    proc = start(cli, "snapshot", "stdin", "--database", "--name", "dump.sql")
    assert proc.stdin is not None
    sent = 0
    while len(objects(cli.repo, "data")) < 40:
        assert sent < len(data) // 2, "no packs appear"
        proc.stdin.write(data[sent : sent + (256 << 10)])
        proc.stdin.flush()
        sent += 256 << 10
        wait_for(lambda: objects(cli.repo, "locks"), what="the lock")
    proc.send_signal(signal.SIGTERM)
    code, _, err = finish(proc)
    assert code == 143, err
    assert "terminated" in err
    assert objects(cli.repo, "locks") == []
    checked = cli("check")
    assert checked.code == 0 and "not named by any index" not in checked.err, checked.err
    again = cli("snapshot", "stdin", "--database", "--name", "dump.sql", "--json", input=data)
    assert again.code == 0, again.err
    summary = again.json()
    assert summary["bytes_added"] < len(data) - 0.5 * sent
    dumped = cli("dump", "latest", "dump.sql")
    assert dumped.code == 0 and dumped.out == data


def test_retry_lock_takes_durations(initialised: Cli) -> None:
    assert initialised("check", "--retry-lock", "1m30s").code == 0
    bad = initialised("check", "--retry-lock", "soon")
    assert bad.code == 2 and "not a duration" in bad.err
