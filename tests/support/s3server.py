"""A real S3 HTTP endpoint for tests: moto's server on a free loopback port.

The server runs in a thread of the test process and speaks the S3 wire protocol, so s3fs,
botocore and aiohttp are exercised for real. Credentials are dummies handed to clients
explicitly; nothing here reads or sets AWS_* environment variables.

Every request passes a `RequestCounter` (a WSGI middleware in front of moto), so tests can
count what a command sent over the wire (a snapstore subprocess included, since the server
lives in the test process) and make the next few requests fail with an HTTP error.

`running_s3_server(whole_object_checksums=True)` puts `WholeObjectChecksums` in front as
well: a server that, like some S3 work-alikes, answers every GET, ranged ones included, with
the CRC32 checksum of the whole object.
"""

from __future__ import annotations

import base64
import contextlib
import io
import logging
import threading
import time
import urllib.error
import urllib.request
import uuid
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import boto3

from snapstore.backend import open_backend
from snapstore.backend.base import Backend
from tests.support import ServerUnavailable

START_TIMEOUT = 10.0


WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class RequestCounter:
    """Counts requests by kind (GET, LIST, PUT, HEAD, DELETE, POST, ...) and fails on demand.

    A GET of a bucket (no key) counts as LIST. Counting ignores moto's own /moto-api/ calls.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._log: list[str] = []
        self._uploaded = 0
        self._failures: list[tuple[str, int, str]] = []  # (kind, status, path part) to fail

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()
            self._log.clear()
            self._uploaded = 0

    def clear_failures(self) -> None:
        """Forget the failures `fail_next` asked for that have not happened yet."""
        with self._lock:
            self._failures.clear()

    def counts(self) -> dict[str, int]:
        with self._lock:
            counts = dict(self._counts)
        counts["total"] = sum(counts.values())
        return counts

    def bytes_uploaded(self) -> int:
        """Request body bytes of the PUTs since the last reset."""
        with self._lock:
            return self._uploaded

    def log(self) -> list[str]:
        """'KIND /path?query' for every request counted since the last reset, in order."""
        with self._lock:
            return list(self._log)

    def fail_next(self, kind: str, times: int = 1, status: int = 503, path_part: str = "") -> None:
        """The next `times` requests of this kind (whose path contains `path_part`) get
        `status` instead of an answer (503: S3's SlowDown; other 5xx: InternalError; 4xx:
        AccessDenied)."""
        with self._lock:
            self._failures.extend([(kind, status, path_part)] * times)

    def wrap(self, app: WsgiApp) -> WsgiApp:
        def counting(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            path = environ.get("PATH_INFO", "")
            if path.startswith("/moto-api"):
                return app(environ, start_response)
            kind = _kind(environ["REQUEST_METHOD"], path, environ.get("QUERY_STRING", ""))
            with self._lock:
                self._counts[kind] += 1
                if kind == "PUT":
                    self._uploaded += int(environ.get("CONTENT_LENGTH") or 0)
                query = environ.get("QUERY_STRING", "")
                self._log.append(f"{kind} {path}" + (f"?{query}" if query else ""))
                failure = next(
                    (f for f in self._failures if f[0] == kind and f[2] in path), None
                )
                if failure is not None:
                    self._failures.remove(failure)
            if failure is not None:
                environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
                status = failure[1]
                code = b"SlowDown" if status == 503 else b"InternalError" if status >= 500 else (
                    b"AccessDenied"
                )
                body = b"<Error><Code>" + code + b"</Code><Message>injected</Message></Error>"
                start_response(f"{failure[1]} Injected", [("Content-Type", "application/xml"),
                                                         ("Content-Length", str(len(body)))])
                return [body]
            return app(environ, start_response)

        return counting


class WholeObjectChecksums:
    """Adds `x-amz-checksum-crc32` with the whole object's CRC32 to every GET of an object,
    ranged or not, as some S3 work-alikes do; botocore's default validation then fails every
    ranged read. The checksum is taken from the body of the object's last PUT; `corrupt`
    makes it wrong for the keys whose path contains a given text (for the whole reads that
    must still be checked).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._crc: dict[str, int] = {}
        self._corrupt: list[str] = []

    def corrupt(self, path_part: str) -> None:
        with self._lock:
            self._corrupt.append(path_part)

    def wrap(self, app: WsgiApp) -> WsgiApp:
        def checksumming(
            environ: dict[str, Any], start_response: Callable[..., Any]
        ) -> Iterable[bytes]:
            path, method = environ.get("PATH_INFO", ""), environ["REQUEST_METHOD"]
            if method == "PUT" and not environ.get("QUERY_STRING"):
                body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
                environ["wsgi.input"] = io.BytesIO(body)
                with self._lock:
                    self._crc[path] = zlib.crc32(body)
                return app(environ, start_response)
            with self._lock:
                crc = self._crc.get(path) if method == "GET" else None
                if crc is not None and any(part in path for part in self._corrupt):
                    crc ^= 1
            if crc is None:
                return app(environ, start_response)
            header = base64.b64encode(crc.to_bytes(4, "big")).decode()

            def with_checksum(status: str, headers: list[Any], exc_info: Any = None) -> Any:
                if status.startswith("20"):
                    headers = headers + [("x-amz-checksum-crc32", header)]
                return start_response(status, headers, exc_info)

            return app(environ, with_checksum)

        return checksumming


def _kind(method: str, path: str, query: str) -> str:
    has_key = "/" in path.strip("/")
    if method == "GET" and not has_key and "location" not in parse_qs(query, True):
        return "LIST"
    return method


@dataclass(frozen=True)
class S3Endpoint:
    """Where the test server listens and the credentials it accepts."""

    url: str
    key: str = "snapstore-test-key"
    secret: str = "snapstore-test-secret"
    region: str = "us-east-1"
    requests: RequestCounter = field(default_factory=RequestCounter, compare=False)
    checksums: WholeObjectChecksums | None = field(default=None, compare=False)

    def cli_env(self) -> dict[str, str]:
        """Environment for the snapstore command: options as SNAPSTORE_S3_*, keys as AWS_*."""
        return {
            "SNAPSTORE_S3_ENDPOINT": self.url,
            "SNAPSTORE_S3_REGION": self.region,
            "SNAPSTORE_S3_ADDRESSING_STYLE": "path",
            "AWS_ACCESS_KEY_ID": self.key,
            "AWS_SECRET_ACCESS_KEY": self.secret,
        }

    def options(self) -> dict[str, str]:
        """Options for `open_backend("s3://...", options=...)`."""
        return {
            "endpoint_url": self.url,
            "key": self.key,
            "secret": self.secret,
            "region": self.region,
            "addressing_style": "path",
        }

    def boto3_client(self) -> Any:
        """A plain boto3 client, to look at the bucket behind snapstore's back."""
        return boto3.client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id=self.key,
            aws_secret_access_key=self.secret,
            region_name=self.region,
        )


def fresh_bucket_name() -> str:
    return f"snapstore-test-{uuid.uuid4().hex[:16]}"


@contextlib.contextmanager
def s3_backend_on_fresh_bucket(endpoint: S3Endpoint, prefix: str = "repo") -> Iterator[Backend]:
    """A created backend (via open_backend, so with retries) at s3://<new bucket>/<prefix>.

    The bucket is emptied and deleted afterwards so a long session does not pile up data in
    the server's memory.
    """
    bucket = fresh_bucket_name()
    url = f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"
    backend = open_backend(url, options=endpoint.options())
    backend.create()
    try:
        yield backend
    finally:
        backend.close()
        delete_bucket(endpoint, bucket)


def delete_bucket(endpoint: S3Endpoint, bucket: str) -> None:
    client = endpoint.boto3_client()
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
        if keys:
            client.delete_objects(Bucket=bucket, Delete={"Objects": keys})
    client.delete_bucket(Bucket=bucket)


@contextlib.contextmanager
def running_s3_server(*, whole_object_checksums: bool = False) -> Iterator[S3Endpoint]:
    """Start moto's S3 server on 127.0.0.1 and stop it on exit; ServerUnavailable if it can't.

    With `whole_object_checksums`, GETs carry the whole object's checksum (see
    `WholeObjectChecksums`)."""
    try:
        from moto.server import DomainDispatcherApplication, create_backend_app
        from werkzeug.serving import make_server
    except ImportError as exc:
        raise ServerUnavailable(f"moto[server] is not installed: {exc}") from exc
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    counter = RequestCounter()
    checksums = WholeObjectChecksums() if whole_object_checksums else None
    try:
        app = counter.wrap(DomainDispatcherApplication(create_backend_app))
        if checksums is not None:
            app = checksums.wrap(app)
        server = make_server("127.0.0.1", 0, app, threaded=True)
    except Exception as exc:
        raise ServerUnavailable(f"moto server did not start: {exc}") from exc
    thread = threading.Thread(target=server.serve_forever, daemon=True, name="moto-s3")
    thread.start()
    try:
        host, port = server.server_address[:2]
        url = f"http://{host}:{port}"
        _wait_until_serving(url)
        yield S3Endpoint(url, requests=counter, checksums=checksums)
    finally:
        server.shutdown()
        thread.join()


def _wait_until_serving(url: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            urllib.request.urlopen(url + "/moto-api/", timeout=1).close()
            return
        except urllib.error.HTTPError:
            return  # any HTTP answer means the server is up
        except (TimeoutError, urllib.error.URLError, ConnectionError) as exc:
            if time.monotonic() > deadline:
                raise ServerUnavailable(f"moto server at {url} does not answer: {exc}") from exc
            time.sleep(0.05)
