"""PostgresSource against a real throwaway cluster seeded with a Mastodon-like schema."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from snapstore.archiver.source import ChunkingProfile, EntryKind, SourceEntry
from snapstore.errors import DumpFailed
from snapstore.sources.postgres import PostgresOptions, PostgresSource
from tests.support.mastodon import SeedSummary, apply_churn
from tests.support.postgres import PostgresServer

MastodonDb = tuple[str, SeedSummary]


def options(server: PostgresServer, dbname: str, **changes: object) -> PostgresOptions:
    settings: dict[str, object] = {
        "host": server.host,
        "port": server.port,
        "username": server.user,
    }
    return PostgresOptions(dbname, **{**settings, **changes})  # type: ignore[arg-type]


def entries_of(source: PostgresSource) -> list[SourceEntry]:
    errors: list[object] = []
    entries = list(source.entries(lambda path, exc: errors.append((path, exc))))
    assert errors == []
    return entries


def read(entry: SourceEntry, out: Path | None = None) -> bytes:
    assert entry.open_content is not None
    with entry.open_content() as stream:
        data = stream.read()
    if out is not None:
        out.write_bytes(data)
    return data


def restore(server: PostgresServer, dump: Path, dbname: str) -> None:
    server.createdb(dbname)
    subprocess.run(
        [server.bin("pg_restore"), "--no-owner", *server.connection_args(dbname), str(dump)],
        check=True,
        capture_output=True,
    )


def test_layout_and_custom_format_dump(
    postgres_server: PostgresServer, mastodon_db: MastodonDb, tmp_path: Path
) -> None:
    dbname, _ = mastodon_db
    source = PostgresSource(options(postgres_server, dbname))
    entries = entries_of(source)
    assert [(e.path, e.kind) for e in entries] == [
        ((b"postgres",), EntryKind.DIR),
        ((b"postgres", f"{dbname}.dump".encode()), EntryKind.FILE),
        ((b"postgres", b"globals.sql"), EntryKind.FILE),
    ]
    assert entries[1].profile is ChunkingProfile.DATABASE
    dump = tmp_path / "db.dump"
    assert read(entries[1], dump).startswith(b"PGDMP")
    listing = subprocess.run(
        [postgres_server.bin("pg_restore"), "--list", str(dump)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    for table in ("accounts", "statuses", "follows", "favourites", "media_attachments"):
        assert f"TABLE public {table} " in listing
    assert "TABLE DATA public statuses " in listing
    assert b"CREATE ROLE postgres;" in read(entries[2])
    assert source.kind == "postgres"
    assert source.describe() == [
        f"postgres://{postgres_server.host}:{postgres_server.port}/{dbname}"
    ]


def test_metadata_records_versions_and_exact_row_counts(
    postgres_server: PostgresServer, mastodon_db: MastodonDb
) -> None:
    dbname, seeded = mastodon_db
    source = PostgresSource(options(postgres_server, dbname))
    for entry in entries_of(source):
        if entry.open_content is not None:
            read(entry)
    facts = source.metadata()["postgres"]
    assert isinstance(facts, dict)
    assert facts["dbname"] == dbname and facts["dump_format"] == "custom"
    assert str(facts["server_version"]).startswith(postgres_server.psql("SHOW server_version"))
    assert "pg_dump" in str(facts["pg_dump_version"])
    assert facts["row_counts"] == {
        "account_stats": len(seeded.accounts),
        "accounts": len(seeded.accounts),
        "favourites": seeded.favourites,
        "follows": seeded.follows,
        "media_attachments": len(seeded.media),
        "schema_migrations": 7,
        "statuses": len(seeded.statuses),
    }


def test_counts_match_the_dump_even_when_writes_happen_during_it(
    postgres_server: PostgresServer, mastodon_db: MastodonDb, tmp_path: Path
) -> None:
    dbname, seeded = mastodon_db
    source = PostgresSource(options(postgres_server, dbname))
    dump_entry = entries_of(source)[1]
    dump = tmp_path / "db.dump"
    assert dump_entry.open_content is not None
    with dump_entry.open_content() as stream:
        churn = apply_churn(postgres_server, dbname, day=1)  # commits while pg_dump runs
        dump.write_bytes(stream.read())
    counts = source.metadata()["postgres"]["row_counts"]  # type: ignore[index]
    live = int(postgres_server.psql("SELECT count(*) FROM statuses", dbname))
    assert live == len(seeded.statuses) + len(churn.inserted) - len(churn.deleted)
    assert counts["statuses"] == len(seeded.statuses) != live

    restore(postgres_server, dump, f"{dbname}_restored")
    try:
        for table, expected in counts.items():
            assert postgres_server.row_count(table, f"{dbname}_restored") == expected, table
    finally:
        postgres_server.dropdb(f"{dbname}_restored")


def test_wrong_database_fails_before_anything_is_yielded(postgres_server: PostgresServer) -> None:
    source = PostgresSource(options(postgres_server, "no_such_db"))
    with pytest.raises(DumpFailed) as caught:
        next(source.entries(lambda path, exc: None))
    assert 'database "no_such_db" does not exist' in caught.value.stderr_tail
    assert "no_such_db" in str(caught.value)


def test_pg_dump_failure_raises_with_pg_dumps_message(
    postgres_server: PostgresServer, mastodon_db: MastodonDb
) -> None:
    dbname, _ = mastodon_db
    # A role that may connect but not read one table: pg_dump itself fails half-way.
    postgres_server.psql(
        "DO $$ BEGIN CREATE ROLE limited LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;"
        f'GRANT CONNECT ON DATABASE "{dbname}" TO limited;'
        "GRANT USAGE ON SCHEMA public TO limited;"
        "GRANT SELECT ON ALL TABLES IN SCHEMA public TO limited;"
        "REVOKE SELECT ON statuses FROM limited;",
        dbname,
    )
    source = PostgresSource(options(postgres_server, dbname, username="limited", count_rows=False))
    dump_entry = entries_of(source)[1]
    with pytest.raises(DumpFailed) as caught:
        read(dump_entry)
    assert caught.value.command == "pg_dump"
    assert caught.value.returncode == 1
    assert "permission denied for table statuses" in caught.value.stderr_tail


def test_password_reaches_the_child_environment_not_its_arguments(
    postgres_server: PostgresServer, mastodon_db: MastodonDb, tmp_path: Path
) -> None:
    dbname, _ = mastodon_db
    fake = tmp_path / "fake_pg_dump"
    fake.write_text(
        f"#!{sys.executable}\n"
        "import os, sys\n"
        "print(repr(sys.argv[1:]))\n"
        "print(os.environ.get('PGPASSWORD'))\n"
    )
    fake.chmod(0o755)
    source = PostgresSource(
        options(postgres_server, dbname, password="s3cret", pg_dump=str(fake), count_rows=False)
    )
    dump_entry = next(e for e in entries_of(source) if e.path[-1].endswith(b".dump"))
    argv_line, password_line = read(dump_entry).decode().splitlines()
    assert "s3cret" not in argv_line
    assert "--format=custom" in argv_line and "--compress=0" in argv_line
    assert "--snapshot=" in argv_line
    assert password_line == "s3cret"


def test_command_prefix_and_layout_prefix(
    postgres_server: PostgresServer, mastodon_db: MastodonDb
) -> None:
    dbname, _ = mastodon_db
    source = PostgresSource(
        options(postgres_server, dbname, command_prefix=["env", "TZ=UTC"], dump_globals=False),
        layout_prefix=("mastodon", "db"),
    )
    entries = entries_of(source)
    assert [e.path for e in entries] == [
        (b"mastodon", b"db"),
        (b"mastodon", b"db", f"{dbname}.dump".encode()),
    ]
    assert read(entries[1]).startswith(b"PGDMP")
    assert source.metadata()["postgres"]["globals"] is False  # type: ignore[index]
