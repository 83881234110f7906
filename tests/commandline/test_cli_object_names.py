"""Through the command, "ciphertext failed authentication" names what failed (issue 10, item 9):
the config of another repository (or a damaged one), a snapshot file copied from another
repository, and a restore from a flipped pack (the file, the blob and the pack)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from snapstore.backend.local import LocalBackend
from snapstore.repository.repository import Repository
from snapstore.snapshot.store import find_node, find_snapshot
from tests.support.cli import PASSWORD, Cli


@pytest.fixture
def two(tmp_path: Path) -> tuple[Cli, Cli, str, Path]:
    """Two repositories with the same password, a snapshot in each: (ours, theirs, the other's
    snapshot id, our source directory)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SNAPSTORE_")}
    env["SNAPSTORE_PASSWORD"] = PASSWORD
    ours = Cli(tmp_path / "ours", dict(env, SNAPSTORE_REPOSITORY=str(tmp_path / "ours")))
    theirs = Cli(tmp_path / "theirs", dict(env, SNAPSTORE_REPOSITORY=str(tmp_path / "theirs")))
    source = tmp_path / "src"
    source.mkdir()
    (source / "data.bin").write_bytes(os.urandom(200_000))
    for cli in (ours, theirs):
        assert cli("init").code == 0
    assert ours("snapshot", "files", str(source)).code == 0
    done = theirs("snapshot", "files", str(source), "--json")
    assert done.code == 0, done.err
    return ours, theirs, done.json()["snapshot_id"], source


def test_the_config_of_another_repository_is_named(two: tuple[Cli, Cli, str, Path]) -> None:
    ours, theirs, _, _ = two
    (ours.repo / "config").chmod(0o600)
    shutil.copy(theirs.repo / "config", ours.repo / "config")
    done = ours("snapshots")
    assert done.code == 1
    assert done.err.strip() == ("snapstore: error: config: ciphertext failed authentication: the "
                                "password opens a key file, but the config is damaged or belongs "
                                "to another repository")


def test_a_snapshot_from_another_repository_is_named(two: tuple[Cli, Cli, str, Path]) -> None:
    ours, theirs, foreign, _ = two
    stored = next(p for p in (theirs.repo / "snapshots").rglob(foreign))
    shutil.copy(stored, ours.repo / "snapshots" / foreign)
    named = f"snapshots/{foreign[:16]}: ciphertext failed authentication (damaged, or written by another repository)"
    done = ours("snapshots")
    assert done.code == 3
    assert named in done.err
    done = ours("restore", foreign, "--target", str(ours.repo.parent / "out"))
    assert done.code == 1
    assert named in done.err


def test_a_restore_from_a_flipped_pack_names_file_blob_and_pack(two: tuple[Cli, Cli, str, Path]) -> None:
    ours, _, _, source = two
    repo = Repository.open(LocalBackend(str(ours.repo)), PASSWORD.encode())
    repo.load_index()
    snap = find_snapshot(repo, "latest")
    node = find_node(repo, snap.tree, str(source / "data.bin"))
    assert node is not None
    where = repo.lookup(node.content[-1])
    assert where is not None
    repo.close()
    pack = next(p for p in (ours.repo / "data").rglob(where.pack_id.hex()))
    data = bytearray(pack.read_bytes())
    data[where.offset + 40] ^= 1
    pack.chmod(0o600)
    pack.write_bytes(bytes(data))
    done = ours("restore", "latest", "--target", str(ours.repo.parent / "out"))
    assert done.code == 1
    line = next(x for x in done.err.splitlines() if "failed authentication" in x)
    assert str(source / "data.bin") in line
    assert node.content[-1].hex() in line and where.pack_id.hex()[:16] in line
    assert snap.short_id in done.text  # the summary, on stdout
