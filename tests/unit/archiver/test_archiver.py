"""Taking snapshots: trees and blobs from a Source, dedup between runs, and failure rules."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime

import blake3
import pytest

from snapstore.archiver.archiver import Archiver, BackupResult, SnapshotOptions
from snapstore.archiver.source import ChunkingProfile, EntryKind, ErrorCallback, SourceEntry
from snapstore.backend.base import FileType
from snapstore.backend.memory import MemoryBackend
from snapstore.chunker import DATABASE, FILES, Chunker
from snapstore.crypto.kdf import TEST_KDF
from snapstore.crypto.keys import MasterKey
from snapstore.errors import DumpFailed, SourceError, UnsafePath
from snapstore.pack import BlobType
from snapstore.repository.repository import Repository
from snapstore.snapshot.content import chunk_ids
from snapstore.snapshot.store import list_snapshots, load_snapshot, walk
from snapstore.snapshot.tree import Node, NodeType
from tests.conftest import PASSWORD, assert_repository_ok, reopen
from tests.support.memory_source import Dir, File, Link, MemorySource, Spec, expected_tree

WHEN = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def backup(repo: Repository, source: MemorySource | Spec, **options: object) -> BackupResult:
    if not isinstance(source, MemorySource):
        source = MemorySource(source)
    opts = SnapshotOptions(time=WHEN, host="test-host", user="tester")
    for key, value in options.items():
        setattr(opts, key, value)
    return Archiver(repo).run(source, opts)


def snapshot_contents(repo: Repository, tree_id: bytes) -> dict[str, tuple[object, ...]]:
    """What the snapshot holds, in the form of `expected_tree`, read through the repository."""
    out: dict[str, tuple[object, ...]] = {}
    for path, node in walk(repo, tree_id):  # type: ignore[arg-type]
        name = b"/".join(path).decode("utf-8", "surrogateescape")
        if node.type is NodeType.FILE:
            data = b"".join(repo.load_blob(BlobType.DATA, i) for i in chunk_ids(repo, node))
            assert node.size == len(data)
            out[name] = ("file", node.mode, node.mtime_ns, data)
        elif node.type is NodeType.DIR:
            out[name] = ("dir", node.mode, node.mtime_ns)
        else:
            out[name] = ("link", node.target, node.mtime_ns)
    return out


def random_spec(seed: int) -> dict[str, bytes | File | Dir | Link]:
    rng = random.Random(seed)
    spec: dict[str, bytes | File | Dir | Link] = {}
    dirs = [""]
    for n in range(rng.randint(5, 25)):
        parent = rng.choice(dirs)
        name = f"{parent}/e{n}" if parent else f"e{n}"
        kind = rng.random()
        if kind < 0.25:
            spec[name] = Dir(mode=rng.choice([0o700, 0o755, 0o750]), mtime_ns=rng.randrange(2**60))
            dirs.append(name)
        elif kind < 0.35:
            spec[name] = Link(rng.randbytes(rng.randint(1, 30)).replace(b"\0", b"x"))
        else:
            size = rng.choice([0, 1, 100, 5000, 200_000, 1_500_000])
            spec[name] = File(
                rng.randbytes(size),
                mode=rng.choice([0o644, 0o600, 0o755]),
                mtime_ns=rng.randrange(2**60),
            )
    return spec


# -- round trips ------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(4))
def test_round_trip_of_random_trees(repo: Repository, seed: int) -> None:
    spec = random_spec(seed)
    result = backup(repo, spec)
    assert result.complete
    again = reopen(repo)
    snap = load_snapshot(again, result.snapshot.id.hex())  # type: ignore[union-attr]
    assert snapshot_contents(again, snap.tree) == expected_tree(spec)
    assert_repository_ok(repo)


def test_tree_nodes_carry_metadata(repo: Repository) -> None:
    spec = {
        "etc": Dir(mode=0o750, mtime_ns=11),
        "etc/conf": File(b"key=value\n", mode=0o640, mtime_ns=22),
        "etc/link": Link(b"conf", mtime_ns=33),
        "etc/empty": File(b""),
        "deep/er/file": b"implicit parents",
    }
    result = backup(repo, spec)
    nodes = {b"/".join(p): n for p, n in walk(repo, result.snapshot.tree)}
    assert nodes[b"etc"].type is NodeType.DIR and nodes[b"etc"].mode == 0o750
    assert nodes[b"etc/conf"].size == 10 and nodes[b"etc/conf"].mode == 0o640
    assert nodes[b"etc/link"].type is NodeType.SYMLINK and nodes[b"etc/link"].target == b"conf"
    assert nodes[b"etc/empty"].content == [] and nodes[b"etc/empty"].size == 0
    assert nodes[b"deep"].mode == 0o755 and nodes[b"deep/er"].type is NodeType.DIR
    summary = result.snapshot.summary
    assert (summary.files, summary.dirs, summary.bytes_read) == (3, 1, 10 + 16)
    assert summary.errors == 0
    assert_repository_ok(repo)


def test_snapshot_records_source_and_options(repo: Repository) -> None:
    source = MemorySource(
        {"db": File(b"dump", profile=ChunkingProfile.DATABASE)},
        kind="postgres",
        meta={"server_version": "16"},
    )
    result = backup(repo, source, tags=["b", "a", "b"])
    snap = list_snapshots(reopen(repo))[0]
    assert snap.id == result.snapshot.id
    assert (snap.source, snap.paths, snap.metadata) == (
        "postgres",
        ["memory"],
        {"server_version": "16"},
    )
    assert (snap.time, snap.host, snap.user, snap.tags) == (WHEN, "test-host", "tester", ["a", "b"])
    assert snap.chunker == {
        "database": [
            DATABASE.min_size,
            DATABASE.avg_size,
            DATABASE.max_size,
            DATABASE.normalization,
        ]
    }
    assert snap.program_version.startswith("snapstore")
    assert_repository_ok(repo)


def test_empty_source(repo: Repository) -> None:
    result = backup(repo, {})
    assert list(walk(repo, result.snapshot.tree)) == []
    assert_repository_ok(repo)


# -- dedup ------------------------------------------------------------------------------------


def test_second_snapshot_of_unchanged_data_adds_nothing(repo: Repository) -> None:
    spec = random_spec(10)
    first = backup(repo, spec)
    assert first.snapshot.summary.blobs_added > 0
    packs = {i.handle for i in repo.backend.list(FileType.PACK)}
    second = backup(repo, spec)
    assert second.snapshot.summary.blobs_added == 0
    assert second.snapshot.summary.bytes_added == 0
    assert second.snapshot.tree == first.snapshot.tree
    assert {i.handle for i in repo.backend.list(FileType.PACK)} == packs
    assert len(list_snapshots(repo)) == 2
    assert_repository_ok(repo)


def test_unchanged_data_from_a_new_process_adds_nothing(repo: Repository) -> None:
    spec = random_spec(11)
    backup(repo, spec)
    second = backup(reopen(repo), spec)
    assert second.snapshot.summary.bytes_added == 0
    assert_repository_ok(repo)


def test_changing_one_file_adds_one_blob_and_its_trees(repo: Repository) -> None:
    spec: dict[str, bytes | File | Dir | Link] = {
        "a/b/c/file": b"old content",
        "a/other": b"same",
        "top": b"same too",
    }
    backup(repo, spec)
    spec["a/b/c/file"] = b"new content"
    result = backup(repo, spec)
    # One data blob, and the trees of a/b/c, a/b, a and the root.
    assert result.snapshot.summary.blobs_added == 5
    assert 0 < result.snapshot.summary.bytes_added < 10_000
    assert_repository_ok(repo)


def xof(length: int, key: bytes = b"stream") -> bytes:
    return blake3.blake3(key).digest(length=length)


@pytest.fixture
def seeded_repo(backend: MemoryBackend, monkeypatch: pytest.MonkeyPatch) -> Iterator[Repository]:
    """A repository with a fixed chunker seed, so chunk boundaries are the same every run."""
    fixed = MasterKey(bytes(range(32)), bytes(range(32, 64)), bytes(range(64, 96)))
    monkeypatch.setattr(MasterKey, "generate", classmethod(lambda cls: fixed))
    repository = Repository.init(backend, PASSWORD, kdf=TEST_KDF, pack_size=1 << 20)
    yield repository
    repository.close()


@pytest.mark.parametrize("profile", [ChunkingProfile.DATABASE, ChunkingProfile.FILES])
def test_insertion_in_a_large_stream_adds_only_a_few_chunks(
    seeded_repo: Repository, profile: ChunkingProfile
) -> None:
    repo = seeded_repo
    size = 64 << 20
    original = xof(size)
    first = backup(repo, {"dump": File(original, profile=profile)})
    params = DATABASE if profile is ChunkingProfile.DATABASE else FILES
    assert first.snapshot.summary.blobs_added > size // params.max_size
    middle = size // 2 + 12345
    edited = original[:middle] + xof(100, b"insert") + original[middle:]
    second = backup(repo, {"dump": File(edited, profile=profile)})
    summary = second.snapshot.summary
    assert summary.bytes_read == size + 100

    # What content-defined chunking promises: only the chunks around the edit are new, a few
    # average chunks' worth (2% of the stream for DATABASE's 64 KiB chunks; FILES chunks
    # average 1 MiB, so one of them is already 1.6% of 64 MiB)...
    bound = max(size // 50, 3 * params.avg_size)
    chunker = Chunker(params, repo.chunker_seed)
    old_chunks = set(chunker.split(original))
    new_chunks = {c for c in chunker.split(edited) if c not in old_chunks}
    assert 1 <= len(new_chunks) <= 3
    assert sum(map(len, new_chunks)) < bound
    # ... and the archiver stores exactly those, plus the root tree, and nothing else.
    assert summary.blobs_added == len(new_chunks) + 1
    assert summary.bytes_added < bound

    again = reopen(repo)
    (node,) = [n for _, n in walk(again, second.snapshot.tree)]
    restored = b"".join(again.load_blob(BlobType.DATA, i) for i in chunk_ids(again, node))
    assert blake3.blake3(restored).digest() == blake3.blake3(edited).digest()
    assert_repository_ok(repo)


# -- what is refused ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [(b"..",), (b".",), (b"",), (b"a/b",), (b"ok", b".."), (b"..", b"x"), (b"nul\0",)],
)
def test_hostile_entry_names_are_refused(repo: Repository, path: tuple[bytes, ...]) -> None:
    source = MemorySource({"fine": b"fine", path: b"evil"})
    with pytest.raises(UnsafePath):
        backup(repo, source)
    assert not list(repo.backend.list(FileType.SNAPSHOT))
    assert_repository_ok(repo)


@pytest.mark.parametrize(
    "broken",
    [
        File(b"x" * 1000, open_error=PermissionError(13, "Permission denied")),
        File(b"x" * 1000, read_error=OSError(5, "Input/output error")),
        File(b"x" * 1000, open_error=FileNotFoundError(2, "No such file or directory")),
    ],
)
def test_unreadable_file_is_recorded_and_the_snapshot_completes(
    repo: Repository, broken: File
) -> None:
    spec = {"a/good": b"good data", "a/broken": broken, "b": b"more"}
    result = backup(repo, spec)
    assert not result.complete
    assert len(result.errors) == 1
    path, message = result.errors[0]
    assert path == "/a/broken"
    assert message == (broken.open_error or broken.read_error).strerror  # type: ignore[union-attr]
    assert result.snapshot.summary.errors == 1
    assert result.snapshot.summary.files == 2
    snap = list_snapshots(reopen(repo))[0]
    assert snap.summary.errors == 1
    assert [b"/".join(p) for p, _ in walk(repo, snap.tree)] == [b"a", b"a/good", b"b"]
    assert_repository_ok(repo)


class ErrorReportingSource(MemorySource):
    """Reports an unlistable directory through on_error, as FileSource does."""

    def entries(self, on_error: ErrorCallback) -> Iterator[SourceEntry]:
        on_error((b"locked",), PermissionError(13, "Permission denied"))
        yield from super().entries(on_error)


def test_errors_reported_by_the_source(repo: Repository) -> None:
    result = backup(repo, ErrorReportingSource({"x": b"x"}))
    assert result.errors == [("/locked", "Permission denied")]
    assert result.snapshot.summary.errors == 1
    assert list_snapshots(repo)[0].summary.errors == 1
    assert_repository_ok(repo)


@pytest.mark.parametrize(
    "broken",
    [
        File(
            b"partial dump" * 1000, close_error=DumpFailed("pg_dump", 1, "error: connection lost\n")
        ),
        File(b"partial dump" * 1000, read_error=DumpFailed("redis-cli", None, "")),
        File(b"", open_error=SourceError("could not start pg_dump")),
    ],
)
def test_source_error_aborts_without_a_snapshot(repo: Repository, broken: File) -> None:
    spec = {"before": b"fine", "db.dump": broken, "zz-after": b"never read"}
    source = MemorySource(spec)
    with pytest.raises(SourceError):
        backup(repo, source)
    assert (b"zz-after",) not in source.opened
    assert not list(repo.backend.list(FileType.SNAPSHOT))
    assert_repository_ok(repo)
    # The repository stays usable: the next backup succeeds.
    assert backup(repo, {"before": b"fine"}).complete
    assert len(list_snapshots(repo)) == 1
    assert_repository_ok(repo)


def test_source_not_in_depth_first_order_is_refused(repo: Repository) -> None:
    """A directory's contents must be contiguous; a second visit would duplicate a name."""

    class Scrambled(MemorySource):
        def entries(self, on_error: ErrorCallback) -> Iterator[SourceEntry]:
            for path in [(b"a", b"x"), (b"b",), (b"a", b"y")]:
                yield SourceEntry(
                    path, EntryKind.DIR if path == (b"b",) else EntryKind.SYMLINK, link_target=b"t"
                )

    with pytest.raises(ValueError):
        backup(repo, Scrambled({}))
    assert not list(repo.backend.list(FileType.SNAPSHOT))
    assert_repository_ok(repo)


def test_summary_node_types(repo: Repository) -> None:
    result = backup(repo, {"l": Link(b"/etc/passwd")})
    (node,) = [n for _, n in walk(repo, result.snapshot.tree)]
    assert isinstance(node, Node) and node.target == b"/etc/passwd"
    assert result.snapshot.summary.files == 0
    assert_repository_ok(repo)
