"""Which parts of `snapshot mastodon` are optional, the paths a failed night records, and a
bare-metal install whose database lets its system user in by peer authentication, through
the installed command against real servers."""

from __future__ import annotations

import contextlib
import os
import pwd
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import required_server
from tests.support.cli import Cli
from tests.support.mastodon import build_live_dir, create_mastodon_db, give_tables_to
from tests.support.postgres import PostgresServer, free_port, running_postgres
from tests.support.redis import RedisServer


def snapshots(cli: Cli) -> list[dict[str, object]]:
    done = cli("snapshots", "--json")
    assert done.code in (0, 3), done.err
    return list(done.json())


def test_parts_this_host_lacks_are_no_warning_and_a_failed_night_keeps_its_paths(
    cli: Cli, postgres_server: PostgresServer, mastodon_db: tuple[str, object],
    fresh_redis: RedisServer, tmp_path: Path,
) -> None:  # fmt: skip
    pg, (db, _) = postgres_server, mastodon_db
    live = build_live_dir(tmp_path / "live", db_host=pg.host, db_port=pg.port, db_name=db,
                          db_user=pg.user, redis_host=fresh_redis.host,
                          redis_port=fresh_redis.port)  # fmt: skip
    absent = tmp_path / "absent"
    config = tmp_path / "snapstore.toml"
    config.write_text(
        f'[mastodon]\nenv_file = "{live.env_file}"\nletsencrypt_dir = "{absent / "le"}"\n'
        f'nginx_dir = "{absent / "nginx"}"\nsystemd_dir = "{absent / "systemd"}"\n'
    )
    # No certificates, nginx site or units here (Caddy, Docker): exit 0, no warning.
    done = cli("--config", str(config), "snapshot", "mastodon", "--json")
    assert done.code == 0, done.err
    assert "warning" not in done.err
    good = snapshots(cli)[-1]
    parts = good["metadata"]["mastodon"]["parts"]  # type: ignore[index]
    for part in ("letsencrypt", "nginx", "systemd", "compose"):
        assert parts[part].startswith("skipped"), parts
    # Certificates asked for on the command line and missing: that is an error (exit 3).
    named = cli("--config", str(config), "snapshot", "mastodon", "--letsencrypt-dir",
                str(absent / "le"))  # fmt: skip
    assert named.code == 3 and "Let's Encrypt directory" in named.err
    # Redis down: incomplete, but the same paths as a good night (one retention group, and
    # the good night stays the parent).
    (tmp_path / "live" / ".env.production").write_text(
        live.env_file.read_text().replace(f"REDIS_PORT={fresh_redis.port}",
                                          f"REDIS_PORT={free_port()}")  # fmt: skip
    )
    failed = cli("--config", str(config), "snapshot", "mastodon", "--json")
    assert failed.code == 3, failed.err
    listed = snapshots(cli)
    assert len({tuple(s["paths"]) for s in listed}) == 1, [s["paths"] for s in listed]  # type: ignore[arg-type]
    assert listed[-1]["paths"] == [f"postgres://{pg.host}:{pg.port}/{db}", str(live.env_file)]


@pytest.fixture(scope="module")
def peer_postgres() -> Iterator[PostgresServer]:
    with required_server(running_postgres(peer_auth=True), "PostgreSQL") as server:
        yield server


@pytest.mark.skipif(os.geteuid() != 0, reason="running clients as another user needs root")
def test_a_root_cron_job_on_a_peer_authentication_install_runs_the_clients_as_the_user(
    cli: Cli, peer_postgres: PostgresServer, tmp_path: Path
) -> None:
    """DB_HOST is the socket folder, DB_PASS empty: PostgreSQL lets the system user in as
    the role of the same name. Root's cron runs the clients as that user (run_as)."""
    pg, db = peer_postgres, "mastodon_peer"
    user = "nobody"
    pwd.getpwnam(user)
    with contextlib.suppress(RuntimeError):
        pg.psql(f'CREATE ROLE "{user}" LOGIN')
    pg.psql(f'CREATE DATABASE {db} OWNER "{user}"')
    create_mastodon_db(pg, db, accounts=5, statuses=20)
    give_tables_to(pg, db, user)
    live = build_live_dir(tmp_path / "live", db_host=str(pg.socket_dir), db_port=pg.port,
                          db_name=db, db_user=user, db_pass="", redis_port=free_port())  # fmt: skip
    args = ["snapshot", "mastodon", "--env-file", str(live.env_file), "--no-redis", "--json"]
    # As root, without run_as: no role "root", and peer authentication refuses the user.
    refused = cli(*args)
    assert refused.code == 1
    assert "Peer authentication failed" in refused.err or "root" in refused.err, refused.err
    config = tmp_path / "snapstore.toml"
    config.write_text(f'[postgres]\nrun_as = "{user}"\n')
    done = cli("--config", str(config), *args)
    assert done.code == 0, done.err
    facts = snapshots(cli)[-1]["metadata"]["postgres"]  # type: ignore[index]
    assert facts["row_counts"]["accounts"] == 5
    assert cli("dump", "latest", f"postgres/{db}.dump").out[:5] == b"PGDMP"


def test_a_docker_install_keeps_its_compose_file_and_gets_it_back(
    cli: Cli, postgres_server: PostgresServer, mastodon_db: tuple[str, object], tmp_path: Path
) -> None:
    pg, (db, _) = postgres_server, mastodon_db
    live = build_live_dir(tmp_path / "live", db_host=pg.host, db_port=pg.port, db_name=db,
                          db_user=pg.user, redis_port=free_port())  # fmt: skip
    (live.root / "docker-compose.yml").write_text("services:\n  db:\n    image: postgres:14\n")
    (live.root / ".env").write_text("COMPOSE_PROJECT_NAME=mastodon\n")
    done = cli("snapshot", "mastodon", "--env-file", str(live.env_file), "--no-redis", "--json")
    assert done.code == 0, done.err
    paths = {e["path"] for e in cli("ls", "latest", "--json").json()}
    assert {"/config/.env.production", "/config/docker-compose.yml", "/config/.env"} <= paths
    assert snapshots(cli)[-1]["metadata"]["mastodon"]["parts"]["compose"] == "ok"  # type: ignore[index]
    moved = tmp_path / "new-live"
    back = cli("restore", "mastodon", "--only", "config", "--live-dir", str(moved), "--json")
    assert back.code == 0, back.err
    for name in (".env.production", "docker-compose.yml", ".env"):
        assert (moved / name).read_bytes() == (live.root / name).read_bytes(), name
    checklist = back.json()["checklist"]
    assert any("docker compose up -d" in item for item in checklist), checklist
