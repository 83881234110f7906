"""Back up a whole Mastodon instance as ONE snapshot, composing the other sources.

The snapshot tree (source `mastodon`; also described in SPEC.md, section 9):

    postgres/<DB_NAME>.dump     pg_dump --format=custom --compress=0       (PostgresSource)
    postgres/globals.sql        pg_dumpall --globals-only --no-role-passwords
    redis/dump.rdb              a fresh RDB fetched from the server         (RedisSource)
    config/.env.production      the env file itself: the instance's secrets (FileSource)
    media/...                   the contents of PAPERCLIP_ROOT_PATH (default
                                <live>/public/system), without cache/ by default
    letsencrypt/...             the contents of /etc/letsencrypt (symlinks kept as links)

Where things are comes from the env file (see mastodon_settings.py); the live directory is
the folder holding it. The parts are taken in the order above, the database first, so a
wrong database fails before anything else is read.

What is fatal and what is not:
- The database dump is fatal: a failed psql check or pg_dump raises `DumpFailed`, the
  archiver stops, and no snapshot is recorded.
- Everything else that is missing or fails (globals refused to a non-superuser, Redis
  unreachable, no media directory, no Let's Encrypt directory, unreadable files) is reported
  through `on_error` and skipped. The archiver still records the snapshot but counts the
  errors, so the command line exits 3 ("snapshot taken, incomplete"). A part left out on
  purpose (`media=False`, `redis=False`, `letsencrypt_dir=None`, or S3_ENABLED=true for
  media) is not an error: it is recorded as skipped in the metadata.

`metadata()` holds {"mastodon": {...}, "postgres": {...}, "redis": {...}}: the "postgres"
facts (row counts for `drill`) have the same shape as a `postgres` snapshot's.
"""

from __future__ import annotations

import contextlib
import glob
import io
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import BinaryIO

from snapstore.archiver.source import EntryKind, ErrorCallback, SourceEntry
from snapstore.errors import SourceError
from snapstore.sources.files import Components, FileSource, to_components
from snapstore.sources.mastodon_settings import MastodonSettings, load_settings
from snapstore.sources.postgres import PostgresOptions, PostgresSource
from snapstore.sources.redis import RedisOptions, RedisSource

DEFAULT_ENV_FILE = Path("/home/mastodon/live/.env.production")
DEFAULT_LETSENCRYPT_DIR = Path("/etc/letsencrypt")
MEDIA_CACHE = "cache"


@dataclass(frozen=True)
class MastodonOptions:
    """What to take; everything about *where* comes from the env file."""

    env_file: Path = DEFAULT_ENV_FILE
    media: bool = True
    include_media_cache: bool = False
    redis: bool = True
    # None leaves Let's Encrypt out on purpose (no error).
    letsencrypt_dir: Path | None = DEFAULT_LETSENCRYPT_DIR
    # e.g. ["docker", "exec", "-i", "-e", "PGPASSWORD", "mastodon-db-1"]
    pg_command_prefix: Sequence[str] = ()
    redis_command_prefix: Sequence[str] = ()
    # True dumps role passwords too, which only a superuser may read.
    role_passwords: bool = False
    count_rows: bool = True
    # The children's base environment; None means they inherit this process's.
    env: Mapping[str, str] | None = None
    spool_dir: Path | None = None


def _bytes_content(data: bytes) -> contextlib.AbstractContextManager[BinaryIO]:
    return contextlib.nullcontext(io.BytesIO(data))


def _rebase(
    entries: Iterator[SourceEntry], root: Components, new_root: Components
) -> Iterator[SourceEntry]:
    """FileSource entries under `root` moved to `new_root`; the parents of `root` dropped."""
    for entry in entries:
        if entry.path[: len(root)] == root:
            entry.path = new_root + entry.path[len(root) :]
            yield entry


def _rebased_errors(
    on_error: ErrorCallback, root: Components, new_root: Components
) -> ErrorCallback:
    def report(path: tuple[bytes, ...], exc: Exception) -> None:
        if path[: len(root)] == root:
            path = new_root + path[len(root) :]
        on_error(path, exc)

    return report


class MastodonSource:
    """A Mastodon instance found through its `.env.production`."""

    def __init__(self, options: MastodonOptions | None = None) -> None:
        self.options = options or MastodonOptions()
        self.settings: MastodonSettings = load_settings(self.options.env_file)
        db = self.settings.database
        self._postgres = PostgresSource(
            PostgresOptions(
                db.name,
                host=db.host,
                port=db.port,
                username=db.user,
                password=db.password,
                command_prefix=list(self.options.pg_command_prefix),
                env=self.options.env,
                count_rows=self.options.count_rows,
                role_passwords=self.options.role_passwords,
            )
        )
        self._redis: RedisSource | None = None
        redis = self.settings.redis
        if self.options.redis and redis is not None:
            redis_options = RedisOptions(
                redis.host,
                redis.port,
                password=redis.password,
                username=redis.username,
                command_prefix=list(self.options.redis_command_prefix),
                env=self.options.env,
            )
            self._redis = RedisSource(redis_options, spool_dir=self.options.spool_dir)
        self._parts: dict[str, str] = {}
        self._file_counts: dict[str, object] = {}
        self._taken: list[str] = []

    @property
    def kind(self) -> str:
        return "mastodon"

    def describe(self) -> list[str]:
        return [*self._postgres.describe(), *self._taken]

    def metadata(self) -> dict[str, object]:
        settings = self.settings
        facts: dict[str, object] = {
            "env_file": str(settings.env_file),
            "live_dir": str(settings.live_dir),
            "local_domain": settings.local_domain,
            "s3_enabled": settings.s3_enabled,
            "media_root": str(settings.media_root),
            "parts": dict(self._parts),
            "files": dict(self._file_counts),
        }
        result: dict[str, object] = {"mastodon": facts, **self._postgres.metadata()}
        if self._redis is not None:
            result.update(self._redis.metadata())
        return result

    def parts(self) -> dict[str, str]:
        """Part -> "ok", "skipped: why" or "failed: why"; complete once entries are read."""
        return dict(self._parts)

    def entries(self, on_error: ErrorCallback) -> Iterator[SourceEntry]:
        yield from self._postgres_entries(on_error)
        yield from self._redis_entries(on_error)
        yield from self._config_entries(on_error)
        yield from self._media_entries(on_error)
        yield from self._letsencrypt_entries(on_error)

    def _fail(self, part: str, path: Components, exc: Exception, on_error: ErrorCallback) -> None:
        self._parts[part] = f"failed: {exc}"
        on_error(path, exc)

    def _postgres_entries(self, on_error: ErrorCallback) -> Iterator[SourceEntry]:
        """The dump as PostgresSource streams it (fatal on failure); the globals read first
        into memory (they are small), so that a refusal is reported instead of fatal."""
        self._parts["postgres_globals"] = "ok"
        for entry in self._postgres.entries(on_error):
            if entry.path[-1:] == (b"globals.sql",) and entry.open_content is not None:
                try:
                    with entry.open_content() as stream:
                        data = stream.read()
                except SourceError as exc:
                    self._fail("postgres_globals", entry.path, exc, on_error)
                    continue
                entry.open_content = partial(_bytes_content, data)
                entry.size = len(data)
            yield entry
        self._parts["postgres"] = "ok"

    def _redis_entries(self, on_error: ErrorCallback) -> Iterator[SourceEntry]:
        if not self.options.redis:
            self._parts["redis"] = "skipped: not asked for"
            return
        if self._redis is None:
            problem = self.settings.redis_problem or "no Redis settings"
            self._fail("redis", (b"redis",), SourceError(problem), on_error)
            return
        try:
            # RedisSource fetches and checks the whole RDB before its first entry.
            entries = list(self._redis.entries(on_error))
        except SourceError as exc:
            self._fail("redis", (b"redis",), exc, on_error)
            return
        self._taken.extend(self._redis.describe())
        self._parts["redis"] = "ok"
        yield from entries

    def _config_entries(self, on_error: ErrorCallback) -> Iterator[SourceEntry]:
        env_file = Path(os.path.realpath(self.settings.env_file))
        yield SourceEntry((b"config",), EntryKind.DIR, mode=0o700, mtime_ns=time.time_ns())
        self._parts["config"] = "ok"
        yield from self._tree("config", env_file, (b"config", os.fsencode(env_file.name)), on_error)

    def _media_entries(self, on_error: ErrorCallback) -> Iterator[SourceEntry]:
        if not self.options.media:
            self._parts["media"] = "skipped: not asked for"
            return
        if self.settings.s3_enabled:
            self._parts["media"] = "skipped: S3_ENABLED=true, media live in object storage"
            return
        root = Path(os.path.realpath(self.settings.media_root))
        excludes = []
        if self.options.include_media_cache:
            self._parts["media_cache"] = "included"
        else:
            excludes.append(glob.escape(str(root / MEDIA_CACHE)))
            self._parts["media_cache"] = "skipped: Mastodon fetches remote media again"
        if not root.is_dir():
            missing = SourceError(f"media directory {self.settings.media_root} does not exist")
            self._fail("media", (b"media",), missing, on_error)
            return
        self._parts["media"] = "ok"
        yield from self._tree("media", root, (b"media",), on_error, excludes)

    def _letsencrypt_entries(self, on_error: ErrorCallback) -> Iterator[SourceEntry]:
        configured = self.options.letsencrypt_dir
        if configured is None:
            self._parts["letsencrypt"] = "skipped: not asked for"
            return
        root = Path(os.path.realpath(configured))
        if not root.is_dir():
            missing = SourceError(f"Let's Encrypt directory {configured} does not exist")
            self._fail("letsencrypt", (b"letsencrypt",), missing, on_error)
            return
        self._parts["letsencrypt"] = "ok"
        yield from self._tree("letsencrypt", root, (b"letsencrypt",), on_error)

    def _tree(
        self,
        part: str,
        root: Path,
        new_root: Components,
        on_error: ErrorCallback,
        excludes: Sequence[str] = (),
    ) -> Iterator[SourceEntry]:
        """A file or directory tree from disk, stored at `new_root` in the snapshot."""
        source = FileSource([root], excludes)
        components = to_components(root)
        report = _rebased_errors(on_error, components, new_root)
        yield from _rebase(source.entries(report), components, new_root)
        self._file_counts[part] = source.metadata()["files"]
        self._taken.append(str(root))
