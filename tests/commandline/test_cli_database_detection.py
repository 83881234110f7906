"""Databases recognised by their first bytes through the installed command (issue 13, item 2):
a dump piped into `snapshot stdin` or an RDB backed up as a file gets the database profile and
delta bases without a flag; --no-database and --database override; the node says so."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

import snapstore
from tests.commandline.test_cli_deltas import dump_like
from tests.support.cli import PASSWORD, Cli

PG_CUSTOM_HEADER = b"PGDMP\x01\x0f\x00\x08\x08\x01\x01\x01"
RDB_HEADER = b"REDIS0011\xfa\tredis-ver\x057.0.15"


@pytest.fixture(scope="module")
def nights() -> tuple[bytes, bytes]:
    rows = 120_000
    changed = set(random.Random(5).sample(range(rows), rows // 100))  # 1%, scattered
    return dump_like(rows, set()), dump_like(rows, changed)


def stdin_snapshot(cli: Cli, data: bytes, *flags: str) -> dict[str, object]:
    done = cli("snapshot", "stdin", "--name", "db.dump", "--json", *flags, input=data)
    assert done.code == 0, done.err
    result: dict[str, object] = done.json()
    return result


def node(cli: Cli, snapshot_id: str, path: str) -> snapstore.Node:
    repo = snapstore.open_repository(str(cli.repo), PASSWORD.encode())
    found = snapstore.find_node(repo, snapstore.find_snapshot(repo, snapshot_id).tree, path)
    assert found is not None
    return found


def test_a_dump_piped_without_a_flag_is_stored_as_deltas(
    initialised: Cli, nights: tuple[bytes, bytes]
) -> None:
    first = stdin_snapshot(initialised, PG_CUSTOM_HEADER + nights[0])
    second = stdin_snapshot(initialised, PG_CUSTOM_HEADER + nights[1])
    assert second["parent"] == first["snapshot_id"]
    assert isinstance(second["deltas_added"], int) and second["deltas_added"] > 10
    assert int(str(second["bytes_added"])) < int(str(first["bytes_added"])) / 10
    assert node(initialised, str(second["snapshot_id"]), "db.dump").extra["profile"] == "database"
    assert initialised("dump", "latest", "db.dump").out == PG_CUSTOM_HEADER + nights[1]


def test_no_database_turns_recognition_off_and_database_forces_it(
    initialised: Cli, nights: tuple[bytes, bytes]
) -> None:
    stdin_snapshot(initialised, PG_CUSTOM_HEADER + nights[0], "--no-database")
    plain = stdin_snapshot(initialised, PG_CUSTOM_HEADER + nights[1], "--no-database")
    assert plain["deltas_added"] == 0
    assert "profile" not in node(initialised, str(plain["snapshot_id"]), "db.dump").extra
    # Text rows with no header are not recognised; --database takes them as a dump.
    forced = stdin_snapshot(initialised, nights[0], "--database")
    assert node(initialised, str(forced["snapshot_id"]), "db.dump").extra["profile"] == "database"
    guessed = stdin_snapshot(initialised, nights[0])
    assert "profile" not in node(initialised, str(guessed["snapshot_id"]), "db.dump").extra


def test_an_rdb_backed_up_as_a_file_gets_deltas_and_media_do_not(
    initialised: Cli, nights: tuple[bytes, bytes], tmp_path: Path
) -> None:
    data = tmp_path / "redis"
    data.mkdir()
    rdb, photo = data / "dump.rdb", data / "photo.jpg"
    photo.write_bytes(b"\xff\xd8\xff\xe0" + random.Random(1).randbytes(200_000))
    ids = []
    for night in nights:
        rdb.write_bytes(RDB_HEADER + night)
        done = initialised("snapshot", "files", str(data), "--json")
        assert done.code == 0, done.err
        ids.append(done.json())
    second = ids[1]
    assert isinstance(second["deltas_added"], int) and second["deltas_added"] > 10
    assert int(str(second["bytes_added"])) < int(str(ids[0]["bytes_added"])) / 10
    stored = str(data.relative_to("/")) if data.is_absolute() else str(data)
    assert node(initialised, str(second["snapshot_id"]), f"{stored}/dump.rdb").extra["profile"] == "database"
    assert "profile" not in node(initialised, str(second["snapshot_id"]), f"{stored}/photo.jpg").extra
    restored = tmp_path / "restored"
    assert initialised("restore", "latest", "--target", str(restored)).code == 0
    assert (restored / stored / "dump.rdb").read_bytes() == RDB_HEADER + nights[1]
