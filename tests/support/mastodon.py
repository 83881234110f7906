"""A small, deterministic Mastodon look-alike: a database schema with seeded data, "a day
of churn" to apply between backups, and a fake `live` directory with .env.production and
user-uploaded media.

The schema keeps the tables and shapes that matter to a backup tool (snowflake-like bigint
ids, foreign keys with cascades, counters kept in account_stats, schema_migrations), not
Mastodon's full 100+ tables. Everything is derived from a seed, so two runs with the same
seed produce the same rows and the same bytes.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

# 2024-01-01T00:00:00Z in milliseconds: the epoch our snowflake-like ids count from.
BASE_MS = 1_704_067_200_000
DAY_MS = 86_400_000

SCHEMA_SQL = """
CREATE TABLE schema_migrations (version varchar PRIMARY KEY);
CREATE TABLE accounts (
    id bigint PRIMARY KEY,
    username varchar NOT NULL,
    domain varchar,
    display_name varchar NOT NULL DEFAULT '',
    note text NOT NULL DEFAULT '',
    avatar_file_name varchar,
    created_at timestamp NOT NULL,
    updated_at timestamp NOT NULL
);
CREATE UNIQUE INDEX index_accounts_on_username_and_domain ON accounts (lower(username), domain);
CREATE TABLE account_stats (
    id bigserial PRIMARY KEY,
    account_id bigint NOT NULL UNIQUE REFERENCES accounts (id) ON DELETE CASCADE,
    statuses_count bigint NOT NULL DEFAULT 0,
    following_count bigint NOT NULL DEFAULT 0,
    followers_count bigint NOT NULL DEFAULT 0,
    last_status_at timestamp
);
CREATE TABLE statuses (
    id bigint PRIMARY KEY,
    uri varchar NOT NULL,
    text text NOT NULL DEFAULT '',
    account_id bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    in_reply_to_id bigint,
    visibility integer NOT NULL DEFAULT 0,
    language varchar,
    created_at timestamp NOT NULL,
    updated_at timestamp NOT NULL
);
CREATE INDEX index_statuses_on_account_id_id ON statuses (account_id, id DESC);
CREATE TABLE follows (
    id bigserial PRIMARY KEY,
    account_id bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    target_account_id bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    created_at timestamp NOT NULL,
    UNIQUE (account_id, target_account_id)
);
CREATE TABLE favourites (
    id bigserial PRIMARY KEY,
    account_id bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    status_id bigint NOT NULL REFERENCES statuses (id) ON DELETE CASCADE,
    created_at timestamp NOT NULL,
    UNIQUE (account_id, status_id)
);
CREATE TABLE media_attachments (
    id bigint PRIMARY KEY,
    status_id bigint REFERENCES statuses (id) ON DELETE SET NULL,
    account_id bigint REFERENCES accounts (id) ON DELETE SET NULL,
    file_file_name varchar,
    file_content_type varchar,
    file_file_size integer,
    shortcode varchar,
    created_at timestamp NOT NULL
);
"""

MIGRATIONS = [
    "20160220174730", "20170920032311", "20190715164535", "20220613110834",
    "20230818142253", "20240111094230", "20240312105620",
]  # fmt: skip

WORDS = (
    "fediverse", "toot", "boost", "instance", "federation", "moderation", "timeline",
    "hashtag", "mastodon", "admin", "backup", "restore", "snapshot", "postgres", "redis",
    "media", "cache", "relay", "server", "community",
)  # fmt: skip


class SqlRunner(Protocol):
    """Anything that runs SQL in a named database (tests.support.postgres.PostgresServer)."""

    def psql(self, sql: str, db: str = ...) -> str: ...


def snowflake(ms_after_base: int, sequence: int = 0) -> int:
    """A Mastodon-style id: milliseconds since the epoch in the high bits."""
    return ((BASE_MS + ms_after_base) << 16) | (sequence & 0xFFFF)


def id_partition(ident: int) -> str:
    """Paperclip's :id_partition for Mastodon's long ids: 000/000/001 style groups."""
    digits = f"{ident:09d}"
    digits = digits.rjust(-(-len(digits) // 3) * 3, "0")
    return "/".join(digits[i : i + 3] for i in range(0, len(digits), 3))


def _q(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, int):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


def _ts(ms_after_base: int) -> str:
    return f"to_timestamp({(BASE_MS + ms_after_base) / 1000:.3f}) AT TIME ZONE 'UTC'"


def _values(rows: Iterable[Sequence[str]]) -> str:
    return ",\n".join("(" + ", ".join(row) + ")" for row in rows)


def _sentence(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


@dataclass
class SeedSummary:
    """What was seeded, so tests can assert on exact counts."""

    accounts: list[int]
    statuses: list[int]
    follows: int
    favourites: int
    media: list[tuple[int, str]] = field(default_factory=list)  # (id, file name)


def create_mastodon_db(
    server: SqlRunner, db: str, *, seed: int = 1, accounts: int = 30, statuses: int = 300
) -> SeedSummary:
    """Create the schema in an existing (empty) database and fill it deterministically."""
    server.psql(SCHEMA_SQL, db)
    rng = random.Random(seed)
    sql: list[str] = [
        "INSERT INTO schema_migrations (version) VALUES "
        + ", ".join(f"({_q(v)})" for v in MIGRATIONS)
        + ";"
    ]
    account_ids = [snowflake(i * 60_000, 1) for i in range(accounts)]
    account_rows = []
    for n, ident in enumerate(account_ids):
        remote = n % 3 == 2
        account_rows.append(
            (
                _q(ident),
                _q(f"user{n}"),
                _q(f"remote{n % 5}.example" if remote else None),
                _q(f"User {n}"),
                _q(_sentence(rng, 8)),
                _q(None if remote else f"avatar{n}.png"),
                _ts(n * 60_000),
                _ts(n * 60_000),
            )
        )
    sql.append(f"INSERT INTO accounts VALUES {_values(account_rows)};")
    sql.append("INSERT INTO account_stats (account_id) SELECT id FROM accounts ORDER BY id;")
    status_ids: list[int] = []
    status_rows = []
    for n in range(statuses):
        ms = DAY_MS // 2 + n * 1_000
        ident = snowflake(ms, n)
        author = rng.choice(account_ids)
        reply_to = rng.choice(status_ids) if status_ids and rng.random() < 0.2 else None
        status_rows.append(
            (
                _q(ident),
                _q(f"https://snapstore.test/users/x/statuses/{ident}"),
                _q(_sentence(rng, rng.randint(3, 40))),
                _q(author),
                _q(reply_to),
                _q(rng.choice([0, 0, 0, 1, 2, 3])),
                _q(rng.choice(["en", "de", "fr", None])),
                _ts(ms),
                _ts(ms),
            )
        )
        status_ids.append(ident)
    sql.append(f"INSERT INTO statuses VALUES {_values(status_rows)};")
    pairs = sorted({(a, b) for a in account_ids for b in account_ids if a != b
                    and rng.random() < 0.15})  # fmt: skip
    sql.append(
        "INSERT INTO follows (account_id, target_account_id, created_at) VALUES "
        + _values((_q(a), _q(b), _ts(DAY_MS // 4)) for a, b in pairs)
        + ";"
    )
    faves = sorted({(rng.choice(account_ids), rng.choice(status_ids)) for _ in range(statuses)})
    sql.append(_favourites_sql(faves, DAY_MS))
    media: list[tuple[int, str]] = []
    media_rows = []
    for n, status in enumerate(rng.sample(status_ids, k=min(len(status_ids), statuses // 10))):
        ident = status + 1_000 + n
        name = f"{rng.getrandbits(64):016x}.jpg"
        media.append((ident, name))
        media_rows.append(
            (
                _q(ident), _q(status), "NULL", _q(name), _q("image/jpeg"),
                _q(rng.randint(2_000, 48_000)), _q(f"m{n:05d}"), _ts(DAY_MS // 2),
            )
        )  # fmt: skip
    if media_rows:
        sql.append(f"INSERT INTO media_attachments VALUES {_values(media_rows)};")
        sql.append(
            "UPDATE media_attachments m SET account_id = s.account_id "
            "FROM statuses s WHERE s.id = m.status_id;"
        )
    sql.append(_RECOUNT_SQL)
    server.psql("\n".join(sql), db)
    return SeedSummary(account_ids, status_ids, len(pairs), len(faves), media)


def _favourites_sql(pairs: Iterable[tuple[int, int]], ms: int) -> str:
    rows = [(_q(a), _q(s), _ts(ms)) for a, s in pairs]
    if not rows:
        return ""
    return (
        "INSERT INTO favourites (account_id, status_id, created_at) VALUES "
        + _values(rows)
        + " ON CONFLICT DO NOTHING;"
    )


_RECOUNT_SQL = """
UPDATE account_stats st SET
    statuses_count = (SELECT count(*) FROM statuses s WHERE s.account_id = st.account_id),
    following_count = (SELECT count(*) FROM follows f WHERE f.account_id = st.account_id),
    followers_count = (SELECT count(*) FROM follows f WHERE f.target_account_id = st.account_id),
    last_status_at = (SELECT max(created_at) FROM statuses s WHERE s.account_id = st.account_id);
"""


@dataclass
class Churn:
    """What one day of churn did."""

    day: int
    inserted: list[int]
    deleted: list[int]
    favourites: int


def apply_churn(
    server: SqlRunner, db: str, day: int, *, seed: int = 1, new_statuses: int = 40,
    deletions: int = 5, new_favourites: int = 30,
) -> Churn:  # fmt: skip
    """A day on a small instance: new statuses and favourites, a few deletions, new counters.

    Day numbers start at 1; the same (seed, day) on the same database state does the same.
    """
    rng = random.Random(seed * 100_003 + day)
    account_ids = [int(x) for x in server.psql("SELECT id FROM accounts ORDER BY id", db).split()]
    existing = [int(x) for x in server.psql("SELECT id FROM statuses ORDER BY id", db).split()]
    doomed = sorted(rng.sample(existing, k=min(deletions, len(existing))))
    inserted = []
    rows = []
    for n in range(new_statuses):
        ms = day * DAY_MS + DAY_MS // 2 + n * 1_000
        ident = snowflake(ms, n)
        inserted.append(ident)
        rows.append(
            (
                _q(ident), _q(f"https://snapstore.test/users/x/statuses/{ident}"),
                _q(_sentence(rng, rng.randint(3, 40))), _q(rng.choice(account_ids)), "NULL",
                "0", _q("en"), _ts(ms), _ts(ms),
            )
        )  # fmt: skip
    survivors = [s for s in existing if s not in set(doomed)] + inserted
    faves = sorted(
        {(rng.choice(account_ids), rng.choice(survivors)) for _ in range(new_favourites)}
    )
    before = int(server.psql("SELECT count(*) FROM favourites", db))
    sql = [
        "BEGIN;",
        f"INSERT INTO statuses VALUES {_values(rows)};" if rows else "",
        f"DELETE FROM statuses WHERE id IN ({', '.join(map(str, doomed))});" if doomed else "",
        _favourites_sql(faves, day * DAY_MS + DAY_MS // 2),
        _RECOUNT_SQL,
        "COMMIT;",
    ]
    server.psql("\n".join(sql), db)
    after = int(server.psql("SELECT count(*) FROM favourites", db))
    return Churn(day, inserted, doomed, after - before)


@dataclass
class LiveDir:
    """A fake /home/mastodon/live and the files in it, by kind."""

    root: Path
    env_file: Path
    avatars: list[Path]
    media: list[Path]
    cache: list[Path]

    @property
    def system(self) -> Path:
        return self.root / "public" / "system"


def build_live_dir(
    root: Path,
    *,
    db_host: str,
    db_port: int,
    db_name: str,
    db_user: str,
    db_pass: str = "",
    redis_host: str = "127.0.0.1",
    redis_port: int = 6379,
    local_domain: str = "snapstore.test",
    accounts: int = 6,
    media: int = 12,
    cached: int = 8,
    seed: int = 1,
) -> LiveDir:
    """Write .env.production and user-uploaded files under `root` (created if needed)."""
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    env_file = root / ".env.production"
    env_file.write_text(
        "\n".join(
            [
                "# Generated by snapstore tests",
                f"LOCAL_DOMAIN={local_domain}",
                "SINGLE_USER_MODE=false",
                f"SECRET_KEY_BASE={rng.getrandbits(512):0128x}",
                f"OTP_SECRET={rng.getrandbits(512):0128x}",
                f"VAPID_PRIVATE_KEY={rng.getrandbits(256):064x}",
                f"VAPID_PUBLIC_KEY={rng.getrandbits(256):064x}",
                f"DB_HOST={db_host}",
                f"DB_PORT={db_port}",
                f"DB_NAME={db_name}",
                f"DB_USER={db_user}",
                f"DB_PASS={db_pass}",
                f"REDIS_HOST={redis_host}",
                f"REDIS_PORT={redis_port}",
                "REDIS_PASSWORD=",
                "S3_ENABLED=false",
                "ES_ENABLED=false",
                "SMTP_SERVER=localhost",
                "SMTP_PORT=25",
                f"SMTP_FROM_ADDRESS=notifications@{local_domain}",
                "",
            ]
        )
    )
    env_file.chmod(0o600)
    system = root / "public" / "system"

    def write(path: Path, magic: bytes, low: int, high: int) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(magic + rng.randbytes(rng.randint(low, high)))
        return path

    avatars = []
    for n in range(1, accounts + 1):
        part = id_partition(n)
        avatars.append(write(system / "accounts/avatars" / part / "original/avatar.png",
                             b"\x89PNG\r\n\x1a\n", 1_000, 20_000))  # fmt: skip
        avatars.append(write(system / "accounts/headers" / part / "original/header.jpg",
                             b"\xff\xd8\xff\xe0", 2_000, 30_000))  # fmt: skip
    media_files = []
    for n in range(media):
        part = id_partition(snowflake(DAY_MS + n * 1_000, n))
        name = f"{rng.getrandbits(64):016x}"
        media_files.append(write(system / "media_attachments/files" / part / f"original/{name}.jpg",
                                 b"\xff\xd8\xff\xe0", 4_000, 64_000))  # fmt: skip
        media_files.append(write(system / "media_attachments/files" / part / f"small/{name}.jpg",
                                 b"\xff\xd8\xff\xe0", 500, 4_000))  # fmt: skip
    cache_files = []
    for n in range(cached):
        part = id_partition(snowflake(2 * DAY_MS + n * 1_000, n))
        cache_files.append(write(system / "cache/media_attachments/files" / part / "original/r.jpg",
                                 b"\xff\xd8\xff\xe0", 4_000, 64_000))  # fmt: skip
        cache_files.append(write(system / "cache/accounts/avatars" / part / "original/a.png",
                                 b"\x89PNG\r\n\x1a\n", 1_000, 8_000))  # fmt: skip
    (system / "cache").mkdir(parents=True, exist_ok=True)
    return LiveDir(root, env_file, avatars, media_files, cache_files)


def give_tables_to(server: SqlRunner, db: str, role: str) -> None:
    """Make `role` own every table (and with them their sequences and indexes), as
    Mastodon's role owns its database's objects."""
    server.psql(
        "DO $$ DECLARE t record; BEGIN FOR t IN SELECT tablename FROM pg_tables "
        "WHERE schemaname = 'public' LOOP "
        f"EXECUTE format('ALTER TABLE %I OWNER TO %I', t.tablename, '{role}'); END LOOP; END $$;",
        db,
    )


#: The tables `table_digests` compares.
DIGEST_TABLES = ("account_stats", "accounts", "favourites", "follows", "media_attachments",
                 "schema_migrations", "statuses")  # fmt: skip


def table_digests(server: SqlRunner, db: str) -> dict[str, str]:
    """Per table: row count and md5 of all rows in a fixed order."""
    sql = " UNION ALL ".join(
        f"SELECT '{t}', count(*) || ':' || coalesce(md5(string_agg(x::text, '|' "
        f"ORDER BY x::text)), '') FROM {t} x"
        for t in DIGEST_TABLES
    )
    rows = server.psql(sql, db).splitlines()
    return dict(row.split("|", 1) for row in rows)
