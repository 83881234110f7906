"""The first bytes the real programs write are recognised (pg_dump in each format, pg_dumpall,
redis-cli --rdb), and a real pg_dump run by `snapshot command` without a flag gets deltas."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from snapstore.archiver.detect import HEAD_BYTES, database_format
from tests.support.cli import Cli
from tests.support.mastodon import apply_churn
from tests.support.postgres import PostgresServer
from tests.support.redis import RedisServer


def head_of(argv: list[str]) -> bytes:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    done = subprocess.run(argv, capture_output=True, env=env, check=True)
    return done.stdout[:HEAD_BYTES]


@pytest.mark.parametrize(("fmt", "expected"), [("custom", "postgresql-custom"),
                                                 ("plain", "postgresql-sql")])  # fmt: skip
def test_pg_dump_output_is_recognised(
    postgres_server: PostgresServer, mastodon_db: tuple[str, object], fmt: str, expected: str
) -> None:
    pg, (db, _) = postgres_server, mastodon_db
    argv = [pg.bin("pg_dump"), f"--format={fmt}", *pg.connection_args(db)]
    assert database_format(b"x.dump", head_of(argv)) == expected


def test_pg_dumpall_and_directory_format_are_recognised(
    postgres_server: PostgresServer, mastodon_db: tuple[str, object], tmp_path: Path
) -> None:
    pg, (db, _) = postgres_server, mastodon_db
    dumpall = [pg.bin("pg_dumpall"), "--globals-only", "-h", pg.host, "-p", str(pg.port), "-U", pg.user]
    assert database_format(b"globals.sql", head_of(dumpall)) == "postgresql-sql"
    out = tmp_path / "dir"
    head_of([pg.bin("pg_dump"), "--format=directory", "--compress=0", "-f", str(out),
             *pg.connection_args(db)])  # fmt: skip
    assert database_format(b"toc.dat", (out / "toc.dat").read_bytes()[:HEAD_BYTES]) is not None
    data = sorted(p for p in out.iterdir() if p.name != "toc.dat")
    assert data and all(database_format(p.name.encode(), p.read_bytes()[:64]) for p in data)


def test_redis_rdb_is_recognised(fresh_redis: RedisServer) -> None:
    fresh_redis.cli("SET", "k", "v")
    argv = ["redis-cli", "-h", fresh_redis.host, "-p", str(fresh_redis.port), "--rdb", "-"]
    assert database_format(b"dump.rdb", head_of(argv)) == "redis-rdb"


def test_snapshot_command_of_pg_dump_without_a_flag_stores_day_two_as_deltas(
    cli: Cli, postgres_server: PostgresServer, big_db: str
) -> None:
    pg, db = postgres_server, big_db
    argv = ["snapshot", "command", "--name", "mastodon.dump", "--json", "--",
            pg.bin("pg_dump"), "--format=custom", "--compress=0", *pg.connection_args(db)]  # fmt: skip
    first = cli(*argv)
    assert first.code == 0, first.err
    apply_churn(pg, db, day=1)
    second = cli(*argv)
    assert second.code == 0, second.err
    day1, day2 = first.json(), second.json()
    assert day2["parent"] == day1["snapshot_id"] and day2["deltas_added"] > 0
    assert day2["bytes_added"] < day1["bytes_added"] / 4
