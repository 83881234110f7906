"""The worst night, through the installed command: an instance is backed up, destroyed
(database, role, media, secrets, RDB, certificates, web server and systemd files), brought
back by `snapstore restore mastodon`, and then logs in as its own role with the password
from .env.production, against real PostgreSQL (password authentication) and Redis."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

from tests.support.cli import PASSWORD, Cli
from tests.support.mastodon import (
    LiveDir,
    build_live_dir,
    create_mastodon_db,
    give_tables_to,
    table_digests,
)
from tests.support.postgres import PostgresServer
from tests.support.redis import RedisServer

StartRedis = Callable[..., AbstractContextManager[RedisServer]]
ROLE = "mastodon_dr"
ROLE_PASSWORD = "s3cret-from-env"
REDIS_PASSWORD = "redis-pass"
MEDIA_OWNER = (991, 991)


def login_as_instance(server: PostgresServer, db: str, password: str) -> subprocess.CompletedProcess[str]:
    """psql as the instance's role over TCP, where the server asks for its password."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["PGPASSWORD"] = password
    argv = [server.bin("psql"), "-X", "-w", "-At", "-h", server.host, "-p", str(server.port),
            "-U", ROLE, "-d", db, "-c", "SELECT current_user, count(*) FROM accounts"]  # fmt: skip
    return subprocess.run(argv, capture_output=True, text=True, env=env, check=False)


def files_of(root: Path) -> dict[str, tuple[bytes | str, int, int, int]]:
    """Relative path -> (content or link target, uid, gid, mode) of everything below root."""
    found: dict[str, tuple[bytes | str, int, int, int]] = {}
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        if path.is_symlink():
            content: bytes | str = os.readlink(path)
        elif path.is_file():
            content = path.read_bytes()
        else:
            content = "dir"
        found[str(path.relative_to(root))] = (content, info.st_uid, info.st_gid,
                                             stat.S_IMODE(info.st_mode))  # fmt: skip
    return found


def redis_contents(server: RedisServer) -> dict[str, object]:
    """Every key's value (a hash's fields sorted: their order is the encoding's, not data)."""
    read = {"string": ("GET",), "list": ("LRANGE", "0", "-1"), "hash": ("HGETALL",)}
    contents: dict[str, object] = {}
    for key in sorted(server.cli("--scan").split()):
        kind = server.cli("TYPE", key)
        command, *args = read[kind]
        value = server.cli(command, key, *args).split("\n")
        contents[key] = (kind, sorted(zip(value[::2], value[1::2], strict=True)) if kind == "hash" else value)
    return contents


def web_server_files(root: Path) -> tuple[Path, Path, Path]:
    """Let's Encrypt, nginx and systemd folders as a standard install has them."""
    letsencrypt = root / "letsencrypt"
    (letsencrypt / "archive" / "snapstore.test").mkdir(parents=True)
    (letsencrypt / "archive" / "snapstore.test" / "privkey1.pem").write_text("KEY\n")
    (letsencrypt / "live" / "snapstore.test").mkdir(parents=True)
    os.symlink("../../archive/snapstore.test/privkey1.pem",
               letsencrypt / "live" / "snapstore.test" / "privkey.pem")  # fmt: skip
    nginx = root / "nginx"
    (nginx / "sites-available").mkdir(parents=True)
    (nginx / "sites-enabled").mkdir()
    (nginx / "sites-available" / "mastodon").write_text("server { server_name snapstore.test; }\n")
    (nginx / "sites-available" / "default").write_text("server { listen 80 default_server; }\n")
    os.symlink("../sites-available/mastodon", nginx / "sites-enabled" / "mastodon")
    systemd = root / "systemd"
    systemd.mkdir()
    for unit in ("mastodon-web", "mastodon-sidekiq", "mastodon-streaming"):
        (systemd / f"{unit}.service").write_text(f"[Service]\nExecStart=/bin/true {unit}\n")
    (systemd / "ssh.service").write_text("[Service]\n")
    return letsencrypt, nginx, systemd


def instance_database(pg: PostgresServer, db: str) -> None:
    """A database owned by a non-superuser role with a password, as Mastodon's is."""
    pg.psql(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
    pg.psql(f"DROP ROLE IF EXISTS {ROLE}")
    pg.psql(f"CREATE ROLE {ROLE} LOGIN CREATEDB PASSWORD '{ROLE_PASSWORD}'")
    pg.psql(f"CREATE DATABASE {db} OWNER {ROLE}")
    create_mastodon_db(pg, db, accounts=40, statuses=600)
    give_tables_to(pg, db, ROLE)


def instance_live_dir(tmp_path: Path, pg: PostgresServer, db: str, redis: RedisServer) -> LiveDir:
    live = build_live_dir(
        tmp_path / "home" / "live", db_host=pg.host, db_port=pg.port, db_name=db, db_user=ROLE,
        db_pass=ROLE_PASSWORD, redis_host=redis.host, redis_port=redis.port,
    )  # fmt: skip
    text = live.env_file.read_text().replace("REDIS_PASSWORD=\n", f"REDIS_PASSWORD={REDIS_PASSWORD}\n")
    live.env_file.write_text(text)
    if os.geteuid() == 0:
        for path in [live.system, *live.system.rglob("*"), live.env_file]:
            os.chown(path, *MEDIA_OWNER)
    for path in live.avatars:
        path.chmod(0o640)
    return live


def test_restore_mastodon_brings_a_destroyed_instance_back(
    cli: Cli, password_postgres: PostgresServer, start_redis: StartRedis, tmp_path: Path
) -> None:
    pg, db = password_postgres, "mastodon_dr_production"
    instance_database(pg, db)
    letsencrypt, nginx, systemd = web_server_files(tmp_path / "etc")
    rdb = tmp_path / "redis-data" / "dump.rdb"
    rdb.parent.mkdir()
    config = tmp_path / "snapstore.toml"
    (tmp_path / "password").write_text(PASSWORD + "\n")
    bare = {k: v for k, v in cli.env.items() if not k.startswith("SNAPSTORE_")}
    with start_redis(password=REDIS_PASSWORD) as redis:
        live = instance_live_dir(tmp_path, pg, db, redis)
        config.write_text(
            f'repository = "{cli.repo}"\npassword_file = "password"\n'
            f'[mastodon]\nenv_file = "{live.env_file}"\nletsencrypt_dir = "{letsencrypt}"\n'
            f'nginx_dir = "{nginx}"\nsystemd_dir = "{systemd}"\n'
            f'[postgres]\nhost = "{pg.host}"\nport = {pg.port}\nusername = "postgres"\n'
        )
        for n in range(40):
            redis.cli("SET", f"cache:{n}", f"value {n}")
        redis.cli("HSET", "account:1", "username", "alice", "note", "x" * 300)
        redis.cli("RPUSH", "feed:home:1", *[str(10**17 + n) for n in range(50)])
        as_cron = Cli(cli.repo, bare)
        taken = as_cron("--config", str(config), "snapshot", "mastodon", "--json")
        assert taken.code == 0, taken.err
        parts = cli("snapshots", "--json").json()[0]["metadata"]["mastodon"]["parts"]
        assert {parts[p] for p in ("postgres", "redis", "config", "media", "letsencrypt",
                                   "nginx", "systemd")} == {"ok"}  # fmt: skip
        before_keys = redis_contents(redis)
        # Redis still runs: its RDB is not replaced under it.
        refused = as_cron("--config", str(config), "restore", "mastodon", "--only", "redis",
                          "--redis-rdb", str(rdb))  # fmt: skip
        assert refused.code == 1
        assert "is running" in refused.err and not rdb.exists()
    digests = table_digests(pg, db)
    # Remote media's cache is not backed up: Mastodon fetches it again.
    media_before = {p: e for p, e in files_of(live.system).items() if not p.startswith("cache")}
    env_before = files_of(live.root)[".env.production"]
    etc_before = files_of(tmp_path / "etc")
    listed = cli("ls", "latest", "--json").json()
    paths = {entry["path"] for entry in listed}
    assert "/nginx/sites-available/mastodon" in paths and "/nginx/sites-available/default" not in paths
    assert "/systemd/mastodon-web.service" in paths and "/systemd/ssh.service" not in paths

    # The night the server is gone.
    pg.psql(f"DROP DATABASE {db} WITH (FORCE)")
    pg.psql(f"DROP ROLE {ROLE}")
    shutil.rmtree(tmp_path / "home")
    shutil.rmtree(tmp_path / "etc")

    plan = as_cron("--config", str(config), "restore", "mastodon", "--dry-run",
                   "--redis-rdb", str(rdb))  # fmt: skip
    assert plan.code == 0, plan.err
    assert "would restore" in plan.text and "database" in plan.text
    assert not (tmp_path / "home").exists() and not rdb.exists()
    assert pg.psql(f"SELECT count(*) FROM pg_roles WHERE rolname = '{ROLE}'") == "0"

    done = as_cron("--config", str(config), "restore", "mastodon", "--redis-rdb", str(rdb),
                   "--json")  # fmt: skip
    assert done.code == 0, done.err + done.text
    report = done.json()
    steps = {step["part"]: step for step in report["steps"]}
    assert {p: s["status"] for p, s in steps.items()} == {
        "database": "ok", "config": "ok", "media": "ok", "redis": "ok", "letsencrypt": "ok",
        "nginx": "ok", "systemd": "ok",
    }  # fmt: skip
    assert "password set from DB_PASS" in steps["database"]["detail"]
    assert any("systemctl" in item for item in report["checklist"])

    # Mastodon logs in as its own role, with the password in .env.production.
    login = login_as_instance(pg, db, ROLE_PASSWORD)
    assert login.returncode == 0, login.stderr
    assert login.stdout.strip() == f"{ROLE}|40"
    assert login_as_instance(pg, db, "wrong").returncode != 0
    assert pg.psql(f"SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '{db}'") == ROLE
    assert table_digests(pg, db) == digests
    assert files_of(live.system) == media_before
    assert files_of(live.root)[".env.production"] == env_before
    assert files_of(tmp_path / "etc") == {
        path: entry for path, entry in etc_before.items()
        if path not in ("nginx/sites-available/default", "systemd/ssh.service")
    }  # fmt: skip
    with start_redis(rdb=rdb, password=REDIS_PASSWORD) as restored:
        assert redis_contents(restored) == before_keys

    # Again, over what it restored: nothing is replaced, the database is refused.
    again = as_cron("--config", str(config), "restore", "mastodon", "--redis-rdb", str(rdb))
    assert again.code == 1
    assert "already holds tables" in again.err and "--clean" in again.err
