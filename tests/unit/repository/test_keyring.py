"""Key management below the command line (issue 15, item 8): key files added, listed and
removed, a password changed crash-safely, and the master key on paper bringing back a
repository whose keys/ folder was lost."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from snapstore.backend.base import FileType, Handle
from snapstore.backend.memory import MemoryBackend
from snapstore.checker.checker import CheckOptions, check_repository
from snapstore.crypto.kdf import TEST_KDF
from snapstore.errors import BackendError, KeyInUse, PaperKeyError, UsageError, WrongPassword
from snapstore.repository.keyring import (
    add_key,
    change_password,
    export_paper_key,
    list_keys,
    remove_key,
)
from snapstore.repository.opening import init_repository, open_repository, recover_repository
from snapstore.repository.repository import Repository
from tests.conftest import PASSWORD, assert_repository_ok
from tests.support.key_files import HOSTILE, forged_key_file


def key_names(backend: MemoryBackend) -> set[str]:
    return {info.handle.name for info in backend.list(FileType.KEY)}


def assert_opens_and_checks(repo: Repository, password: bytes) -> None:
    """assert_repository_ok for a password other than the fixture's."""
    report = check_repository(Repository.open(repo.backend, password), CheckOptions(read_data=True))
    assert report.ok, [str(f) for f in report.findings]


def test_add_list_and_remove(repo: Repository, backend: MemoryBackend) -> None:
    first = str(repo.key_name)
    second = add_key(repo, b"second admin", kdf=TEST_KDF)
    listed = list_keys(repo)
    assert [k.name for k in listed] == [first, second]  # oldest first
    assert [k.in_use for k in listed] == [True, False]
    assert listed[1].kdf == TEST_KDF and listed[1].user is not None and listed[1].created

    again = Repository.open(backend, b"second admin")
    assert again.key_name == second and again.repository_id == repo.repository_id
    assert [k.in_use for k in list_keys(again)] == [False, True]

    with pytest.raises(KeyInUse, match="opened this session"):
        remove_key(repo, first[:6])
    assert remove_key(repo, second[:6]).name == second
    assert key_names(backend) == {first}
    with pytest.raises(WrongPassword):
        Repository.open(backend, b"second admin")
    with pytest.raises(KeyInUse, match="is the last one"):
        remove_key(repo, first, force=True)
    with pytest.raises(UsageError, match="no key file"):
        remove_key(repo, "ffff" if not first.startswith("ffff") else "0000")
    assert_repository_ok(repo)


def test_the_key_in_use_goes_only_when_forced(repo: Repository, backend: MemoryBackend) -> None:
    first = repo.key_name
    assert first is not None
    second = add_key(repo, b"second admin", kdf=TEST_KDF)
    remove_key(repo, first, force=True)
    assert key_names(backend) == {second}
    with pytest.raises(WrongPassword):
        Repository.open(backend, PASSWORD)
    assert_opens_and_checks(repo, b"second admin")


def test_a_key_file_no_reader_tries_is_listed_and_is_not_a_spare(
    repo: Repository, backend: MemoryBackend
) -> None:
    planted = "0" * 64
    backend.save(Handle(FileType.KEY, planted), forged_key_file(**HOSTILE))
    listed = {k.name: k for k in list_keys(repo)}
    assert listed[planted].kdf is None and "over the bound" in listed[planted].refused
    with pytest.raises(KeyInUse, match="is the last one"):
        remove_key(repo, str(repo.key_name), force=True)
    remove_key(repo, planted[:8])
    assert key_names(backend) == {repo.key_name}


def test_change_password(repo: Repository, backend: MemoryBackend) -> None:
    old = repo.key_name
    new, removed = change_password(repo, b"new password", kdf=TEST_KDF)
    assert removed == old and repo.key_name == new and key_names(backend) == {new}
    with pytest.raises(WrongPassword):
        Repository.open(backend, PASSWORD)
    assert Repository.open(backend, b"new password").key_name == new
    assert_opens_and_checks(repo, b"new password")
    with pytest.raises(UsageError, match="empty password"):
        change_password(repo, b"", kdf=TEST_KDF)
    assert key_names(backend) == {new}


def test_a_password_change_cut_short_leaves_both_passwords_working(
    repo: Repository, backend: MemoryBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The new key file is stored before the old one is removed: a crash (here, the removal
    failing) between the two leaves two key files, each opening with its own password."""

    def fail(handle: Handle) -> None:
        raise BackendError("the process died here")

    monkeypatch.setattr(backend, "remove", fail)
    with pytest.raises(BackendError):
        change_password(repo, b"new password", kdf=TEST_KDF)
    assert len(key_names(backend)) == 2
    Repository.open(backend, PASSWORD)
    Repository.open(backend, b"new password")


def test_paper_key_brings_back_a_repository_whose_keys_are_lost(tmp_path: Path) -> None:
    location = str(tmp_path / "repo")
    with init_repository(location, PASSWORD, kdf=TEST_KDF) as repo:
        paper = export_paper_key(repo)
        repository_id = repo.repository_id
    assert f"repository {repository_id[:8]}" in paper.splitlines()[0]
    shutil.rmtree(tmp_path / "repo" / "keys")
    with pytest.raises(WrongPassword):
        open_repository(location, PASSWORD)

    lines = paper.splitlines()
    lines[6] = lines[6][:-1] + ("0" if lines[6][-1] != "0" else "1")  # a check character
    with pytest.raises(PaperKeyError) as caught:
        recover_repository(location, "\n".join(lines), b"after the fire", kdf=TEST_KDF)
    assert caught.value.line == 6
    assert not (tmp_path / "repo" / "keys").exists()

    with recover_repository(location, paper, b"after the fire", kdf=TEST_KDF) as recovered:
        assert recovered.repository_id == repository_id
        assert [k.name for k in list_keys(recovered)] == [recovered.key_name]
    with open_repository(location, b"after the fire") as reopened:
        assert reopened.repository_id == repository_id
        assert_opens_and_checks(reopened, b"after the fire")


def test_another_repositorys_paper_key_is_refused(tmp_path: Path) -> None:
    with init_repository(str(tmp_path / "a"), PASSWORD, kdf=TEST_KDF) as a:
        paper = export_paper_key(a)
    init_repository(str(tmp_path / "b"), PASSWORD, kdf=TEST_KDF).close()
    with pytest.raises(WrongPassword, match="does not open the repository"):
        recover_repository(str(tmp_path / "b"), paper, b"x", kdf=TEST_KDF)
    assert len(list((tmp_path / "b" / "keys").iterdir())) == 1
