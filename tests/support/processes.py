"""Running `snapstore` in the background for lock and crash tests: start, feed, wait, kill."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from tests.support.cli import Cli, snapstore_command


def start(cli: Cli, *args: str) -> subprocess.Popen[bytes]:
    """The command running in the background, with a pipe on its standard input."""
    return subprocess.Popen(
        snapstore_command() + list(args),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=cli.env,
    )


def wait_for(
    condition: Callable[[], object],
    timeout: float = 60,
    what: str = "condition",
    interval: float = 0.02,
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


def objects(repo: Path, folder: str) -> list[Path]:
    """Finished objects in a repository folder (temporary files left out)."""
    root = repo / folder
    if not root.exists():
        return []
    return [p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")]


def finish(proc: subprocess.Popen[bytes], timeout: float = 120) -> tuple[int, bytes, str]:
    """Waits for the command; returns its exit code, output and error output."""
    if proc.stdin is not None and proc.stdin.closed:
        proc.stdin = None  # communicate() would flush it
    out, err = proc.communicate(timeout=timeout)
    text = err.decode(errors="replace")
    assert "Traceback" not in text, text
    return proc.returncode, out, text
