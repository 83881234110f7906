"""FIFOs, sockets and device nodes through the command (issue 10, item 9): not stored yet, so
`snapshot files` names each one with its kind and exits 3 (snapshot taken, incomplete), where
it used to drop them without a word and exit 0."""

from __future__ import annotations

import json
import os
import socket
import stat
from pathlib import Path

from tests.support.cli import Cli


def test_special_files_are_named_and_the_snapshot_is_incomplete(initialised: Cli, tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "plain.txt").write_text("kept\n")
    os.mkfifo(source / "pipe")
    kinds = {"pipe": "a FIFO", "sock": "a socket"}
    if os.geteuid() == 0:
        os.mknod(source / "null", 0o600 | stat.S_IFCHR, os.makedev(1, 3))
        kinds["null"] = "a character device"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(source / "sock"))
        done = initialised("snapshot", "files", str(source), "--json")
    assert done.code == 3, done.err
    for name, kind in kinds.items():
        assert f"warning: {source / name}: {kind}, not backed up" in done.err
    assert "snapshot incomplete" in done.err
    summary = json.loads(done.out)
    assert sorted(e["path"] for e in summary["errors"]) == sorted(str(source / n) for n in kinds)

    listed = initialised("ls", summary["snapshot_id"], "--json")
    assert listed.code == 0, listed.err
    paths = [entry["path"] for entry in json.loads(listed.out)]
    assert str(source / "plain.txt") in paths
    assert not any(p.endswith(("/pipe", "/sock", "/null")) for p in paths)


def test_only_a_fifo_given_records_no_snapshot(initialised: Cli, tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    done = initialised("snapshot", "files", str(tmp_path / "pipe"))
    assert done.code == 1
    assert f"{tmp_path / 'pipe'}: a FIFO, not backed up" in done.err
    assert "no snapshot was recorded" in done.err
    listed = initialised("snapshots", "--json")
    assert listed.code == 0 and json.loads(listed.out) == []


def test_an_excluded_fifo_is_not_reported(initialised: Cli, tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "plain.txt").write_text("kept\n")
    os.mkfifo(source / "pipe")
    done = initialised("snapshot", "files", str(source), "--exclude", "pipe")
    assert done.code == 0, done.err
    assert "warning" not in done.err
