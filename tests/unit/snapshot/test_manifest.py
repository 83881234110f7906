"""The snapshot codec, and saving, loading and naming snapshots through a repository."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import msgpack
import pytest

from snapstore.backend.base import FileType
from snapstore.errors import (
    AmbiguousPrefix,
    IntegrityError,
    PathNotFound,
    SnapshotNotFound,
    UnsupportedVersion,
)
from snapstore.ids import Id
from snapstore.pack import BlobType
from snapstore.repository.repository import Repository
from snapstore.snapshot.manifest import Snapshot, Summary, decode_snapshot, encode_snapshot
from snapstore.snapshot.store import (
    find_node,
    find_snapshot,
    list_snapshots,
    load_snapshot,
    load_tree,
    save_snapshot,
    walk,
)
from snapstore.snapshot.tree import Node, NodeType, encode_tree
from tests.conftest import assert_repository_ok, reopen

TREE = Id(bytes(range(32)))
PARENT = Id(bytes(range(32, 64)))
WHEN = datetime(2026, 3, 4, 5, 6, 7, 890123, tzinfo=timezone(timedelta(hours=2)))


def sample(**changes: Any) -> Snapshot:
    fields: dict[str, Any] = {
        "time": WHEN,
        "host": "mastodon.example",
        "user": "backup",
        "tags": ["daily", "pre-upgrade"],
        "source": "files",
        "paths": ["/home/mastodon/live", "/etc/nginx"],
        "tree": TREE,
        "parent": PARENT,
        "summary": Summary(
            files=10,
            dirs=2,
            bytes_read=1000,
            bytes_added=500,
            blobs_added=7,
            errors=1,
            duration_s=1.25,
        ),
        "chunker": {"files": [1, 2, 4, 2]},
        "program_version": "snapstore 0.1.0",
        "metadata": {"pg_version": "16.2", "rows": {"statuses": 12}},
    }
    fields.update(changes)
    return Snapshot(**fields)


def test_round_trip() -> None:
    original = sample()
    decoded = decode_snapshot(encode_snapshot(original))
    assert decoded == original
    assert decoded.time.utcoffset() == timedelta(hours=2)
    assert isinstance(decoded.tree, Id) and isinstance(decoded.parent, Id)


def test_round_trip_minimal() -> None:
    original = sample(parent=None, tags=[], paths=[], summary=Summary(), chunker={}, metadata={})
    assert decode_snapshot(encode_snapshot(original)) == original


def test_id_is_attached_not_encoded() -> None:
    snap = sample()
    snap.id = Id(bytes(32))
    assert encode_snapshot(snap) == encode_snapshot(sample())
    assert decode_snapshot(encode_snapshot(snap), PARENT).id == PARENT
    assert decode_snapshot(encode_snapshot(snap), PARENT).short_id == PARENT.hex()[:8]
    assert sample().short_id == "(unsaved)"


def test_naive_time_is_refused() -> None:
    with pytest.raises(ValueError):
        encode_snapshot(sample(time=datetime(2026, 1, 1)))


def test_document_layout() -> None:
    doc = msgpack.unpackb(encode_snapshot(sample()), raw=False)
    assert list(doc) == [
        "v",
        "time",
        "host",
        "user",
        "tags",
        "source",
        "paths",
        "tree",
        "parent",
        "summary",
        "chunker",
        "program_version",
        "metadata",
    ]
    assert doc["v"] == 1 and doc["time"] == "2026-03-04T05:06:07.890123+02:00"
    assert doc["tree"] == bytes(TREE)
    assert doc["summary"]["duration_s"] == 1.25


def raw(**changes: Any) -> bytes:
    doc = msgpack.unpackb(encode_snapshot(sample()), raw=False)
    doc.update(changes)
    return msgpack.packb({k: v for k, v in doc.items() if v is not ...}, use_bin_type=True)


def test_unknown_summary_keys_and_missing_optional_fields() -> None:
    doc = raw(
        summary={"files": 3, "from_the_future": 1},
        chunker=...,
        program_version=...,
        metadata=...,
        parent=...,
    )
    snap = decode_snapshot(doc)
    assert snap.summary == Summary(files=3)
    assert snap.parent is None and snap.chunker == {} and snap.metadata == {}


@pytest.mark.parametrize("version", [0, 2, None])
def test_unknown_version(version: Any) -> None:
    with pytest.raises(UnsupportedVersion):
        decode_snapshot(raw(v=version))


@pytest.mark.parametrize(
    "plaintext",
    [
        b"",
        b"\xc1",
        msgpack.packb([1]),
        raw(time="yesterday"),
        raw(time=12),
        raw(tree=b"short"),
        raw(tree=...),
        raw(host=...),
        raw(parent=b"short"),
        raw(summary=[1, 2]),
        encode_snapshot(sample()) + b"\x00",
    ],
)
def test_malformed_snapshots(plaintext: bytes) -> None:
    with pytest.raises(IntegrityError):
        decode_snapshot(plaintext)


def test_every_truncation_is_refused() -> None:
    encoded = encode_snapshot(sample())
    for length in range(len(encoded)):
        with pytest.raises(IntegrityError):
            decode_snapshot(encoded[:length])


# -- through a repository ---------------------------------------------------------------------


def test_save_load_list_find(repo: Repository) -> None:
    complete = Summary(files=10)  # `latest` names only complete snapshots
    older = sample(time=WHEN - timedelta(days=1), tags=["old"], summary=complete)
    newer = sample(summary=complete)
    newer_id = save_snapshot(repo, newer)
    older_id = save_snapshot(repo, older)
    assert newer.id == newer_id and older.id == older_id
    again = reopen(repo)
    loaded = load_snapshot(again, newer_id.hex())
    assert loaded == newer and loaded.id == newer_id
    assert [s.id for s in list_snapshots(again)] == [older_id, newer_id]
    assert find_snapshot(again, "latest").id == newer_id
    assert find_snapshot(again, newer_id.hex()[:8]).id == newer_id
    assert find_snapshot(again, older_id.hex().upper()).id == older_id
    for name in ("", "zzzz", "latest2", "g1", newer_id.hex() + "0"):
        with pytest.raises(SnapshotNotFound):
            find_snapshot(again, name)
    # Snapshots name a tree that is not stored here; remove them before checking.
    for snap_id in (newer_id, older_id):
        repo.remove_object(FileType.SNAPSHOT, snap_id.hex())
    assert_repository_ok(repo)


def test_ambiguous_prefix(repo: Repository) -> None:
    # 17 snapshots: by pigeonhole, two share a first hex digit.
    ids = [save_snapshot(repo, sample(host=f"host{n}")) for n in range(17)]
    firsts = [i.hex()[0] for i in ids]
    shared = next(c for c in firsts if firsts.count(c) > 1)
    with pytest.raises(AmbiguousPrefix):
        find_snapshot(repo, shared)
    for snap_id in ids:
        repo.remove_object(FileType.SNAPSHOT, snap_id.hex())
    assert_repository_ok(repo)


def test_no_snapshots(repo: Repository) -> None:
    with pytest.raises(SnapshotNotFound):
        find_snapshot(repo, "latest")
    assert list_snapshots(repo) == []


def test_trees_through_the_repository(repo: Repository) -> None:
    leaf = repo.save_blob(BlobType.DATA, b"leaf content").id
    inner = repo.save_blob(
        BlobType.TREE, encode_tree([Node(b"f", NodeType.FILE, size=12, content=[leaf])])
    ).id
    root = repo.save_blob(
        BlobType.TREE,
        encode_tree([Node(b"d", NodeType.DIR, subtree=inner), Node(b"l", NodeType.SYMLINK)]),
    ).id
    repo.flush()
    again = reopen(repo)
    assert [n.name for n in load_tree(again, root)] == [b"d", b"l"]
    assert [p for p, _ in walk(again, root)] == [(b"d",), (b"d", b"f"), (b"l",)]
    assert find_node(again, root, "d/f").content == [leaf]  # type: ignore[union-attr]
    assert find_node(again, root, "/d/./f/").size == 12  # type: ignore[union-attr]
    assert find_node(again, root, "") is None
    for missing in ("x", "d/x", "l/f", "d/f/g"):
        with pytest.raises(PathNotFound):
            find_node(again, root, missing)
    assert_repository_ok(repo)
