"""The read-only wrapper: reads pass, writes are refused and change nothing."""

from __future__ import annotations

import pytest

from snapstore.backend.base import Backend, FileType, Handle
from snapstore.backend.memory import MemoryBackend
from snapstore.backend.readonly import ReadOnlyBackend
from snapstore.errors import ObjectNotFound, PermissionDenied

PACK = Handle(FileType.PACK, "abcdef")


@pytest.fixture
def store() -> MemoryBackend:
    store = MemoryBackend()
    store.save(PACK, b"0123456789")
    return store


def test_reads_pass_through(store: MemoryBackend) -> None:
    backend = ReadOnlyBackend(store)
    assert isinstance(backend, Backend)
    assert backend.location == store.location
    assert backend.load(PACK, 2, 3) == b"234"
    assert backend.stat(PACK).size == 10
    assert [info.handle for info in backend.list(FileType.PACK)] == [PACK]
    with pytest.raises(ObjectNotFound):
        backend.load(Handle(FileType.PACK, "missing"))


def test_writes_are_refused(store: MemoryBackend) -> None:
    backend = ReadOnlyBackend(store)
    with pytest.raises(PermissionDenied, match="read-only"):
        backend.save(Handle(FileType.LOCK, "l1"), b"lock")
    with pytest.raises(PermissionDenied, match="read-only"):
        backend.remove(PACK)
    with pytest.raises(PermissionDenied, match="read-only"):
        backend.create()
    assert list(store.list(FileType.LOCK)) == []
    assert store.load(PACK) == b"0123456789"
