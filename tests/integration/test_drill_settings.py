"""`snapstore drill` reaches the server the way the backup did, shows pg_restore's real error,
tells the truth about `--keep`, and compares with the previous snapshot (issue 12), through the
installed command against real PostgreSQL servers."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli import PASSWORD, Cli
from tests.support.mastodon import apply_churn, build_live_dir, create_mastodon_db
from tests.support.postgres import PostgresServer, free_port

ROLE_PASSWORD = "instance role password"


def clean_env() -> dict[str, str]:
    """No SNAPSTORE_* and no PG*: only the config file and the snapshot say where to go."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("SNAPSTORE_", "PG"))}


def drill_databases(server: PostgresServer) -> list[str]:
    names = server.psql("SELECT datname FROM pg_database WHERE datname LIKE 'snapstore_drill_%'")
    return names.split()


class AsRole:
    """Runs the seeding SQL as the instance's role, so that it owns what it creates."""

    def __init__(self, server: PostgresServer, role: str) -> None:
        self.server, self.role = server, role

    def psql(self, sql: str, db: str = "postgres") -> str:
        return self.server.psql(f'SET ROLE "{self.role}";\n{sql}', db)


@pytest.fixture
def instance(password_postgres: PostgresServer) -> Iterator[tuple[str, str]]:
    """An instance role (LOGIN CREATEDB, not a superuser, with a password) and its database."""
    pg, role, db = password_postgres, "mastodon_drill", "mastodon_drill_production"
    pg.psql(f"CREATE ROLE {role} LOGIN CREATEDB PASSWORD '{ROLE_PASSWORD}'")
    pg.psql(f"CREATE DATABASE {db} OWNER {role}")
    try:
        create_mastodon_db(AsRole(pg, role), db, accounts=10, statuses=60)
        yield role, db
    finally:
        pg.dropdb(db)
        for name in drill_databases(pg):
            pg.dropdb(name)
        pg.psql(f"DROP ROLE IF EXISTS {role}")


def test_the_cron_line_drills_a_mastodon_snapshot_with_the_instances_own_settings(
    password_postgres: PostgresServer, instance: tuple[str, str], tmp_path: Path
) -> None:
    pg = password_postgres
    role, db = instance
    live = build_live_dir(tmp_path / "live", db_host=pg.host, db_port=pg.port, db_name=db,
                          db_user=role, db_pass=ROLE_PASSWORD, redis_port=free_port(),
                          accounts=1, media=1, cached=0)  # fmt: skip
    (tmp_path / "password").write_text(PASSWORD + "\n")
    config = tmp_path / "snapstore.toml"
    config.write_text(
        f'repository = "{tmp_path / "repo"}"\npassword_file = "password"\n'
        f'[mastodon]\nenv_file = "{live.env_file}"\nredis = false\nletsencrypt = false\n'
    )
    cli = Cli(tmp_path / "repo", clean_env())
    assert cli("--config", str(config), "init").code == 0
    taken = cli("--config", str(config), "snapshot", "mastodon")
    assert taken.code == 0, taken.err
    drilled = cli("--config", str(config), "drill", "--keep", "--json")
    assert drilled.code == 0, drilled.err + drilled.text
    report = drilled.json()
    assert report["server"] == f"{role}@{pg.host}:{pg.port}"
    assert report["settings_from"] == f"env file {live.env_file}"  # [mastodon] env_file
    assert report["passed"] and report["kept"] and not report["dropped"]
    # the scratch database really is in the instance's cluster, owned by its role
    owner = pg.psql("SELECT pg_get_userbyid(datdba) FROM pg_database "
                    f"WHERE datname = '{report['scratch_database']}'")  # fmt: skip
    assert owner == role
    assert pg.row_count("statuses", report["scratch_database"]) == 60
    pg.dropdb(report["scratch_database"])

    # no env file named and the recorded one gone (another host): the snapshot's own copy
    live.env_file.unlink()
    (tmp_path / "other.toml").write_text(f'repository = "{tmp_path / "repo"}"\n'
                                         'password_file = "password"\n')  # fmt: skip
    drilled = cli("--config", str(tmp_path / "other.toml"), "drill")
    assert drilled.code == 0, drilled.err + drilled.text
    assert "settings from the copy of the env file in snapshot" in drilled.text
    assert drill_databases(pg) == []


def test_a_failing_restore_shows_the_real_error_and_keep_keeps_nothing(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    pg, db, role = postgres_server, "drill_broken", "drill_doomed_owner"
    pg.createdb(db)
    pg.psql(f"CREATE ROLE {role}")
    try:
        create_mastodon_db(pg, db, accounts=5, statuses=20)
        pg.psql(f"CREATE TABLE extra (id int); ALTER TABLE extra OWNER TO {role}", db)
        cli = Cli(tmp_path / "repo", dict(clean_env(), SNAPSTORE_REPOSITORY=str(tmp_path / "repo"),
                                          SNAPSTORE_PASSWORD=PASSWORD))  # fmt: skip
        assert cli("init").code == 0
        taken = cli("snapshot", "postgres", "--dbname", db, "--pg-host", pg.host, "--pg-port",
                    str(pg.port), "--pg-user", pg.user, "--no-globals")  # fmt: skip
        assert taken.code == 0, taken.err
        pg.psql(f"DROP OWNED BY {role}", db)
        pg.psql(f"DROP ROLE {role}")
        # no --pg-* options: the snapshot recorded where its server is
        drilled = cli("drill", "--keep")
        assert drilled.code == 1
        error = f'ERROR: role "{role}" does not exist'
        assert "FAIL  restore: pg_restore exited 1: pg_restore: error: " in drilled.text
        assert error in drilled.text and "Command was" not in drilled.text
        assert "was kept" not in drilled.text
        assert "nothing kept: snapstore_drill_" in drilled.text
        lines = [line for line in drilled.err.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("snapstore: error: the restore drill "
                                                       "failed: restore: ") and error in lines[0]
        assert drill_databases(pg) == []
        report = cli("drill", "--keep", "--json").json()
        assert report["kept"] is False and not report["passed"]
    finally:
        pg.dropdb(db)
        pg.psql(f"DROP ROLE IF EXISTS {role}")


def test_a_table_emptied_since_the_previous_snapshot_fails_the_drill(
    postgres_server: PostgresServer, mastodon_db: tuple[str, object], tmp_path: Path
) -> None:
    pg = postgres_server
    db, _ = mastodon_db
    cli = Cli(tmp_path / "repo", dict(clean_env(), SNAPSTORE_REPOSITORY=str(tmp_path / "repo"),
                                      SNAPSTORE_PASSWORD=PASSWORD))  # fmt: skip
    assert cli("init").code == 0

    def snapshot() -> str:
        taken = cli("snapshot", "postgres", "--dbname", db, "--pg-host", pg.host, "--pg-port",
                    str(pg.port), "--pg-user", pg.user, "--no-globals", "--json")  # fmt: skip
        assert taken.code == 0, taken.err
        return str(taken.json()["snapshot_id"])

    first = snapshot()
    drilled = cli("drill", "--json")
    assert drilled.code == 0, drilled.err + drilled.text
    report = drilled.json()
    assert report["previous_snapshot_id"] is None
    assert {c["name"]: c["detail"] for c in report["checks"]}["history"].endswith(
        "nothing to compare with")

    apply_churn(pg, db, day=1)  # a normal day
    second = snapshot()
    drilled = cli("drill", "--json")
    assert drilled.code == 0, drilled.err + drilled.text
    report = drilled.json()
    assert report["previous_snapshot_id"] == first
    names = {c["name"] for c in report["checks"]}
    assert {"history", "history rows", "history database size"} <= names

    favourites = pg.row_count("favourites", db)
    pg.psql("DELETE FROM favourites", db)
    snapshot()
    drilled = cli("drill")
    assert drilled.code == 1
    expected = f"favourites: {favourites} → 0 rows since snapshot {second[:8]} ("
    assert f"FAIL  history rows favourites: {expected}" in drilled.text
    assert expected in drilled.err and "restore drill failed" in drilled.err
    assert "ok    restore:" in drilled.text  # the dump itself restores: only history shows it
    # a threshold of 100% still fails nothing but emptied vital tables
    assert cli("drill", "--max-shrink", "100").code == 0
