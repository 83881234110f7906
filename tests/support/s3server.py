"""A real S3 HTTP endpoint for tests: moto's server on a free loopback port.

The server runs in a thread of the test process and speaks the S3 wire protocol, so s3fs,
botocore and aiohttp are exercised for real. Credentials are dummies handed to clients
explicitly; nothing here reads or sets AWS_* environment variables.
"""

from __future__ import annotations

import contextlib
import logging
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3

from snapstore.backend import open_backend
from snapstore.backend.base import Backend
from tests.support import ServerUnavailable

START_TIMEOUT = 10.0


@dataclass(frozen=True)
class S3Endpoint:
    """Where the test server listens and the credentials it accepts."""

    url: str
    key: str = "snapstore-test-key"
    secret: str = "snapstore-test-secret"
    region: str = "us-east-1"

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
def running_s3_server() -> Iterator[S3Endpoint]:
    """Start moto's S3 server on 127.0.0.1 and stop it on exit; ServerUnavailable if it can't."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as exc:
        raise ServerUnavailable(f"moto[server] is not installed: {exc}") from exc
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    try:
        server.start()
        host, port = server.get_host_and_port()
    except Exception as exc:
        raise ServerUnavailable(f"moto server did not start: {exc}") from exc
    try:
        url = f"http://{host}:{port}"
        _wait_until_serving(url)
        yield S3Endpoint(url)
    finally:
        server.stop()


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
