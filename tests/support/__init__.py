"""Helpers that start real servers and build realistic data for tests.

Each helper raises `ServerUnavailable` when its server cannot be found or started; the
conftest that uses it decides whether that skips or fails (under CI=true it fails).
"""


class ServerUnavailable(RuntimeError):
    """A server binary is missing or the server would not start."""
