"""Runs the installed `snapstore` command as a user would, in a subprocess."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

PASSWORD = "cli test password"


@dataclass
class Result:
    code: int
    out: bytes
    err: str

    @property
    def text(self) -> str:
        return self.out.decode()

    def json(self) -> Any:
        """What the command printed with --json (see `command_json`)."""
        return command_json(self.out)


def command_json(out: bytes | str) -> Any:
    """A command's --json output: its one JSON document (listings: snapshots, stats, ...), or
    of the JSON lines of snapshot, restore, check, prune and copy (README, "Progress and JSON
    output") the `summary` message, the one such line there must be."""
    text = out.decode() if isinstance(out, bytes) else out
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = None
    if value is not None and not (isinstance(value, dict) and "message_type" in value):
        return value
    messages = [json.loads(line) for line in text.splitlines() if line.strip()]
    summaries = [m for m in messages if m.get("message_type") == "summary"]
    assert len(summaries) == 1, f"not one summary line in {text!r}"
    return summaries[0]


def snapstore_command() -> list[str]:
    exe = shutil.which("snapstore", path=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    if exe is None:
        pytest.fail("the snapstore command is not installed: run the README's install command")
    return [exe]


class Cli:
    def __init__(self, repo: Path, env: dict[str, str]) -> None:
        self.repo = repo
        self.env = env

    def __call__(self, *args: str, input: bytes | None = None, env: dict[str, str] | None = None,
                 unprivileged: bool = False, timeout: float = 180) -> Result:
        """Runs the command; `unprivileged` drops root's power to read any file."""
        full_env = dict(self.env, **(env or {}))
        prefix = []
        if unprivileged and os.geteuid() == 0:
            prefix = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"]
        done = subprocess.run(
            prefix + snapstore_command() + list(args),
            input=input if input is not None else b"",
            capture_output=True,
            env=full_env,
            timeout=timeout,
        )
        err = done.stderr.decode(errors="replace")
        assert "Traceback" not in err, err
        return Result(done.returncode, done.stdout, err)
