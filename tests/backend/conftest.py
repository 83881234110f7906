"""Fixtures for backend tests: two real S3 endpoints on loopback and repositories on them.

moto's server (`tests.support.s3server`) and SeaweedFS (`tests.support.seaweedfs`), each
started once per session when a test first needs it; when one cannot be started its tests are
skipped, except under CI=true, where they fail.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import pytest

from snapstore.backend import open_backend
from snapstore.backend.base import Backend
from tests.support import required_server
from tests.support.s3server import (
    S3Endpoint,
    delete_bucket,
    fresh_bucket_name,
    running_s3_server,
    s3_backend_on_fresh_bucket,
)
from tests.support.seaweedfs import running_seaweedfs


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[S3Endpoint]:
    with required_server(running_s3_server(), "S3 endpoint") as endpoint:
        yield endpoint


@pytest.fixture
def s3_backend(s3_endpoint: S3Endpoint) -> Iterator[Backend]:
    """A created, empty backend at s3://<fresh bucket>/repo, opened with open_backend."""
    with s3_backend_on_fresh_bucket(s3_endpoint) as backend:
        yield backend


@pytest.fixture(scope="session")
def seaweedfs_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Endpoint]:
    with required_server(
        running_seaweedfs(tmp_path_factory.mktemp("seaweedfs")), "SeaweedFS S3 server"
    ) as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def seaweedfs_bucket(seaweedfs_endpoint: S3Endpoint) -> Iterator[str]:
    """One bucket for the session: SeaweedFS makes a collection of volumes for each bucket,
    which takes about a second, so its tests get a fresh prefix each instead."""
    bucket = fresh_bucket_name()
    seaweedfs_endpoint.boto3_client().create_bucket(Bucket=bucket)
    yield bucket
    with contextlib.suppress(Exception):
        delete_bucket(seaweedfs_endpoint, bucket)


@pytest.fixture
def seaweedfs_backend(seaweedfs_endpoint: S3Endpoint, seaweedfs_bucket: str) -> Iterator[Backend]:
    """A created, empty backend at s3://<session bucket>/<fresh prefix> on SeaweedFS."""
    prefix = f"repo-{uuid.uuid4().hex[:12]}"
    backend = open_backend(f"s3://{seaweedfs_bucket}/{prefix}", options=seaweedfs_endpoint.options())
    backend.create()
    try:
        yield backend
    finally:
        backend.close()
        client = seaweedfs_endpoint.boto3_client()
        pages = client.get_paginator("list_objects_v2").paginate(
            Bucket=seaweedfs_bucket, Prefix=f"{prefix}/"
        )
        for page in pages:
            keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if keys:
                client.delete_objects(Bucket=seaweedfs_bucket, Delete={"Objects": keys})
