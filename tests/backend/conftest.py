"""Fixtures for backend tests: a real S3 endpoint (moto's server on loopback) and buckets on it.

The server is started once per session by `tests.support.s3server`; when it cannot be started
the S3 tests are skipped, except under CI=true, where they fail.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from snapstore.backend.base import Backend
from tests.support import required_server
from tests.support.s3server import S3Endpoint, running_s3_server, s3_backend_on_fresh_bucket


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[S3Endpoint]:
    with required_server(running_s3_server(), "S3 endpoint") as endpoint:
        yield endpoint


@pytest.fixture
def s3_backend(s3_endpoint: S3Endpoint) -> Iterator[Backend]:
    """A created, empty backend at s3://<fresh bucket>/repo, opened with open_backend."""
    with s3_backend_on_fresh_bucket(s3_endpoint) as backend:
        yield backend
