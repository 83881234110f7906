"""RedisSource against real redis-server processes: fetch, check, and load the RDB back."""

from __future__ import annotations

import io
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from snapstore.archiver.source import ChunkingProfile, EntryKind, SourceEntry
from snapstore.errors import DumpFailed, SourceError, UsageError
from snapstore.sources.redis import RedisOptions, RedisSource, strip_eof_mark
from tests.support.postgres import free_port
from tests.support.redis import RedisServer

StartRedis = Callable[..., AbstractContextManager[RedisServer]]


def fill(server: RedisServer) -> None:
    server.cli("SET", "cache:home:1", "timeline-bytes")
    server.cli("SET", "session:abc", "x" * 10_000, "EX", "3600")
    server.cli("HSET", "account:1", "username", "alice", "followers", "42")
    server.cli("RPUSH", "feed:1", "111", "112", "113")
    server.cli("SADD", "follows:1", "2", "3")
    server.cli("ZADD", "trending", "5", "#fediverse", "3", "#backup")
    server.cli("-n", "1", "SET", "sidekiq:stats:processed", "12345")


def contents(server: RedisServer) -> dict[str, str]:
    """Every key we filled, read back type by type."""
    return {
        "cache": server.cli("GET", "cache:home:1"),
        "session": server.cli("GET", "session:abc"),
        "session_ttl": str(int(server.cli("TTL", "session:abc")) > 3000),
        "account": server.cli("HGETALL", "account:1"),
        "feed": server.cli("LRANGE", "feed:1", "0", "-1"),
        "follows": " ".join(sorted(server.cli("SMEMBERS", "follows:1").split())),
        "trending": server.cli("ZRANGE", "trending", "0", "-1", "WITHSCORES"),
        "db1": server.cli("-n", "1", "GET", "sidekiq:stats:processed"),
        "keys": " ".join(sorted(server.cli("KEYS", "*").split())),
    }


def only_file(source: RedisSource) -> SourceEntry:
    entries = list(source.entries(lambda path, exc: pytest.fail(f"{path}: {exc}")))
    assert [(e.path, e.kind) for e in entries] == [
        ((b"redis",), EntryKind.DIR),
        ((b"redis", b"dump.rdb"), EntryKind.FILE),
    ]
    return entries[1]


def read(entry: SourceEntry) -> bytes:
    assert entry.open_content is not None
    with entry.open_content() as stream:
        return stream.read()


@pytest.mark.parametrize("diskless", ["yes", "no"])
def test_fresh_rdb_loads_into_another_server(
    fresh_redis: RedisServer, start_redis: StartRedis, tmp_path: Path, diskless: str
) -> None:
    fill(fresh_redis)
    fresh_redis.cli("CONFIG", "SET", "repl-diskless-sync", diskless)
    source = RedisSource(RedisOptions(fresh_redis.host, fresh_redis.port))
    try:
        entry = only_file(source)
    finally:
        fresh_redis.cli("CONFIG", "SET", "repl-diskless-sync", "yes")
    assert entry.profile is ChunkingProfile.DATABASE
    rdb = read(entry)
    assert rdb[:5] == b"REDIS" and rdb[5:9].isdigit()
    assert rdb[-9] == 0xFF  # the EOF opcode before the checksum: no transfer marker left
    assert entry.size == len(rdb)
    (tmp_path / "backup.rdb").write_bytes(rdb)
    with start_redis(rdb=tmp_path / "backup.rdb") as restored:
        assert contents(restored) == contents(fresh_redis)
    facts = source.metadata()["redis"]
    assert isinstance(facts, dict)
    assert facts["source"] == "server" and facts["rdb_version"] == int(rdb[5:9])
    assert facts["keyspace"]["db0"]["keys"] == 6
    assert facts["redis_version"]


def test_content_is_read_once(fresh_redis: RedisServer) -> None:
    entry = only_file(RedisSource(RedisOptions(fresh_redis.host, fresh_redis.port)))
    read(entry)
    with pytest.raises(SourceError, match="already read"):
        read(entry)


def test_password_goes_through_the_environment(start_redis: StartRedis) -> None:
    with start_redis(password="hunter2") as server:
        server.cli("SET", "k", "v")
        entry = only_file(RedisSource(RedisOptions(server.host, server.port, password="hunter2")))
        assert b"k" in read(entry)
        with pytest.raises(DumpFailed) as caught:
            only_file(RedisSource(RedisOptions(server.host, server.port, password="wrong")))
        assert "WRONGPASS" in caught.value.stderr_tail
        with pytest.raises(DumpFailed, match="NOAUTH"):
            only_file(RedisSource(RedisOptions(server.host, server.port)))


def test_unreachable_server_fails() -> None:
    with pytest.raises(DumpFailed, match="Could not connect"):
        only_file(RedisSource(RedisOptions("127.0.0.1", free_port())))


def test_existing_rdb_file(fresh_redis: RedisServer) -> None:
    fill(fresh_redis)
    fresh_redis.cli("SAVE")
    source = RedisSource(rdb_file=fresh_redis.rdb_path, layout_prefix=("mastodon", "redis"))
    entries = list(source.entries(lambda path, exc: None))
    assert [e.path for e in entries] == [
        (b"mastodon", b"redis"),
        (b"mastodon", b"redis", b"dump.rdb"),
    ]
    assert read(entries[1]) == fresh_redis.rdb_path.read_bytes()
    assert entries[1].mtime_ns == fresh_redis.rdb_path.stat().st_mtime_ns
    assert source.describe() == [str(fresh_redis.rdb_path)]
    assert source.metadata()["redis"]["source"] == "file"  # type: ignore[index]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "not an RDB file"),
        (b"PGDMP\x01\x0e\x00\x04\x08" + b"\x00" * 100, "not an RDB file"),
        (b"REDIS00x1" + b"\x00" * 100, "not an RDB file"),
        (b"REDIS0010\xfa\x09redis-ver", "truncated"),
    ],
)
def test_bad_rdb_file_is_rejected(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "dump.rdb"
    path.write_bytes(content)
    with pytest.raises(SourceError, match=message):
        next(RedisSource(rdb_file=path).entries(lambda p, e: None))


def test_truncated_copy_of_a_real_rdb_is_rejected(fresh_redis: RedisServer, tmp_path: Path) -> None:
    fill(fresh_redis)
    fresh_redis.cli("SAVE")
    (tmp_path / "cut.rdb").write_bytes(fresh_redis.rdb_path.read_bytes()[:-5])
    with pytest.raises(SourceError, match="truncated"):
        next(RedisSource(rdb_file=tmp_path / "cut.rdb").entries(lambda p, e: None))


def test_needs_exactly_one_origin(tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        RedisSource()
    with pytest.raises(UsageError):
        RedisSource(RedisOptions(), rdb_file=tmp_path / "x")


def test_strip_eof_mark_only_cuts_a_diskless_marker() -> None:
    rdb = b"REDIS0010\xfe\x00\x00\x01k\x01v\xff" + bytes(range(8))
    marker = b"0123456789abcdef0123456789abcdef01234567"
    for content, expected in [
        (rdb + marker, rdb),  # what `redis-cli --rdb -` writes from a diskless transfer
        (rdb, rdb),  # already clean
        (rdb + b"x" * 40, rdb + b"x" * 40),  # not hex: left alone, check_rdb will reject it
    ]:
        spool = io.BytesIO(content)
        assert strip_eof_mark(spool) == len(expected)
        assert spool.getvalue()[: len(expected)] == expected
