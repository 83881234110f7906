"""StreamSource (`snapshot stdin`) refuses an empty stream unless allowed: a producer that
died before writing anything must not leave an empty snapshot as the newest of its group."""

from __future__ import annotations

import io

import pytest

from snapstore.archiver.archiver import Archiver
from snapstore.errors import SourceError
from snapstore.pack import BlobType
from snapstore.repository.repository import Repository
from snapstore.snapshot.content import chunk_ids
from snapstore.snapshot.store import find_node, list_snapshots
from snapstore.sources.stdin import StreamSource
from tests.conftest import assert_repository_ok


class ReadOnly:
    """A stream with `read` and nothing else (no readinto)."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def read(self, size: int = -1) -> bytes:
        return self._data.read(min(size, 7) if size > 0 else size)


def test_an_empty_stream_is_refused(repo: Repository) -> None:
    with pytest.raises(SourceError, match=r"db.dump: the stream was empty, so no snapshot was recorded"):
        Archiver(repo).run(StreamSource(io.BytesIO(b""), "db.dump"))
    assert list_snapshots(repo) == []
    assert_repository_ok(repo)


def test_an_empty_stream_is_recorded_when_allowed(repo: Repository) -> None:
    result = Archiver(repo).run(StreamSource(io.BytesIO(b""), "db.dump", allow_empty=True))
    node = find_node(repo, result.snapshot.tree, "db.dump")
    assert node is not None and node.size == 0
    assert len(list_snapshots(repo)) == 1
    assert_repository_ok(repo)


def test_a_stream_without_readinto_is_read_whole(repo: Repository) -> None:
    data = bytes(range(256)) * 1000
    result = Archiver(repo).run(StreamSource(ReadOnly(data), "x.bin"))  # type: ignore[arg-type]
    node = find_node(repo, result.snapshot.tree, "x.bin")
    assert node is not None
    assert b"".join(repo.load_blob(BlobType.DATA, i) for i in chunk_ids(repo, node)) == data
    assert_repository_ok(repo)
