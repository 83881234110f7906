"""The TOML config file (`--config PATH` or SNAPSTORE_CONFIG), so that cron needs one line.

    repository = "/srv/backup/snapstore"
    password_file = "/root/.snapstore-password"      # or password_command = "..."

    [mastodon]                      # `snapshot mastodon`
    env_file = "/home/mastodon/live/.env.production"
    media = true                    # false: like --no-media
    include_media_cache = false
    redis = true                    # false: like --no-redis
    letsencrypt = true              # false: like --no-letsencrypt
    letsencrypt_dir = "/etc/letsencrypt"
    nginx_dir = "/etc/nginx"        # sites naming the instance's domain are taken
    systemd_dir = "/etc/systemd/system"

    [postgres]                      # the server of snapshot postgres, restore, drill (pg_options.py)
    command_prefix = ["docker", "exec", "-i", "-e", "PGPASSWORD", "mastodon-db-1"]
    host = "127.0.0.1"
    port = 5432
    username = "postgres"
    dbname = "mastodon_production"
    run_as = "mastodon"             # restore and drill: clients run as this system user

    [drill]                         # `drill`; it also takes [mastodon] env_file
    max_shrink = 50                 # percent a table or the database may lose since last time

    [redis]                         # `snapshot redis`; the prefix also serves `snapshot mastodon`
    command_prefix = ["docker", "exec", "-i", "mastodon-redis-1"]
    host = "127.0.0.1"
    port = 6379
    password_env = "REDIS_PASSWORD"

    [retention]                     # read by `forget`: keep_daily = 7, keep_weekly = 4, ...
    keep_daily = 7

    connections = 8                 # top level, like repository: parallel transfers
    cache_dir = "/var/cache/snapstore"
    retry_for = "10m"               # how long a remote repository may keep failing

    [s3]                            # S3 and work-alikes; credentials: AWS_* or profile
    endpoint = "https://<account>.r2.cloudflarestorage.com"
    region = "auto"
    profile = "backup"
    addressing_style = "path"       # auto, virtual or path
    storage_class = "STANDARD_IA"   # data packs only

    [sftp]
    key_file = "/root/.ssh/id_ed25519_backup"
    known_hosts = "/root/.ssh/known_hosts"

    [copy]                          # `copy`'s destination (--to, --to-password-*)
    repository = "s3://offsite-bucket/snapstore"
    password_file = "/root/.snapstore-offsite-password"

    metrics_file = "/var/lib/prometheus/node-exporter/snapstore.prom"   # top level

    [schedule]                      # `schedule install`: timers running this file's jobs
    snapshot = ["mastodon", "files /etc /root"]   # default: [mastodon], else [postgres] dbname
    daily = "03:15"                 # the snapshot, then forget --prune by [retention]
    check = "weekly"                # daily, weekly, monthly or off
    check_subset = "25%"            # default: 5% daily, 25% weekly, 100% monthly
    check_max_duration = "2h"
    retry_lock = "2h"

    [hooks]                         # shell commands around every command (run_options.py)
    failure = ["curl -fsS -m 10 https://hc-ping.com/<uuid>/fail"]
    timeout = "5m"
    [hooks.snapshot]                # around `snapshot ...` only: before, after, failure
    before = ["curl -fsS -m 10 https://hc-ping.com/<uuid>/start"]

The file only supplies defaults: an option on the command line or its environment variable
wins over the file. It works through click's `default_map`, built here for the whole
command tree, so commands need nothing special. Relative paths in the file are taken from
the file's folder. Unknown keys and wrong types are usage errors (a typo must not silently
drop a setting). `retention` is kept as a plain dict (keys with `-` or `_` alike) and also
offered as defaults to the `forget` command's options of the same names.
"""

from __future__ import annotations

import shlex
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from snapstore.cli.pg_options import PG_SETTINGS
from snapstore.cli.redis_options import REDIS_SETTINGS
from snapstore.cli.remote_options import REPOSITORY_SETTINGS
from snapstore.cli.run_options import RUN_SETTINGS
from snapstore.errors import UsageError

REPOSITORY_KEYS: dict[str, dict[str, str]] = {}
"""Section ("" the top level) -> key -> the option every repository command takes; from the
one table, remote_options.REPOSITORY_SETTINGS."""
_REPOSITORY_TYPES: dict[str, dict[str, tuple[type, ...]]] = {}
for _setting in REPOSITORY_SETTINGS:
    if _setting.in_file:
        REPOSITORY_KEYS.setdefault(_setting.section, {})[_setting.key] = _setting.param
        _REPOSITORY_TYPES.setdefault(_setting.section, {})[_setting.key] = _setting.toml_types
_COPY_KEYS = {"repository": "to_repo", "password_file": "to_password_file",
              "password_command": "to_password_command"}  # fmt: skip
_PATH_KEYS = {"env_file", "letsencrypt_dir", "nginx_dir", "systemd_dir",
              *(setting.key for setting in REPOSITORY_SETTINGS if setting.path),
              *(setting.key for setting in RUN_SETTINGS if setting.path)}  # fmt: skip
_SCHEMA: dict[str, dict[str, tuple[type, ...]]] = {
    "": {**_REPOSITORY_TYPES[""], **{s.key: s.toml_types for s in RUN_SETTINGS if not s.section}},
    **{section: types for section, types in _REPOSITORY_TYPES.items() if section},
    "copy": {key: (str,) for key in _COPY_KEYS},
    "mastodon": {
        "env_file": (str,), "media": (bool,), "include_media_cache": (bool,),
        "redis": (bool,), "letsencrypt": (bool,), "letsencrypt_dir": (str,),
        "nginx_dir": (str,), "systemd_dir": (str,),
    },
    "postgres": {"dbname": (str,), **{s.key: s.toml_types for s in PG_SETTINGS}},
    "drill": {"max_shrink": (int, float)},
    "redis": {"password_env": (str,), **{s.key: s.toml_types for s in REDIS_SETTINGS}},
    "hooks": {s.key: s.toml_types for s in RUN_SETTINGS if s.section == "hooks"},
    "schedule": {"snapshot": (list, str), "daily": (str,), "check": (str,),
                 "check_subset": (str,), "check_max_duration": (str,), "retry_lock": (str,)},
}  # fmt: skip
_SECTIONS = {*_SCHEMA, "retention"} - {""}


@dataclass
class ConfigFile:
    path: Path
    settings: dict[str, Any] = field(default_factory=dict)
    mastodon: dict[str, Any] = field(default_factory=dict)
    postgres: dict[str, Any] = field(default_factory=dict)
    redis: dict[str, Any] = field(default_factory=dict)
    retention: dict[str, Any] = field(default_factory=dict)
    s3: dict[str, Any] = field(default_factory=dict)
    sftp: dict[str, Any] = field(default_factory=dict)
    copy: dict[str, Any] = field(default_factory=dict)
    drill: dict[str, Any] = field(default_factory=dict)
    schedule: dict[str, Any] = field(default_factory=dict)
    hooks: dict[str, dict[str, Any]] = field(default_factory=dict)
    """[hooks] as "" and each [hooks.<command>] by the command's name."""

    @property
    def repository(self) -> str | None:
        value = self.settings.get("repository")
        return str(value) if value is not None else None


def _check(section: str, table: dict[str, Any], path: Path, base: Path) -> dict[str, Any]:
    schema = _SCHEMA[section]
    where = f"[{section}]" if section else "top level"
    checked: dict[str, Any] = {}
    for key, value in table.items():
        if key not in schema:
            known = ", ".join(sorted(schema))
            raise UsageError(f"{path}: unknown key {key!r} at {where} (known: {known})")
        wrong_bool = isinstance(value, bool) and bool not in schema[key]
        if not isinstance(value, schema[key]) or wrong_bool:
            raise UsageError(f"{path}: {where} {key} has the wrong type")
        if isinstance(value, list) and not all(isinstance(item, str) for item in value):
            raise UsageError(f"{path}: {where} {key} must be a list of strings")
        if key in _PATH_KEYS:
            value = str(base / Path(str(value)).expanduser())
        checked[key] = value
    return checked


def load_config(path: str | Path) -> ConfigFile:
    """Read and validate a config file; any problem is a `UsageError` naming the file."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except OSError as exc:
        raise UsageError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"config file {path}: {exc}") from None
    base = path.absolute().parent
    top = {k: v for k, v in raw.items() if not isinstance(v, dict)}
    for name, value in raw.items():
        if isinstance(value, dict) and name not in _SECTIONS:
            raise UsageError(f"{path}: unknown section [{name}]")
    retention = raw.get("retention", {})
    for key, value in retention.items():
        if isinstance(value, (dict, list)):
            raise UsageError(f"{path}: [retention] {key} must be a number or a string")
    return ConfigFile(
        path=path,
        settings=_check("", top, path, base),
        mastodon=_check("mastodon", raw.get("mastodon", {}), path, base),
        postgres=_check("postgres", raw.get("postgres", {}), path, base),
        redis=_check("redis", raw.get("redis", {}), path, base),
        retention={key.replace("-", "_"): value for key, value in retention.items()},
        s3=_check("s3", raw.get("s3", {}), path, base),
        sftp=_check("sftp", raw.get("sftp", {}), path, base),
        copy=_check("copy", raw.get("copy", {}), path, base),
        drill=_check("drill", raw.get("drill", {}), path, base),
        schedule=_check("schedule", raw.get("schedule", {}), path, base),
        hooks=_check_hooks(raw.get("hooks", {}), path, base),
    )


def _check_hooks(table: dict[str, Any], path: Path, base: Path) -> dict[str, dict[str, Any]]:
    """[hooks] and its [hooks.<command>] tables, each with the keys of the [hooks] schema."""
    plain = {key: value for key, value in table.items() if not isinstance(value, dict)}
    hooks = {"": _check("hooks", plain, path, base)}
    for name, sub in table.items():
        if isinstance(sub, dict):
            hooks[name] = _check("hooks", sub, path, base)
    return hooks


def run_settings(config: ConfigFile) -> dict[str, Any]:
    """What run_options.resolve_plan takes from the file: top-level keys and [hooks]."""
    top = {s.key: config.settings[s.key] for s in RUN_SETTINGS
           if not s.section and s.key in config.settings}  # fmt: skip
    return {**top, "hooks": config.hooks}


def _prefix(value: list[str] | str | None) -> str | None:
    """Command prefixes travel as one shell-quoted string, as on the command line."""
    if value is None:
        return None
    return shlex.join(value) if isinstance(value, list) else value


def _as_list(value: list[str] | str) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _drop_none(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def command_defaults(config: ConfigFile) -> dict[tuple[str, ...], dict[str, Any]]:
    """Option defaults per command path, e.g. ("snapshot", "mastodon") -> {"env_file": ...}."""
    m, pg, rd = config.mastodon, config.postgres, config.redis
    connection = {setting.param: _prefix(pg[setting.key]) if setting.key == "command_prefix"
                  else pg[setting.key] for setting in PG_SETTINGS if setting.key in pg}  # fmt: skip
    redis = {setting.param: _prefix(rd[setting.key]) if setting.key == "command_prefix"
             else rd[setting.key] for setting in REDIS_SETTINGS if setting.key in rd}  # fmt: skip
    redis_prefix = {k: v for k, v in redis.items() if k == "redis_command_prefix"}
    return {
        ("snapshot", "mastodon"): _drop_none({
            "env_file": m.get("env_file"),
            "include_media_cache": m.get("include_media_cache"),
            "no_media": None if "media" not in m else not m["media"],
            "no_redis": None if "redis" not in m else not m["redis"],
            "no_letsencrypt": None if "letsencrypt" not in m else not m["letsencrypt"],
            "letsencrypt_dir": m.get("letsencrypt_dir"),
            "nginx_dir": m.get("nginx_dir"),
            "systemd_dir": m.get("systemd_dir"),
        }) | connection | redis_prefix,  # the server itself comes from .env.production
        ("snapshot", "postgres"): {**connection, **_drop_none({"dbname": pg.get("dbname")})},
        ("snapshot", "redis"): redis | _drop_none({"password_env": rd.get("password_env")}),
        ("restore", "snapshot"): dict(connection),
        ("restore", "mastodon"): {**connection, **_drop_none({
            "env_file": m.get("env_file"), "letsencrypt_dir": m.get("letsencrypt_dir"),
            "nginx_dir": m.get("nginx_dir"), "systemd_dir": m.get("systemd_dir"),
        }), **redis_prefix},
        ("drill",): {**connection, **_drop_none({
            "env_file": m.get("env_file"), "max_shrink": config.drill.get("max_shrink"),
        })},
        ("forget",): {key: str(value) for key, value in config.retention.items()},
        ("copy",): {_COPY_KEYS[key]: value for key, value in config.copy.items()},
        ("schedule", "install"): {**config.schedule, **({"snapshot": _as_list(
            config.schedule["snapshot"])} if "snapshot" in config.schedule else {})},
    }  # fmt: skip


def _repository_defaults(config: ConfigFile) -> dict[str, Any]:
    """The file's repository settings (top level, [s3], [sftp]) by option name."""
    found = {}
    for section, keys in REPOSITORY_KEYS.items():
        table = getattr(config, section) if section else config.settings
        found.update({keys[k]: v for k, v in table.items() if k in keys and v is not None})
    return found


def command_default_map(
    config: ConfigFile | None, command: click.Command, path: tuple[str, ...],
    given: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The defaults of one command (a leaf, at `path`): the file's settings for it, under the
    values `given` before its name (app.py: the group's options, from its flags, their
    variables or the file)."""
    values = dict(given or {})
    if config is not None:
        values = {**_repository_defaults(config), **command_defaults(config).get(path, {}), **values}
    params = {param.name for param in command.params}
    return {key: value for key, value in values.items() if key in params}


def build_default_map(
    config: ConfigFile | None, group: click.Group, only: str | None = None,
    given: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """click's nested default_map for every command under `group`, or for its command `only`
    and what is under that (app.py's group imports a command's module when it is looked up:
    it passes the one being run)."""

    def visit(command: click.Command, path: tuple[str, ...]) -> dict[str, Any]:
        if isinstance(command, click.Group):
            ctx = click.Context(command)
            names = [only] if only is not None and not path else command.list_commands(ctx)
            found = {name: command.get_command(ctx, name) for name in names}
            return {name: visit(sub, path + (name,)) for name, sub in found.items()
                    if sub is not None}  # fmt: skip
        return command_default_map(config, command, path, given)

    return visit(group, ())


CONFIG_META = "snapstore.config"


def current_config() -> ConfigFile | None:
    """The config file loaded for this invocation, if any (for commands that want more):
    --config before or after the command's name (cli/shared_options.py)."""
    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return None
    config = ctx.find_root().meta.get(CONFIG_META)
    return config if isinstance(config, ConfigFile) else None
