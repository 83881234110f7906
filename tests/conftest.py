"""Shared fixtures for every layer: a memory backend, an initialised repository, a checker."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from snapstore.backend.memory import MemoryBackend
from snapstore.checker.checker import CheckOptions, check_repository
from snapstore.crypto.kdf import TEST_KDF
from snapstore.repository.repository import Repository

PASSWORD = b"correct horse battery staple"


@pytest.fixture
def backend() -> MemoryBackend:
    return MemoryBackend()


@pytest.fixture
def repo(backend: MemoryBackend) -> Iterator[Repository]:
    """An initialised repository with cheap KDF parameters and small packs."""
    repository = Repository.init(backend, PASSWORD, kdf=TEST_KDF, pack_size=1 << 20)
    yield repository
    repository.close()


def reopen(repo: Repository, *, load_index: bool = True) -> Repository:
    """A fresh handle on the same backend, as a second process would see it."""
    again = Repository.open(repo.backend, PASSWORD)
    if load_index:
        again.load_index()
    return again


def assert_repository_ok(repo: Repository, read_data: bool = True) -> None:
    """Runs the real checker on a fresh handle; every test that writes ends with this."""
    report = check_repository(reopen(repo, load_index=False), CheckOptions(read_data=read_data))
    assert report.ok, [str(f) for f in report.findings]
