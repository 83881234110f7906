"""The fsspec adapter over s3fs against real S3 HTTP endpoints on loopback: moto's server, and
SeaweedFS as a second, independent implementation."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import fsspec
import pytest

from snapstore.backend import open_backend
from snapstore.backend.base import Backend, FileType, Handle
from snapstore.backend.fsspec import FsspecBackend
from snapstore.backend.retry import RetryBackend, RetryPolicy
from snapstore.errors import BackendError, ObjectNotFound, TransientBackendError
from tests.backend.conformance import BackendConformance
from tests.support.s3server import S3Endpoint, delete_bucket, fresh_bucket_name

PACK = Handle(FileType.PACK, "abcdef0123")


def bucket_and_prefix(backend: Backend) -> tuple[str, str]:
    bucket, _, prefix = backend.location.removeprefix("s3://").partition("/")
    return bucket, prefix


def keys(endpoint: S3Endpoint, bucket: str) -> list[str]:
    client = endpoint.boto3_client()
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return sorted(item["Key"] for page in pages for item in page.get("Contents", []))


class TestS3Backend(BackendConformance):
    @pytest.fixture
    def backend(self, s3_backend: Backend, s3_endpoint: S3Endpoint) -> Iterator[Backend]:
        self.endpoint = s3_endpoint
        yield s3_backend

    def plant_stray(self, backend: Backend, relative_path: str, data: bytes) -> None:
        bucket, prefix = bucket_and_prefix(backend)
        self.endpoint.boto3_client().put_object(
            Bucket=bucket, Key=f"{prefix}/{relative_path}", Body=data
        )


class TestSeaweedfsS3Backend(BackendConformance):
    @pytest.fixture
    def backend(
        self, seaweedfs_backend: Backend, seaweedfs_endpoint: S3Endpoint
    ) -> Iterator[Backend]:
        self.endpoint = seaweedfs_endpoint
        yield seaweedfs_backend

    def plant_stray(self, backend: Backend, relative_path: str, data: bytes) -> None:
        bucket, prefix = bucket_and_prefix(backend)
        self.endpoint.boto3_client().put_object(
            Bucket=bucket, Key=f"{prefix}/{relative_path}", Body=data
        )


def test_open_backend_wraps_s3_in_retries(s3_backend: Backend) -> None:
    assert isinstance(s3_backend, RetryBackend)
    assert s3_backend.location.startswith("s3://snapstore-test-")


def test_keys_follow_the_layout(s3_backend: Backend, s3_endpoint: S3Endpoint) -> None:
    s3_backend.save(PACK, b"p")
    s3_backend.save(Handle(FileType.CONFIG), b"c")
    s3_backend.save(Handle(FileType.KEY, "k1"), b"k")
    bucket, _ = bucket_and_prefix(s3_backend)
    assert keys(s3_endpoint, bucket) == ["repo/config", "repo/data/ab/abcdef0123", "repo/keys/k1"]


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-1"])
def test_create_makes_the_bucket_in_any_region(s3_endpoint: S3Endpoint, region: str) -> None:
    bucket = fresh_bucket_name()
    backend = open_backend(
        f"s3://{bucket}/a/b", options={**s3_endpoint.options(), "region": region}
    )
    backend.create()
    backend.create()
    backend.save(PACK, b"p")
    assert keys(s3_endpoint, bucket) == ["a/b/data/ab/abcdef0123"]
    location = s3_endpoint.boto3_client().get_bucket_location(Bucket=bucket)
    assert (location.get("LocationConstraint") or "us-east-1") == region
    delete_bucket(s3_endpoint, bucket)


def test_repository_at_the_bucket_root(s3_endpoint: S3Endpoint) -> None:
    bucket = fresh_bucket_name()
    backend = open_backend(f"s3://{bucket}", options=s3_endpoint.options())
    backend.create()
    backend.save(PACK, b"p")
    backend.save(Handle(FileType.CONFIG), b"c")
    assert keys(s3_endpoint, bucket) == ["config", "data/ab/abcdef0123"]
    assert [info.handle for info in backend.list(FileType.PACK)] == [PACK]
    assert [info.size for info in backend.list(FileType.CONFIG)] == [1]
    delete_bucket(s3_endpoint, bucket)


def test_save_without_bucket_is_a_clear_permanent_error(s3_endpoint: S3Endpoint) -> None:
    backend = open_backend(f"s3://{fresh_bucket_name()}/repo", options=s3_endpoint.options())
    with pytest.raises(BackendError, match="was the repository created") as caught:
        backend.save(PACK, b"p")
    assert not isinstance(caught.value, (ObjectNotFound, TransientBackendError))
    assert list(backend.list(FileType.PACK)) == []
    with pytest.raises(ObjectNotFound):
        backend.load(PACK)


def test_listing_pages_past_a_thousand_keys(s3_backend: Backend) -> None:
    names = [f"{i % 256:02x}{i:06d}" for i in range(1100)]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda name: s3_backend.save(Handle(FileType.PACK, name), b"p"), names))
    s3_backend.save(Handle(FileType.INDEX, "i1"), b"index")
    listed = [info.handle.name for info in s3_backend.list(FileType.PACK)]
    assert sorted(listed) == sorted(names)
    assert [info.handle.name for info in s3_backend.list(FileType.INDEX)] == ["i1"]


def test_objects_written_elsewhere_are_seen(s3_backend: Backend, s3_endpoint: S3Endpoint) -> None:
    """No stale listing cache: another client's writes and deletes show up at once."""
    assert list(s3_backend.list(FileType.SNAPSHOT)) == []
    with pytest.raises(ObjectNotFound):
        s3_backend.stat(Handle(FileType.SNAPSHOT, "s1"))
    bucket, prefix = bucket_and_prefix(s3_backend)
    client = s3_endpoint.boto3_client()
    client.put_object(Bucket=bucket, Key=f"{prefix}/snapshots/s1", Body=b"snap")
    assert [info.size for info in s3_backend.list(FileType.SNAPSHOT)] == [4]
    assert s3_backend.stat(Handle(FileType.SNAPSHOT, "s1")).size == 4
    client.delete_object(Bucket=bucket, Key=f"{prefix}/snapshots/s1")
    assert list(s3_backend.list(FileType.SNAPSHOT)) == []
    with pytest.raises(ObjectNotFound):
        s3_backend.stat(Handle(FileType.SNAPSHOT, "s1"))


def test_credentials_stay_out_of_messages(s3_backend: Backend, s3_endpoint: S3Endpoint) -> None:
    assert s3_endpoint.secret not in s3_backend.location
    with pytest.raises(ObjectNotFound) as caught:
        s3_backend.load(PACK)
    assert s3_endpoint.secret not in str(caught.value)
    assert s3_endpoint.key not in str(caught.value)


def test_unreachable_endpoint_is_transient(s3_endpoint: S3Endpoint) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]  # nothing listens once the socket is closed
    fs = fsspec.filesystem(
        "s3",
        skip_instance_cache=True,
        key=s3_endpoint.key,
        secret=s3_endpoint.secret,
        endpoint_url=f"http://127.0.0.1:{closed_port}",
        client_kwargs={"region_name": s3_endpoint.region},
        config_kwargs={"retries": {"max_attempts": 1}, "connect_timeout": 1},
    )
    fs.retries = 1
    backend = FsspecBackend(fs, "bucket/repo")
    with pytest.raises(TransientBackendError):
        backend.load(PACK)
    with pytest.raises(TransientBackendError):
        list(backend.list(FileType.PACK))


def test_a_dead_endpoint_is_retried_with_warnings_then_given_up(s3_endpoint: S3Endpoint) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    warnings: list[tuple[str, str]] = []
    options = {**s3_endpoint.options(), "endpoint_url": f"http://127.0.0.1:{closed_port}"}
    policy = RetryPolicy(retry_for=1.5, warn=lambda where, text: warnings.append((where, text)))
    backend = open_backend("s3://bucket/repo", options=options, retry=policy)
    with pytest.raises(TransientBackendError, match="giving up") as caught:
        backend.load(PACK)
    assert str(closed_port) in str(caught.value)
    assert len(warnings) >= 2  # one per retry, each as it happens
    assert all(where == "s3://bucket/repo" for where, _ in warnings)
    assert all(f"load {PACK} failed" in text and "retrying in" in text for _, text in warnings)
