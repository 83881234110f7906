"""Running snapstore, restic and borg from a benchmark script.

`tool_env` is one environment with every tool's password (and borg's answers to its
"this repository moved / is unencrypted" questions). `run` is for a command that must
succeed and whose output we want; `measured` is for a command we time: wall time and its
peak resident memory.

Peak memory comes from GNU time (`/usr/bin/time -f %M`), not from this process's
`os.wait4`: Linux starts a child's peak RSS at its parent's (fork, or vfork, then exec
carries the high-water mark over), so a child of a benchmark holding a 250 MB S3 server
would never show less than 250 MB. GNU time is a tiny parent, so the figure is the
command's own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PASSWORD = "benchmark password"
GNU_TIME = "/usr/bin/time"


def tool_env(**extra: str) -> dict[str, str]:
    env = dict(
        os.environ,
        SNAPSTORE_PASSWORD=PASSWORD,
        RESTIC_PASSWORD=PASSWORD,
        BORG_PASSPHRASE=PASSWORD,
        BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK="yes",
        BORG_RELOCATED_REPO_ACCESS_IS_OK="yes",
    )
    env.pop("SNAPSTORE_REPOSITORY", None)
    env.update(extra)
    return env


def snapstore_summary(output: str | bytes) -> dict[str, Any]:
    """The `summary` message of what `snapstore snapshot|restore|check|prune|copy --json`
    printed (JSON lines, the summary last; README "Progress and JSON output")."""
    text = output.decode() if isinstance(output, bytes) else output
    summary: dict[str, Any] = json.loads(text.strip().splitlines()[-1])
    if summary.get("message_type") != "summary":
        raise ValueError(f"no summary at the end of {text[-200:]!r}")
    return summary


def installed_script(name: str) -> str:
    """The command installed beside this Python, else `name` on PATH: a pyenv shim in front
    of it (a bash script and `pyenv exec`) costs each run 50-100 ms that restic, a binary
    started directly, does not pay."""
    beside = Path(sys.executable).with_name(name)
    return str(beside) if beside.is_file() and os.access(beside, os.X_OK) else name


SNAPSTORE = installed_script("snapstore")


def dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def run(
    cmd: list[str],
    env: dict[str, str],
    stdin: Path | None = None,
    stdout: Path | None = None,
    cwd: Path | None = None,
) -> str:
    """Run `cmd`; its standard output as text (or into `stdout`); raise with its stderr's tail."""
    with open(stdin or os.devnull, "rb") as source, open(stdout or os.devnull, "wb") as sink:
        done = subprocess.run(
            cmd,
            env=env,
            cwd=cwd,
            stdin=source,
            stdout=sink if stdout else subprocess.PIPE,
            stderr=subprocess.PIPE,
            check=False,
        )
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr.decode()[-2000:]}"
        )
    return done.stdout.decode() if done.stdout else ""


@dataclass(frozen=True)
class Measured:
    seconds: float
    peak_rss: int  # bytes: the child's maximum resident set size


def measured(
    cmd: list[str],
    env: dict[str, str],
    *,
    cwd: Path | None = None,
    consume: Callable[[bytes], None] | None = None,
) -> Measured:
    """Run `cmd` to completion, its output to /dev/null or, with `consume`, through a pipe
    into `consume` a MiB at a time; raise with the tail of its stderr if it fails."""
    if not os.access(GNU_TIME, os.X_OK):
        raise SystemExit(f"{GNU_TIME} (GNU time) is needed for peak memory: apt-get install time")
    with (
        open(os.devnull, "rb") as source,
        open(os.devnull, "wb") as sink,
        tempfile.TemporaryFile() as err,
        tempfile.NamedTemporaryFile("r") as peak,
    ):
        started = time.perf_counter()
        proc = subprocess.Popen(
            [GNU_TIME, "-f", "%M", "-o", peak.name, *cmd],
            env=env,
            cwd=cwd,
            stdin=source,
            stdout=subprocess.PIPE if consume else sink,
            stderr=err,
        )
        if consume is not None:
            assert proc.stdout is not None
            while chunk := proc.stdout.read(1 << 20):
                consume(chunk)
            proc.stdout.close()
        returncode = proc.wait()
        seconds = time.perf_counter() - started
        if returncode != 0:
            err.seek(0)
            tail = err.read().decode(errors="replace")[-2000:]
            raise RuntimeError(f"{' '.join(cmd)} failed ({returncode}): {tail}")
        kib = int(peak.read().split()[-1])  # GNU time's %M: KiB
    return Measured(seconds, kib * 1024)
