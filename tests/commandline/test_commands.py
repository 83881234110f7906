"""End to end through the installed command: init, snapshot, list, restore, dump, check, stats."""

from __future__ import annotations

import random
from pathlib import Path

from tests.support.cli import Cli
from tests.support.trees import make_tree, tree_state


def test_init_refuses_an_existing_repository(initialised: Cli) -> None:
    again = initialised("init")
    assert again.code == 1
    assert "already exists" in again.err
    assert len(again.err.strip().splitlines()) == 1


def test_files_round_trip(initialised: Cli, tmp_path: Path) -> None:
    source = tmp_path / "src"
    make_tree(source)
    taken = initialised("snapshot", "files", str(source), "--tag", "daily", "--host", "web1", "--json")
    assert taken.code == 0, taken.err
    summary = taken.json()
    assert summary["bytes_read"] > 0 and summary["bytes_added"] > 0
    snap_id = summary["snapshot_id"]

    listed = initialised("snapshots", "--json").json()
    assert [s["id"] for s in listed] == [snap_id]
    assert listed[0]["host"] == "web1" and listed[0]["tags"] == ["daily"]

    ls = initialised("ls", snap_id[:8], str(source) + "/sub", "--json")
    assert ls.code == 0, ls.err
    names = {e["path"].rsplit("/", 1)[-1] for e in ls.json()}
    assert {"sub", "nested.txt", "link"} <= names

    target = tmp_path / "restore"
    restored = initialised("restore", "latest", "--target", str(target))
    assert restored.code == 0, restored.err
    assert tree_state(target / source.relative_to("/")) == tree_state(source)

    dumped = initialised("dump", "latest", str(source / "big.bin"))
    assert dumped.code == 0 and dumped.out == (source / "big.bin").read_bytes()

    assert initialised("check", "--read-data").code == 0
    stats = initialised("stats", "--json").json()
    assert stats["snapshots"] == 1 and stats["stored_bytes"] > 0


def test_include_restores_only_that_path(initialised: Cli, tmp_path: Path) -> None:
    source = tmp_path / "src"
    make_tree(source)
    assert initialised("snapshot", "files", str(source)).code == 0
    target = tmp_path / "restore"
    done = initialised("restore", "latest", "--target", str(target), "--include", str(source / "sub"))
    assert done.code == 0, done.err
    restored_root = target / source.relative_to("/")
    assert (restored_root / "sub" / "nested.txt").exists()
    assert not (restored_root / "big.bin").exists()


def test_second_snapshot_of_unchanged_data_adds_almost_nothing(initialised: Cli, tmp_path: Path) -> None:
    source = tmp_path / "src"
    make_tree(source)
    first = initialised("snapshot", "files", str(source), "--json").json()
    second = initialised("snapshot", "files", str(source), "--json").json()
    assert first["bytes_added"] > 1_000_000
    assert second["bytes_added"] < 20_000


def test_stdin_insert_in_the_middle_adds_few_chunks(initialised: Cli) -> None:
    rng = random.Random(7)
    data = rng.randbytes(64 << 20)
    changed = data[: 32 << 20] + rng.randbytes(100) + data[32 << 20 :]
    first = initialised("snapshot", "stdin", "--name", "db.dump", "--database", "--json", input=data)
    assert first.code == 0, first.err
    second = initialised("snapshot", "stdin", "--name", "db.dump", "--database", "--json", input=changed)
    added = second.json()["bytes_added"]
    assert second.json()["bytes_read"] == len(changed)
    assert added < 1_000_000, added
    dumped = initialised("dump", "latest", "db.dump")
    assert dumped.out == changed


def test_time_option_is_recorded(initialised: Cli, tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    done = initialised("snapshot", "files", str(tmp_path / "f"), "--time", "2025-03-01T02:30:00+00:00", "--json")
    assert done.code == 0, done.err
    listed = initialised("snapshots", "--json").json()
    assert listed[0]["time"].startswith("2025-03-01T02:30:00")


def test_unreadable_file_gives_exit_3_and_a_snapshot(initialised: Cli, tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "ok.txt").write_text("fine")
    secret = source / "secret.txt"
    secret.write_text("no")
    secret.chmod(0o000)
    done = initialised("snapshot", "files", str(source), "--json", unprivileged=True)
    assert done.code == 3, done.err
    assert "secret.txt" in done.err
    listed = initialised("snapshots", "--json").json()
    assert len(listed) == 1
    assert listed[0]["summary"]["errors"] == 1
    assert done.json()["errors"][0]["path"].endswith("secret.txt")


def test_usage_error_is_exit_2(initialised: Cli) -> None:
    assert initialised("snapshot", "files").code == 2
    assert initialised("no-such-command").code == 2
    assert initialised("check", "--read-data-subset", "5/2").code == 2
