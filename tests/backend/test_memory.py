"""The in-memory backend: the conformance suite, plus isolation between instances."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from snapstore.backend.base import Backend, FileType, Handle
from snapstore.backend.memory import MemoryBackend
from tests.backend.conformance import BackendConformance


class TestMemoryBackend(BackendConformance):
    @pytest.fixture
    def backend(self) -> Iterator[Backend]:
        backend = MemoryBackend()
        backend.create()
        yield backend
        backend.close()


def test_instances_do_not_share_objects() -> None:
    first, second = MemoryBackend(), MemoryBackend()
    first.save(Handle(FileType.KEY, "k1"), b"secret")
    assert list(second.list(FileType.KEY)) == []


def test_location_is_a_label() -> None:
    assert MemoryBackend().location == "memory"
    assert MemoryBackend("memory:test-repo").location == "memory:test-repo"
