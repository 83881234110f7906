"""Restore through the installed command: damage stays in its file, and the options that the
pack-ordered planner makes natural (issue 11)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from snapstore.backend.local import LocalBackend
from snapstore.repository.repository import Repository
from snapstore.snapshot.store import find_node, find_snapshot
from tests.support.cli import PASSWORD, Cli


@pytest.fixture
def saved(initialised: Cli, tmp_path: Path) -> tuple[Cli, Path, str]:
    source = tmp_path / "src"
    (source / "sub").mkdir(parents=True)
    for i in range(6):
        (source / f"file{i}.bin").write_bytes(os.urandom(50_000 + i))
    (source / "sub" / "notes.log").write_text("log\n")
    (source / "sub" / "keep.txt").write_text("keep\n")
    done = initialised("snapshot", "files", str(source), "--json")
    assert done.code == 0, done.err
    return initialised, source, done.json()["snapshot_id"]


def _restored(target: Path, source: Path) -> Path:
    return target / str(source).lstrip("/")


def test_a_damaged_file_is_named_and_the_others_restored(saved: tuple[Cli, Path, str], tmp_path: Path) -> None:
    cli, source, snap_id = saved
    repo = Repository.open(LocalBackend(str(cli.repo)), PASSWORD.encode())
    repo.load_index()
    node = find_node(repo, find_snapshot(repo, snap_id).tree, str(source / "file3.bin"))
    assert node is not None
    where = repo.lookup(node.content[0])
    assert where is not None
    pack = next(p for p in (cli.repo / "data").rglob(where.pack_id.hex()))
    data = bytearray(pack.read_bytes())
    data[where.offset + 50] ^= 1
    pack.write_bytes(bytes(data))
    target = tmp_path / "out"
    done = cli("restore", snap_id, "--target", str(target))
    assert done.code == 1
    assert f"file3.bin: blob {node.content[0].hex()}" in done.err
    assert where.pack_id.hex()[:16] in done.err
    for i in (0, 1, 2, 4, 5):
        name = f"file{i}.bin"
        assert (_restored(target, source) / name).read_bytes() == (source / name).read_bytes()


def test_include_matching_nothing_is_an_error(saved: tuple[Cli, Path, str], tmp_path: Path) -> None:
    cli, _, snap_id = saved
    done = cli("restore", snap_id, "--target", str(tmp_path / "out"), "--include", "/no/such")
    assert done.code == 1
    assert "/no/such" in done.err


def test_exclude_dry_run_overwrite_verify_delete(saved: tuple[Cli, Path, str], tmp_path: Path) -> None:
    cli, source, snap_id = saved
    target = tmp_path / "out"
    done = cli("restore", snap_id, "--target", str(target), "--dry-run", "--exclude", "*.log")
    assert done.code == 0, done.err
    assert not target.exists()
    assert "would write" in done.text and "notes.log" not in done.text and "keep.txt" in done.text

    done = cli("restore", snap_id, "--target", str(target), "--exclude", "*.log", "--verify")
    assert done.code == 0, done.err
    here = _restored(target, source)
    assert not (here / "sub" / "notes.log").exists() and (here / "sub" / "keep.txt").exists()
    assert "verified" in done.text  # the summary, on stdout

    changed = here / "file0.bin"
    stat = changed.stat()
    changed.write_bytes(b"\0" * stat.st_size)  # same size, mtime put back: looks unchanged
    os.utime(changed, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    (here / "stray.txt").write_text("not in the snapshot")
    done = cli("restore", snap_id, "--target", str(target), "--verify")
    assert done.code == 1
    assert "file0.bin: verify: content differs" in done.err

    done = cli("restore", snap_id, "--target", str(target), "--overwrite", "always", "--delete",
               "--verify")
    assert done.code == 0, done.err
    assert changed.read_bytes() == (source / "file0.bin").read_bytes()
    assert not (here / "stray.txt").exists()
    assert "1 deleted" in done.text

    (here / "file1.bin").write_bytes(b"mine")
    done = cli("restore", snap_id, "--target", str(target), "--overwrite", "never")
    assert done.code == 0 and (here / "file1.bin").read_bytes() == b"mine"
