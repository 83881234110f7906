"""Back up a whole Mastodon instance as ONE snapshot, composing the other sources.

The snapshot tree (source `mastodon`; also described in SPEC.md, section 9):

    postgres/<DB_NAME>.dump     pg_dump --format=custom --compress=0       (PostgresSource)
    postgres/globals.sql        pg_dumpall --globals-only --no-role-passwords
    redis/dump.rdb              a fresh RDB fetched from the server         (RedisSource)
    config/.env.production      the env file itself: the instance's secrets (FileSource)
    config/docker-compose.yml   a Docker install's compose file and its .env, when the
    config/.env                 live directory has them
    media/...                   the contents of PAPERCLIP_ROOT_PATH (default
                                <live>/public/system), without cache/ by default
    letsencrypt/...             the contents of /etc/letsencrypt (symlinks kept as links)
    nginx/sites-available/...   the nginx site files that name LOCAL_DOMAIN or WEB_DOMAIN
    nginx/sites-enabled/...     (and the links that enable them), from /etc/nginx
    systemd/mastodon-*.service  the instance's systemd units, from /etc/systemd/system

Where things are comes from the env file (see mastodon_settings.py); the live directory is
the folder holding it. The parts are taken in the order above, the database first, so a
wrong database fails before anything else is read.

What is fatal and what is not:
- The database dump is fatal: a failed psql check or pg_dump raises `DumpFailed`, the
  archiver stops, and no snapshot is recorded.
- A part this host does not have is not an error: media with S3_ENABLED=true, no
  /etc/letsencrypt (Caddy, Docker, TLS terminated elsewhere) unless it was asked for by name
  (`letsencrypt_required`), no nginx site or systemd unit, no compose file. It is recorded
  as "skipped: why" in the metadata, as is a part left out on purpose (`media=False`...).
- A part that is configured and fails (globals refused to a non-superuser, Redis
  unreachable, no media directory with local media, a Let's Encrypt directory asked for
  and missing, unreadable files) is reported through `on_error` and skipped. The archiver
  still records the snapshot but counts the errors: the snapshot is incomplete and the
  command line exits 3.

The snapshot's `paths` are the same every night whatever failed (the database and the env
file), so that a failed night neither forms a retention group of its own nor loses the
parent.

`metadata()` holds {"mastodon": {...}, "postgres": {...}, "redis": {...}}: the "postgres"
facts (row counts for `drill`) have the same shape as a `postgres` snapshot's; "mastodon"
names where each part came from, which is where `restore mastodon` puts it back.
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
DEFAULT_NGINX_DIR = Path("/etc/nginx")
DEFAULT_SYSTEMD_DIR = Path("/etc/systemd/system")
MEDIA_CACHE = "cache"
#: nginx's folders of site files, searched for the instance's domain.
NGINX_SITE_DIRS = ("sites-available", "sites-enabled", "conf.d")
#: The systemd units of a standard install (mastodon-web, -sidekiq, -streaming, and more).
SYSTEMD_UNITS = "mastodon*.service"
#: A Docker install's files next to .env.production.
COMPOSE_FILES = ("docker-compose.yml", "docker-compose.yaml", "compose.yml", "compose.yaml", ".env")


@dataclass(frozen=True)
class MastodonOptions:
    """What to take; everything about *where* comes from the env file."""

    env_file: Path = DEFAULT_ENV_FILE
    media: bool = True
    include_media_cache: bool = False
    redis: bool = True
    # None leaves Let's Encrypt out on purpose (no error).
    letsencrypt_dir: Path | None = DEFAULT_LETSENCRYPT_DIR
    # True: the directory was asked for by name, so its absence is an error.
    letsencrypt_required: bool = False
    # None leaves these out; a folder without the instance's files is no error.
    nginx_dir: Path | None = DEFAULT_NGINX_DIR
    systemd_dir: Path | None = DEFAULT_SYSTEMD_DIR
    # e.g. ["docker", "exec", "-i", "-e", "PGPASSWORD", "mastodon-db-1"]
    pg_command_prefix: Sequence[str] = ()
    redis_command_prefix: Sequence[str] = ()
    # True dumps role passwords too, which only a superuser may read.
    role_passwords: bool = False
    # Run the PostgreSQL clients as this system user (peer authentication, from root's cron).
    pg_run_as: str | None = None
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
                run_as=self.options.pg_run_as,
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
        """The database and the env file: the same every night, whatever could be read."""
        return [*self._postgres.describe(), str(self.settings.env_file)]

    def metadata(self) -> dict[str, object]:
        settings = self.settings
        facts: dict[str, object] = {
            "env_file": str(settings.env_file),
            "live_dir": str(settings.live_dir),
            "local_domain": settings.local_domain,
            "s3_enabled": settings.s3_enabled,
            "media_root": str(settings.media_root),
            "letsencrypt_dir": _optional_str(self.options.letsencrypt_dir),
            "nginx_dir": _optional_str(self.options.nginx_dir),
            "systemd_dir": _optional_str(self.options.systemd_dir),
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
        yield from self._nginx_entries(on_error)
        yield from self._systemd_entries(on_error)

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
        compose = [name for name in COMPOSE_FILES if (self.settings.live_dir / name).is_file()]
        if not any(name != ".env" for name in compose):
            self._parts["compose"] = "skipped: no compose file in the live directory"
            return
        self._parts["compose"] = "ok"
        for name in compose:
            path = self.settings.live_dir / name
            yield from self._tree("compose", path, (b"config", os.fsencode(name)), on_error)

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
            if not self.options.letsencrypt_required:
                self._parts["letsencrypt"] = f"skipped: {configured} does not exist on this host"
                return
            missing = SourceError(f"Let's Encrypt directory {configured} does not exist")
            self._fail("letsencrypt", (b"letsencrypt",), missing, on_error)
            return
        self._parts["letsencrypt"] = "ok"
        yield from self._tree("letsencrypt", root, (b"letsencrypt",), on_error)

    def _nginx_entries(self, on_error: ErrorCallback) -> Iterator[SourceEntry]:
        """The site files that serve this instance's domain, and the links enabling them."""
        configured = self.options.nginx_dir
        domains = {d for d in (self.settings.local_domain, self.settings.web_domain) if d}
        found = _nginx_sites(configured, domains) if configured is not None else []
        if not found:
            where = configured if configured is not None else "nginx"
            self._parts["nginx"] = f"skipped: no site in {where} names the instance's domain"
            return
        self._parts["nginx"] = "ok"
        for folder, name in found:
            assert configured is not None
            stored = (b"nginx", os.fsencode(folder), os.fsencode(name))
            yield from self._tree("nginx", configured / folder / name, stored, on_error)

    def _systemd_entries(self, on_error: ErrorCallback) -> Iterator[SourceEntry]:
        configured = self.options.systemd_dir
        units = sorted(configured.glob(SYSTEMD_UNITS)) if configured is not None else []
        if not units:
            self._parts["systemd"] = f"skipped: no {SYSTEMD_UNITS} in {configured}"
            return
        self._parts["systemd"] = "ok"
        for unit in units:
            stored = (b"systemd", os.fsencode(unit.name))
            yield from self._tree("systemd", unit, stored, on_error)

    def _tree(
        self,
        part: str,
        root: Path,
        new_root: Components,
        on_error: ErrorCallback,
        excludes: Sequence[str] = (),
    ) -> Iterator[SourceEntry]:
        """A file or directory tree from disk, stored at `new_root` in the snapshot (a
        symlink as a link: a site enabled by a link is restored as one)."""
        source = FileSource([root], excludes)
        components = to_components(root)
        report = _rebased_errors(on_error, components, new_root)
        yield from _rebase(source.entries(report), components, new_root)
        counted = self._file_counts.get(part, 0)
        files = source.metadata()["files"]
        if isinstance(counted, int) and isinstance(files, int):
            self._file_counts[part] = counted + files
        self._taken.append(str(root))


def _optional_str(path: Path | None) -> str | None:
    return str(path) if path is not None else None


def _nginx_sites(nginx_dir: Path, domains: set[str]) -> list[tuple[str, str]]:
    """(folder, name) of every site file or link under nginx_dir that names a domain."""
    if not domains:
        return []
    found = []
    for folder in NGINX_SITE_DIRS:
        try:
            names = sorted(os.listdir(nginx_dir / folder))
        except OSError:
            continue
        for name in names:
            try:
                text = (nginx_dir / folder / name).read_bytes()
            except OSError:
                continue  # a dangling link, a folder, an unreadable file: not a site we serve
            if any(domain.encode() in text for domain in domains):
                found.append((folder, name))
    return found
