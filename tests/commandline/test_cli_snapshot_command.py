"""`snapstore snapshot command -- PROGRAM ARGS...` and empty input (issue 13, item 3).

`pg_dump | snapstore snapshot stdin` made a snapshot of a dump that failed; `snapshot command`
runs the producer itself and its exit status decides. Empty input is refused by both unless
`--allow-empty`.
"""

from __future__ import annotations

import random
from pathlib import Path

import snapstore
from tests.support.cli import PASSWORD, Cli

FAILING = ("printf 'half a dump'; echo 'pg_dump: dumping contents of table statuses' >&2; "
           "echo 'pg_dump: error: connection to server lost' >&2; "
           "echo 'pg_dump: detail: server closed the connection unexpectedly' >&2; exit 3")


def snapshots(cli: Cli) -> list[dict[str, object]]:
    listed = cli("snapshots", "--json")
    assert listed.code == 0, listed.err
    result: list[dict[str, object]] = listed.json()
    return result


def rows(count: int, edited: set[int], seed: int = 7) -> bytes:
    """Text rows like a COPY section of pg_dump; rows in `edited` change a little."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        line = f"{i}\t{rng.randrange(10**6)}\tstatus {rng.randrange(10**9)} from user{rng.randrange(10**5)}"
        out.append(line + (" (edited)" if i in edited else "") + "\n")
    return "".join(out).encode()


def test_a_failed_producer_records_nothing_and_shows_its_error(initialised: Cli) -> None:
    done = initialised("snapshot", "command", "--name", "db.dump", "--", "sh", "-c", FAILING)
    assert done.code == 1, done.err
    last = done.err.splitlines()[-1]
    assert last == ("snapstore: error: sh exited 3, so no snapshot was recorded: "
                    "pg_dump: error: connection to server lost")
    assert "  pg_dump: dumping contents of table statuses" in done.err  # the tail is shown too
    assert "  pg_dump: detail: server closed the connection unexpectedly" in done.err
    assert snapshots(initialised) == []


def test_a_producer_killed_by_a_signal_records_nothing(initialised: Cli) -> None:
    done = initialised("snapshot", "command", "--name", "db.dump", "--", "sh", "-c", "echo partial; kill -9 $$")
    assert done.code == 1, done.err
    assert "snapstore: error: sh was killed by SIGKILL, so no snapshot was recorded" in done.err
    assert snapshots(initialised) == []


def test_a_producer_that_succeeds_round_trips(initialised: Cli, tmp_path: Path) -> None:
    data = random.Random(3).randbytes(200_000)
    (tmp_path / "data.bin").write_bytes(data)
    # no `--`: everything after the program is its own, `-c` and `--password=...` included
    done = initialised("snapshot", "command", "--name", "data.bin", "--json", "sh", "-c",
                       'cat "$1"', "sh", str(tmp_path / "data.bin"), "--password=hunter2")
    assert done.code == 0, done.err
    summary = done.json()
    assert (summary["source"], summary["paths"], summary["bytes_read"]) == ("command", ["data.bin"], len(data))
    assert initialised("dump", "latest", "data.bin").out == data
    [snap] = snapshots(initialised)
    assert snap["metadata"] == {"command": {"name": "data.bin", "program": "sh", "exit_status": 0}}
    assert "hunter2" not in initialised("snapshots", "--json").text


def test_database_chunking_and_day_two_deltas(initialised: Cli, tmp_path: Path) -> None:
    count = 60_000
    edited = set(random.Random(2).sample(range(count), count // 100))  # 1%, scattered
    (tmp_path / "day1.dump").write_bytes(day_one := rows(count, set()))
    (tmp_path / "day2.dump").write_bytes(day_two := rows(count, edited))

    def night(dump: str) -> dict[str, object]:
        done = initialised("snapshot", "command", "--name", "mastodon.dump", "--database", "--json",
                           "--", "cat", str(tmp_path / dump))
        assert done.code == 0, done.err
        summary: dict[str, object] = done.json()
        return summary

    first, second = night("day1.dump"), night("day2.dump")
    assert first["parent"] is None and first["deltas_added"] == 0
    assert second["parent"] == first["snapshot_id"]
    assert isinstance(second["deltas_added"], int) and second["deltas_added"] > 5
    assert isinstance(first["bytes_added"], int) and isinstance(second["bytes_added"], int)
    assert second["bytes_added"] < first["bytes_added"] / 5, (first, second)
    repo = snapstore.open_repository(str(initialised.repo), PASSWORD.encode())
    try:  # --database: chunked with the database profile
        assert [list(s.chunker) for s in snapstore.list_snapshots(repo)] == [["database"]] * 2
    finally:
        repo.close()
    assert initialised("dump", "latest", "mastodon.dump").out == day_two
    assert initialised("dump", str(first["snapshot_id"]), "mastodon.dump").out == day_one
    check = initialised("check", "--read-data")
    assert check.code == 0, check.err + check.text


def test_empty_output_is_refused_unless_allowed(initialised: Cli) -> None:
    done = initialised("snapshot", "command", "--name", "db.dump", "--", "true")
    assert done.code == 1
    assert done.err == ("snapstore: error: true exited 0 but wrote nothing, so no snapshot was "
                        "recorded (--allow-empty records an empty file)\n")
    assert snapshots(initialised) == []
    allowed = initialised("snapshot", "command", "--name", "db.dump", "--allow-empty", "--", "true")
    assert allowed.code == 0, allowed.err
    assert initialised("dump", "latest", "db.dump").out == b""


def test_empty_stdin_is_refused_unless_allowed(initialised: Cli) -> None:
    done = initialised("snapshot", "stdin", "--name", "db.dump", input=b"")
    assert done.code == 1
    assert done.err == ("snapstore: error: db.dump: the stream was empty, so no snapshot was "
                        "recorded (--allow-empty records an empty file)\n")
    assert snapshots(initialised) == []
    allowed = initialised("snapshot", "stdin", "--name", "db.dump", "--allow-empty", input=b"")
    assert allowed.code == 0, allowed.err
    assert initialised("dump", "latest", "db.dump").out == b""
    assert len(snapshots(initialised)) == 1


def test_a_missing_program_is_named(initialised: Cli, tmp_path: Path) -> None:
    done = initialised("snapshot", "command", "--name", "db.dump", "--", str(tmp_path / "pg_dump"))
    assert done.code == 1
    assert "pg_dump exited 127, so no snapshot was recorded: cannot execute" in done.err
    assert snapshots(initialised) == []
