"""Opening a repository with key files someone else added (issue 10, item 4), and `init`
with an empty password (item 9)."""

from __future__ import annotations

from pathlib import Path

import pytest

from snapstore.backend.base import FileType, Handle
from snapstore.backend.local import LocalBackend
from snapstore.backend.memory import MemoryBackend
from snapstore.crypto import keys
from snapstore.crypto.kdf import TEST_KDF, KdfParams
from snapstore.errors import UsageError, WrongPassword
from snapstore.repository.repository import Repository
from tests.conftest import PASSWORD, assert_repository_ok
from tests.support.key_files import AT_THE_BOUND, FIRST_NAME, HOSTILE, forged_key_file

REAL_DERIVE = keys.derive_wrapping_key


@pytest.fixture
def derived(monkeypatch: pytest.MonkeyPatch) -> list[KdfParams]:
    """The parameters of every key derivation, in order; anything but TEST_KDF is not run."""
    calls: list[KdfParams] = []

    def derive(password: bytes, salt: bytes, params: KdfParams) -> bytes:
        calls.append(params)
        if params != TEST_KDF:
            return bytes(32)  # the forged key files open with nothing anyway
        return REAL_DERIVE(password, salt, params)

    monkeypatch.setattr(keys, "derive_wrapping_key", derive)
    return calls


def planted_first(backend: MemoryBackend, *planted: tuple[str, bytes]) -> MemoryBackend:
    """A copy of `backend` that lists the planted key files before the repository's own,
    as a store listing in name order would."""
    copy = MemoryBackend()
    for name, blob in planted:
        copy.save(Handle(FileType.KEY, name), blob)
    for file_type in FileType:
        for info in backend.list(file_type):
            copy.save(info.handle, backend.load(info.handle))
    return copy


def test_a_hostile_key_file_is_refused_and_the_good_one_opens(
    repo: Repository, backend: MemoryBackend, derived: list[KdfParams]
) -> None:
    backend = planted_first(backend, (FIRST_NAME, forged_key_file(**HOSTILE)))
    assert Repository.open(backend, PASSWORD).hash_blob(b"x") == repo.hash_blob(b"x")
    assert derived == [TEST_KDF]
    with pytest.raises(WrongPassword) as caught:
        Repository.open(backend, b"not the password")
    message = str(caught.value)
    assert f"key file {FIRST_NAME}: Argon2id memory 8388608 KiB is over the bound" in message
    assert "\n" not in message
    assert derived == [TEST_KDF, TEST_KDF]  # the hostile one never
    assert_repository_ok(repo)


def test_the_cheapest_key_file_is_tried_first(
    repo: Repository, backend: MemoryBackend, derived: list[KdfParams]
) -> None:
    """A costly key file (within the bounds) that sorts first waits for the cheap ones."""
    backend = planted_first(
        backend,
        ("1" * 64, forged_key_file(**AT_THE_BOUND)),
        (FIRST_NAME, forged_key_file(**AT_THE_BOUND)),
    )
    Repository.open(backend, PASSWORD)
    assert derived == [TEST_KDF]
    with pytest.raises(WrongPassword):
        Repository.open(backend, b"not the password")
    assert derived[1:] == [TEST_KDF, KdfParams(**AT_THE_BOUND), KdfParams(**AT_THE_BOUND)]
    assert_repository_ok(repo)


class CountingBackend(MemoryBackend):
    def __init__(self) -> None:
        super().__init__()
        self.loaded: list[str] = []

    def load(self, handle: Handle, offset: int = 0, length: int | None = None) -> bytes:
        self.loaded.append(handle.name)
        return super().load(handle, offset, length)


def test_a_huge_key_file_is_never_read(
    repo: Repository, backend: MemoryBackend, derived: list[KdfParams]
) -> None:
    counting = CountingBackend()
    counting.save(Handle(FileType.KEY, FIRST_NAME), bytes(100 << 20))
    for file_type in FileType:
        for info in backend.list(file_type):
            counting.save(info.handle, backend.load(info.handle))
    Repository.open(counting, PASSWORD)
    with pytest.raises(WrongPassword, match=f"key file {FIRST_NAME} is 104857600 bytes"):
        Repository.open(counting, b"not the password")
    assert FIRST_NAME not in counting.loaded
    assert_repository_ok(repo)


def test_init_refuses_an_empty_password_and_creates_nothing(tmp_path: Path) -> None:
    backend = LocalBackend(tmp_path / "repo")
    with pytest.raises(UsageError, match="an empty password is not allowed"):
        Repository.init(backend, b"", kdf=TEST_KDF)
    assert not (tmp_path / "repo").exists()
