"""Through the command: one damaged object does not block everything (issue 10, item 5).

A damaged snapshot file: `snapshots` and `stats` list the others, name it in a warning and exit
3; `restore latest` restores the newest good one; `forget --keep-last 1` removes no good
snapshot because of it; `prune` refuses; `repair snapshots --forget` removes it, after which
`prune` works and `check --read-data` is clean.

A damaged index file: `restore`, `dump` and `snapshot` still work, with a warning naming the
file; `repair index` leaves `check --read-data` clean and nothing to warn about.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.support.cli import PASSWORD, Cli

TIMES = ["2024-01-01T12:00:00+00:00", "2024-01-02T12:00:00+00:00", "2024-01-03T12:00:00+00:00"]


def _env(repo: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SNAPSTORE_")}
    env.update(SNAPSTORE_PASSWORD=PASSWORD, SNAPSTORE_REPOSITORY=str(repo), TZ="UTC")
    return env


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.chmod(0o600)
    path.write_bytes(bytes(data))


def _names(folder: Path) -> set[str]:
    return {p.name for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """Three snapshots of one directory, a day apart, each with a day.txt of its own; the
    index files after each snapshot are kept apart: (base, snapshot ids)."""
    base = tmp_path_factory.mktemp("damaged")
    source = base / "src"
    source.mkdir()
    cli = Cli(base / "repo", _env(base / "repo"))
    assert cli("init").code == 0
    ids = []
    for number, when in enumerate(TIMES, 1):
        (source / "day.txt").write_text(f"day {number}\n")
        (source / f"only-{number}.bin").write_bytes(os.urandom(50_000))
        done = cli("snapshot", "files", str(source), "--host", "web1", "--time", when, "--json")
        assert done.code == 0, done.err
        ids.append(done.json()["snapshot_id"])
        (base / f"index-after-{number}").write_text("\n".join(sorted(_names(base / "repo" / "index"))))
    return base, ids


@pytest.fixture
def copy(prepared: tuple[Path, list[str]], tmp_path: Path) -> tuple[Cli, Path, list[str]]:
    base, ids = prepared
    shutil.copytree(base / "repo", tmp_path / "repo")
    shutil.copytree(base / "src", tmp_path / "src")
    for number in range(1, 4):
        shutil.copy(base / f"index-after-{number}", tmp_path)
    return Cli(tmp_path / "repo", _env(tmp_path / "repo")), tmp_path, ids


def _clean(cli: Cli) -> None:
    done = cli("check", "--read-data")
    assert done.code == 0, done.text + done.err
    assert "warning" not in done.err


# -- a damaged snapshot -----------------------------------------------------------------------
@pytest.fixture
def bad_newest(copy: tuple[Cli, Path, list[str]]) -> tuple[Cli, Path, list[str]]:
    cli, tmp_path, ids = copy
    _flip(cli.repo / "snapshots" / ids[2])
    return cli, tmp_path, ids


def _warned(err: str, name: str) -> bool:
    return f"snapstore: warning: snapshot {name[:8]} is damaged and was skipped" in err


def test_snapshots_and_stats_list_the_others_and_exit_3(bad_newest: tuple[Cli, Path, list[str]]) -> None:
    cli, _, ids = bad_newest
    done = cli("snapshots", "--json")
    assert done.code == 3
    assert [s["id"] for s in done.json()] == ids[:2]
    assert _warned(done.err, ids[2]) and done.err.count("warning") == 1
    done = cli("snapshots")
    assert done.code == 3 and "2 snapshots (1 damaged, left out)" in done.text
    done = cli("stats", "--json")
    assert done.code == 3 and _warned(done.err, ids[2])
    assert done.json()["snapshots"] == 2
    assert done.json()["damaged_snapshots"] == [ids[2]]


def test_restore_dump_and_ls_latest_use_the_newest_good_snapshot(
    bad_newest: tuple[Cli, Path, list[str]],
) -> None:
    cli, tmp_path, ids = bad_newest
    target = tmp_path / "restored"
    done = cli("restore", "latest", "--target", str(target))
    assert done.code == 0, done.err
    assert _warned(done.err, ids[2]) and f"snapshot {ids[1][:8]}" in done.text  # the summary
    assert next(target.rglob("day.txt")).read_text() == "day 2\n"
    assert not list(target.rglob("only-3.bin"))
    listed = cli("ls", "latest", "--json")
    assert listed.code == 0 and _warned(listed.err, ids[2])
    day = next(e["path"] for e in listed.json() if e["path"].endswith("/day.txt"))
    done = cli("dump", "latest", day)
    assert done.code == 0 and done.out == b"day 2\n" and _warned(done.err, ids[2])
    done = cli("restore", ids[2][:10], "--target", str(tmp_path / "other"))
    assert done.code == 1 and f"snapshot {ids[2][:8]} is damaged" in done.err


def test_a_backup_looks_past_it_for_its_parent(bad_newest: tuple[Cli, Path, list[str]]) -> None:
    cli, tmp_path, ids = bad_newest
    done = cli("snapshot", "files", str(tmp_path / "src"), "--parent", "latest", "--json")
    assert done.code == 0, done.err
    assert _warned(done.err, ids[2])
    new = done.json()["snapshot_id"]
    done = cli("restore", new, "--target", str(tmp_path / "restored"))
    assert done.code == 0, done.err


def test_forget_does_not_remove_good_snapshots_because_of_it(
    bad_newest: tuple[Cli, Path, list[str]],
) -> None:
    cli, _, ids = bad_newest
    done = cli("forget", "--keep-last", "1", "--group-by", "host")
    assert done.code == 3, done.err
    assert _warned(done.err, ids[2]) and "left alone, outside the policy" in done.text
    # Had it been readable, keep-last 1 would have kept it and removed ids[1].
    assert _names(cli.repo / "snapshots") == {ids[1], ids[2]}


def test_prune_refuses_until_repair_snapshots_forget(bad_newest: tuple[Cli, Path, list[str]]) -> None:
    cli, _, ids = bad_newest
    packs = _names(cli.repo / "data")
    done = cli("prune")
    assert done.code == 1
    assert f"snapshot {ids[2][:8]} cannot be read" in done.err
    assert "repair snapshots --forget" in done.err
    assert _names(cli.repo / "data") == packs

    done = cli("repair", "snapshots")
    assert done.code == 0 and "--forget removes it" in done.text
    assert ids[2] in _names(cli.repo / "snapshots")
    done = cli("repair", "snapshots", "--forget")
    assert done.code == 0, done.err
    assert f"snapshot {ids[2][:8]} cannot be read" in done.text and "removed" in done.text
    assert _names(cli.repo / "snapshots") == set(ids[:2])
    done = cli("prune")
    assert done.code == 0, done.err
    done = cli("snapshots")
    assert done.code == 0 and "warning" not in done.err
    _clean(cli)


# -- a damaged index file ---------------------------------------------------------------------
@pytest.fixture
def bad_index(copy: tuple[Cli, Path, list[str]]) -> tuple[Cli, Path, list[str], str]:
    """The index file the first snapshot wrote, damaged."""
    cli, tmp_path, ids = copy
    (name,) = (tmp_path / "index-after-1").read_text().split()
    _flip(cli.repo / "index" / name)
    return cli, tmp_path, ids, name


def _index_warned(err: str, name: str) -> bool:
    return f"snapstore: warning: index file {name[:8]} is damaged and was skipped" in err


def test_restore_dump_and_snapshot_work_with_a_damaged_index_file(
    bad_index: tuple[Cli, Path, list[str], str],
) -> None:
    cli, tmp_path, ids, name = bad_index
    target = tmp_path / "restored"
    done = cli("restore", ids[0], "--target", str(target))
    assert done.code == 0, done.err
    assert _index_warned(done.err, name) and "repair index" in done.err
    assert next(target.rglob("day.txt")).read_text() == "day 1\n"
    original = next((tmp_path / "src").glob("only-1.bin")).read_bytes()
    assert next(target.rglob("only-1.bin")).read_bytes() == original
    listed = cli("ls", ids[0], "--json").json()
    only = next(e["path"] for e in listed if e["path"].endswith("/only-1.bin"))
    done = cli("dump", ids[0], only)
    assert done.code == 0 and done.out == original and _index_warned(done.err, name)

    (tmp_path / "src" / "day.txt").write_text("day 4\n")
    done = cli("snapshot", "files", str(tmp_path / "src"), "--json")
    assert done.code == 0, done.err
    assert _index_warned(done.err, name)
    new = done.json()["snapshot_id"]
    done = cli("restore", new, "--target", str(tmp_path / "new"))
    assert done.code == 0, done.err
    assert next((tmp_path / "new").rglob("only-1.bin")).read_bytes() == original

    assert cli("check").code == 1  # the damaged file is still there
    done = cli("repair", "index")
    assert done.code == 0, done.err
    assert f"index file {name[:8]} is damaged" in done.text
    assert name not in _names(cli.repo / "index")
    _clean(cli)
    done = cli("restore", ids[0], "--target", str(tmp_path / "after"))
    assert done.code == 0 and "warning" not in done.err
