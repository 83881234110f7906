"""A whole object that fails authentication is named (issue 10, item 9): the config (damaged, or
from another repository) and a snapshot or index file sealed with another repository's key.
Before, each said only "ciphertext failed authentication"."""

from __future__ import annotations

import pytest

from snapstore.backend.base import FileType, Handle
from snapstore.backend.memory import MemoryBackend
from snapstore.crypto.kdf import TEST_KDF
from snapstore.errors import AuthenticationFailed
from snapstore.repository.repository import Repository
from tests.conftest import PASSWORD, assert_repository_ok


def _other() -> Repository:
    return Repository.init(MemoryBackend(), PASSWORD, kdf=TEST_KDF)


def test_a_flipped_config_is_named(repo: Repository) -> None:
    sealed = bytearray(repo.backend.load(Handle(FileType.CONFIG)))
    sealed[-3] ^= 1
    repo.backend.save(Handle(FileType.CONFIG), bytes(sealed))
    with pytest.raises(AuthenticationFailed, match=r"^config: ciphertext failed authentication.*another repository"):
        Repository.open(repo.backend, PASSWORD)


def test_a_config_from_another_repository_is_named(repo: Repository) -> None:
    other = _other()
    foreign = other.backend.load(Handle(FileType.CONFIG))
    repo.backend.save(Handle(FileType.CONFIG), foreign)
    with pytest.raises(AuthenticationFailed, match=r"^config: .*damaged or belongs to another repository"):
        Repository.open(repo.backend, PASSWORD)


@pytest.mark.parametrize("file_type", [FileType.SNAPSHOT, FileType.INDEX])
def test_an_object_from_another_repository_is_named(repo: Repository, file_type: FileType) -> None:
    other = _other()
    name = other.save_object(file_type, b"\x80").hex()  # an empty msgpack map
    repo.backend.save(Handle(file_type, name), other.backend.load(Handle(file_type, name)))
    with pytest.raises(AuthenticationFailed) as raised:
        repo.load_object(file_type, name)
    assert str(raised.value).startswith(f"{file_type.value}/{name[:16]}: ciphertext failed authentication")
    assert "another repository" in str(raised.value)
    repo.backend.remove(Handle(file_type, name))
    assert_repository_ok(repo)
