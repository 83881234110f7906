"""`snapstore snapshot mastodon`, database restore and drill, end to end through the installed
command against real PostgreSQL and Redis servers started by the tests."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from tests.support.cli import PASSWORD, Cli
from tests.support.mastodon import (
    LiveDir,
    apply_churn,
    build_live_dir,
    create_mastodon_db,
    table_digests,
)
from tests.support.postgres import PostgresServer, free_port, running_postgres
from tests.support.redis import RedisServer

StartRedis = Callable[..., AbstractContextManager[RedisServer]]


def letsencrypt_dir(root: Path) -> Path:
    archive = root / "archive" / "snapstore.test"
    archive.mkdir(parents=True)
    (archive / "cert1.pem").write_text("-----BEGIN CERTIFICATE-----\nMIIB\n")
    (archive / "privkey1.pem").write_text("-----BEGIN PRIVATE KEY-----\nMIIE\n")
    live = root / "live" / "snapstore.test"
    live.mkdir(parents=True)
    os.symlink("../../archive/snapstore.test/cert1.pem", live / "cert.pem")
    (root / "renewal").mkdir()
    (root / "renewal" / "snapstore.test.conf").write_text("version = 2.1.0\n")
    return root


def live_dir(tmp_path: Path, pg: PostgresServer, db: str, redis: RedisServer | None) -> LiveDir:
    return build_live_dir(
        tmp_path / "live", db_host=pg.host, db_port=pg.port, db_name=db, db_user=pg.user,
        redis_host=redis.host if redis else "127.0.0.1",
        redis_port=redis.port if redis else free_port(),
    )  # fmt: skip


def set_env(live: LiveDir, **values: str) -> None:
    text = live.env_file.read_text()
    for key, value in values.items():
        text = "\n".join(
            f"{key}={value}" if line.startswith(f"{key}=") else line for line in text.splitlines()
        )
    live.env_file.write_text(text + "\n")


def pg_args(server: PostgresServer) -> list[str]:
    return ["--pg-host", server.host, "--pg-port", str(server.port), "--pg-user", server.user]


def one_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1, err
    return lines[0]


def snapshots(cli: Cli) -> list[dict[str, object]]:
    done = cli("snapshots", "--json")
    assert done.code == 0, done.err
    return list(done.json())


def listing(cli: Cli, snapshot: str) -> dict[str, dict[str, object]]:
    done = cli("ls", snapshot, "--json")
    assert done.code == 0, done.err
    return {str(e["path"]): e for e in done.json()}


def test_mastodon_backup_dedup_restore_and_drill(
    cli: Cli, postgres_server: PostgresServer, fresh_redis: RedisServer, big_db: str,
    start_redis: StartRedis, tmp_path: Path,
) -> None:  # fmt: skip
    pg = postgres_server
    live = live_dir(tmp_path, pg, big_db, fresh_redis)
    fresh_redis.cli("SET", "sidekiq:stats:processed", "12345")
    fresh_redis.cli("HSET", "account:1", "username", "alice")
    certs = letsencrypt_dir(tmp_path / "letsencrypt")
    config = tmp_path / "snapstore.toml"
    (tmp_path / "password").write_text(PASSWORD + "\n")
    config.write_text(
        f'repository = "{cli.repo}"\npassword_file = "password"\n'
        f'[mastodon]\nenv_file = "{live.env_file}"\nletsencrypt_dir = "{certs}"\n'
    )
    bare = {k: v for k, v in cli.env.items() if not k.startswith("SNAPSTORE_")}

    # Day 1, the cron line: everything from the config file.
    first = Cli(cli.repo, bare)("--config", str(config), "snapshot", "mastodon", "--json")
    assert first.code == 0, first.err
    day1 = first.json()
    day1_tables = table_digests(pg, big_db)

    files = listing(cli, day1["snapshot_id"])
    dump = files[f"/postgres/{big_db}.dump"]
    for path in ("/postgres/globals.sql", "/redis/dump.rdb", "/config/.env.production",
                 "/letsencrypt/renewal/snapstore.test.conf", "/letsencrypt/archive"):  # fmt: skip
        assert path in files, path
    assert files["/letsencrypt/live/snapstore.test/cert.pem"]["type"] == "symlink"
    media = sorted(p for p in files if p.startswith("/media/") and files[p]["type"] == "file")
    expected = sorted(
        "/media/" + str(f.relative_to(live.system)) for f in live.avatars + live.media
    )
    assert media == expected  # and nothing from public/system/cache
    assert not any(p.startswith("/media/cache") for p in files)

    apply_churn(pg, big_db, day=1)
    fresh_redis.cli("SET", "sidekiq:stats:processed", "12399")
    second = cli("snapshot", "mastodon", "--env-file", str(live.env_file),
                 "--letsencrypt-dir", str(certs), "--json")  # fmt: skip
    assert second.code == 0, second.err
    day2 = second.json()
    day2_tables = table_digests(pg, big_db)
    assert day2_tables != day1_tables
    dump_size = int(str(dump["size"]))
    added = day2["bytes_added"]
    print(f"\ndump {dump_size} B; day 1 added {day1['bytes_added']} B, "
          f"day 2 added {added} B ({added / dump_size:.1%} of the dump)")  # fmt: skip
    assert dump_size > 2_000_000
    assert day2["bytes_added"] < dump_size // 4
    # the day's changes are scattered through the dump: deltas against day 1 carry them
    assert day2["parent"] == day1["snapshot_id"]
    assert day2["deltas_added"] > 0
    # every file taken from disk (media, env file, certificates) is unchanged and not read;
    # the dump, the globals and the RDB are streams, read every night
    assert day1["files_unchanged"] == 0
    assert day2["files_unchanged"] == day2["files"] - 3 >= len(expected)

    listed = snapshots(cli)
    assert [s["tags"] for s in listed] == [["mastodon"], ["mastodon"]]
    assert {s["source"] for s in listed} == {"mastodon"}
    parts = listed[0]["metadata"]["mastodon"]["parts"]  # type: ignore[index]
    assert parts["media_cache"].startswith("skipped") and parts["letsencrypt"] == "ok"

    # Each snapshot's database comes back exactly as the source held it at that time.
    for name, snap, tables in (("restored_day1", day1, day1_tables),
                               ("restored_day2", day2, day2_tables)):  # fmt: skip
        done = cli("restore", snap["snapshot_id"][:8], "--pg-database", name, "--create",
                   *pg_args(pg))  # fmt: skip
        assert done.code == 0, done.err
        try:
            assert table_digests(pg, name) == tables
        finally:
            pg.dropdb(name)

    drilled = cli("drill", *pg_args(pg), "--json")
    assert drilled.code == 0, drilled.err + drilled.text
    report = drilled.json()
    assert report["passed"] and report["dropped"] and report["snapshot_id"] == day2["snapshot_id"]
    checks = {c["name"]: c for c in report["checks"]}
    assert {"restore", "tables present", "schema_migrations", "rows accounts",
            "rows statuses"} <= set(checks)  # fmt: skip
    assert (
        pg.psql(f"SELECT count(*) FROM pg_database WHERE datname = '{report['scratch_database']}'")
        == "0"
    )

    # The RDB comes back byte for byte, and loads.
    rdb = tmp_path / "restored" / "dump.rdb"
    rdb.parent.mkdir()
    rdb.write_bytes(b"old")
    done = cli("restore", "latest", "--redis-rdb", str(rdb))
    assert done.code == 0, done.err
    assert rdb.read_bytes() == cli("dump", "latest", "redis/dump.rdb").out
    assert rdb.read_bytes()[:5] == b"REDIS"
    assert [p.name for p in rdb.parent.iterdir()] == ["dump.rdb"]  # no temp file left
    with start_redis(rdb=rdb) as restored:
        assert restored.cli("GET", "sidekiq:stats:processed") == "12399"
        assert restored.cli("HGET", "account:1", "username") == "alice"
    checked = cli("check", "--read-data")
    assert checked.code == 0, checked.err + checked.text


def test_restore_refuses_and_replaces_and_applies_globals(
    cli: Cli, postgres_server: PostgresServer, mastodon_db: tuple[str, object], tmp_path: Path
) -> None:
    pg = postgres_server
    dbname, _ = mastodon_db
    role = "snapstore_restore_role"
    pg.psql(f"CREATE ROLE {role} LOGIN")
    try:
        taken = cli("snapshot", "postgres", "--dbname", dbname, "--pg-host", pg.host,
                    "--pg-port", str(pg.port), "--pg-user", pg.user, "--json")  # fmt: skip
        assert taken.code == 0, taken.err
        pg.psql(f"DROP ROLE {role}")
        source = table_digests(pg, dbname)

        missing = cli("restore", "latest", "--pg-database", "restore_target", *pg_args(pg))
        assert missing.code == 2 and "--create" in one_line(missing.err)

        # --jobs spools to a file; --globals brings the dropped role back.
        done = cli("restore", "latest", "--pg-database", "restore_target", "--create",
                   "--jobs", "2", "--globals", *pg_args(pg))  # fmt: skip
        assert done.code == 0, done.err
        assert "spooling" in done.err
        assert pg.psql(f"SELECT count(*) FROM pg_roles WHERE rolname = '{role}'") == "1"
        assert table_digests(pg, "restore_target") == source

        pg.psql("DELETE FROM favourites", "restore_target")
        refused = cli("restore", "latest", "--pg-database", "restore_target", "--create",
                      *pg_args(pg))  # fmt: skip
        assert refused.code == 2 and "not empty" in one_line(refused.err)
        assert pg.row_count("favourites", "restore_target") == 0  # untouched

        cleaned = cli("restore", "latest", "--pg-database", "restore_target", "--clean",
                      *pg_args(pg))  # fmt: skip
        assert cleaned.code == 0, cleaned.err
        assert table_digests(pg, "restore_target") == source
    finally:
        pg.dropdb("restore_target")
        pg.psql(f"DROP ROLE IF EXISTS {role}")


def wrapper(tmp_path: Path, line: str, program: str = "pg_dump") -> str:
    """A command prefix that runs every client as is, except `program`."""
    script = tmp_path / "prefix.sh"
    script.write_text(
        f'#!/bin/sh\ncase "$(basename "$1")" in\n  {program}) {line} ;;\n  *) exec "$@" ;;\nesac\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


def test_drill_fails_when_the_dump_lacks_a_table(
    cli: Cli, postgres_server: PostgresServer, mastodon_db: tuple[str, object], tmp_path: Path
) -> None:
    pg = postgres_server
    dbname, _ = mastodon_db
    tampered = wrapper(tmp_path, 'exec "$@" --exclude-table=schema_migrations')
    taken = cli("snapshot", "postgres", "--dbname", dbname, "--pg-host", pg.host, "--pg-port",
                str(pg.port), "--pg-user", pg.user, "--pg-command-prefix", tampered)  # fmt: skip
    assert taken.code == 0, taken.err
    drilled = cli("drill", "latest", *pg_args(pg))
    assert drilled.code == 1
    assert "FAIL  tables present: missing: schema_migrations" in drilled.text
    assert "FAIL  rows schema_migrations" in drilled.text
    assert "drill FAILED" in drilled.text
    assert "restore drill failed" in one_line(drilled.err)
    leftovers = pg.psql("SELECT count(*) FROM pg_database WHERE datname LIKE 'snapstore_drill_%'")
    assert leftovers == "0"


@pytest.mark.parametrize("failure", ["wrong database", "killed mid-dump"])
def test_failed_dump_leaves_no_snapshot(
    cli: Cli, postgres_server: PostgresServer, mastodon_db: tuple[str, object], tmp_path: Path,
    failure: str,
) -> None:  # fmt: skip
    dbname, _ = mastodon_db
    live = live_dir(tmp_path, postgres_server, dbname, None)
    args = ["snapshot", "mastodon", "--env-file", str(live.env_file), "--no-redis",
            "--no-letsencrypt"]  # fmt: skip
    if failure == "wrong database":
        set_env(live, DB_NAME="no_such_database")
        expected = 'database "no_such_database" does not exist'
    else:
        killer = wrapper(tmp_path, '"$@" | head -c 20000; kill -9 $$')
        args += ["--pg-command-prefix", killer]
        expected = "pg_dump was killed"
    done = cli(*args)
    assert done.code == 1
    assert expected in one_line(done.err)
    assert snapshots(cli) == []


def test_stopped_server_leaves_no_snapshot(cli: Cli, tmp_path: Path) -> None:
    with running_postgres() as doomed:
        doomed.createdb("mastodon_production")
        create_mastodon_db(doomed, "mastodon_production", accounts=12, statuses=20)
        live = live_dir(tmp_path, doomed, "mastodon_production", None)
    done = cli("snapshot", "mastodon", "--env-file", str(live.env_file), "--no-redis",
               "--no-letsencrypt")  # fmt: skip
    assert done.code == 1
    line = one_line(done.err)
    assert line.startswith("snapstore: error: psql exited 2") and "server" in line
    assert snapshots(cli) == []


def test_missing_parts_are_reported_not_fatal(
    cli: Cli, postgres_server: PostgresServer, mastodon_db: tuple[str, object], tmp_path: Path
) -> None:
    dbname, _ = mastodon_db
    live = live_dir(tmp_path, postgres_server, dbname, None)  # Redis: nobody on that port
    done = cli("snapshot", "mastodon", "--env-file", str(live.env_file),
               "--letsencrypt-dir", str(tmp_path / "no-letsencrypt"), "--json")  # fmt: skip
    assert done.code == 3, done.err
    assert "/letsencrypt: Let's Encrypt directory" in done.err
    assert "/redis: redis-cli exited" in done.err
    summary = done.json()
    assert {e["path"] for e in summary["errors"]} == {"/redis", "/letsencrypt"}
    files = listing(cli, summary["snapshot_id"])
    assert f"/postgres/{dbname}.dump" in files and "/config/.env.production" in files
    assert not any(p.startswith(("/redis", "/letsencrypt")) for p in files)
    parts = snapshots(cli)[0]["metadata"]["mastodon"]["parts"]  # type: ignore[index]
    assert parts["redis"].startswith("failed") and parts["letsencrypt"].startswith("failed")


@pytest.mark.parametrize("case", ["--no-media", "S3_ENABLED=true", "--include-media-cache"])
def test_media_choices(
    cli: Cli, postgres_server: PostgresServer, mastodon_db: tuple[str, object], tmp_path: Path,
    case: str,
) -> None:  # fmt: skip
    dbname, _ = mastodon_db
    live = live_dir(tmp_path, postgres_server, dbname, None)
    args = ["snapshot", "mastodon", "--env-file", str(live.env_file), "--no-redis",
            "--no-letsencrypt", "--json"]  # fmt: skip
    if case == "S3_ENABLED=true":
        set_env(live, S3_ENABLED="true")
    else:
        args.append(case)
    done = cli(*args)
    assert done.code == 0, done.err
    files = listing(cli, done.json()["snapshot_id"])
    media = {p for p in files if p.startswith("/media/") and files[p]["type"] == "file"}
    if case == "--include-media-cache":
        everything = live.avatars + live.media + live.cache
        assert media == {"/media/" + str(f.relative_to(live.system)) for f in everything}
    else:
        assert media == set() and "/media" not in files
        parts = snapshots(cli)[0]["metadata"]["mastodon"]["parts"]  # type: ignore[index]
        assert parts["media"].startswith("skipped")


def test_redis_rdb_file_round_trip_is_byte_identical(
    cli: Cli, fresh_redis: RedisServer, tmp_path: Path
) -> None:
    fresh_redis.cli("SET", "k", "v" * 5000)
    fresh_redis.cli("SAVE")
    original = fresh_redis.rdb_path.read_bytes()
    taken = cli("snapshot", "redis", "--rdb-file", str(fresh_redis.rdb_path))
    assert taken.code == 0, taken.err
    fetched = cli("snapshot", "redis", "--redis-host", fresh_redis.host, "--redis-port", str(fresh_redis.port))
    assert fetched.code == 0, fetched.err
    first = snapshots(cli)[0]["id"]
    target = tmp_path / "dump.rdb"
    done = cli("restore", str(first), "--redis-rdb", str(target))
    assert done.code == 0, done.err
    assert target.read_bytes() == original
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


FILL_KEYS = """
for i = 1, tonumber(ARGV[1]) do
  redis.call('SET', 'status:' .. i, '{"id":' .. i .. ',"account":' .. (i * 7919 % 100003) ..
    ',"text":"post number ' .. i .. ' about backups and the fediverse","favourites":' ..
    (i % 97) .. ',"edited":' .. ARGV[2] .. '}')
end
"""
CHANGE_KEYS = """
for i = 1, tonumber(ARGV[1]), 20 do
  redis.call('SET', 'status:' .. i, '{"id":' .. i .. ',"edited":true,"favourites":' .. (i % 89) .. '}')
end
"""


def test_redis_day_two_is_stored_as_deltas(cli: Cli, fresh_redis: RedisServer) -> None:
    keys = "60000"
    fresh_redis.cli("EVAL", FILL_KEYS, "0", keys, "false")
    redis_args = ("snapshot", "redis", "--redis-host", fresh_redis.host, "--redis-port", str(fresh_redis.port), "--json")
    day1 = cli(*redis_args)
    assert day1.code == 0, day1.err
    fresh_redis.cli("EVAL", CHANGE_KEYS, "0", keys)  # 5% of the keys
    day2 = cli(*redis_args)
    assert day2.code == 0, day2.err
    first, second = day1.json(), day2.json()
    assert second["parent"] == first["snapshot_id"] and second["deltas_added"] > 0
    # every save rewrites the whole RDB; the deltas keep day 2 to a fraction of day 1
    assert second["bytes_added"] < first["bytes_added"] / 4, (first, second)
    print(f"\nRDB day 1 added {first['bytes_added']} B, day 2 {second['bytes_added']} B ({second['deltas_added']} deltas)")
    listed = listing(cli, second["snapshot_id"])
    rdb_path = next(p for p in listed if p.endswith(".rdb"))
    fresh_redis.cli("SAVE")
    assert cli("dump", second["snapshot_id"], rdb_path).code == 0


def test_drill_without_recorded_counts_still_checks_the_tables(
    cli: Cli, postgres_server: PostgresServer, mastodon_db: tuple[str, object]
) -> None:
    pg = postgres_server
    dbname, _ = mastodon_db
    taken = cli("snapshot", "postgres", "--dbname", dbname, "--pg-host", pg.host, "--pg-port",
                str(pg.port), "--pg-user", pg.user, "--no-row-counts", "--no-globals")  # fmt: skip
    assert taken.code == 0, taken.err
    drilled = cli("drill", *pg_args(pg), "--json")
    assert drilled.code == 0, drilled.err + drilled.text
    checks = {c["name"]: c for c in drilled.json()["checks"]}
    assert set(checks) == {"restore", "tables present", "schema_migrations", "recorded counts",
                           "history"}  # fmt: skip
    assert "accounts 30, statuses 300" in checks["recorded counts"]["detail"]


def test_a_failing_pg_restore_fails_restore_and_drill_and_leaves_no_database(
    cli: Cli, postgres_server: PostgresServer, mastodon_db: tuple[str, object], tmp_path: Path
) -> None:
    pg = postgres_server
    dbname, _ = mastodon_db
    taken = cli("snapshot", "postgres", "--dbname", dbname, "--pg-host", pg.host, "--pg-port",
                str(pg.port), "--pg-user", pg.user)  # fmt: skip
    assert taken.code == 0, taken.err
    broken = wrapper(
        tmp_path, 'head -c 1000 >/dev/null; echo "pg_restore: error: simulated" >&2; exit 1',
        program="pg_restore",
    )  # fmt: skip
    done = cli("restore", "latest", "--pg-database", "never_restored", "--create",
               *pg_args(pg), "--pg-command-prefix", broken)  # fmt: skip
    assert done.code == 1
    assert (
        one_line(done.err) == "snapstore: error: pg_restore exited 1: pg_restore: error: simulated"
    )
    assert pg.psql("SELECT count(*) FROM pg_database WHERE datname = 'never_restored'") == "0"

    drilled = cli("drill", *pg_args(pg), "--pg-command-prefix", broken)
    assert drilled.code == 1
    assert "FAIL  restore: pg_restore exited 1" in drilled.text
    leftovers = pg.psql("SELECT count(*) FROM pg_database WHERE datname LIKE 'snapstore_drill_%'")
    assert leftovers == "0"
