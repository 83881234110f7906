"""Restores: faithful content and metadata, selections, and never a write outside the target."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgpack
import pytest

from snapstore.archiver.archiver import Archiver, SnapshotOptions
from snapstore.archiver.source import ChunkingProfile
from snapstore.backend.base import FileType
from snapstore.checker import findings as F
from snapstore.checker.checker import CheckOptions, check_repository
from snapstore.errors import PathNotFound, UnsafePath
from snapstore.ids import Id
from snapstore.pack import BlobType
from snapstore.repository.repository import Repository
from snapstore.restorer import file_writer, stream
from snapstore.restorer.restorer import Restorer
from snapstore.snapshot.content import chunk_ids
from snapstore.snapshot.manifest import Snapshot
from snapstore.snapshot.store import load_tree, save_snapshot
from tests.conftest import assert_repository_ok, reopen
from tests.support.memory_source import (
    Dir,
    File,
    Link,
    MemorySource,
    Spec,
    expected_tree,
    read_tree,
)
from tests.support.raw_trees import raw_node

WHEN = datetime(2026, 5, 1, tzinfo=UTC)

SPEC: dict[str, bytes | File | Dir | Link] = {
    "docs": Dir(mode=0o750, mtime_ns=1_600_000_000_000_000_000),
    "docs/readme.txt": File(b"read me\n", mode=0o640, mtime_ns=1_650_000_000_111_222_333),
    "docs/empty": File(b"", mode=0o600, mtime_ns=5_000_000_000),
    "docs/sub": Dir(mode=0o700, mtime_ns=1_500_000_000_000_000_000),
    "docs/sub/deep.bin": File(os.urandom(300_000), mode=0o755),
    "docs/link-in": Link(b"readme.txt", mtime_ns=1_234_567_890_000_000_000),
    "docs/link-out": Link(b"/etc/passwd"),
    "docs/dangling": Link(b"../nowhere/at/all"),
    "readonly": Dir(mode=0o555),
    "readonly/file": File(b"inside a read-only dir", mode=0o444),
    "setuid": File(b"#!/bin/true\n", mode=0o4755),
    "big.dump": File(os.urandom(1 << 20), profile=ChunkingProfile.DATABASE),
    "implicit/parents/file": b"parents made by the archiver",
    "caf\u00e9 \U0001f418": b"unicode name",
}


def backup(repo: Repository, spec: Spec) -> Snapshot:
    return Archiver(repo).run(MemorySource(spec), SnapshotOptions(time=WHEN)).snapshot


def restore(repo: Repository, snap: Snapshot, target: Path, **kwargs: Any) -> Any:
    return Restorer(reopen(repo), owners=False).restore(snap, target, **kwargs)


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory a hostile snapshot would like to write into; must stay empty."""
    path = tmp_path / "outside"
    path.mkdir()
    return path


def test_restore_everything(repo: Repository, tmp_path: Path) -> None:
    snap = backup(repo, SPEC)
    target = tmp_path / "target"
    result = restore(repo, snap, target)
    assert read_tree(target) == expected_tree(SPEC)
    assert result.files == 8 and result.symlinks == 3 and result.dirs == 5
    assert result.bytes_written == sum(
        len(v.data if isinstance(v, File) else v)
        for v in SPEC.values()
        if isinstance(v, (bytes, File))
    )
    assert not result.errors
    assert_repository_ok(repo)


def test_restore_into_an_existing_target_twice(repo: Repository, tmp_path: Path) -> None:
    snap = backup(repo, SPEC)
    target = tmp_path / "target"
    restore(repo, snap, target)
    (target / "docs" / "readme.txt").write_bytes(b"changed since")
    (target / "docs" / "link-in").unlink()
    (target / "docs" / "link-in").write_bytes(b"a file where a link was")
    restore(repo, snap, target)
    assert read_tree(target) == expected_tree(SPEC)
    assert_repository_ok(repo)


def test_multi_chunk_file_from_the_stream(repo: Repository) -> None:
    data = os.urandom(2 << 20)
    snap = backup(repo, {"db": File(data, profile=ChunkingProfile.DATABASE)})
    again = reopen(repo)
    (node,) = load_tree(again, snap.tree)
    ids = chunk_ids(again, node)
    assert len(ids) > 8
    assert b"".join(stream.stream_content(again, ids)) == data
    assert b"".join(stream.stream_file(again, node)) == data
    assert list(stream.stream_content(again, [])) == []
    assert_repository_ok(repo)


# -- selections ---------------------------------------------------------------------------------


def test_includes_a_directory(repo: Repository, tmp_path: Path) -> None:
    snap = backup(repo, SPEC)
    target = tmp_path / "target"
    restore(repo, snap, target, includes=["docs/sub"])
    want = {k: v for k, v in expected_tree(SPEC).items() if k == "docs" or k.startswith("docs/sub")}
    assert read_tree(target) == want
    assert_repository_ok(repo)


def test_includes_files_and_links(repo: Repository, tmp_path: Path) -> None:
    snap = backup(repo, SPEC)
    target = tmp_path / "target"
    restore(repo, snap, target, includes=["/docs/readme.txt", "docs/link-out", "setuid"])
    assert sorted(read_tree(target)) == ["docs", "docs/link-out", "docs/readme.txt", "setuid"]
    assert_repository_ok(repo)


def test_includes_nothing_that_exists(repo: Repository, tmp_path: Path) -> None:
    snap = backup(repo, SPEC)
    target = tmp_path / "target"
    with pytest.raises(PathNotFound, match="/no/such/path"):
        restore(repo, snap, target, includes=["no/such/path"])
    assert read_tree(target) == {}
    assert_repository_ok(repo)


# -- symlinks never redirect a write -------------------------------------------------------------


def test_planted_symlinks_in_the_target_are_replaced(
    repo: Repository, tmp_path: Path, outside: Path
) -> None:
    snap = backup(repo, {"a/file": b"payload", "b": b"payload", "c": Link(b"x")})
    target = tmp_path / "target"
    target.mkdir()
    victim = outside / "victim"
    victim.write_bytes(b"untouched")
    (target / "a").symlink_to(outside)  # a directory in the snapshot
    (target / "b").symlink_to(victim)  # a file in the snapshot
    (target / "c").symlink_to(victim)  # a symlink in the snapshot
    restore(repo, snap, target)
    assert sorted(os.listdir(outside)) == ["victim"]
    assert victim.read_bytes() == b"untouched"
    assert not (target / "a").is_symlink() and (target / "a" / "file").read_bytes() == b"payload"
    assert not (target / "b").is_symlink() and (target / "b").read_bytes() == b"payload"
    assert os.readlink(target / "c") == "x"
    assert_repository_ok(repo)


def test_a_restored_symlink_is_not_followed_by_a_later_restore(
    repo: Repository, tmp_path: Path, outside: Path
) -> None:
    first = backup(repo, {"d": Link(os.fsencode(outside)), "f": Link(os.fsencode(outside / "f"))})
    second = backup(repo, {"d/inner": b"payload", "f": b"payload"})
    target = tmp_path / "target"
    restore(repo, first, target)
    assert os.readlink(target / "d") == str(outside)
    restore(repo, second, target)
    assert list(outside.iterdir()) == []
    assert (target / "d" / "inner").read_bytes() == b"payload"
    assert (target / "f").read_bytes() == b"payload" and not (target / "f").is_symlink()
    assert_repository_ok(repo)


def test_a_directory_where_a_file_belongs_is_refused(repo: Repository, tmp_path: Path) -> None:
    snap = backup(repo, {"x": b"file"})
    target = tmp_path / "target"
    (target / "x").mkdir(parents=True)
    with pytest.raises(UnsafePath):
        restore(repo, snap, target)
    assert_repository_ok(repo)


# -- hostile trees, written directly as blobs ---------------------------------------------------


def save_raw_tree(repo: Repository, *nodes: dict[str, Any]) -> Id:
    plaintext = msgpack.packb({"v": 1, "nodes": list(nodes)}, use_bin_type=True)
    return repo.save_blob(BlobType.TREE, plaintext).id


def hostile_snapshot(repo: Repository, name: bytes, node_type: str) -> Snapshot:
    payload = repo.save_blob(BlobType.DATA, b"payload").id
    if node_type == "file":
        evil = raw_node(name, "file", size=7, content=[bytes(payload)])
    elif node_type == "dir":
        inner = save_raw_tree(repo, raw_node(b"planted", "file", size=7, content=[bytes(payload)]))
        evil = raw_node(name, "dir", subtree=bytes(inner))
    else:
        evil = raw_node(name, "symlink", target=b"/etc/passwd")
    sub = save_raw_tree(repo, raw_node(b"ok", "file", size=7, content=[bytes(payload)]), evil)
    root = save_raw_tree(
        repo,
        raw_node(b"a-first", "file", size=7, content=[bytes(payload)]),
        raw_node(b"sub", "dir", subtree=bytes(sub)),
    )
    repo.flush()
    snap = Snapshot(WHEN, "host", "user", [], "hostile", [], root)
    save_snapshot(repo, snap)
    return snap


def nothing_outside(tmp_path: Path, target: Path) -> None:
    """Only the target (and the empty `outside`) may exist below tmp_path."""
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["outside", target.name])
    assert list((tmp_path / "outside").iterdir()) == []
    for _dirpath, dirnames, filenames in os.walk(target):
        for name in filenames + dirnames:
            assert name in ("a-first", "sub", "ok"), name


def checker_flags_and_clean_up(repo: Repository, snap: Snapshot) -> None:
    report = check_repository(reopen(repo, load_index=False), CheckOptions(read_data=True))
    assert [f.kind for f in report.errors] == [F.TREE_DAMAGED]
    assert report.errors[0].snapshots == [snap.short_id]
    assert snap.id is not None
    repo.remove_object(FileType.SNAPSHOT, snap.id.hex())
    assert_repository_ok(repo)


@pytest.mark.parametrize(
    "name", [b"..", b".", b"", b"../../outside/planted", b"/tmp/abs", b"x/../../y", b"nul\0"]
)
@pytest.mark.parametrize("node_type", ["file", "dir", "symlink"])
def test_hostile_names_in_a_snapshot(
    repo: Repository, tmp_path: Path, outside: Path, name: bytes, node_type: str
) -> None:
    snap = hostile_snapshot(repo, name, node_type)
    target = tmp_path / "target"
    result = restore(repo, snap, target)  # the hostile directory is named and skipped
    assert len(result.errors) == 1 and result.errors[0].startswith("/sub: ")
    assert "unsafe" in result.errors[0] or "name" in result.errors[0]
    assert (target / "a-first").read_bytes() == b"payload"
    nothing_outside(tmp_path, target)
    checker_flags_and_clean_up(repo, snap)


def test_duplicate_names_in_a_snapshot(repo: Repository, tmp_path: Path, outside: Path) -> None:
    """`x -> outside` then a directory `x`: would write through the link if it were allowed."""
    payload = repo.save_blob(BlobType.DATA, b"payload").id
    inner = save_raw_tree(repo, raw_node(b"planted", "file", size=7, content=[bytes(payload)]))
    root = save_raw_tree(
        repo,
        raw_node(b"x", "symlink", target=os.fsencode(outside)),
        raw_node(b"x", "dir", subtree=bytes(inner)),
    )
    repo.flush()
    snap = Snapshot(WHEN, "host", "user", [], "hostile", [], root)
    save_snapshot(repo, snap)
    target = tmp_path / "target"
    with pytest.raises(UnsafePath):
        restore(repo, snap, target)
    assert list(outside.iterdir()) == []
    checker_flags_and_clean_up(repo, snap)


# -- a real filesystem round trip, when the files source is available ---------------------------


def test_round_trip_through_the_files_source(repo: Repository, tmp_path: Path) -> None:
    files = pytest.importorskip("snapstore.sources.files")
    source_dir = tmp_path / "src"
    for path, value in SPEC.items():
        full = source_dir / path
        full.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(value, Dir):
            full.mkdir(exist_ok=True)
        elif isinstance(value, Link):
            full.symlink_to(os.fsdecode(value.target))
        else:
            full.write_bytes(value.data if isinstance(value, File) else value)
            full.chmod(value.mode if isinstance(value, File) else 0o644)
    os.utime(source_dir / "docs" / "readme.txt", ns=(1, 1_650_000_000_111_222_333))
    for path, value in SPEC.items():  # directory modes last, so writing into them worked
        if isinstance(value, Dir):
            (source_dir / path).chmod(value.mode)
    before = read_tree(source_dir)

    result = Archiver(repo).run(files.FileSource([source_dir]), SnapshotOptions(time=WHEN))
    assert result.complete, result.errors
    target = tmp_path / "target"
    restore(repo, result.snapshot, target)
    restored_root = target / os.path.relpath(source_dir, "/")
    assert read_tree(restored_root) == before
    assert_repository_ok(repo)


# -- the file writer on its own ------------------------------------------------------------------


@pytest.mark.parametrize("name", [b"..", b".", b"", b"a/b", b"../x", b"nul\0"])
def test_file_writer_refuses_unsafe_names(tmp_path: Path, name: bytes) -> None:
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with pytest.raises(UnsafePath):
            file_writer.create_file(fd, name, 1)
        with pytest.raises(UnsafePath):
            file_writer.open_dir(fd, name)
        with pytest.raises(UnsafePath):
            file_writer.make_symlink(fd, name, b"target")
    finally:
        os.close(fd)
    assert list(tmp_path.iterdir()) == []


def test_file_writer_replaces_links_instead_of_following(tmp_path: Path, outside: Path) -> None:
    target = tmp_path / "target"
    target.mkdir()
    (target / "d").symlink_to(outside)
    (target / "f").symlink_to(outside / "f")
    (target / "l").symlink_to(outside / "l")
    fd = os.open(target, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.close(file_writer.open_dir(fd, b"d"))
        file_fd = file_writer.create_file(fd, b"f", 4)
        file_writer.write_at(file_fd, b"cd", 2)
        file_writer.write_at(file_fd, b"ab", 0)
        os.close(file_fd)
        file_writer.make_symlink(fd, b"l", b"elsewhere")
    finally:
        os.close(fd)
    assert list(outside.iterdir()) == []
    assert (target / "d").is_dir() and not (target / "d").is_symlink()
    assert (target / "f").read_bytes() == b"abcd"
    assert os.readlink(target / "l") == "elsewhere"


def test_one_restorer_restores_twice(repo: Repository, tmp_path: Path) -> None:
    snap = backup(repo, {"db": File(os.urandom(1 << 20), profile=ChunkingProfile.DATABASE)})
    restorer = Restorer(reopen(repo), owners=False)
    restorer.restore(snap, tmp_path / "one")
    restorer.restore(snap, tmp_path / "two")
    assert read_tree(tmp_path / "one") == read_tree(tmp_path / "two")
