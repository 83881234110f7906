"""Databases recognised by their first bytes, so that they get the database chunking profile.

A database dump changes in thin, scattered stretches from one night to the next: cut with the
database profile (smaller chunks) and stored as deltas against yesterday's copy, day 2 costs a
few percent of day 1 (SPEC.md sections 5 and 6). A user who pipes `pg_dump` into `snapshot
stdin`, or backs up `/var/lib/redis/dump.rdb` as a file, should not need to know a flag for
that: the archiver looks at the first bytes of every file and stream it reads.

Recognised, by what each program writes first:

| format | first bytes |
|---|---|
| PostgreSQL custom or directory format (`pg_dump -Fc`, `toc.dat` of `-Fd`) | `PGDMP` |
| PostgreSQL directory format table data | a file named `<digits>.dat` (no header of its own) |
| PostgreSQL plain SQL (`pg_dump`, `pg_dumpall`) | `--\n-- PostgreSQL database dump` / `... cluster dump` |
| Redis RDB | `REDIS` and four digits |
| MySQL / MariaDB (`mysqldump`, `mariadb-dump`) | `-- MySQL dump` / `-- MariaDB dump`, after an optional `/*M!999999\\- enable the sandbox mode */` line |
| SQLite database | `SQLite format 3\\0` |

Compressed dumps (`pg_dump -Z`, `.gz`) are not recognised on purpose: compressed bytes change
everywhere when a row changes, so the database profile would not pay.

A file cut with the database profile says so in its node: `extra["profile"] = "database"`
(SPEC.md section 9), so that what a snapshot holds can be told without reading it.
"""

from __future__ import annotations

import re
from typing import BinaryIO

#: How many leading bytes `database_format` looks at.
HEAD_BYTES = 256
#: The node `extra` key naming the chunking profile a file was cut with (when not "files").
PROFILE_KEY = "profile"

_HEADS: tuple[tuple[str, re.Pattern[bytes]], ...] = (
    ("postgresql-custom", re.compile(rb"PGDMP")),
    ("postgresql-sql", re.compile(rb"--\r?\n-- PostgreSQL database (?:cluster )?dump")),
    ("redis-rdb", re.compile(rb"REDIS[0-9]{4}")),
    ("mysql-dump", re.compile(rb"(?:/\*M?![^\n]*\*/[ \t]*\r?\n)?-- (?:MySQL|MariaDB) dump")),
    ("sqlite", re.compile(rb"SQLite format 3\x00")),
)
_DIRECTORY_DATA = re.compile(rb"[0-9]+\.dat")


def database_format(name: bytes, head: bytes) -> str | None:
    """The database format a file named `name` starting with `head` is in, or None."""
    for label, pattern in _HEADS:
        if pattern.match(head):
            return label
    if _DIRECTORY_DATA.fullmatch(name):
        return "postgresql-directory-data"
    return None


def read_head(stream: BinaryIO, size: int) -> bytes:
    """Up to `size` first bytes of a stream; fewer only at its end (a pipe may return less
    per read)."""
    head = b""
    while len(head) < size:
        more = stream.read(size - len(head))
        if not more:
            break
        head += more
    return head


class Prefixed:
    """A stream whose first bytes were read already: those, then the rest, for the chunker
    (which reads with `readinto` where it can)."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        self._head = memoryview(head)
        self._rest = rest

    def readinto(self, buffer: memoryview | bytearray) -> int:
        if self._head:
            count = min(len(buffer), len(self._head))
            buffer[:count] = self._head[:count]
            self._head = self._head[count:]
            return count
        readinto = getattr(self._rest, "readinto", None)
        if readinto is not None:
            return int(readinto(buffer))
        data = self._rest.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def read(self, size: int = -1) -> bytes:
        if self._head:
            count = len(self._head) if size < 0 else min(size, len(self._head))
            data = bytes(self._head[:count])
            self._head = self._head[count:]
            return data
        return self._rest.read(size)
