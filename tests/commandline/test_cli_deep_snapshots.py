"""A snapshot thousands of directories deep (`deep_trees.DEPTH`) through the installed
command: ls, stats, check, prune and copy (issue 10 item 2: each failed with RecursionError
from about 1,000 levels, and copy then copied none of the later snapshots).

Such a tree cannot come from disk (its paths pass PATH_MAX), so the snapshots are built in the
repository through the library, as tests/support/deep_trees.py explains.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

import snapstore
from tests.support.cli import PASSWORD, Cli, Result, command_json
from tests.support.deep_trees import DEPTH, WHEN, deep_path, deep_snapshot

OLD_LEAF = b"the day before\n"
LEAF = b"at the bottom\n"


def cli_for(repo: Path, **env: str) -> Cli:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SNAPSTORE_")}
    clean.update({"SNAPSTORE_REPOSITORY": str(repo), "SNAPSTORE_PASSWORD": PASSWORD, **env})
    return Cli(repo, clean)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A repository with two deep snapshots (same host and paths, a day apart), built once."""
    path = tmp_path_factory.mktemp("deep") / "repo"
    done = cli_for(path)("init")
    assert done.code == 0, done.err
    repo = snapstore.open_repository(str(path), PASSWORD.encode())
    try:
        deep_snapshot(repo, OLD_LEAF)
        deep_snapshot(repo, LEAF, when=WHEN.replace(day=WHEN.day + 1))
    finally:
        repo.close()
    return path


@pytest.fixture
def deep(built: Path, tmp_path: Path) -> Cli:
    """A copy of that repository of the test's own, to change as it likes."""
    shutil.copytree(built, tmp_path / "repo")
    return cli_for(tmp_path / "repo")


def ok(done: Result) -> str:
    assert done.code == 0, done.err
    return done.text


def test_ls_lists_every_level(deep: Cli) -> None:
    lines = ok(deep("ls", "latest", timeout=600)).splitlines()
    assert len(lines) == DEPTH + 1
    for index, line in enumerate(lines):
        assert line.endswith(" " + deep_path(index)), (index, line[-40:])
    assert lines[0].startswith("d") and lines[-1].startswith("-")


def test_stats_counts_both_deep_snapshots(deep: Cli) -> None:
    stats = json.loads(ok(deep("stats", "--json")))
    assert stats["snapshots"] == 2
    assert stats["logical_bytes"] == len(OLD_LEAF) + len(LEAF)
    assert stats["blobs"] == 2 * (DEPTH + 2)


def test_check_and_check_read_data(deep: Cli) -> None:
    assert "checked 2 snapshots" in ok(deep("check"))
    out = ok(deep("check", "--read-data"))
    assert "no errors were found" in out and "read " in out


def test_forget_and_prune_free_the_older_deep_snapshot(deep: Cli) -> None:
    ok(deep("forget", "--keep-last", "1"))
    report = command_json(ok(deep("prune", "--max-unused", "0", "--json")))
    assert report["snapshots"] == 1
    assert report["blobs_used"] == report["blobs_unused"] == DEPTH + 2
    assert "no errors were found" in ok(deep("check", "--read-data"))
    bottom = "/".join(["d"] * DEPTH) + "/leaf.txt"
    assert deep("dump", "latest", bottom).out == LEAF


def test_copy_copies_both_deep_snapshots(deep: Cli, tmp_path: Path) -> None:
    offsite = cli_for(tmp_path / "offsite", SNAPSTORE_PASSWORD="another password")
    ok(offsite("init"))
    to = {"SNAPSTORE_TO_REPOSITORY": str(offsite.repo), "SNAPSTORE_TO_PASSWORD": "another password"}
    copied = command_json(ok(deep("copy", "--json", env=to)))
    assert len(copied["copied"]) == 2
    assert command_json(ok(deep("copy", "--json", env=to)))["copied"] == []
    assert "checked 2 snapshots" in ok(offsite("check", "--read-data"))
    bottom = "/".join(["d"] * DEPTH) + "/leaf.txt"
    assert offsite("dump", "latest", bottom).out == LEAF
    assert json.loads(ok(offsite("stats", "--json")))["logical_bytes"] == len(OLD_LEAF) + len(LEAF)
