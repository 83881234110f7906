"""Hooks through the installed command: --hook-before/--hook-after/--hook-failure and the
config file's [hooks], run by `sh -c` with what is known of the run in their environment;
a failing before hook stops the command, a hook past its timeout is killed with its children."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.support.cli import Cli


def env_of(path: Path) -> dict[str, str]:
    """What `env -0 > path` wrote, the SNAPSTORE_ variables only."""
    pairs = (item.split("=", 1) for item in path.read_text().split("\0") if "=" in item)
    return {key: value for key, value in pairs if key.startswith("SNAPSTORE_")}


def dump_env(path: Path) -> str:
    return f"env -0 > '{path}'"


@pytest.fixture
def data(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "toot.txt").write_bytes(b"hello fediverse\n" * 100)
    return folder


def test_before_and_after_hooks_see_the_run(initialised: Cli, data: Path, tmp_path: Path) -> None:
    before, after, failure = (tmp_path / f"{kind}.env" for kind in ("before", "after", "failure"))
    result = initialised(
        "--hook-before", dump_env(before), "--hook-after", dump_env(after),
        "--hook-failure", dump_env(failure), "snapshot", "files", str(data), "--json",
    )
    assert result.code == 0, result.err
    seen = env_of(before)
    assert seen["SNAPSTORE_HOOK"] == "before" and seen["SNAPSTORE_COMMAND"] == "snapshot files"
    assert "SNAPSTORE_STATUS" not in seen and "SNAPSTORE_SNAPSHOT_ID" not in seen
    seen = env_of(after)
    assert seen["SNAPSTORE_HOOK"] == "after" and seen["SNAPSTORE_STATUS"] == "success"
    assert seen["SNAPSTORE_EXIT_CODE"] == "0" and "SNAPSTORE_ERROR" not in seen
    assert seen["SNAPSTORE_SNAPSHOT_ID"] == result.json()["snapshot_id"]
    assert int(seen["SNAPSTORE_BYTES_ADDED"]) > 0 and float(seen["SNAPSTORE_DURATION"]) >= 0
    assert not failure.exists()


def test_a_failing_before_hook_stops_the_command(initialised: Cli, data: Path, tmp_path: Path) -> None:
    failure, after = tmp_path / "failure.env", tmp_path / "after.env"
    result = initialised(
        "--hook-before", "echo checking >&2; exit 7", "--hook-after", dump_env(after),
        "--hook-failure", dump_env(failure), "snapshot", "files", str(data),
    )
    assert result.code == 1
    assert result.err.splitlines() == [
        "checking",
        "snapstore: error: before hook 'echo checking >&2; exit 7' exited 7: the command was not run",
    ]
    assert initialised("snapshots", "--json").json() == []  # nothing recorded
    seen = env_of(failure)
    assert seen["SNAPSTORE_STATUS"] == "failure" and seen["SNAPSTORE_EXIT_CODE"] == "1"
    assert seen["SNAPSTORE_ERROR"].startswith("before hook 'echo checking >&2; exit 7' exited 7")
    assert not after.exists()


def test_failure_hooks_on_failure_and_failing_after_hooks_warn(
    initialised: Cli, tmp_path: Path
) -> None:
    failure, after = tmp_path / "failure.env", tmp_path / "after.env"
    failed = initialised(
        "--hook-after", dump_env(after), "--hook-failure", dump_env(failure),
        "--hook-failure", "exit 3", "snapshot", "command", "--name", "db.sql",
        "--", "sh", "-c", "echo 'FATAL: no database' >&2; exit 2",
    )
    assert failed.code == 1 and not after.exists()
    seen = env_of(failure)
    assert seen["SNAPSTORE_STATUS"] == "failure" and seen["SNAPSTORE_EXIT_CODE"] == "1"
    assert seen["SNAPSTORE_ERROR"] == ("sh exited 2, so no snapshot was recorded: "
                                       "FATAL: no database")
    assert "SNAPSTORE_SNAPSHOT_ID" not in seen
    assert failed.err.splitlines()[-1] == "snapstore: warning: failure hook 'exit 3' exited 3"

    ok = initialised("--hook-after", "exit 4", "snapshot", "command", "--name", "x", "--", "echo", "x")
    assert ok.code == 0
    assert ok.err.splitlines()[-1] == "snapstore: warning: after hook 'exit 4' exited 4"


def test_a_hook_past_its_timeout_is_killed_with_its_children(
    initialised: Cli, data: Path, tmp_path: Path
) -> None:
    pid_file = tmp_path / "sleeper.pid"
    began = time.monotonic()
    result = initialised(
        "--hook-timeout", "1s", "--hook-before", f"sleep 60 & echo $! > '{pid_file}'; wait",
        "snapshot", "files", str(data),
    )
    assert time.monotonic() - began < 15
    assert result.code == 1
    assert result.err.strip().endswith("timed out after 1 s: the command was not run")
    sleeper = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while _alive(sleeper) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(sleeper)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    return state != "Z"


def test_config_file_hooks_general_and_per_command(
    initialised: Cli, data: Path, tmp_path: Path
) -> None:
    log = tmp_path / "hooks.log"
    config = tmp_path / "snapstore.toml"
    config.write_text(
        "[hooks]\n"
        f"before = [\"echo \\\"all $SNAPSTORE_COMMAND\\\" >> '{log}'\"]\n"
        "[hooks.snapshot]\n"
        f"before = [\"echo snapshot-only >> '{log}'\"]\n"
        f"after = [\"echo \\\"done $SNAPSTORE_STATUS\\\" >> '{log}'\"]\n"
    )
    assert initialised("--config", str(config), "snapshot", "files", str(data)).code == 0
    assert initialised("--config", str(config), "snapshots").code == 0
    assert log.read_text().splitlines() == [
        "all snapshot files", "snapshot-only", "done success", "all snapshots",
    ]
    # --help runs no hook
    assert initialised("--config", str(config), "snapshot", "files", "--help").code == 0
    assert len(log.read_text().splitlines()) == 4
