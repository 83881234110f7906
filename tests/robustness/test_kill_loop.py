"""SIGKILL at random points of snapshot (files and stdin), prune, forget --prune, copy and
repair index, in a loop, through the installed command (see tests/support/kill_loop.py):
after each kill every earlier snapshot restores byte for byte and `check --read-data` is clean.

The number of kill points is the `kill_points` fixture (--kill-points, --nightly); the seed is
SNAPSTORE_TEST_SEED's if set. With -s the counts are printed. tests/integration/test_crash.py
kills snapshot and prune at chosen moments (between the pack, index and snapshot writes).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from tests.support.cli_repos import base_seed, new_repository
from tests.support.kill_loop import KillLoop

PACK_SIZE = 64 * 1024


def test_commands_killed_at_random_points_lose_nothing(
    kill_points: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seed = base_seed(20260511)
    src = new_repository(tmp_path, "src", pack_size=PACK_SIZE)
    dst = new_repository(tmp_path, "dst", pack_size=PACK_SIZE)
    loop = KillLoop(src, dst, tmp_path, seed)
    started = time.monotonic()
    failures = 0
    try:
        for number in range(kill_points):
            loop.point(number)
    except AssertionError:
        failures = 1
        kept = Path(tempfile.gettempdir()) / f"snapstore-kill-loop-{seed}-{os.getpid()}"
        shutil.copytree(tmp_path, kept, symlinks=True)
        with capsys.disabled():
            print(f"\nthe repositories as the failure left them: {kept}")
        raise
    finally:
        tally = loop.tally
        with capsys.disabled():
            print(
                f"\nkill loop (seed {seed}): {tally.points} kill points, {tally.killed} killed, "
                f"{tally.completed} ended first, {tally.stale_locks} locks left behind; "
                f"per command [killed, ended first]: {tally.by_command}; "
                f"failures: {failures}; {time.monotonic() - started:.0f} s"
            )
