"""`snapstore forget ID...` (issue 10, item 9): restic users forget snapshots by id; this used
to fail with "Got unexpected extra argument". Exactly the snapshots named go (ids, prefixes,
`latest`); a dry run removes nothing; a name that matches nothing removes nothing (exit 1);
names and --keep-* rules together are a usage error (exit 2); --prune frees their data."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli import Cli

TIMES = ["2024-01-01T12:00:00+00:00", "2024-01-02T12:00:00+00:00", "2024-01-03T12:00:00+00:00"]


@pytest.fixture
def three(initialised: Cli, tmp_path: Path) -> tuple[Cli, list[str]]:
    source = tmp_path / "src"
    source.mkdir()
    ids = []
    for number, when in enumerate(TIMES):
        (source / f"day{number}.bin").write_bytes(bytes([number]) * 100_000)
        done = initialised("snapshot", "files", str(source), "--time", when, "--json")
        assert done.code == 0, done.err
        ids.append(done.json()["snapshot_id"])
    return initialised, ids


def _listed(cli: Cli) -> list[str]:
    done = cli("snapshots", "--json")
    assert done.code == 0, done.err
    return [s["id"] for s in done.json()]


def test_forget_the_snapshots_named(three: tuple[Cli, list[str]]) -> None:
    cli, ids = three
    done = cli("forget", ids[0][:8], "latest", "--dry-run")
    assert done.code == 0, done.err
    assert "would remove 2 snapshots" in done.text and ids[0][:8] in done.text and ids[2][:8] in done.text
    assert _listed(cli) == ids

    done = cli("forget", ids[0][:8], "latest", "--json")
    assert done.code == 0, done.err
    removed = [s["id"] for group in done.json() for s in group["remove"]]
    assert removed == [ids[2], ids[0]]
    assert _listed(cli) == [ids[1]]


def test_forget_by_id_and_prune(three: tuple[Cli, list[str]]) -> None:
    cli, ids = three
    done = cli("forget", ids[1], "--prune")
    assert done.code == 0, done.err
    assert "removed 1 snapshots" in done.text
    assert _listed(cli) == [ids[0], ids[2]]
    checked = cli("check", "--read-data")
    assert checked.code == 0, checked.err


def test_a_name_that_matches_nothing_removes_nothing(three: tuple[Cli, list[str]]) -> None:
    cli, ids = three
    done = cli("forget", ids[0], "ffffffffffff")
    assert done.code == 1
    assert "no snapshot matches 'ffffffffffff'" in done.err
    assert _listed(cli) == ids


def test_names_and_keep_rules_are_a_usage_error(three: tuple[Cli, list[str]]) -> None:
    cli, ids = three
    done = cli("forget", ids[0], "--keep-last", "1")
    assert done.code == 2
    assert "cannot be combined" in done.err
    assert _listed(cli) == ids
