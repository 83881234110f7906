"""Tracebacks found by trying (issue 10, item 9), now one line and a documented exit code:

- `--time` without a UTC offset is this machine's local time, as restic takes it (exit 0); a
  time too near year 1 or 9999 to be shown in every time zone is a usage error (exit 2); a
  stored snapshot with such a time (or none offset at all) is named as damaged and left out;
- `snapshot stdin` with standard input closed (`<&-`) is an error (exit 1);
- a tree node with uid 2^40 or -5, or a symlink target with NUL, is refused as a malformed
  tree: restore names the directory, restores the rest and exits 1.
"""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgpack
import pytest

from snapstore.backend.base import FileType
from snapstore.backend.local import LocalBackend
from snapstore.ids import Id
from snapstore.pack import BlobType
from snapstore.repository.repository import Repository
from snapstore.snapshot.manifest import Snapshot, encode_snapshot
from snapstore.snapshot.store import save_snapshot
from tests.support.cli import PASSWORD, Cli, snapstore_command
from tests.support.raw_trees import raw_node


def _open(cli: Cli) -> Repository:
    repo = Repository.open(LocalBackend(str(cli.repo)), PASSWORD.encode())
    repo.load_index()
    return repo


# -- --time ------------------------------------------------------------------------------------

def test_a_time_without_offset_is_local_time(initialised: Cli, tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    done = initialised("snapshot", "files", str(tmp_path / "f"), "--time", "2024-06-01T12:00:00",
                       "--json", env={"TZ": "Asia/Tokyo"})
    assert done.code == 0, done.err
    assert done.json()["time"] == "2024-06-01T12:00:00+09:00"


@pytest.mark.parametrize("when", ["0001-01-01", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-05:00"])
def test_a_time_at_the_ends_of_the_calendar_is_a_usage_error(initialised: Cli, tmp_path: Path, when: str) -> None:
    (tmp_path / "f").write_text("x")
    done = initialised("snapshot", "files", str(tmp_path / "f"), "--time", when)
    assert done.code == 2, done.err
    assert done.err.count("\n") == 1 and f"--time {when!r} cannot be recorded" in done.err
    assert initialised("snapshots", "--json").json() == []


@pytest.mark.parametrize("stored", ["2024-01-01T12:00:00", "0001-01-01T00:00:00+01:00"])
def test_a_stored_time_that_cannot_be_shown_is_named_as_damaged(initialised: Cli, tmp_path: Path, stored: str) -> None:
    (tmp_path / "f").write_text("x")
    assert initialised("snapshot", "files", str(tmp_path / "f")).code == 0
    repo = _open(initialised)
    good = Snapshot(datetime.now(UTC), "evil", "evil", [], "files", ["/"], _empty_tree(repo))
    doc = msgpack.unpackb(encode_snapshot(good), raw=False)
    doc["time"] = stored  # bypasses the encoder's own check
    name = repo.save_object(FileType.SNAPSHOT, msgpack.packb(doc, use_bin_type=True)).hex()
    repo.close()
    done = initialised("snapshots")
    assert done.code == 3, done.err
    assert f"snapshot {name[:8]} is damaged and was skipped" in done.err and "time" in done.err
    assert initialised("forget", "--keep-last", "1").code == 3


def _empty_tree(repo: Repository) -> Id:
    tree = repo.save_blob(BlobType.TREE, msgpack.packb({"v": 1, "nodes": []}, use_bin_type=True)).id
    repo.flush()
    return tree


# -- closed standard input ---------------------------------------------------------------------

def test_snapshot_stdin_with_stdin_closed(initialised: Cli) -> None:
    done = subprocess.run(
        snapstore_command() + ["snapshot", "stdin", "--name", "x"],
        stdin=subprocess.DEVNULL, capture_output=True, env=initialised.env, timeout=120,
        preexec_fn=lambda: os.close(0),  # as `<&-` leaves it
    )
    err = done.stderr.decode()
    assert "Traceback" not in err and "internal error" not in err, err
    assert done.returncode == 1
    assert "standard input is closed" in err
    assert initialised("snapshots", "--json").json() == []


# -- hostile tree nodes ------------------------------------------------------------------------

def _hostile_snapshot(cli: Cli, node: dict[str, Any]) -> str:
    """A snapshot of `good.txt` and `box/`, whose tree holds `node` (written by hand)."""
    repo = _open(cli)
    content = repo.save_blob(BlobType.DATA, b"good\n").id
    box = repo.save_blob(BlobType.TREE, msgpack.packb({"v": 1, "nodes": [node]}, use_bin_type=True)).id
    root = repo.save_blob(BlobType.TREE, msgpack.packb({"v": 1, "nodes": [
        raw_node(b"box", "dir", mode=0o755, subtree=bytes(box)),
        raw_node(b"good.txt", content=[bytes(content)], size=5),
    ]}, use_bin_type=True)).id
    repo.flush()
    snap = Snapshot(datetime.now(UTC), "evil", "evil", [], "files", ["/"], root)
    save_snapshot(repo, snap)
    repo.close()
    assert snap.id is not None
    return snap.id.hex()


@pytest.mark.parametrize("node, why", [
    (raw_node(b"f", content=[], uid=2**40), "uid 1099511627776 is out of range"),
    (raw_node(b"f", content=[], gid=-5), "gid -5 is out of range"),
    (raw_node(b"l", "symlink", target=b"a\0b"), "contains NUL"),
])
def test_a_hostile_node_is_refused_and_the_rest_restored(initialised: Cli, tmp_path: Path,
                                                        node: dict[str, Any], why: str) -> None:
    snap = _hostile_snapshot(initialised, node)
    target = tmp_path / "out"
    done = initialised("restore", snap, "--target", str(target))
    assert done.code == 1, done.err
    assert "/box: directory cannot be read: tree is malformed" in done.err and why in done.err
    assert (target / "good.txt").read_text() == "good\n"
    assert os.listdir(target / "box") == []

    listed = initialised("ls", snap, "/box")
    assert listed.code == 1 and why in listed.err
