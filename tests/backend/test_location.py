"""open_backend: which backend stack a path or URL turns into, and what it refuses."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from snapstore.backend import open_backend
from snapstore.backend.base import Backend, FileType, Handle
from snapstore.backend.fsspec import FsspecBackend
from snapstore.backend.local import LocalBackend
from snapstore.backend.location import DEFAULT_CONNECTIONS, default_connections, is_local
from snapstore.backend.retry import RetryBackend
from snapstore.crypto.kdf import TEST_KDF
from snapstore.errors import UsageError
from snapstore.repository.opening import init_repository, open_repository
from tests.conftest import PASSWORD


def test_plain_path_is_local(tmp_path: Path) -> None:
    backend = open_backend(str(tmp_path / "repo"))
    assert isinstance(backend, LocalBackend)
    assert backend.location == str(tmp_path / "repo")
    backend.create()
    backend.save(Handle(FileType.CONFIG), b"c")
    assert (tmp_path / "repo" / "config").read_bytes() == b"c"


def test_relative_path_is_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    backend = open_backend("repo")
    assert backend.location == os.path.join(str(tmp_path), "repo")


@pytest.mark.parametrize("prefix", ["file://", "file://localhost"])
def test_file_url_is_local(tmp_path: Path, prefix: str) -> None:
    backend = open_backend(f"{prefix}{tmp_path}/my%20repo")
    assert isinstance(backend, LocalBackend)
    assert backend.location == f"{tmp_path}/my repo"


def test_file_url_with_a_host_is_refused() -> None:
    with pytest.raises(UsageError, match="local path"):
        open_backend("file://server/share/repo")


@pytest.mark.parametrize("url", ["memory:", "memory://repo", "memory:repo"])
def test_memory_urls_are_refused(url: str) -> None:
    with pytest.raises(UsageError, match="MemoryBackend"):
        open_backend(url)


def test_local_paths_take_no_options(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no options"):
        open_backend(str(tmp_path), options={"region": "x"})
    with pytest.raises(UsageError, match="no options"):
        open_backend(f"file://{tmp_path}", options={"region": "x"})


def test_s3_is_fsspec_with_retries() -> None:
    backend = open_backend("s3://bucket/some/prefix/", options={"region": "eu-west-1"})
    assert isinstance(backend, RetryBackend)
    assert isinstance(backend._inner, FsspecBackend)
    assert backend.location == "s3://bucket/some/prefix"


def test_s3_options_reach_s3fs() -> None:
    options = {
        "endpoint_url": "http://127.0.0.1:9000",
        "region": "eu-central-1",
        "key": "AKIAEXAMPLE",
        "secret": "very-secret",
        "addressing_style": "path",
    }
    backend = open_backend("s3://bucket/repo", options=options)
    assert isinstance(backend, RetryBackend) and isinstance(backend._inner, FsspecBackend)
    fs = backend._inner._fs
    assert fs.endpoint_url == "http://127.0.0.1:9000"
    assert fs.key == "AKIAEXAMPLE" and fs.secret == "very-secret"
    assert fs.client_kwargs == {"region_name": "eu-central-1"}
    assert fs.config_kwargs["s3"] == {"addressing_style": "path"}
    assert fs.config_kwargs["max_pool_connections"] == 5
    assert "very-secret" not in backend.location


def test_s3_checksums_are_checked_when_asked_for() -> None:
    """Some work-alikes send the whole object's checksum with a ranged GET: botocore checks
    only the GETs that ask for a checksum (whole-object GETs ask, see location._s3_session)."""
    backend = open_backend("s3://bucket/repo", options={"profile": "backup"})
    assert isinstance(backend, RetryBackend) and isinstance(backend._inner, FsspecBackend)
    fs = backend._inner._fs
    assert fs.config_kwargs["response_checksum_validation"] == "when_required"
    assert fs.session.profile == "backup"  # the profile goes to the session made for this
    # what is asked for, and checked, on a real server: tests/backend/test_s3_checksums.py


def test_connections_and_storage_class_reach_s3fs() -> None:
    backend = open_backend(
        "s3://bucket/repo", options={"storage_class": "STANDARD_IA"}, connections=12
    )
    assert isinstance(backend, RetryBackend) and isinstance(backend._inner, FsspecBackend)
    assert backend._inner._fs.config_kwargs["max_pool_connections"] == 12
    assert backend._inner._put_options == {FileType.PACK: {"StorageClass": "STANDARD_IA"}}


@pytest.mark.parametrize(
    ("location", "local"),
    [("/srv/backup", True), ("file:///srv/backup", True), ("repo", True),
     ("s3://b/p", False), ("sftp://u@h/p", False), ("gs://b/p", False)],
)  # fmt: skip
def test_is_local(location: str, local: bool) -> None:
    assert is_local(location) is local


@pytest.mark.parametrize(
    ("url", "options", "connections", "message"),
    [
        ("sftp://u@h/p", {"password": "x"}, None, "unknown sftp options"),
        ("sftp://u@h/", {}, None, "no path"),
        ("sftp:///p", {}, None, "no host"),
        ("s3://bucket/repo", {}, 0, "at least 1"),
    ],
)
def test_bad_remote_options(
    url: str, options: dict[str, str], connections: int | None, message: str
) -> None:
    with pytest.raises(UsageError, match=message):
        open_backend(url, options=options, connections=connections)


def test_each_s3_backend_gets_its_own_filesystem() -> None:
    first = open_backend("s3://bucket/a", options={"key": "one"})
    second = open_backend("s3://bucket/a", options={"key": "two"})
    assert isinstance(first, RetryBackend) and isinstance(second, RetryBackend)
    assert isinstance(first._inner, FsspecBackend) and isinstance(second._inner, FsspecBackend)
    assert first._inner._fs is not second._inner._fs


@pytest.mark.parametrize(
    ("url", "options", "message"),
    [
        ("s3://", {}, "no bucket"),
        ("s3://bucket/repo", {"secret_key": "x"}, "unknown s3 options"),
        ("s3://bucket/repo", {"addressing_style": "sideways"}, "addressing_style"),
        ("nosuchscheme://host/repo", {}, "unknown storage scheme"),
        ("simplecache::s3://bucket/repo", {}, "chained"),
    ],
)
def test_bad_urls_and_options(url: str, options: dict[str, str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        open_backend(url, options=options)


def test_other_fsspec_protocols_get_the_adapter_with_retries() -> None:
    backend: Backend = open_backend("http://user:hunter2@127.0.0.1:1/repo")
    assert isinstance(backend, RetryBackend)
    assert isinstance(backend._inner, FsspecBackend)
    assert "hunter2" not in backend.location
    assert backend.location == "http://user:***@127.0.0.1:1/repo"


def test_missing_fsspec_implementation_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="cannot open"):
        open_backend("gcs://bucket/repo")  # gcsfs is not a dependency


def test_a_local_repository_reads_with_a_thread_per_core_unless_told(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Connections hide a remote store's round trips; on a local disk a read waits for
    nothing, and threads beyond the cores only pass the GIL around."""
    monkeypatch.setattr(os, "cpu_count", lambda: 6)
    assert default_connections(str(tmp_path / "repo")) == 6
    assert default_connections(f"file://{tmp_path}/repo") == 6
    assert default_connections("s3://bucket/prefix") == DEFAULT_CONNECTIONS
    assert default_connections("sftp://backup@host/srv/repo") == DEFAULT_CONNECTIONS
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    assert default_connections(str(tmp_path / "repo")) == 2
    monkeypatch.setattr(os, "cpu_count", lambda: 3)
    location = str(tmp_path / "repo")
    with init_repository(location, PASSWORD, kdf=TEST_KDF) as repo:
        assert repo.connections == 3
    with open_repository(location, PASSWORD, connections=7) as repo:
        assert repo.connections == 7
