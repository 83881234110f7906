"""The error tree and the one-line messages external program failures turn into."""

from __future__ import annotations

from snapstore.errors import (
    CommandFailed,
    DumpFailed,
    RestoreFailed,
    SnapstoreError,
    SourceError,
    last_message,
)


def test_libpq_hint_lines_are_joined_to_their_message() -> None:
    stderr = (
        "some earlier noise\n"
        'psql: error: connection to server at "127.0.0.1", port 5 failed: Connection refused\n'
        "\tIs the server running on that host and accepting TCP/IP connections?\n"
    )
    assert last_message(stderr) == (
        'psql: error: connection to server at "127.0.0.1", port 5 failed: Connection refused '
        "Is the server running on that host and accepting TCP/IP connections?"
    )


def test_plain_last_line_and_empty_stderr() -> None:
    assert last_message("first\nsecond\n\n") == "second"
    assert last_message("") == ""


def test_messages_and_classes() -> None:
    dump = DumpFailed("pg_dump", 1, "pg_dump: error: no such database\n")
    assert str(dump) == "pg_dump exited 1: pg_dump: error: no such database"
    assert isinstance(dump, SourceError) and isinstance(dump, CommandFailed)
    killed = RestoreFailed("pg_restore", -9, "")
    assert str(killed) == "pg_restore was killed"
    assert isinstance(killed, SnapstoreError) and not isinstance(killed, SourceError)


def test_the_error_line_wins_over_the_details_after_it() -> None:
    stderr = (
        "pg_dump: error: query failed: ERROR:  permission denied for sequence account_stats_id_seq\n"
        "pg_dump: detail: Query was: SELECT last_value, is_called FROM public.account_stats_id_seq\n"
    )
    assert last_message(stderr) == (
        "pg_dump: error: query failed: ERROR:  permission denied for sequence account_stats_id_seq"
    )
