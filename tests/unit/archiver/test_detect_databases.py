"""Which first bytes make a file a database (fixed vectors: each program's own header)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from snapstore.archiver.detect import HEAD_BYTES, database_format

HEADS = {
    "postgresql-custom": b"PGDMP\x01\x0f\x00\x08\x08\x01\x01",
    "postgresql-sql": b"--\n-- PostgreSQL database dump\n--\n\n-- Dumped from database version 15.8\n",
    "postgresql-cluster": b"--\n-- PostgreSQL database cluster dump\n--\n\nSET default_transaction_read_only = off;\n",
    "redis-rdb": b"REDIS0011\xfa\tredis-ver\x057.0.15",
    "mysql": b"-- MySQL dump 10.13  Distrib 8.0.36, for Linux (x86_64)\n--\n-- Host: localhost",
    "mariadb": b"/*M!999999\\- enable the sandbox mode */ \n-- MariaDB dump 10.19-11.4.2-MariaDB, for debian-linux-gnu (x86_64)\n",
    "mariadb-old": b"-- MariaDB dump 10.19  Distrib 10.11.6-MariaDB, for debian-linux-gnu (x86_64)\n",
}


@pytest.mark.parametrize("kind", sorted(HEADS))
def test_each_program_s_header_is_a_database(kind: str) -> None:
    assert database_format(b"whatever", HEADS[kind][:HEAD_BYTES]) is not None


def test_sqlite_databases_are_recognised(tmp_path: Path) -> None:
    path = tmp_path / "app.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE t (x)")
    assert database_format(b"app.sqlite3", path.read_bytes()[:HEAD_BYTES]) == "sqlite"


def test_directory_format_table_data_is_recognised_by_name() -> None:
    assert database_format(b"3456.dat", b"1\tfoo\n2\tbar\n") == "postgresql-directory-data"
    assert database_format(b"notes.dat", b"1\tfoo\n") is None


@pytest.mark.parametrize("head", [
    b"", b"\x1f\x8b\x08\x00", b"PGDM", b"REDIS", b"REDISabcd", b"-- PostgreSQL database dump",
    b"hello world", b"SQLite format 3", b"\x89PNG\r\n\x1a\n",
])  # fmt: skip
def test_other_content_is_not(head: bytes) -> None:
    """Gzip, truncated magic, media: not databases."""
    assert database_format(b"file", head) is None
