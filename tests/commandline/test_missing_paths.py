"""`snapshot files` when every path is missing (an unmounted volume): exit 1, no snapshot, and
so `forget --keep-last 1 --prune` keeps the real backup (issue 10, item 3)."""

from __future__ import annotations

from pathlib import Path

from tests.support.cli import Cli


def snapshot_ids(cli: Cli) -> list[str]:
    done = cli("snapshots", "--json")
    assert done.code == 0, done.err
    return [s["id"] for s in done.json()]


def test_every_path_missing_is_exit_1_and_no_snapshot(initialised: Cli, tmp_path: Path) -> None:
    mount = tmp_path / "mnt" / "backup"
    mount.mkdir(parents=True)  # the mount point is there, the volume is not
    paths = [str(mount / "etc"), str(mount / "home")]
    done = initialised("snapshot", "files", *paths, "--json")
    assert done.code == 1, done.err
    assert done.out == b""
    errors = [line for line in done.err.splitlines() if line.startswith("snapstore: error:")]
    assert errors == [
        f"snapstore: error: nothing could be read, so no snapshot was recorded: "
        f"{mount}/etc: No such file or directory (and 1 more)"
    ], done.err
    assert f"snapstore: warning: {mount}/home: No such file or directory" in done.err
    assert snapshot_ids(initialised) == []
    # One path back, the other still missing: recorded, and exit 3 as before.
    (mount / "etc").mkdir()
    assert initialised("snapshot", "files", *paths).code == 3
    assert len(snapshot_ids(initialised)) == 1


def test_forget_after_an_unmounted_volume_keeps_the_real_backup(
    initialised: Cli, tmp_path: Path
) -> None:
    volume = tmp_path / "volume"
    (volume / "etc").mkdir(parents=True)
    (volume / "etc" / "hosts").write_text("127.0.0.1 localhost\n")
    paths = [str(volume / "etc"), str(volume / "home")]
    (volume / "home").mkdir()
    real = initialised("snapshot", "files", *paths, "--json")
    assert real.code == 0, real.err
    real_id = real.json()["snapshot_id"]

    (volume / "etc" / "hosts").unlink()  # the volume is unmounted
    (volume / "etc").rmdir()
    (volume / "home").rmdir()
    assert initialised("snapshot", "files", *paths).code == 1

    forgot = initialised("forget", "--keep-last", "1", "--prune")
    assert forgot.code == 0, forgot.err
    assert snapshot_ids(initialised) == [real_id]
    listed = initialised("ls", "latest")
    assert listed.code == 0, listed.err
    assert f"{volume}/etc/hosts" in listed.text
    assert initialised("check", "--read-data").code == 0
