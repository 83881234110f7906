"""Key files someone else put in the repository (issue 10, item 4): one that asks for 8 GiB and
100,000 passes no longer hangs every command, and a signal ends the search for a key file."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from tests.support.cli import Cli
from tests.support.key_files import AT_THE_BOUND, FIRST_NAME, HOSTILE, forged_key_file
from tests.support.processes import finish, start, wait_for


def plant(cli: Cli, name: str, blob: bytes) -> None:
    (cli.repo / "keys" / name).write_bytes(blob)


def with_password(cli: Cli, password: str) -> Cli:
    return Cli(cli.repo, dict(cli.env, SNAPSTORE_PASSWORD=password))


def test_a_hostile_key_file_is_refused_and_the_repository_opens(initialised: Cli) -> None:
    plant(initialised, FIRST_NAME, forged_key_file(**HOSTILE))
    done = initialised("snapshots", timeout=60)  # before the fix: 8.4 GB and > 10 minutes
    assert done.code == 0, done.err
    assert "0 snapshots" in done.text + done.err

    wrong = with_password(initialised, "not the password")("snapshots", timeout=60)
    assert wrong.code == 12, wrong.err
    assert wrong.err.count("\n") == 1, wrong.err
    assert wrong.err.startswith("snapstore: error: wrong password, or no key file opens with it")
    assert f"key file {FIRST_NAME}: Argon2id memory 8388608 KiB is over the bound" in wrong.err


def resident_mib(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) // 1024
    return 0


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_ends_the_search_for_a_key_file(
    initialised: Cli, signum: signal.Signals, code: int
) -> None:
    """Sixty hostile key files, so that a reader trying them in listing order meets one
    first, and ten as costly as the bounds allow (a few seconds in all): the signal, sent
    while one of those is derived, ends the command within two seconds."""
    for n in range(60):
        plant(initialised, f"{n:064x}", forged_key_file(**HOSTILE))
    for n in range(10):
        plant(initialised, f"{n + 60:064x}", forged_key_file(**AT_THE_BOUND))
    proc = start(with_password(initialised, "not the password"), "snapshots")
    try:
        wait_for(lambda: resident_mib(proc.pid) > 180 or proc.poll() is not None,
                 what="a key derivation")  # fmt: skip
        assert proc.poll() is None, proc.communicate()
        signalled = time.monotonic()
        proc.send_signal(signum)
        returncode, _, err = finish(proc, timeout=30)
        assert time.monotonic() - signalled < 2.0, time.monotonic() - signalled
        assert returncode == code, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
