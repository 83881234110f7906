"""A backend over any fsspec filesystem (s3 via s3fs, sftp, file, ...) below a root path.

This is the one module that sees fsspec, s3fs, botocore, aiohttp or paramiko exceptions; they
are translated in `_map_errors` and nowhere else:

    FileNotFoundError, NoSuchKey, 404              -> ObjectNotFound
    InvalidRange, 416                              -> RangeError
    timeouts, dropped or refused connections,
    throttling (SlowDown, 429), 5xx, RequestTimeout -> TransientBackendError
    PermissionError, EROFS/EACCES/EPERM,
    AccessDenied, AllAccessDisabled, 403           -> PermissionDenied (permanent)
    bad or expired credentials, 401,
    missing credentials, other OSErrors and 4xx    -> BackendError (permanent)
    anything else (ValueError, TypeError, ...)     -> unchanged: a bug, not a storage failure

Atomicity: on object stores (s3, gcs, azure) one PUT is atomic, so objects are written in
place. On filesystem-like stores (file, sftp) a reader could see a half-written file, so the
bytes go to a `.tmp-*` name in the same folder first and are then renamed.

s3fs caches directory listings; the cache is dropped before every listing and stat so that
objects written by other processes are seen.
"""

from __future__ import annotations

import errno
import posixpath
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from types import ModuleType
from typing import Any

import aiohttp
import botocore.exceptions
import botocore.parsers
from fsspec import AbstractFileSystem

from snapstore.backend import layout
from snapstore.backend.base import FileInfo, FileType, Handle
from snapstore.errors import (
    BackendError,
    ObjectExists,
    ObjectNotFound,
    PermissionDenied,
    RangeError,
    SnapstoreError,
    TransientBackendError,
)

OBJECT_STORE_PROTOCOLS = frozenset(
    {"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl", "oci", "oss", "r2"}
)
"""Protocols whose single PUT is atomic, so no temporary name is needed."""

_TRANSIENT_CODES = frozenset(
    {
        "SlowDown",
        "InternalError",
        "ServiceUnavailable",
        "RequestTimeout",
        "OperationAborted",
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "BandwidthLimitExceeded",
        "XAmzContentSHA256Mismatch",
    }
)
_S3_PROTOCOLS = frozenset({"s3", "s3a"})
_DEFAULT_S3_REGIONS = frozenset({"us-east-1", "aws-global"})
_NOT_FOUND_CODES = frozenset({"NoSuchKey", "NoSuchBucket", "NotFound"})
_RANGE_CODES = frozenset({"InvalidRange"})
_DENIED_CODES = frozenset({"AccessDenied", "AllAccessDisabled"})
_DENIED_ERRNOS = frozenset({errno.EROFS, errno.EACCES, errno.EPERM})
_PERMISSION_CODES = frozenset(
    {
        "ExpiredToken",
        "InvalidAccessKeyId",
        "InvalidToken",
        "SignatureDoesNotMatch",
        "RequestTimeTooSkewed",
    }
)
_TRANSIENT_ERRNOS = frozenset(
    {
        errno.ECONNRESET,
        errno.ECONNABORTED,
        errno.ECONNREFUSED,
        errno.ETIMEDOUT,
        errno.EPIPE,
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
        errno.ENETDOWN,
        errno.EAGAIN,
    }
)


_TRANSIENT_TYPES: tuple[type[BaseException], ...] = (
    TimeoutError,  # also socket.timeout, asyncio.TimeoutError and fsspec's FSTimeoutError
    ConnectionError,  # reset, refused, aborted, broken pipe
    botocore.exceptions.ConnectionError,
    botocore.exceptions.HTTPClientError,
    botocore.exceptions.IncompleteReadError,
    botocore.parsers.ResponseParserError,  # throttling replies with broken XML
    aiohttp.ClientConnectionError,
    aiohttp.ClientPayloadError,
)


def _ssh_errors() -> ModuleType | None:
    """paramiko's exceptions, once sftp.py has loaded paramiko: no paramiko error can be
    raised before, and importing it here would cost every S3 command 80 ms."""
    return sys.modules.get("paramiko.ssh_exception")


class FsspecBackend:
    """Objects under `root` on an fsspec filesystem.

    `atomic_put` says whether one write is atomic on this store; by default it is guessed from
    the protocol (true for object stores). `location` labels messages; it defaults to the
    root with its protocol and must not contain credentials. `put_options` are extra keyword
    arguments for the writes of one file type (s3: `{"StorageClass": ...}` for data packs; a
    pack saved with its handle marked `metadata`, one of trees, gets none);
    `closer` is called by `close` (to end a connection the filesystem holds).
    """

    def __init__(
        self,
        fs: AbstractFileSystem,
        root: str,
        *,
        atomic_put: bool | None = None,
        location: str | None = None,
        put_options: Mapping[FileType, Mapping[str, Any]] | None = None,
        closer: Callable[[], object] | None = None,
    ) -> None:
        self._fs = fs
        self._root = fs._strip_protocol(root).rstrip("/")
        if not self._root:
            raise ValueError("the root path of an fsspec backend must not be empty")
        protocols = {fs.protocol} if isinstance(fs.protocol, str) else set(fs.protocol)
        self._protocols = frozenset(protocols)
        if atomic_put is None:
            atomic_put = bool(protocols & OBJECT_STORE_PROTOCOLS)
        self._atomic_put = atomic_put
        self._location = location or fs.unstrip_protocol(self._root)
        self._put_options = {t: dict(o) for t, o in (put_options or {}).items()}
        self._closer = closer

    @property
    def location(self) -> str:
        return self._location

    def create(self) -> None:
        with _map_errors(self._location):
            if self._protocols & _S3_PROTOCOLS:
                self._create_bucket()  # keys need no folders
                return
            self._fs.makedirs(self._root, exist_ok=True)
            for file_type in FileType:
                if folder := layout.directory(file_type):
                    self._fs.makedirs(self._join(folder), exist_ok=True)

    def save(self, handle: Handle, data: bytes) -> None:
        path, where = self._path(handle), self._where(handle)
        temp = None if self._atomic_put else f"{posixpath.dirname(path)}/{layout.temp_name()}"
        try:
            with _map_errors(where):
                # a pack of trees (marked metadata) is read by every ls and backup: no cold class
                options = {} if handle.metadata else self._put_options.get(handle.type, {})
                self._write_file(temp or path, data, options)
                if temp is not None:
                    self._fs.mv(temp, path)
        except ObjectNotFound as exc:
            raise BackendError(
                f"cannot save {where}: its bucket or folder does not exist "
                "(was the repository created?)"
            ) from exc
        except BaseException:
            if temp is not None:
                self._remove_quietly(temp)
            raise

    def load(self, handle: Handle, offset: int = 0, length: int | None = None) -> bytes:
        path, where = self._path(handle), self._where(handle)
        layout.check_range(offset, length)
        if length is None and offset == 0:
            with _map_errors(where):
                return bytes(self._fs.cat_file(path))
        if length is None or length == 0:
            # the end is not known, or an empty read must still prove the object exists
            end = layout.range_end(self.stat(handle).size, offset, length, where)
            if end == offset:
                return b""
            length = end - offset
        with _map_errors(where):
            data = bytes(self._fs.cat_file(path, start=offset, end=offset + length))
        if len(data) != length:
            raise RangeError(
                f"{where}: range {offset}..{offset + length} reaches past the end of the object"
            )
        return data

    def stat(self, handle: Handle) -> FileInfo:
        path, where = self._path(handle), self._where(handle)
        with _map_errors(where):
            self._fs.invalidate_cache(path)
            info = self._fs.info(path)
        if info.get("type") == "directory":
            raise ObjectNotFound(f"{where} is a folder, not an object")
        return FileInfo(handle, int(info["size"]))

    def remove(self, handle: Handle) -> None:
        if self._atomic_put:
            self.stat(handle)  # object stores report success for absent keys
        with _map_errors(self._where(handle)):
            self._fs.rm_file(self._path(handle))

    def list(self, file_type: FileType) -> Iterator[FileInfo]:
        if file_type is FileType.CONFIG:
            try:
                yield self.stat(Handle(FileType.CONFIG))
            except ObjectNotFound:
                pass
            return
        folder = layout.directory(file_type)
        try:
            with _map_errors(f"{self._location}/{folder}"):
                self._fs.invalidate_cache()
                found: Mapping[str, Mapping[str, Any]]
                if self._protocols & _S3_PROTOCOLS:
                    # by key prefix: one request, where find(folder) adds two more for an
                    # empty folder (checking that the "folder" exists)
                    found = self._fs.find(self._root, prefix=f"{folder}/", detail=True)
                else:
                    found = self._fs.find(self._join(folder), detail=True)
        except ObjectNotFound:
            return
        prefix = self._root + "/"
        for path, info in sorted(found.items()):
            if info.get("type") == "directory" or not path.startswith(prefix):
                continue
            handle = layout.handle_from_path(path[len(prefix) :])
            if handle is not None and handle.type is file_type:
                yield FileInfo(handle, int(info["size"]))

    def close(self) -> None:
        if self._closer is not None:
            closer, self._closer = self._closer, None
            with _map_errors(self._location):
                closer()

    def _join(self, relative: str) -> str:
        return f"{self._root}/{relative}"

    def _path(self, handle: Handle) -> str:
        return self._join(layout.object_path(handle))

    def _where(self, handle: Handle) -> str:
        """The object's address for messages: the location, never the bare fs path."""
        return f"{self._location}/{layout.object_path(handle)}"

    def _create_bucket(self) -> None:
        """Make the bucket; s3fs's own makedirs sends a LocationConstraint S3 rejects."""
        bucket = self._root.split("/", 1)[0]
        if self._fs.exists(bucket):
            return
        self._fs.connect()
        region = self._fs.s3.meta.region_name
        params: dict[str, Any] = {"Bucket": bucket}
        if region and region not in _DEFAULT_S3_REGIONS:
            params["CreateBucketConfiguration"] = {"LocationConstraint": region}
        try:
            self._fs.call_s3("create_bucket", **params)
        except FileExistsError as exc:
            if _error_code(exc) != "BucketAlreadyOwnedByYou":
                raise
        self._fs.invalidate_cache()

    def _write_file(self, path: str, data: bytes, options: Mapping[str, Any]) -> None:
        """Write a file, making its folder (a new pack shard) if needed, but never the root."""
        try:
            self._fs.pipe_file(path, bytes(data), **options)
            return
        except FileNotFoundError:
            pass
        folder = posixpath.dirname(path)
        try:
            self._fs.mkdir(folder, create_parents=False)
        except OSError:
            if not self._fs.isdir(folder):  # else another writer made it first
                raise
        self._fs.pipe_file(path, bytes(data), **options)

    def _remove_quietly(self, path: str) -> None:
        try:
            with _map_errors(path):
                self._fs.rm_file(path)
        except BackendError:
            pass


@contextmanager
def _map_errors(where: str) -> Iterator[None]:
    """Translate foreign storage exceptions into the snapstore error tree."""
    try:
        yield
    except SnapstoreError:
        raise
    except Exception as exc:
        mapped = _translate(exc, where)
        if mapped is None:
            raise
        raise mapped from exc


map_errors = _map_errors
"""The same boundary for other modules of this package that call fsspec (sftp.py connects)."""


def _translate(exc: Exception, where: str) -> BackendError | None:
    client_error = _client_error(exc)
    if client_error is not None:
        return _translate_client_error(client_error, where)
    if isinstance(exc, FileNotFoundError):
        return ObjectNotFound(f"{where}: no such object")
    if isinstance(exc, FileExistsError):
        return ObjectExists(f"{where}: already exists")
    if isinstance(exc, PermissionError):
        return PermissionDenied(f"{where}: permission denied ({exc})")
    ssh = _ssh_errors()
    if ssh is not None and isinstance(exc, ssh.AuthenticationException):
        return BackendError(f"{where}: authentication failed ({exc})")
    if isinstance(exc, _TRANSIENT_TYPES) or (ssh is not None and isinstance(exc, ssh.NoValidConnectionsError)):
        return TransientBackendError(f"{where}: {_describe(exc)}")
    if isinstance(exc, aiohttp.ClientResponseError):
        return _by_status(exc.status, where, _describe(exc))
    if ssh is not None and isinstance(exc, ssh.SSHException):
        return TransientBackendError(f"{where}: connection problem ({exc})")
    if isinstance(exc, OSError):
        if exc.errno in _TRANSIENT_ERRNOS:
            return TransientBackendError(f"{where}: {_describe(exc)}")
        if exc.errno in _DENIED_ERRNOS:
            return PermissionDenied(f"{where}: {_describe(exc)}")
        return BackendError(f"{where}: {_describe(exc)}")
    if isinstance(exc, botocore.exceptions.BotoCoreError):
        return BackendError(f"{where}: {_describe(exc)}")  # e.g. no credentials
    return None


def _client_error(exc: BaseException) -> botocore.exceptions.ClientError | None:
    """The botocore ClientError behind an exception; s3fs re-raises them as OSErrors."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, botocore.exceptions.ClientError):
            return current
        seen.add(id(current))
        current = current.__cause__
    return None


def _error_code(exc: BaseException) -> str:
    client_error = _client_error(exc)
    if client_error is None:
        return ""
    response: Mapping[str, Any] = getattr(client_error, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def _translate_client_error(exc: botocore.exceptions.ClientError, where: str) -> BackendError:
    response: Mapping[str, Any] = getattr(exc, "response", None) or {}
    error = response.get("Error", {})
    code = _error_code(exc)
    message = str(error.get("Message", "")) or str(exc)
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    detail = f"{code or 'error'}: {message}"
    if code in _NOT_FOUND_CODES or status == 404 or code == "404":
        return ObjectNotFound(f"{where}: no such object ({detail})")
    if code in _RANGE_CODES or status == 416:
        return RangeError(f"{where}: range past the end of the object ({detail})")
    if code in _TRANSIENT_CODES:
        return TransientBackendError(f"{where}: {detail}")
    if code in _DENIED_CODES:
        return PermissionDenied(f"{where}: permission denied ({detail})")
    if code in _PERMISSION_CODES:
        return BackendError(f"{where}: permission denied ({detail})")
    if isinstance(status, int):
        return _by_status(status, where, detail)
    if code.isdigit():
        return _by_status(int(code), where, detail)
    return BackendError(f"{where}: {detail}")


def _by_status(status: int, where: str, detail: str) -> BackendError:
    if status == 404:
        return ObjectNotFound(f"{where}: no such object ({detail})")
    if status == 416:
        return RangeError(f"{where}: range past the end of the object ({detail})")
    if status >= 500 or status in (408, 429):
        return TransientBackendError(f"{where}: HTTP {status} ({detail})")
    if status == 403:
        return PermissionDenied(f"{where}: permission denied (HTTP {status}: {detail})")
    if status == 401:
        return BackendError(f"{where}: permission denied (HTTP {status}: {detail})")
    return BackendError(f"{where}: HTTP {status} ({detail})")


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
