"""The pack-ordered restore: any plan reproduces the snapshot, damage stays in its file, the
overwrite policies, --verify, --delete, --dry-run, --exclude, holes, and deep trees."""

from __future__ import annotations

import os
import resource
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from snapstore.archiver.archiver import Archiver, SnapshotOptions
from snapstore.archiver.source import ChunkingProfile
from snapstore.backend.memory import MemoryBackend
from snapstore.crypto.kdf import TEST_KDF
from snapstore.errors import PathNotFound
from snapstore.pack import BlobType
from snapstore.repository.repository import Repository
from snapstore.restorer import restorer as restorer_module
from snapstore.restorer.restorer import Overwrite, RestoreOptions, Restorer, RestoreResult
from snapstore.snapshot.manifest import Snapshot
from snapstore.snapshot.store import save_snapshot
from snapstore.snapshot.tree import Node, NodeType, encode_tree
from tests.conftest import PASSWORD, reopen
from tests.support.damage import flip_blob
from tests.support.deep_trees import DEPTH
from tests.support.deltas import edited, varied
from tests.support.memory_source import File, MemorySource, expected_tree, read_tree

WHEN = datetime(2026, 5, 1, tzinfo=UTC)


def backup(repo: Repository, spec: dict[str, Any]) -> Snapshot:
    return Archiver(repo).run(MemorySource(spec), SnapshotOptions(time=WHEN)).snapshot


def restore(repo: Repository, snap: Snapshot, target: Path, **options: Any) -> RestoreResult:
    return Restorer(reopen(repo), owners=False).restore(snap, target, options=RestoreOptions(**options))


# -- any plan reproduces the snapshot --------------------------------------------------------

_names = st.sampled_from(["a", "b", "c", "d.log", "e.bin"])
_paths = st.lists(_names, min_size=1, max_size=4).map("/".join)


_POOL = [os.urandom(n) for n in (0, 1, 5000, 70_000)] + [bytes(90_000), varied(200_000, 1)]


@st.composite
def _specs(draw: st.DrawFn) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    for path in draw(st.lists(_paths, min_size=1, max_size=12, unique=True)):
        if any(p.startswith(path + "/") or path.startswith(p + "/") for p in spec):
            continue
        parts = draw(st.lists(st.sampled_from(range(len(_POOL))), max_size=3))
        data = b"".join(_POOL[i] for i in parts)  # shared blobs between files
        profile = draw(st.sampled_from([ChunkingProfile.FILES, ChunkingProfile.DATABASE]))
        spec[path] = File(data, profile=profile)
    return spec


def _next_day(spec: dict[str, Any]) -> dict[str, Any]:
    """Every file a little edited: database-profile chunks become deltas against day 1's."""
    return {p: File(edited(f.data, 3) if f.data else f.data, profile=f.profile) for p, f in spec.items()}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spec=_specs(), batch=st.sampled_from([1, 3, 16384]), files=st.sampled_from([1, 2, 384]),
       ids=st.sampled_from([1, 2, 4096]),
       include=st.sampled_from([[], ["a"], ["b/a", "c"]]), exclude=st.sampled_from([[], ["*.log"]]))
def test_any_plan_restores_the_snapshot_byte_for_byte(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch, spec: dict[str, Any],
    batch: int, files: int, ids: int, include: list[str], exclude: list[str],
) -> None:
    monkeypatch.setattr(restorer_module, "BATCH_BLOBS", batch)
    monkeypatch.setattr(restorer_module, "MAX_OPEN_FILES", files)
    monkeypatch.setattr(restorer_module, "_ID_GROUP", ids)  # files planned alone, or together
    repo = Repository.init(MemoryBackend(), PASSWORD, kdf=TEST_KDF, pack_size=1 << 18)
    archiver = Archiver(repo, inline_chunk_limit=2)  # files of 3 chunks or more get chunk lists
    archiver.run(MemorySource(spec), SnapshotOptions(time=WHEN))
    spec = _next_day(spec)  # day 2: deltas against day 1, chunk lists, shared blobs
    snap = archiver.run(MemorySource(spec), SnapshotOptions(time=WHEN)).snapshot
    target = tmp_path_factory.mktemp("target")
    selected = {
        p: v for p, v in spec.items()
        if (not include or any(p == i or p.startswith(i + "/") for i in include))
        and not (exclude and any(part.endswith(".log") for part in p.split("/")))
    }
    wanted = {k: v for k, v in expected_tree(spec).items()
              if k in selected or any(p.startswith(k + "/") for p in selected)}
    if include and not all(any(p == i or p.startswith(i + "/") for p in spec) for i in include):
        with pytest.raises(PathNotFound):
            restore(repo, snap, target, includes=include, excludes=exclude)
        return
    result = restore(repo, snap, target, includes=include, excludes=exclude)
    assert not result.errors
    got = read_tree(target)
    files_got = {k: v for k, v in got.items() if v[0] == "file"}
    assert files_got == {k: v for k, v in wanted.items() if v[0] == "file"}


# -- damage ------------------------------------------------------------------------------------

def test_a_damaged_blob_names_its_file_and_every_other_file_is_restored(
    repo: Repository, tmp_path: Path
) -> None:
    good = {f"ok{i}": os.urandom(20_000) for i in range(5)}
    snap = backup(repo, {**good, "victim": os.urandom(20_000)})
    victim = snap_node_blob(repo, snap, b"victim")
    handle = flip_blob(repo, victim)
    target = tmp_path / "t"
    result = restore(repo, snap, target)
    assert len(result.errors) == 1
    assert result.errors[0].startswith("/victim: ")
    assert victim.hex() in result.errors[0] and handle.name[:16] in result.errors[0]
    for name, content in good.items():
        assert (target / name).read_bytes() == content
    assert result.files == 5


def snap_node_blob(repo: Repository, snap: Snapshot, name: bytes) -> Any:
    from snapstore.snapshot.store import load_tree

    node = next(n for n in load_tree(repo, snap.tree) if n.name == name)
    return node.content[0]


# -- overwrite, verify, delete, dry run -------------------------------------------------------

def test_overwrite_policies(repo: Repository, tmp_path: Path) -> None:
    snap = backup(repo, {"f": File(b"from the snapshot", mtime_ns=2_000_000_000_000_000_000)})
    target = tmp_path / "t"
    target.mkdir()
    f = target / "f"

    def plant(data: bytes, mtime_ns: int) -> None:
        f.write_bytes(data)
        os.utime(f, ns=(mtime_ns, mtime_ns))

    plant(b"something else!!!", 2_000_000_000_000_000_000)  # same size and mtime: unchanged
    result = restore(repo, snap, target)
    assert f.read_bytes() == b"something else!!!" and result.files_skipped == 1
    result = restore(repo, snap, target, overwrite=Overwrite.ALWAYS)
    assert f.read_bytes() == b"from the snapshot" and result.files == 1

    plant(b"newer in the target", 3_000_000_000_000_000_000)
    restore(repo, snap, target, overwrite=Overwrite.IF_NEWER)
    assert f.read_bytes() == b"newer in the target"
    plant(b"older in the target", 1_000_000_000_000_000_000)
    restore(repo, snap, target, overwrite=Overwrite.IF_NEWER)
    assert f.read_bytes() == b"from the snapshot"

    plant(b"never touched", 1)
    restore(repo, snap, target, overwrite=Overwrite.NEVER)
    assert f.read_bytes() == b"never touched"
    plant(b"changed", 1)
    restore(repo, snap, target)  # if-changed is the default
    assert f.read_bytes() == b"from the snapshot"


def test_verify_catches_a_file_that_differs_from_the_snapshot(repo: Repository, tmp_path: Path) -> None:
    snap = backup(repo, {"f": File(b"x" * 10_000, mtime_ns=10**18), "g": os.urandom(5000)})
    target = tmp_path / "t"
    assert not restore(repo, snap, target, verify=True).errors
    f = target / "f"
    f.write_bytes(b"y" * 10_000)  # same size; the mtime put back: if-changed keeps it
    os.utime(f, ns=(10**18, 10**18))
    result = restore(repo, snap, target, verify=True)
    assert result.files_skipped == 2 and result.files_verified == 1  # g is fine
    assert result.errors == ["/f: verify: content differs from the snapshot"]


def test_delete_removes_what_the_snapshot_lacks(repo: Repository, tmp_path: Path) -> None:
    snap = backup(repo, {"keep": b"k", "d/inner": b"i", "skip.log": b"l"})
    target = tmp_path / "t"
    (target / "d" / "extra-dir").mkdir(parents=True)
    (target / "d" / "extra-dir" / "x").write_bytes(b"x")
    (target / "extra").write_bytes(b"e")
    (target / "other.log").write_bytes(b"excluded: left alone")
    dry = restore(repo, snap, target, delete=True, dry_run=True, excludes=["*.log"])
    assert dry.deleted == 2 and (target / "extra").exists()
    result = restore(repo, snap, target, delete=True, excludes=["*.log"])
    assert result.deleted == 2
    assert sorted(p.name for p in target.iterdir()) == ["d", "keep", "other.log"]
    assert [p.name for p in (target / "d").iterdir()] == ["inner"]


def test_dry_run_writes_nothing_and_lists_what_it_would(repo: Repository, tmp_path: Path) -> None:
    snap = backup(repo, {"a/b": b"12345", "c": b"123"})
    target = tmp_path / "t"
    result = restore(repo, snap, target, dry_run=True)
    assert not target.exists()
    assert sorted(result.planned) == [("/a/b", 5), ("/c", 3)]
    assert result.bytes_written == 8 and result.files == 2


def test_zero_runs_become_holes(repo: Repository, tmp_path: Path) -> None:
    data = os.urandom(4096) + bytes(8 << 20) + os.urandom(4096)
    snap = backup(repo, {"sparse": File(data, profile=ChunkingProfile.DATABASE)})
    target = tmp_path / "t"
    restore(repo, snap, target)
    restored = target / "sparse"
    assert restored.read_bytes() == data
    assert restored.stat().st_blocks * 512 < len(data) // 2


# -- deep trees --------------------------------------------------------------------------------

def deep_snapshot(repo: Repository, levels: int) -> Snapshot:
    blob = repo.save_blob(BlobType.DATA, b"at the bottom").id
    nodes = [Node(b"leaf", NodeType.FILE, size=13, content=[blob], mtime_ns=10**18)]
    for _ in range(levels):
        tree = repo.save_blob(BlobType.TREE, encode_tree(nodes)).id
        nodes = [Node(b"d", NodeType.DIR, mode=0o755, subtree=tree, mtime_ns=10**18)]
    root = repo.save_blob(BlobType.TREE, encode_tree(nodes)).id
    repo.flush()
    snap = Snapshot(WHEN, "h", "u", [], "files", ["/"], root)
    save_snapshot(repo, snap)
    return snap


def test_a_tree_deeper_than_path_max_is_restored(repo: Repository, tmp_path: Path) -> None:
    snap = deep_snapshot(repo, DEPTH)
    target = tmp_path / "t"
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))  # a small server's limit, and less
    try:
        result = restore(repo, snap, target, verify=True)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert not result.errors and result.dirs == DEPTH and result.files == 1
    fd = os.open(target, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(DEPTH):
            nxt = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = nxt
        leaf = os.open("leaf", os.O_RDONLY, dir_fd=fd)
        assert os.read(leaf, 100) == b"at the bottom"
        assert os.fstat(fd).st_mtime_ns == 10**18
        os.close(leaf)
    finally:
        os.close(fd)
    remove_deep(target / "d")


def remove_deep(top: Path) -> None:
    """Removes a chain of nested `d` directories a level at a time (rmtree would recurse)."""
    spare = top.parent / "spare"
    while (top / "d").is_dir():
        os.rename(top / "d", spare)
        for child in top.iterdir():
            child.unlink()
        top.rmdir()
        os.rename(spare, top)
    for child in top.iterdir():
        child.unlink()
    top.rmdir()


def test_an_entry_the_target_refuses_is_named_and_the_rest_restored(
    repo: Repository, tmp_path: Path
) -> None:
    blob = repo.save_blob(BlobType.DATA, b"kept").id
    nodes = [
        Node(b"a-link", NodeType.SYMLINK, target=b""),  # the kernel refuses an empty target
        Node(b"b-file", NodeType.FILE, size=4, content=[blob], mtime_ns=10**18),
    ]
    root = repo.save_blob(BlobType.TREE, encode_tree(nodes)).id
    repo.flush()
    snap = Snapshot(WHEN, "h", "u", [], "files", ["/"], root)
    save_snapshot(repo, snap)
    result = restore(repo, snap, tmp_path / "t")
    assert [e.split(":")[0] for e in result.errors] == ["/a-link"]
    assert (tmp_path / "t" / "b-file").read_bytes() == b"kept"
