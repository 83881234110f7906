"""Fixtures for the command-line tests: a repository path and the installed command."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.cli import PASSWORD, Cli


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    repo = tmp_path / "repo"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SNAPSTORE_")}
    env.update(SNAPSTORE_REPOSITORY=str(repo), SNAPSTORE_PASSWORD=PASSWORD)
    return Cli(repo, env)


@pytest.fixture
def initialised(cli: Cli) -> Cli:
    result = cli("init")
    assert result.code == 0, result.err
    return cli
