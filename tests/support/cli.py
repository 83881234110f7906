"""Runs the installed `snapstore` command as a user would, in a subprocess."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

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
