"""Many small files (issue 11): their blobs' lengths are looked up for many files at once, a
batch is read while the walk plans the next, and a file is truncated to its length only when
its last byte was not written. Small batch limits make every path run on a few files."""

from __future__ import annotations

import errno
import os
import random
from pathlib import Path
from typing import Any

import pytest

from snapstore.archiver.archiver import Archiver, SnapshotOptions
from snapstore.archiver.source import ChunkingProfile
from snapstore.repository.repository import Repository
from snapstore.restorer import restorer as restorer_module
from snapstore.snapshot.store import load_tree
from tests.support.damage import flip_blob
from tests.support.memory_source import Dir, File, MemorySource, expected_tree, read_tree
from tests.unit.restorer.test_restore_plan import WHEN, restore


def small_files(count: int, seed: int = 1) -> dict[str, Any]:
    """`count` files of 0-200 bytes, ten a directory, with modes and mtimes of their own."""
    rng = random.Random(seed)
    spec: dict[str, Any] = {}
    for n in range(count):
        spec[f"d{n // 10:02d}"] = Dir(mode=0o750, mtime_ns=1_500_000_000_000_000_000 + n)
        spec[f"d{n // 10:02d}/f{n:03d}"] = File(
            rng.randbytes(rng.randint(0, 200)), mode=rng.choice([0o600, 0o644, 0o755]),
            mtime_ns=1_600_000_000_000_000_000 + n * 1_000_003,
        )  # fmt: skip
    return spec


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches of a few blobs or files, length look-ups of a few ids."""
    monkeypatch.setattr(restorer_module, "BATCH_BLOBS", 5)
    monkeypatch.setattr(restorer_module, "MAX_OPEN_FILES", 7)
    monkeypatch.setattr(restorer_module, "_ID_GROUP", 3)


@pytest.mark.usefixtures("small_batches")
def test_many_small_files_and_large_ones_between_them(repo: Repository, tmp_path: Path) -> None:
    spec = small_files(120)
    # Files of several chunks (more than _ID_GROUP) among the small ones, one ending in zeros
    # (a hole at its end: its length comes from the truncate at the end), one all zeros.
    spec["d03/large"] = File(os.urandom(6 << 20), profile=ChunkingProfile.DATABASE)
    spec["d05/ends-in-a-hole"] = File(os.urandom(5000) + bytes(9 << 20), profile=ChunkingProfile.DATABASE)
    spec["d07/all-zeros"] = File(bytes(3 << 20), profile=ChunkingProfile.DATABASE)
    spec["d08/empty"] = File(b"")
    snap = Archiver(repo, inline_chunk_limit=2).run(MemorySource(spec), SnapshotOptions(time=WHEN)).snapshot
    target = tmp_path / "t"
    result = restore(repo, snap, target, verify=True)
    assert not result.errors
    assert result.files == result.files_verified == 124
    assert read_tree(target) == expected_tree(spec)  # content, modes and mtimes, dirs' too
    assert (target / "d05" / "ends-in-a-hole").stat().st_size == 5000 + (9 << 20)


@pytest.mark.usefixtures("small_batches")
def test_a_damaged_blob_among_many_files_names_only_its_file(repo: Repository, tmp_path: Path) -> None:
    spec = small_files(60)
    spec["d02/victim"] = File(os.urandom(150))
    snap = Archiver(repo).run(MemorySource(spec), SnapshotOptions(time=WHEN)).snapshot
    directory = next(n for n in load_tree(repo, snap.tree) if n.name == b"d02")
    assert directory.subtree is not None
    victim = next(n for n in load_tree(repo, directory.subtree) if n.name == b"victim").content[0]
    flip_blob(repo, victim)
    result = restore(repo, snap, tmp_path / "t")
    assert [e.split(": ")[0] for e in result.errors] == ["/d02/victim"]
    assert result.files == 60
    del spec["d02/victim"]
    got = read_tree(tmp_path / "t")
    assert got.pop("d02/victim")[0] == "file"
    assert got == expected_tree(spec)


@pytest.mark.usefixtures("small_batches")
def test_a_file_that_cannot_be_written_is_named_and_the_rest_restored(
    repo: Repository, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = small_files(40)
    doomed = b"no room for this one" * 5
    spec["d01/doomed"] = File(doomed)
    snap = Archiver(repo).run(MemorySource(spec), SnapshotOptions(time=WHEN)).snapshot
    write = restorer_module.write_keeping_holes

    def full_disk(fd: int, data: bytes, offset: int) -> None:
        if data == doomed:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        write(fd, data, offset)

    monkeypatch.setattr(restorer_module, "write_keeping_holes", full_disk)
    result = restore(repo, snap, tmp_path / "t")
    assert result.errors == ["/d01/doomed: cannot be written: No space left on device"]
    assert result.files == 40
    got = read_tree(tmp_path / "t")
    assert got.pop("d01/doomed")[0] == "file"
    del spec["d01/doomed"]
    assert got == expected_tree(spec)


def test_lengths_are_looked_up_for_many_files_at_once(
    repo: Repository, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = small_files(200)
    snap = Archiver(repo).run(MemorySource(spec), SnapshotOptions(time=WHEN)).snapshot
    calls = []
    lengths = Repository.plain_lengths

    def counted(self: Repository, ids: bytes) -> Any:
        calls.append(len(ids) // 32)
        return lengths(self, ids)

    monkeypatch.setattr(Repository, "plain_lengths", counted)
    result = restore(repo, snap, tmp_path / "t")
    assert not result.errors and result.files == 200
    assert len(calls) == 1 and calls[0] == sum(1 for f in spec.values() if isinstance(f, File) and f.data)
