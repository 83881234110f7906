"""Real servers for integration tests, started once per session on free ports.

`postgres_server` and `redis_server` are throwaway servers (see tests/support); they never
touch a system PostgreSQL or Redis. `mastodon_db` gives each test its own freshly seeded
Mastodon-like database; `fresh_redis` is `redis_server` emptied for the test; `start_redis`
starts a test's own extra server, under the same skip-or-fail rule.

When a server cannot be found or started, the tests that need it are skipped, except
under CI=true, where they fail: a CI run must not go green by skipping its real servers.
"""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from tests.support import required_server
from tests.support.cli import PASSWORD, Cli
from tests.support.mastodon import SeedSummary, create_mastodon_db
from tests.support.postgres import PostgresServer, running_postgres
from tests.support.redis import RedisServer, running_redis

HERE = Path(__file__).parent
_db_numbers = itertools.count(1)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(item.path).parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    with required_server(running_postgres(), "PostgreSQL") as server:
        yield server


@pytest.fixture(scope="session")
def password_postgres() -> Iterator[PostgresServer]:
    """A second cluster where every role but `postgres` logs in with its password (TCP)."""
    with required_server(running_postgres(password_auth=True), "PostgreSQL") as server:
        yield server


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    with required_server(running_redis(), "Redis") as server:
        yield server


@pytest.fixture
def start_redis() -> Callable[..., AbstractContextManager[RedisServer]]:
    """`running_redis` for a test's own extra server (a restore target, a password)."""

    @contextlib.contextmanager
    def start(**kwargs: object) -> Iterator[RedisServer]:
        with required_server(running_redis(**kwargs), "Redis") as server:  # type: ignore[arg-type]
            yield server

    return start


@pytest.fixture
def fresh_redis(redis_server: RedisServer) -> RedisServer:
    """The session's Redis with every database emptied."""
    redis_server.cli("FLUSHALL")
    return redis_server


@pytest.fixture
def mastodon_db(postgres_server: PostgresServer) -> Iterator[tuple[str, SeedSummary]]:
    """A database of its own for the test, with the Mastodon-like schema seeded (seed=1)."""
    name = f"mastodon_test_{next(_db_numbers)}"
    postgres_server.createdb(name)
    try:
        yield name, create_mastodon_db(postgres_server, name)
    finally:
        postgres_server.dropdb(name)


@pytest.fixture
def big_db(postgres_server: PostgresServer) -> Iterator[str]:
    """A database big enough for chunk-level deduplication to show (a few MB of dump)."""
    name = f"mastodon_big_{next(_db_numbers)}"
    postgres_server.createdb(name)
    try:
        create_mastodon_db(postgres_server, name, accounts=200, statuses=20_000)
        yield name
    finally:
        postgres_server.dropdb(name)


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    """The installed command on a new repository in tmp_path/repo, with no SNAPSTORE_* or PG*
    variable of ours leaking in (a stray PGHOST must not pick the server)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SNAPSTORE_", "PG"))}
    env.update(SNAPSTORE_REPOSITORY=str(tmp_path / "repo"), SNAPSTORE_PASSWORD=PASSWORD)
    done = Cli(tmp_path / "repo", env)("init")
    assert done.code == 0, done.err
    return Cli(tmp_path / "repo", env)
