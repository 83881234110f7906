"""Through the installed command (issue 14, items 2-4): find across snapshots, diff of two
snapshots (an unchanged directory whose tree is damaged does not stop it: it is never read),
and dump --archive tar|zip read back by GNU tar, unzip and Python's zipfile."""

from __future__ import annotations

import io
import os
import shutil
import stat
import subprocess
import zipfile
from pathlib import Path

import pytest

import snapstore
from tests.support.cli import PASSWORD, Cli
from tests.support.trees import tree_state

TIMES = ["2026-05-01T03:00:00+00:00", "2026-05-02T03:00:00+00:00"]
BIG = os.urandom(6 << 20)


def make_day1(src: Path) -> None:
    (src / "same" / "deep").mkdir(parents=True)
    for i in range(5):
        (src / "same" / f"s{i}.txt").write_text(f"same {i}\n")
    (src / "same" / "deep" / "d.log").write_text("deep\n")
    (src / "changed.txt").write_text("short\n")
    (src / "gone.log").write_text("bye\n")
    (src / "meta.txt").write_text("meta\n")
    (src / "big.bin").write_bytes(BIG)
    (src / "link").symlink_to("changed.txt")
    (src / "run.sh").write_text("#!/bin/sh\n")
    (src / "run.sh").chmod(0o750)
    os.utime(src / "meta.txt", ns=(1_600_000_000_123_456_789, 1_600_000_000_123_456_789))


def make_day2(src: Path) -> None:
    (src / "changed.txt").write_text("a longer line\n")
    (src / "gone.log").unlink()
    (src / "new").mkdir()
    (src / "new" / "fresh.log").write_text("hello\n")
    (src / "meta.txt").chmod(0o600)


@pytest.fixture
def two(initialised: Cli, tmp_path: Path) -> tuple[Cli, Path, list[str]]:
    src = tmp_path / "src"
    src.mkdir()
    make_day1(src)
    ids = []
    for when, change in zip(TIMES, (None, make_day2), strict=True):
        if change is not None:
            change(src)
        done = initialised("snapshot", "files", str(src), "--time", when, "--json")
        assert done.code == 0, done.err
        ids.append(done.json()["snapshot_id"])
    return initialised, src, ids


def test_find_lists_matches_newest_snapshot_first(two: tuple[Cli, Path, list[str]]) -> None:
    cli, src, (day1, day2) = two
    text = cli("find", "*.log")
    assert text.code == 0, text.err
    blocks = text.text.split("\n\n")
    assert blocks[0].startswith(f"Found matching entries in snapshot {day2[:8]} from ")
    assert blocks[1].startswith(f"Found matching entries in snapshot {day1[:8]} from ")
    assert f"{src}/new/fresh.log" in blocks[0] and f"{src}/gone.log" not in blocks[0]
    assert f"{src}/gone.log" in blocks[1] and f"{src}/same/deep/d.log" in blocks[1]

    found = cli("find", "*.log", f"{src}/*/s1.txt", "--json").json()
    assert [group["snapshot"] for group in found] == [day2, day1]
    assert [m["path"] for m in found[1]["matches"]] == [
        f"{src}/gone.log", f"{src}/same/deep/d.log", f"{src}/same/s1.txt"]
    assert found[1]["hits"] == 3 and found[1]["matches"][0]["size"] == 4
    assert found[1]["matches"][0]["type"] == "file" and "mtime" in found[1]["matches"][0]

    only = cli("find", "gone.log", "--snapshot", day1[:8], "--snapshot", "latest",
                          "--json").json()
    assert [group["snapshot"] for group in only] == [day1]


def test_diff_names_each_change_and_the_totals(two: tuple[Cli, Path, list[str]]) -> None:
    cli, src, (day1, day2) = two
    text = cli("diff", day1[:8], "latest")
    assert text.code == 0, text.err
    lines = text.text.splitlines()
    assert f"+    {src}/new/" in lines
    assert f"+    {src}/new/fresh.log  (+6 B)" in lines
    assert f"-    {src}/gone.log  (-4 B)" in lines
    assert f"M    {src}/changed.txt  (+8 B)" in lines
    assert f"U    {src}/meta.txt" in lines
    assert not [line for line in lines if "/same" in line or "big.bin" in line]
    assert "Files:        1 new,     1 removed,     1 changed" in lines

    data = cli("diff", day1, day2, str(src), "--json").json()
    assert (data["old"], data["new"]) == (day1, day2)
    by_path = {c["path"]: c for c in data["changes"]}
    assert by_path[f"{src}/changed.txt"] == {
        "path": f"{src}/changed.txt", "modifier": "M", "type": "file",
        "old_size": 6, "new_size": 14, "size_change": 8}
    summary = data["summary"]
    assert (summary["files_added"], summary["files_removed"], summary["files_changed"]) == (1, 1, 1)
    assert (summary["bytes_added"], summary["bytes_removed"], summary["dirs_added"]) == (14, 4, 1)


def test_diff_never_reads_an_unchanged_directory(two: tuple[Cli, Path, list[str]]) -> None:
    cli, src, (day1, day2) = two
    before = cli("diff", day1, day2)
    damage_tree_of(cli.repo, f"{src}/same")
    env = {"SNAPSTORE_NO_CACHE": "1"}
    assert cli("ls", "latest", str(src), env=env).code == 1  # the walk needs it
    after = cli("diff", day1, day2, env=env)
    assert after.code == 0, after.err
    assert after.out == before.out


def damage_tree_of(repo_path: Path, directory: str) -> None:
    """Flips a byte in the middle of the stored tree blob of `directory` (latest snapshot)."""
    repo = snapstore.open_repository(str(repo_path), PASSWORD.encode())
    try:
        node = snapstore.find_node(repo, snapstore.find_snapshot(repo, "latest").tree, directory)
        assert node is not None and node.subtree is not None
        location = repo.lookup(node.subtree)
        assert location is not None
    finally:
        repo.close()
    [pack] = list(repo_path.rglob(location.pack_id.hex()))
    data = bytearray(pack.read_bytes())
    data[location.offset + location.length // 2] ^= 0x01
    pack.chmod(0o600)
    pack.write_bytes(bytes(data))


def test_dump_of_a_directory_asks_for_an_archive(two: tuple[Cli, Path, list[str]]) -> None:
    cli, src, _ = two
    done = cli("dump", "latest", str(src))
    assert done.code == 1 and done.out == b""
    assert f"'{src}' is a directory in snapshot" in done.err and "add --archive tar" in done.err


def test_dump_tar_lists_and_extracts_as_backed_up(two: tuple[Cli, Path, list[str]], tmp_path: Path) -> None:
    cli, src, _ = two
    done = cli("dump", "latest", str(src), "--archive", "tar")
    assert done.code == 0, done.err
    listing = subprocess.run(["tar", "-tvf", "-"], input=done.out, capture_output=True, check=True)
    lines = listing.stdout.decode().splitlines()
    member = str(src).lstrip("/")
    assert any(line.startswith("-rwxr-x---") and line.endswith(f"{member}/run.sh") for line in lines)
    assert any(line.startswith("lrwxrwxrwx") and line.endswith(f"{member}/link -> changed.txt")
               for line in lines)
    assert any(f" {len(BIG)} " in line and line.endswith(f"{member}/big.bin") for line in lines)

    out = tmp_path / "out"
    out.mkdir()
    subprocess.run(["tar", "-xf", "-", "-C", str(out)], input=done.out, check=True)
    assert tree_state(out / member) == tree_state(src)  # modes, mtimes (ns), links, bytes


def test_dump_zip_of_the_whole_snapshot(two: tuple[Cli, Path, list[str]], tmp_path: Path) -> None:
    cli, src, _ = two
    done = cli("dump", "latest", "/", "--archive", "zip")
    assert done.code == 0, done.err
    member = str(src).lstrip("/")
    with zipfile.ZipFile(io.BytesIO(done.out)) as archive:
        assert archive.testzip() is None
        assert archive.read(f"{member}/big.bin") == BIG
        link = archive.getinfo(f"{member}/link")
        assert stat.S_ISLNK(link.external_attr >> 16) and archive.read(link) == b"changed.txt"
        assert stat.S_IMODE(archive.getinfo(f"{member}/meta.txt").external_attr >> 16) == 0o600
        assert archive.getinfo(f"{member}/meta.txt").date_time[0] == 2020
    if shutil.which("unzip"):
        path = tmp_path / "all.zip"
        path.write_bytes(done.out)
        listed = subprocess.run(["unzip", "-l", str(path)], capture_output=True, check=True)
        assert f"{member}/new/fresh.log" in listed.stdout.decode()
