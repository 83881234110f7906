"""Back up Redis as one RDB file: fetched fresh from a server, or an existing dump.rdb.

From a server, `redis-cli --rdb -` asks for a point-in-time RDB (the replication SYNC
path, so the server forks and streams a consistent dump) and writes it to stdout; it runs
through `CommandStream`, so a failed transfer raises `DumpFailed`. The RDB is spooled to an
anonymous temporary file first: RDBs are modest, and spooling lets the header and trailer
be checked before the entry is yielded and gives the entry a real size. Writing to stdout
rather than to a named file also works through a `command_prefix` such as `docker exec -i`.

Either way the file must start with `REDIS` and four ASCII digits and end with the EOF
opcode (0xFF) followed by the 8-byte checksum; anything else raises `SourceError` before
any entry is yielded. (From a diskless-sync server, redis-cli leaves the transfer's EOF
marker at the end of stdout; it is cut off the spool first, see `strip_eof_mark`.) The password reaches redis-cli as REDISCLI_AUTH in its environment.

Entries: DIR redis, FILE redis/dump.rdb (profile DATABASE). The spooled or opened file is
read once: `open_content` closes it on exit and refuses a second read.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from snapstore.archiver.source import ChunkingProfile, EntryKind, ErrorCallback, SourceEntry
from snapstore.errors import SourceError, UsageError
from snapstore.sources.command import (
    CommandStream,
    child_environment,
    client_prefix,
    run_command,
)

RDB_HEADER = re.compile(rb"REDIS([0-9]{4})")
RDB_HEADER_SIZE = 9
# EOF opcode plus an 8-byte CRC64 (zero when the server runs with rdbchecksum no).
RDB_TRAILER_SIZE = 9
RDB_EOF = 0xFF
# In diskless transfers the server ends the stream with a random 40-hex-digit marker. redis-cli
# trims it with ftruncate, which it skips when writing to stdout (redis/redis#9135), so
# `--rdb -` output ends with the marker; `strip_eof_mark` removes it from the spool.
RDB_EOF_MARK = re.compile(rb"[0-9a-fA-F]{40}")
RDB_EOF_MARK_SIZE = 40


@dataclass(frozen=True)
class RedisOptions:
    """How to reach the server; the password goes to redis-cli's environment only."""

    host: str = "127.0.0.1"
    port: int = 6379
    password: str | None = None
    username: str | None = None
    command_prefix: Sequence[str] = field(default_factory=list)
    redis_cli: str = "redis-cli"
    # The child's base environment; None means it inherits this process's.
    env: Mapping[str, str] | None = None


def check_rdb(stream: BinaryIO, size: int, where: str) -> int:
    """Check the header and trailer of a seekable RDB; return its format version."""
    stream.seek(0)
    header = stream.read(RDB_HEADER_SIZE)
    match = RDB_HEADER.fullmatch(header)
    if match is None:
        raise SourceError(f"{where} is not an RDB file (header {header[:RDB_HEADER_SIZE]!r})")
    version = int(match.group(1))
    if not _has_trailer(stream, size):
        raise SourceError(f"{where} is truncated: no end-of-file opcode and checksum")
    stream.seek(0)
    return version


def _has_trailer(stream: BinaryIO, size: int) -> bool:
    if size < RDB_HEADER_SIZE + RDB_TRAILER_SIZE:
        return False
    stream.seek(size - RDB_TRAILER_SIZE)
    return stream.read(1) == bytes([RDB_EOF])


def strip_eof_mark(spool: BinaryIO) -> int:
    """Cut a diskless-transfer EOF marker off the end of a spooled RDB; return the size.

    Unambiguous: the marker is ASCII hex, so a file that already ends with the EOF opcode
    and checksum cannot also end with a marker.
    """
    size = spool.seek(0, os.SEEK_END)
    if _has_trailer(spool, size) or size < RDB_EOF_MARK_SIZE:
        return size
    spool.seek(size - RDB_EOF_MARK_SIZE)
    if RDB_EOF_MARK.fullmatch(spool.read(RDB_EOF_MARK_SIZE)) and _has_trailer(
        spool, size - RDB_EOF_MARK_SIZE
    ):
        size -= RDB_EOF_MARK_SIZE
        spool.truncate(size)
    return size


class _OneRead:
    """open_content for a file already open: yields it from the start, closes it on exit."""

    def __init__(self, file: BinaryIO, where: str) -> None:
        self._file = file
        self._where = where

    @contextlib.contextmanager
    def __call__(self) -> Iterator[BinaryIO]:
        if self._file.closed:
            raise SourceError(f"{self._where} was already read")
        try:
            self._file.seek(0)
            yield self._file
        finally:
            self._file.close()


class RedisSource:
    """A Redis server (through redis-cli) or an existing RDB file."""

    def __init__(
        self,
        options: RedisOptions | None = None,
        *,
        rdb_file: str | Path | None = None,
        layout_prefix: Sequence[str] = ("redis",),
        spool_dir: str | Path | None = None,
    ) -> None:
        if (options is None) == (rdb_file is None):
            raise UsageError("give either Redis server options or an RDB file, not both")
        self.options = options
        self.rdb_file = Path(rdb_file).absolute() if rdb_file is not None else None
        self.layout_prefix = tuple(part.encode() for part in layout_prefix)
        self.spool_dir = spool_dir
        self._facts: dict[str, object] = {}

    @property
    def kind(self) -> str:
        return "redis"

    def describe(self) -> list[str]:
        if self.rdb_file is not None:
            return [str(self.rdb_file)]
        assert self.options is not None
        return [f"redis://{self.options.host}:{self.options.port}"]

    def metadata(self) -> dict[str, object]:
        return {"redis": dict(self._facts)}

    def entries(self, on_error: ErrorCallback) -> Iterator[SourceEntry]:
        if self.options is not None:
            rdb, mtime_ns = self._fetch(self.options), time.time_ns()
            where = self.describe()[0]
        else:
            rdb, mtime_ns = self._open_file()
            where = str(self.rdb_file)
        try:
            size = os.fstat(rdb.fileno()).st_size
            self._facts.update(rdb_version=check_rdb(rdb, size, where), size=size)
        except BaseException:
            rdb.close()
            raise
        if self.layout_prefix:
            yield SourceEntry(self.layout_prefix, EntryKind.DIR, mode=0o700, mtime_ns=mtime_ns)
        yield SourceEntry(
            self.layout_prefix + (b"dump.rdb",),
            EntryKind.FILE,
            mode=0o600,
            mtime_ns=mtime_ns,
            size=size,
            open_content=_OneRead(rdb, where),
            profile=ChunkingProfile.DATABASE,
        )

    def _open_file(self) -> tuple[BinaryIO, int]:
        assert self.rdb_file is not None
        self._facts.update(source="file", path=str(self.rdb_file))
        try:
            rdb = open(self.rdb_file, "rb")  # noqa: SIM115  # closed by _OneRead
        except OSError as exc:
            raise SourceError(f"cannot open {self.rdb_file}: {exc}") from exc
        info = os.fstat(rdb.fileno())
        if not stat.S_ISREG(info.st_mode):
            rdb.close()
            raise SourceError(f"{self.rdb_file} is not a regular file")
        return rdb, info.st_mtime_ns

    def _fetch(self, options: RedisOptions) -> BinaryIO:
        """A fresh RDB from the server, spooled to an anonymous temporary file."""
        self._facts.update(source="server", server=f"{options.host}:{options.port}")
        spool = tempfile.TemporaryFile(dir=self.spool_dir)  # noqa: SIM115  # closed by _OneRead
        try:
            argv = self._cli_args(options, "--rdb", "-")
            with CommandStream(argv, env=self._environment(options), name="redis-cli") as out:
                shutil.copyfileobj(out, spool, 1024 * 1024)
            strip_eof_mark(spool)
            spool.flush()
            self._facts.update(self._info(options))
        except BaseException:
            spool.close()
            raise
        return spool

    def _info(self, options: RedisOptions) -> dict[str, object]:
        """Server version and per-database key counts, read just after the RDB transfer."""
        argv = self._cli_args(options, "INFO")
        output = run_command(argv, env=self._environment(options), name="redis-cli")
        text = output.decode("utf-8", errors="replace")
        fields = dict(
            line.split(":", 1) for line in text.splitlines() if ":" in line and "#" not in line[:1]
        )
        if "redis_version" not in fields:
            # redis-cli prints error replies (NOAUTH...) on stdout and still exits 0.
            raise SourceError(f"redis-cli INFO failed: {text.strip()[:200]}")
        keyspace: dict[str, dict[str, int]] = {}
        for name, value in fields.items():
            if re.fullmatch(r"db[0-9]+", name):
                pairs = (item.split("=", 1) for item in value.strip().split(","))
                keyspace[name] = {k: int(v) for k, v in pairs if v.isdigit()}
        return {"redis_version": fields["redis_version"].strip(), "keyspace": keyspace}

    @staticmethod
    def _cli_args(options: RedisOptions, *args: str) -> list[str]:
        secret = ["REDISCLI_AUTH"] if options.password is not None else []
        prefix = client_prefix(options.command_prefix, None, secret)  # docker exec: -e REDISCLI_AUTH
        argv = [*prefix, options.redis_cli, "-h", options.host]
        argv += ["-p", str(options.port)]
        if options.username is not None:
            argv += ["--user", options.username]
        return [*argv, *args]

    @staticmethod
    def _environment(options: RedisOptions) -> dict[str, str] | None:
        extra = {"REDISCLI_AUTH": options.password} if options.password is not None else None
        return child_environment(options.env, extra)
