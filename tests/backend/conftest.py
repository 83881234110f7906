"""Fixtures for backend tests: a real S3 endpoint (moto's server on loopback) and buckets on it.

The server is started once per session by `tests.support.s3server`; when it cannot be started
the S3 tests are skipped, except under CI=true, where they fail.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import NoReturn

import pytest

from snapstore.backend.base import Backend
from tests.support import ServerUnavailable
from tests.support.s3server import S3Endpoint, running_s3_server, s3_backend_on_fresh_bucket


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1")


def server_unavailable(reason: str) -> NoReturn:
    """Skip, or fail under CI=true, when a real server is missing."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: the S3 endpoint is required)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[S3Endpoint]:
    with contextlib.ExitStack() as stack:
        try:
            endpoint = stack.enter_context(running_s3_server())
        except ServerUnavailable as exc:
            server_unavailable(f"S3 endpoint unavailable: {exc}")
        yield endpoint


@pytest.fixture
def s3_backend(s3_endpoint: S3Endpoint) -> Iterator[Backend]:
    """A created, empty backend at s3://<fresh bucket>/repo, opened with open_backend."""
    with s3_backend_on_fresh_bucket(s3_endpoint) as backend:
        yield backend
