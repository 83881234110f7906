"""Helpers that start real servers and build realistic data for tests.

Each helper raises `ServerUnavailable` when its server cannot be found or started; the
conftest that uses it calls `server_unavailable`, which skips, or fails under CI=true: a CI
run must not go green by skipping its real servers.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


class ServerUnavailable(RuntimeError):
    """A server binary is missing or the server would not start."""


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1")


def server_unavailable(reason: str) -> NoReturn:
    """Skip, or fail under CI=true, when a real server is missing."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: the real server is required)", pytrace=False)
    pytest.skip(reason)
