"""`snapstore forget` through the installed command: ten snapshots spread over three weeks,
decisions with reasons as JSON, a dry run that removes nothing, a real run that removes exactly
those, `--prune` after it with `check --read-data` clean, and the refusal of a policy without
keep rules.

Buckets follow the local time zone, so the command runs with TZ=UTC.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.support.cli import PASSWORD, Cli

DAYS = [1, 2, 3, 5, 8, 9, 10, 15, 16, 20]  # January 2024; the 20th is a Saturday of ISO week 3
TIMES = [f"2024-01-{day:02d}T12:00:00+00:00" for day in DAYS]
EXPECTED_KEEP = {
    "2024-01-20T12:00:00+00:00": ["daily #1", "weekly #1"],
    "2024-01-16T12:00:00+00:00": ["daily #2"],
    "2024-01-15T12:00:00+00:00": ["daily #3"],
    "2024-01-10T12:00:00+00:00": ["weekly #2"],  # the newest of week 2
}


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SNAPSTORE_")}
    env.update(SNAPSTORE_PASSWORD=PASSWORD, TZ="UTC")
    return env


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A repository with the ten snapshots, made once and copied for each test."""
    base = tmp_path_factory.mktemp("forget")
    (base / "src").mkdir()
    (base / "src" / "file.txt").write_text("forget me not\n")
    cli = Cli(base / "repo", dict(_env(), SNAPSTORE_REPOSITORY=str(base / "repo")))
    assert cli("init").code == 0
    for when in TIMES:
        done = cli("snapshot", "files", str(base / "src"), "--host", "web1", "--time", when)
        assert done.code == 0, done.err
    return base / "repo"


@pytest.fixture
def forget_cli(prepared: Path, tmp_path: Path) -> Cli:
    repo = tmp_path / "repo"
    shutil.copytree(prepared, repo)
    return Cli(repo, dict(_env(), SNAPSTORE_REPOSITORY=str(repo)))


def _snapshot_times(cli: Cli) -> list[str]:
    listed = cli("snapshots", "--json")
    assert listed.code == 0, listed.err
    return [s["time"] for s in listed.json()]


def test_dry_run_json_shows_decisions_and_removes_nothing(forget_cli: Cli) -> None:
    done = forget_cli("forget", "--keep-daily", "3", "--keep-weekly", "2", "--dry-run", "--json")
    assert done.code == 0, done.err
    groups = done.json()
    assert len(groups) == 1
    group = groups[0]
    assert group["host"] == "web1" and len(group["paths"]) == 1 and group["tags"] is None
    assert {s["time"]: s["reasons"] for s in group["keep"]} == EXPECTED_KEEP
    assert sorted(s["time"] for s in group["remove"]) == sorted(set(TIMES) - set(EXPECTED_KEEP))
    assert _snapshot_times(forget_cli) == TIMES


def test_forget_removes_exactly_those_then_prune_leaves_a_clean_repository(
    forget_cli: Cli,
) -> None:
    done = forget_cli("forget", "--keep-daily", "3", "--keep-weekly", "2")
    assert done.code == 0, done.err
    assert "daily #1, weekly #1" in done.text
    assert "removed 6 snapshots, kept 4" in done.text
    assert _snapshot_times(forget_cli) == sorted(EXPECTED_KEEP)

    pruned = forget_cli("forget", "--keep-last", "2", "--prune")
    assert pruned.code == 0, pruned.err
    assert "removed 2 snapshots, kept 2" in pruned.text and "free" in pruned.text
    checked = forget_cli("check", "--read-data")
    assert checked.code == 0, checked.text + checked.err
    assert "checked 2 snapshots" in checked.text


def test_no_keep_rule_is_a_usage_error(forget_cli: Cli) -> None:
    nothing = forget_cli("forget", "--dry-run")
    assert nothing.code == 2
    assert len(nothing.err.strip().splitlines()) == 1 and "no keep rule" in nothing.err
    unfiltered = forget_cli("forget", "--unsafe-allow-remove-all")  # needs --tag or --host too
    assert unfiltered.code == 2 and len(unfiltered.err.strip().splitlines()) == 1


def test_keep_within_counts_back_from_the_latest(forget_cli: Cli) -> None:
    within = forget_cli("forget", "--keep-within", "1w", "--dry-run", "--json")
    assert within.code == 0, within.err
    kept = {s["time"]: s["reasons"] for s in within.json()[0]["keep"]}
    assert kept == {t: ["within 1w"] for t in TIMES[-3:]}  # after 13 January, 12:00
    bad = forget_cli("forget", "--keep-within", "2 weeks")
    assert bad.code == 2 and len(bad.err.strip().splitlines()) == 1
