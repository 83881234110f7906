"""Which server a drill restores into: the snapshot's own settings, overrides winning."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from snapstore.archiver.archiver import Archiver, SnapshotOptions
from snapstore.repository.repository import Repository
from snapstore.snapshot.manifest import Snapshot
from snapstore.sources.snapshot_server import ServerOverrides, snapshot_server
from tests.conftest import assert_repository_ok
from tests.support.memory_source import MemorySource

WHEN = datetime(2026, 12, 6, 3, 15, tzinfo=UTC)
ENV = b"DB_HOST=10.0.0.5\nDB_PORT=5433\nDB_USER=mastodon\nDB_PASS=s3cret\nDB_NAME=mastodon_production\n"
RECORDED = {"dbname": "mastodon_production", "host": "db.internal", "port": 6432,
            "username": "backup"}  # fmt: skip


def take(repo: Repository, kind: str, metadata: dict[str, object],
         tree: dict[str, object] | None = None) -> Snapshot:  # fmt: skip
    source = MemorySource(tree or {"postgres/mastodon_production.dump": b"PGDMP"}, kind=kind,
                          meta=metadata)  # fmt: skip
    return Archiver(repo).run(source, SnapshotOptions(time=WHEN, host="h", user="u")).snapshot


def test_a_postgres_snapshot_goes_back_to_the_recorded_server_overrides_winning(
    repo: Repository,
) -> None:
    snap = take(repo, "postgres", {"postgres": RECORDED})
    server = snapshot_server(repo, snap)
    c = server.connection
    assert (c.host, c.port, c.username, c.password) == ("db.internal", 6432, "backup", None)
    assert server.origin == f"the server recorded in snapshot {snap.short_id}"
    c = snapshot_server(repo, snap, ServerOverrides(port=5432, run_as="postgres")).connection
    assert (c.host, c.port, c.username, c.run_as) == ("db.internal", 5432, "backup", "postgres")
    assert_repository_ok(repo)


def test_an_old_snapshot_without_a_recorded_server_uses_libpq_defaults(repo: Repository) -> None:
    snap = take(repo, "postgres", {"postgres": {"dbname": "mastodon_production"}})
    server = snapshot_server(repo, snap)
    assert (server.connection.host, server.connection.port, server.connection.username) == (
        None, None, None)  # fmt: skip
    assert "libpq defaults" in server.origin


def test_a_mastodon_snapshot_uses_its_own_copy_of_the_env_file(repo: Repository) -> None:
    meta = {"mastodon": {"env_file": "/nonexistent/live/.env.production"}, "postgres": RECORDED}
    snap = take(repo, "mastodon", meta, {"config/.env.production": ENV,
                                         "postgres/mastodon_production.dump": b"PGDMP"})
    server = snapshot_server(repo, snap)
    c = server.connection
    assert (c.host, c.port, c.username, c.password) == ("10.0.0.5", 5433, "mastodon", "s3cret")
    assert server.origin == (f"the copy of the env file in snapshot {snap.short_id} "
                             "(config/.env.production)")  # fmt: skip
    # another role gets no DB_PASS: its password comes from libpq
    other = snapshot_server(repo, snap, ServerOverrides(user="postgres")).connection
    assert (other.username, other.password) == ("postgres", None)
    same = snapshot_server(repo, snap, ServerOverrides(user="mastodon", host="/run/pg"))
    assert (same.connection.host, same.connection.password) == ("/run/pg", "s3cret")
    assert_repository_ok(repo)


def test_the_env_file_on_this_host_wins_over_the_copy_and_an_option_over_both(
    repo: Repository, tmp_path: Path
) -> None:
    recorded = tmp_path / "live" / ".env.production"
    recorded.parent.mkdir()
    recorded.write_bytes(ENV.replace(b"10.0.0.5", b"127.0.0.1").replace(b"s3cret", b"new"))
    meta = {"mastodon": {"env_file": str(recorded)}, "postgres": RECORDED}
    snap = take(repo, "mastodon", meta, {"config/.env.production": ENV})
    server = snapshot_server(repo, snap)
    assert (server.connection.host, server.connection.password) == ("127.0.0.1", "new")
    assert server.origin == f"env file {recorded} (recorded in the snapshot)"
    given = tmp_path / "given.env"
    given.write_bytes(b"DB_HOST=192.0.2.1\nDB_USER=mastodon\nDB_PASS=given\n")
    server = snapshot_server(repo, snap, ServerOverrides(env_file=given))
    assert (server.connection.host, server.connection.port) == ("192.0.2.1", 5432)
    assert server.origin == f"env file {given}"


def test_a_mastodon_snapshot_without_an_env_file_uses_the_recorded_server(
    repo: Repository,
) -> None:
    meta = {"mastodon": {"env_file": "/nonexistent/.env.production"}, "postgres": RECORDED}
    snap = take(repo, "mastodon", meta)
    server = snapshot_server(repo, snap)
    assert (server.connection.host, server.connection.username) == ("db.internal", "backup")
