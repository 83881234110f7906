"""Unchanged files are not read, through the installed command (issue 13, item 1). The proof
that a file is not opened: it cannot be read by the run (mode 000, run without root's power
to read any file), yet the snapshot holds it and warns of nothing."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import Cli

SECRET = b"the instance's secret\n"


def take(cli: Cli, source: Path, *flags: str, code: int = 0, unprivileged: bool = True) -> dict[str, Any]:
    done = cli("snapshot", "files", str(source), "--json", *flags, unprivileged=unprivileged)
    assert done.code == code, done.err
    record: dict[str, Any] = done.json()
    record["stderr"] = done.err
    return record


def restored_secret(cli: Cli, snapshot_id: str, source: Path, target: Path) -> bytes:
    done = cli("restore", snapshot_id, "--target", str(target))
    assert done.code == 0, done.err
    return (target / str(source).lstrip("/") / "secret.txt").read_bytes()


@pytest.fixture
def source(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    (root / "media").mkdir(parents=True)
    for n in range(5):
        (root / "media" / f"{n}.jpg").write_bytes(bytes([n]) * (1000 + n))
    (root / "secret.txt").write_bytes(SECRET)
    return root


@pytest.mark.skipif(os.geteuid() != 0, reason="root reads the unreadable file the first time")
def test_an_unreadable_unchanged_file_is_not_opened(initialised: Cli, source: Path, tmp_path: Path) -> None:
    (source / "secret.txt").chmod(0o000)
    first = take(initialised, source, unprivileged=False)
    assert (first["files"], first["files_unchanged"]) == (6, 0)
    second = take(initialised, source)  # could not open secret.txt: exit 3 if it tried
    assert (second["files"], second["files_unchanged"], second["bytes_read"]) == (6, 6, 0)
    assert second["errors"] == [] and "warning" not in second["stderr"]
    assert second["parent"] == first["snapshot_id"]
    assert restored_secret(initialised, second["snapshot_id"], source, tmp_path / "r") == SECRET

    forced = take(initialised, source, "--force", code=3)
    assert [e["path"] for e in forced["errors"]] == [f"{source}/secret.txt"]
    assert forced["files_unchanged"] == 0


def test_a_chmod_changes_ctime_so_the_file_is_read_unless_ctime_is_ignored(
    initialised: Cli, source: Path, tmp_path: Path
) -> None:
    first = take(initialised, source)
    (source / "secret.txt").chmod(0o000)  # sets ctime: the file has changed
    reread = take(initialised, source, code=3)
    assert [e["path"] for e in reread["errors"]] == [f"{source}/secret.txt"]
    assert reread["files_unchanged"] == 5
    skipped = take(initialised, source, "--ignore-ctime")
    assert skipped["parent"] == first["snapshot_id"]  # the incomplete one is passed over
    for flag in ("--ignore-ctime", "--ignore-inode"):  # each against the first snapshot
        skipped = take(initialised, source, flag, "--parent", first["snapshot_id"])
        assert skipped["errors"] == [] and skipped["files_unchanged"] == 6, flag
        restored = restored_secret(initialised, skipped["snapshot_id"], source, tmp_path / flag)
        assert restored == SECRET
    take(initialised, source, "--ignore-ctime", "--force", code=3)


def test_changed_files_are_read_and_the_summary_line_counts_the_unchanged(
    initialised: Cli, source: Path
) -> None:
    take(initialised, source)
    (source / "media" / "0.jpg").write_bytes(b"new content")
    (source / "media" / "9.jpg").write_bytes(b"a new file")
    done = initialised("snapshot", "files", str(source))
    assert done.code == 0, done.err
    assert "7 files (5 unchanged)" in done.text  # the summary, on stdout
    again = take(initialised, source, "--parent", "none")
    assert again["files_unchanged"] == 0 and again["parent"] is None
