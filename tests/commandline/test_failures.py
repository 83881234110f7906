"""Every failure is one clear line on stderr and the documented exit code, never a traceback."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from pathlib import Path

import msgpack
import pytest

from snapstore.backend.local import LocalBackend
from snapstore.pack import BlobType
from snapstore.repository.repository import Repository
from snapstore.snapshot.manifest import Snapshot
from snapstore.snapshot.store import save_snapshot
from tests.support.cli import PASSWORD, Cli, snapstore_command
from tests.support.trees import make_tree


def _one_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1, err
    return lines[0]


def _packs(repo: Path) -> list[Path]:
    return sorted(p for p in (repo / "data").rglob("*") if p.is_file() and not p.name.startswith(".tmp"))


@pytest.fixture
def with_snapshot(initialised: Cli, tmp_path: Path) -> tuple[Cli, str]:
    source = tmp_path / "src"
    make_tree(source)
    done = initialised("snapshot", "files", str(source), "--json")
    assert done.code == 0, done.err
    return initialised, done.json()["snapshot_id"]


def test_wrong_password_is_exit_12(with_snapshot: tuple[Cli, str]) -> None:
    cli, _ = with_snapshot
    done = cli("snapshots", env={"SNAPSTORE_PASSWORD": "not it"})
    assert done.code == 12
    assert "wrong password" in _one_line(done.err)


def test_missing_repository_is_exit_10(cli: Cli) -> None:
    done = cli("snapshots")
    assert done.code == 10
    assert "no repository" in _one_line(done.err)


def test_no_repository_given_is_a_usage_error(cli: Cli) -> None:
    env = dict(cli.env)
    del env["SNAPSTORE_REPOSITORY"]
    done = Cli(cli.repo, env)("snapshots")
    assert done.code == 2
    assert "--repo" in _one_line(done.err)


def test_no_password_without_a_terminal_is_one_clear_line(cli: Cli) -> None:
    env = {k: v for k, v in cli.env.items() if k != "SNAPSTORE_PASSWORD"}
    done = subprocess.run(
        snapstore_command() + ["init"], env=env, capture_output=True, start_new_session=True, timeout=60
    )
    assert done.returncode == 2
    assert "SNAPSTORE_PASSWORD" in _one_line(done.stderr.decode())


def test_password_file_and_command(with_snapshot: tuple[Cli, str], tmp_path: Path) -> None:
    cli, _ = with_snapshot
    pw_file = tmp_path / "pw"
    pw_file.write_text(PASSWORD + "\n")
    assert cli("snapshots", "--password-file", str(pw_file), env={"SNAPSTORE_PASSWORD": "wrong"}).code == 0
    assert cli("snapshots", "--password-command", f"cat {pw_file}").code == 0
    failing = cli("snapshots", "--password-command", "exit 4")
    assert failing.code == 2 and "password command" in _one_line(failing.err)


def test_flipped_byte_in_a_pack_fails_read_data_and_names_pack_and_snapshot(
    with_snapshot: tuple[Cli, str],
) -> None:
    cli, snap_id = with_snapshot
    assert cli("check").code == 0
    pack = _packs(cli.repo)[0]
    data = bytearray(pack.read_bytes())
    data[len(data) // 3] ^= 0x40
    pack.write_bytes(bytes(data))
    done = cli("check", "--read-data")
    assert done.code == 1
    assert pack.name in done.out.decode()
    assert snap_id[:8] in done.out.decode()


def test_deleted_pack_fails_structural_check(with_snapshot: tuple[Cli, str]) -> None:
    cli, snap_id = with_snapshot
    _packs(cli.repo)[0].unlink()
    done = cli("check")
    assert done.code == 1
    assert "pack missing" in done.out.decode()


def test_tampered_pack_makes_restore_fail_cleanly(with_snapshot: tuple[Cli, str], tmp_path: Path) -> None:
    cli, _ = with_snapshot
    for pack in _packs(cli.repo):
        data = bytearray(pack.read_bytes())
        for i in range(0, len(data) - 100, 4096):
            data[i] ^= 1
        pack.write_bytes(bytes(data))
    done = cli("restore", "latest", "--target", str(tmp_path / "out"))
    assert done.code == 1
    errors = [line for line in done.err.splitlines() if line.startswith("snapstore: error: ")]
    assert errors, done.err  # one line per damaged path, naming the blob and its pack
    assert all(" blob " in line and "(in pack " in line for line in errors)
    assert done.err.splitlines()[-1] == f"snapstore: {len(errors)} paths could not be restored or verified"


def test_truncated_snapshot_object_is_a_clean_error(with_snapshot: tuple[Cli, str]) -> None:
    cli, snap_id = with_snapshot
    obj = cli.repo / "snapshots" / snap_id
    obj.write_bytes(obj.read_bytes()[:30])
    done = cli("snapshots")  # the listing names it and leaves it out (issue 10, item 5)
    assert done.code == 3
    assert f"snapshot {snap_id[:8]} is damaged and was skipped" in _one_line(done.err)
    done = cli("ls", snap_id)  # asked for by name, it is an error
    assert done.code == 1
    assert "damaged" in _one_line(done.err)


def test_unknown_snapshot_name(with_snapshot: tuple[Cli, str]) -> None:
    cli, _ = with_snapshot
    done = cli("ls", "ffffffff")
    assert done.code == 1
    assert "no snapshot" in _one_line(done.err)


def _hostile_snapshot(repo_path: Path, nodes: list[dict[str, object]]) -> None:
    """Stores a snapshot whose root tree was written by hand, bypassing the encoder's checks."""
    repo = Repository.open(LocalBackend(str(repo_path)), PASSWORD.encode())
    repo.load_index()
    tree = msgpack.packb({"v": 1, "nodes": nodes}, use_bin_type=True)
    tree_id = repo.save_blob(BlobType.TREE, tree).id
    repo.flush()
    save_snapshot(
        repo,
        Snapshot(datetime.now(UTC), "evil", "evil", [], "files", ["/"], tree_id),
    )
    repo.close()


def _file_node(repo_path: Path, name: bytes) -> dict[str, object]:
    return {
        "name": name, "type": "file", "mode": 0o644, "uid": 0, "gid": 0, "user": "", "group": "",
        "mtime_ns": 0, "size": 0, "content": [],
    }


@pytest.mark.parametrize("name", [b"..", b"../escape", b"/etc/evil", b"a/../../b", b"."])
def test_hostile_names_are_refused_and_nothing_escapes(initialised: Cli, tmp_path: Path, name: bytes) -> None:
    _hostile_snapshot(initialised.repo, [_file_node(initialised.repo, name)])
    target = tmp_path / "box" / "target"
    target.mkdir(parents=True)
    done = initialised("restore", "latest", "--target", str(target))
    assert done.code == 1
    assert "unsafe" in _one_line(done.err)
    assert sorted(p.name for p in (tmp_path / "box").iterdir()) == ["target"]
    assert not Path("/etc/evil").exists()


def test_symlink_planted_in_target_is_not_followed(with_snapshot: tuple[Cli, str], tmp_path: Path) -> None:
    cli, _ = with_snapshot
    outside = tmp_path / "outside"
    outside.mkdir()
    target = tmp_path / "target"
    target.mkdir()
    # The snapshot holds <tmp>/src/...; plant a symlink where the first directory will go.
    first = tmp_path.relative_to("/").parts[0]
    (target / first).symlink_to(outside)
    done = cli("restore", "latest", "--target", str(target))
    assert done.code == 0, done.err
    assert list(outside.iterdir()) == []
    assert (target / first).is_dir() and not (target / first).is_symlink()


def test_snapshot_symlink_then_restore_twice_stays_inside(initialised: Cli, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    link = {
        "name": b"escape", "type": "symlink", "mode": 0o777, "uid": 0, "gid": 0, "user": "",
        "group": "", "mtime_ns": 0, "size": 0, "target": str(outside).encode(),
    }
    _hostile_snapshot(initialised.repo, [link])
    target = tmp_path / "target"
    for _ in range(2):
        done = initialised("restore", "latest", "--target", str(target))
        assert done.code == 0, done.err
    assert (target / "escape").is_symlink()
    assert list(outside.iterdir()) == []
