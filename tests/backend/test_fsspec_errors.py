"""How the fsspec adapter translates foreign exceptions into the snapstore error tree."""

from __future__ import annotations

import errno
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)
from fsspec.exceptions import FSTimeoutError
from fsspec.implementations.local import LocalFileSystem
from s3fs.errors import translate_boto_error

from snapstore.backend.base import FileType, Handle
from snapstore.backend.fsspec import FsspecBackend, _map_errors
from snapstore.backend.retry import RetryBackend
from snapstore.errors import (
    BackendError,
    ObjectExists,
    ObjectNotFound,
    PermissionDenied,
    RangeError,
    SnapstoreError,
    TransientBackendError,
)


def client_error(code: str, status: int) -> ClientError:
    response: Any = {
        "Error": {"Code": code, "Message": f"message for {code}"},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, "GetObject")


def http_error(status: int) -> aiohttp.ClientResponseError:
    request = SimpleNamespace(real_url="http://127.0.0.1:1/bucket/key")
    return aiohttp.ClientResponseError(request, (), status=status)  # type: ignore[arg-type]


def mapped(exc: BaseException) -> BaseException:
    with pytest.raises(BaseException) as caught, _map_errors("s3://bucket/repo/data/ab/abcd"):
        raise exc
    return caught.value


TRANSIENT = [
    client_error("SlowDown", 503),
    client_error("InternalError", 500),
    client_error("ServiceUnavailable", 503),
    client_error("RequestTimeout", 400),
    client_error("Throttling", 400),
    client_error("SomethingNew", 502),
    client_error("TooManyRequests", 429),
    translate_boto_error(client_error("SlowDown", 503)),  # what s3fs raises
    translate_boto_error(client_error("InternalError", 500)),
    ConnectionResetError(errno.ECONNRESET, "reset by peer"),
    OSError(errno.ECONNRESET, "reset by peer"),
    OSError(errno.ETIMEDOUT, "timed out"),
    ConnectionRefusedError(errno.ECONNREFUSED, "refused"),
    TimeoutError(),
    FSTimeoutError(),
    EndpointConnectionError(endpoint_url="http://127.0.0.1:1"),
    ReadTimeoutError(endpoint_url="http://127.0.0.1:1"),
    aiohttp.ServerDisconnectedError(),
    aiohttp.ClientPayloadError("payload cut short"),
    http_error(503),
]

PERMANENT = [
    client_error("InvalidAccessKeyId", 403),
    client_error("SignatureDoesNotMatch", 403),
    client_error("InvalidBucketName", 400),
    client_error("SomethingNew", 401),
    OSError(errno.ENOSPC, "no space left"),
    OSError(errno.EIO, "i/o error"),
    NoCredentialsError(),
    http_error(400),
]

#: The storage refuses the operation itself (a read-only key, a read-only filesystem): the
#: permanent errors a repository that refuses its lock is then read without one for.
DENIED = [
    client_error("AccessDenied", 403),
    client_error("AllAccessDisabled", 403),
    client_error("SomethingNew", 403),
    translate_boto_error(client_error("AccessDenied", 403)),  # what s3fs raises
    http_error(403),
    PermissionError(errno.EACCES, "denied"),
    OSError(errno.EROFS, "read-only file system"),
    OSError(errno.EPERM, "operation not permitted"),
]

NOT_FOUND = [
    client_error("NoSuchKey", 404),
    client_error("NoSuchBucket", 404),
    client_error("404", 404),
    translate_boto_error(client_error("NoSuchKey", 404)),
    FileNotFoundError(errno.ENOENT, "missing"),
]


@pytest.mark.parametrize("exc", TRANSIENT, ids=repr)
def test_transient_failures(exc: BaseException) -> None:
    error = mapped(exc)
    assert isinstance(error, TransientBackendError)
    assert "s3://bucket/repo/data/ab/abcd" in str(error)
    assert error.__cause__ is exc


@pytest.mark.parametrize("exc", PERMANENT, ids=repr)
def test_permanent_failures(exc: BaseException) -> None:
    error = mapped(exc)
    assert type(error) is BackendError
    assert "s3://bucket/repo/data/ab/abcd" in str(error)


@pytest.mark.parametrize("exc", DENIED, ids=repr)
def test_refusals(exc: BaseException) -> None:
    error = mapped(exc)
    assert type(error) is PermissionDenied
    assert "s3://bucket/repo/data/ab/abcd" in str(error)


@pytest.mark.parametrize("exc", NOT_FOUND, ids=repr)
def test_not_found(exc: BaseException) -> None:
    assert isinstance(mapped(exc), ObjectNotFound)


def test_permission_errors_say_so() -> None:
    assert "permission denied" in str(mapped(client_error("AccessDenied", 403)))
    assert "permission denied" in str(mapped(PermissionError(errno.EACCES, "denied")))


def test_invalid_range() -> None:
    assert isinstance(mapped(client_error("InvalidRange", 416)), RangeError)


def test_exists() -> None:
    assert isinstance(mapped(FileExistsError(errno.EEXIST, "exists")), ObjectExists)


def test_own_errors_and_bugs_pass_through() -> None:
    own = ObjectNotFound("already mapped")
    assert mapped(own) is own
    bug = ValueError("a bug, not a storage failure")
    assert mapped(bug) is bug
    assert not isinstance(mapped(KeyError("k")), SnapstoreError)


class FlakyFileSystem(LocalFileSystem):
    """fsspec's local filesystem whose reads drop the connection a set number of times."""

    failures = 0

    def cat_file(self, path: str, start: int | None = None, end: int | None = None) -> bytes:
        if self.failures:
            self.failures -= 1
            raise ConnectionResetError(errno.ECONNRESET, "connection reset by peer")
        return bytes(super().cat_file(path, start=start, end=end))


def test_adapter_methods_map_errors_and_retry_recovers(tmp_path: Path) -> None:
    fs = FlakyFileSystem(skip_instance_cache=True)
    backend = FsspecBackend(fs, str(tmp_path))
    backend.create()
    handle = Handle(FileType.INDEX, "i1")
    backend.save(handle, b"index")
    fs.failures = 1
    with pytest.raises(TransientBackendError, match="index/i1"):
        backend.load(handle)
    fs.failures = 2
    retrying = RetryBackend(backend, sleep=lambda _: None)
    assert retrying.load(handle, 1, 3) == b"nde"
