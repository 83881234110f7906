"""Helpers that start real servers and build realistic data for tests.

Each helper raises `ServerUnavailable` when its server cannot be found or started; the
conftest that uses it calls `server_unavailable`, which skips, or fails under CI=true: a CI
run must not go green by skipping its real servers.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import NoReturn, TypeVar

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


def require_root(what: str) -> None:
    """Skip unless running as root, or fail under CI=true (CI runs the suite as root): a test
    of what only root may do (mknod, restoring owners) must not pass there by skipping."""
    if os.geteuid() == 0:
        return
    if in_ci():
        pytest.fail(f"{what} needs root (CI=true: the suite must run as root)", pytrace=False)
    pytest.skip(f"{what} needs root")


T = TypeVar("T")


@contextlib.contextmanager
def required_server(server: AbstractContextManager[T], what: str) -> Iterator[T]:
    """Enters a server's context manager; if it cannot start, skips (fails under CI=true)."""
    with contextlib.ExitStack() as stack:
        try:
            running = stack.enter_context(server)
        except ServerUnavailable as exc:
            server_unavailable(f"{what} unavailable: {exc}")
        yield running
