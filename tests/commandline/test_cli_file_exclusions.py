"""`snapshot files` exclusion options through the installed command (issue 13, item 4):
--exclude-caches, --exclude-if-present, --exclude-file, --iexclude and --one-file-system."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.support.cli import Cli

SIGNATURE = b"Signature: 8a477f597d28d172789f06886806bc55"


def listed(cli: Cli, snapshot_id: str, root: Path) -> set[str]:
    done = cli("ls", snapshot_id, "--json")
    assert done.code == 0, done.err
    prefix = str(root) + "/"
    return {e["path"][len(prefix):] for e in done.json() if e["path"].startswith(prefix)}


def snapshot(cli: Cli, *args: str) -> str:
    done = cli("snapshot", "files", *args, "--json")
    assert done.code == 0, done.err
    return str(done.json()["snapshot_id"])


def test_exclusion_options(initialised: Cli, tmp_path: Path) -> None:
    src = tmp_path / "src"
    for d in ("cache", "marked", "keep"):
        (src / d).mkdir(parents=True)
    (src / "cache" / "CACHEDIR.TAG").write_bytes(SIGNATURE + b"\n")
    (src / "cache" / "blob").write_text("x")
    (src / "marked" / ".nobackup").write_text("")
    (src / "marked" / "data").write_text("x")
    (src / "keep" / "IMG.JPG").write_text("x")
    (src / "keep" / "a.tmp").write_text("x")
    (src / "keep" / "notes").write_text("x")
    patterns = tmp_path / "patterns"
    patterns.write_text("# scratch\n*.tmp\n")
    kept = listed(initialised, snapshot(
        initialised, str(src), "--exclude-caches", "--exclude-if-present", ".nobackup",
        "--exclude-file", str(patterns), "--iexclude", "*.jpg",
    ), src)
    assert kept == {"cache", "cache/CACHEDIR.TAG", "marked", "marked/.nobackup", "keep", "keep/notes"}
    missing = initialised("snapshot", "files", str(src), "--exclude-file", str(tmp_path / "nope"))
    assert missing.code != 0 and "cannot read exclude file" in missing.err


def test_one_file_system(initialised: Cli, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "mnt").mkdir(parents=True)
    (src / "here").write_text("x")
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "none", str(src / "mnt")]).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        (src / "mnt" / "there").write_text("x")
        assert listed(initialised, snapshot(initialised, str(src), "--one-file-system"), src) == {"here", "mnt"}
    finally:
        subprocess.run(["umount", str(src / "mnt")], check=True)
