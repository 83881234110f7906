"""What a Mastodon instance's `.env.production` says about where its data lives.

Mastodon's own defaults are applied the way Mastodon applies them:

- Database (config/database.yml): DB_NAME `mastodon_production`, DB_USER `mastodon`,
  DB_HOST `localhost`, DB_PORT `5432`, DB_PASS none. A variable that is set but empty
  (`DB_HOST=`) is passed on empty by Mastodon, which means "libpq's default" (the local
  socket, the OS user name); here it becomes `None` for the same effect. DATABASE_URL, when
  set, wins over the DB_* variables, as in Rails.
- Redis (lib/mastodon/redis_configuration.rb): REDIS_URL, or else REDIS_HOST (`localhost`),
  REDIS_PORT (`6379`), REDIS_USER and REDIS_PASSWORD. Only `redis://` URLs can be reached
  through redis-cli here; `rediss://` and `unix://` are reported as a problem.
- Media (config/initializers/paperclip.rb): stored on local disk under PAPERCLIP_ROOT_PATH
  (default `:rails_root/public/system`) unless S3_ENABLED is exactly `true`.
- The live directory (`:rails_root`) is the folder holding the env file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from snapstore.errors import SourceError
from snapstore.sources.env_file import is_true, read_env_file
from snapstore.sources.pg_client import PgConnection

DEFAULT_DB_NAME = "mastodon_production"
DEFAULT_DB_USER = "mastodon"
DEFAULT_DB_HOST = "localhost"
DEFAULT_DB_PORT = 5432
DEFAULT_REDIS_HOST = "localhost"
DEFAULT_REDIS_PORT = 6379


@dataclass(frozen=True)
class DatabaseSettings:
    name: str
    host: str | None
    port: int | None
    user: str | None
    password: str | None

    def connection(
        self,
        *,
        host: str | None = None,
        port: int | None = None,
        user: str | None = None,
        command_prefix: Sequence[str] = (),
        run_as: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> PgConnection:
        """How to reach this instance's server the way Mastodon does, with overrides.

        An override (`--pg-host`, the config's [postgres] section) wins over the env file.
        DB_PASS goes along only for the instance's own role: another user (a superuser for
        restoring roles) gets its password from libpq (PGPASSWORD, ~/.pgpass) or peer
        authentication.
        """
        username = user if user is not None else self.user
        password = self.password if username == self.user else None
        return PgConnection(
            host if host is not None else self.host,
            port if port is not None else self.port,
            username,
            password,
            command_prefix=list(command_prefix),
            run_as=run_as,
            env=env,
        )


@dataclass(frozen=True)
class RedisSettings:
    host: str
    port: int
    username: str | None
    password: str | None


@dataclass(frozen=True)
class MastodonSettings:
    env_file: Path
    live_dir: Path
    local_domain: str | None
    web_domain: str | None
    database: DatabaseSettings
    # None when the configured Redis cannot be reached through redis-cli; see redis_problem.
    redis: RedisSettings | None
    redis_problem: str | None
    s3_enabled: bool
    media_root: Path


def _setting(values: Mapping[str, str], key: str, default: str) -> str | None:
    """Mastodon's ENV.fetch(key, default), with "set but empty" read as None."""
    if key not in values:
        return default
    return values[key] or None


def _port(value: str | None, key: str, where: Path) -> int | None:
    if value is None:
        return None
    try:
        port = int(value)
    except ValueError:
        raise SourceError(f"{where}: {key} is not a port number") from None
    if not 0 < port < 65536:
        raise SourceError(f"{where}: {key} is not a port number")
    return port


def _database(values: Mapping[str, str], where: Path) -> DatabaseSettings:
    host = _setting(values, "DB_HOST", DEFAULT_DB_HOST)
    port = _port(_setting(values, "DB_PORT", str(DEFAULT_DB_PORT)), "DB_PORT", where)
    name = _setting(values, "DB_NAME", DEFAULT_DB_NAME) or DEFAULT_DB_NAME
    user = _setting(values, "DB_USER", DEFAULT_DB_USER)
    password = values.get("DB_PASS") or None
    url = values.get("DATABASE_URL")
    if url:
        parts = urlsplit(url)
        if parts.scheme not in ("postgres", "postgresql"):
            raise SourceError(f"{where}: DATABASE_URL is not a postgres:// URL")
        host = unquote(parts.hostname) if parts.hostname else host
        try:
            port = parts.port or port
        except ValueError:
            raise SourceError(f"{where}: DATABASE_URL has a bad port") from None
        user = unquote(parts.username) if parts.username else user
        password = unquote(parts.password) if parts.password is not None else password
        name = unquote(parts.path.lstrip("/")) or name
    return DatabaseSettings(name, host, port, user, password)


def _redis(values: Mapping[str, str], where: Path) -> tuple[RedisSettings | None, str | None]:
    url = values.get("REDIS_URL")
    if not url:
        host = values.get("REDIS_HOST") or DEFAULT_REDIS_HOST
        port = _port(values.get("REDIS_PORT") or str(DEFAULT_REDIS_PORT), "REDIS_PORT", where)
        assert port is not None
        user = values.get("REDIS_USER") or None
        return RedisSettings(host, port, user, values.get("REDIS_PASSWORD") or None), None
    parts = urlsplit(url)
    if parts.scheme != "redis":
        return None, f"REDIS_URL scheme {parts.scheme}:// is not supported (only redis://)"
    try:
        port = parts.port or DEFAULT_REDIS_PORT
    except ValueError:
        return None, "REDIS_URL has a bad port"
    password = unquote(parts.password) if parts.password else None
    user = unquote(parts.username) if parts.username else None
    return RedisSettings(parts.hostname or DEFAULT_REDIS_HOST, port, user, password), None


def _media_root(values: Mapping[str, str], live_dir: Path) -> Path:
    configured = values.get("PAPERCLIP_ROOT_PATH") or ":rails_root/public/system"
    configured = configured.replace(":rails_root", str(live_dir))
    return Path(os.path.normpath(live_dir / configured))  # relative paths: from the live dir


def settings_from_values(values: Mapping[str, str], env_file: Path) -> MastodonSettings:
    """Settings from already-parsed env values; `env_file` must be absolute."""
    live_dir = env_file.parent
    redis, problem = _redis(values, env_file)
    return MastodonSettings(
        env_file=env_file,
        live_dir=live_dir,
        local_domain=values.get("LOCAL_DOMAIN") or None,
        web_domain=values.get("WEB_DOMAIN") or None,
        database=_database(values, env_file),
        redis=redis,
        redis_problem=problem,
        s3_enabled=is_true(values.get("S3_ENABLED")),
        media_root=_media_root(values, live_dir),
    )


def load_settings(env_file: str | Path) -> MastodonSettings:
    """Read and interpret an instance's env file; unreadable or malformed raises SourceError."""
    path = Path(os.path.abspath(env_file))
    return settings_from_values(read_env_file(path), path)
