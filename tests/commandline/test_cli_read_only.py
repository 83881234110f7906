"""Reading a repository that cannot be written (issue 14, item 7), through the installed command.

The repository is bind-mounted read-only (`mount --bind -o ro`: root ignores file modes, so
a chmod would prove nothing): every command that only reads works there, each saying once on
stderr that it reads without a lock, and a command that writes fails with one line. --no-lock
reads past another process's exclusive lock on a writable repository. Without the power to
mount, the tests skip, and fail under CI=true.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import snapstore
from tests.support import server_unavailable
from tests.support.cli import PASSWORD, Cli
from tests.support.trees import make_tree, tree_state

READERS = ("ls", "restore", "dump", "find", "diff", "mount", "snapshots", "stats", "check")
WARNING = "snapstore: warning: reading without a lock, the repository refuses writes: "


def ok(cli: Cli, *args: str) -> tuple[str, str]:
    done = cli(*args)
    assert done.code == 0, done.err
    return done.text, done.err


@contextlib.contextmanager
def read_only_mount(source: Path, mountpoint: Path) -> Iterator[Path]:
    mountpoint.mkdir()
    done = subprocess.run(["mount", "--bind", "-o", "ro", str(source), str(mountpoint)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        server_unavailable(f"cannot bind-mount read-only: {done.stderr.strip()}")
    try:
        probe = mountpoint / "probe"
        with pytest.raises(OSError, match="Read-only file system"):
            probe.write_text("must not be written")
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)


@pytest.fixture
def source(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    make_tree(root)
    return root


@pytest.fixture
def read_only(initialised: Cli, source: Path, tmp_path: Path) -> Iterator[Cli]:
    """A Cli on the read-only view of a repository holding two snapshots of `source`."""
    ok(initialised, "snapshot", "files", str(source))
    (source / "added.txt").write_text("second night\n")
    ok(initialised, "snapshot", "files", str(source))
    with read_only_mount(initialised.repo, tmp_path / "ro") as mountpoint:
        yield Cli(mountpoint, dict(initialised.env, SNAPSTORE_REPOSITORY=str(mountpoint)))


def test_every_reader_reads_a_read_only_repository(read_only: Cli, source: Path, tmp_path: Path) -> None:
    def reads(*args: str) -> str:
        out, err = ok(read_only, *args)
        warnings = [line for line in err.splitlines() if line.startswith(WARNING)]
        assert len(warnings) == 1, err
        assert "Read-only file system" in warnings[0] and "/locks/" in warnings[0]
        return out

    listed = json.loads(reads("ls", "latest", "--json"))
    assert any(entry["path"].endswith("/added.txt") for entry in listed)
    target = tmp_path / "restored"
    reads("restore", "latest", "--target", str(target))
    assert tree_state(target / str(source).lstrip("/")) == tree_state(source)
    assert reads("dump", "latest", f"{source}/added.txt") == "second night\n"
    assert reads("find", "added.txt")
    first = json.loads(ok(read_only, "snapshots", "--json")[0])[0]["id"]
    assert f"+    {source}/added.txt" in reads("diff", first[:8], "latest")
    assert json.loads(reads("stats", "--json"))["snapshots"] == 2
    assert "no errors were found" in reads("check", "--read-data")
    # copy only reads its source: off a read-only disk into a writable repository
    offsite = {"SNAPSTORE_REPOSITORY": str(tmp_path / "offsite"), "SNAPSTORE_PASSWORD": "off-site"}
    assert read_only("init", env=offsite).code == 0
    done = read_only("copy", "--to", offsite["SNAPSTORE_REPOSITORY"],
                     env={"SNAPSTORE_TO_PASSWORD": offsite["SNAPSTORE_PASSWORD"]})
    assert done.code == 0 and "2 snapshots copied" in done.text, done.err
    assert done.err.count(WARNING) == 1 and "Read-only file system" in done.err
    listed = read_only("snapshots", "--json", env=offsite)
    assert listed.code == 0 and len(json.loads(listed.text)) == 2
    # snapshots takes no lock at all: nothing to fall back from, nothing to say
    out, err = ok(read_only, "snapshots")
    assert out.splitlines()[-1] == "2 snapshots" and err == ""
    # --no-lock does not try: no warning
    out, err = ok(read_only, "ls", "latest", "--no-lock")
    assert f"{source}/added.txt" in out and err == ""


def test_a_writer_on_a_read_only_repository_fails_with_one_line(read_only: Cli, source: Path) -> None:
    for args in (("snapshot", "files", str(source)), ("forget", "--keep-last", "1"), ("prune",)):
        done = read_only(*args)
        assert done.code == 1, (args, done.err)
        lines = done.err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("snapstore: error: ") \
            and "Read-only file system" in lines[0], (args, done.err)


def test_no_lock_reads_past_an_exclusive_lock(initialised: Cli, source: Path, tmp_path: Path) -> None:
    ok(initialised, "snapshot", "files", str(source))
    with snapstore.open_repository(str(initialised.repo), PASSWORD.encode(), lock="exclusive"):
        assert initialised("ls", "latest").code == 11  # a prune or repair holds the repository
        out, err = ok(initialised, "ls", "latest", "--no-lock")
        assert f"{source}/" in out and err == ""
        target = tmp_path / "restored"
        ok(initialised, "restore", "latest", "--target", str(target), "--no-lock")
        assert tree_state(target / str(source).lstrip("/")) == tree_state(source)
        locks = list((initialised.repo / "locks").iterdir())
        assert len(locks) == 1  # only the exclusive one: --no-lock stored none
    for name in ("snapshot", "forget", "prune", "tag", "rewrite", "copy"):
        text = initialised(name, "--help").text if name != "snapshot" else initialised(name, "files", "--help").text
        assert "--no-lock" not in text, name
    for name in READERS:
        assert "--no-lock" in initialised(name, "--help").text, name
