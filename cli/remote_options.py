"""The repository options, taken by every repository command before or after its name: the
repository and its password, S3 and work-alikes (R2, B2, Wasabi, MinIO), SFTP, how many
connections to use, the local metadata cache, and how long to retry.

Each has a flag, an environment variable (SNAPSTORE_S3_ENDPOINT, ...) and a config file key
(`[s3]`, `[sftp]`, and the top level; see config_file.py), all made from one row of
REPOSITORY_SETTINGS; the S3 and SFTP rows are made from the library's own table
(snapstore.STORAGE_OPTIONS), which open_backend accepts. S3 credentials are botocore's
business: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE, or --s3-profile. Options
for a scheme reach only a repository of that scheme, so one set of variables can serve a local
repository and an off-site one.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import click

import snapstore
from snapstore.cli.output import print_warning
from snapstore.errors import UsageError

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]

_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
_WAIT = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+|\d+(?:\.\d+)?")
_WAIT_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")


def parse_wait(text: str) -> float:
    """Seconds in a wait like `30s`, `5m`, `1h30m` or a bare number of seconds."""
    spelled = text.strip().lower()
    if not _WAIT.fullmatch(spelled):
        raise UsageError(f"{text!r} is not a duration like 90, 30s, 5m or 1h30m")
    if spelled.replace(".", "").isdigit():
        return float(spelled)
    return sum(float(n) * _SECONDS[unit] for n, unit in _WAIT_PART.findall(spelled))


def duration_option(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    """Click callback: a duration option (30s, 10m, 1h30m) as seconds."""
    return parse_wait(value) if value else None


class SharedOption(click.Option):
    """An option of the table below: `snapstore --help` and each command's help list these
    apart from the command's own options, under `group`."""

    def __init__(self, *args: Any, group: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.group = group


@dataclass(frozen=True)
class Setting:
    """One option in one place: flag --<name> (and `short`), environment SNAPSTORE_<NAME>
    (or `env_name`), config key `key` (default: the name) in `section` ("" for the top level;
    none when not `in_file`). The repository and remote options here, the global ones
    (cli/shared_options.py) and the run options (cli/run_options.py: hooks, metrics) are
    rows of this."""

    name: str
    metavar: str
    help: str
    type: Any = None  # click's parameter type
    toml_types: tuple[type, ...] = (str,)  # what the config file may hold
    path: bool = False  # a path, taken from the config file's folder
    callback: Callable[[click.Context, click.Parameter, Any], Any] | None = None
    section: str = ""
    key_name: str | None = None
    multiple: bool = False  # repeatable; its variable holds one value a line
    short: str | None = None
    env_name: str | None = None
    is_flag: bool = False
    in_file: bool = True
    backend: str | None = None  # the open_backend option a storage row sets
    dest: str | None = None  # the parameter's name, when not `name`
    count: bool = False  # -v, -vv
    expose: bool = True  # False: its callback notes it (-q, -v); the command gets no argument

    @property
    def param(self) -> str:
        return self.dest or self.name

    @property
    def key(self) -> str:
        return self.key_name or self.name

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def envvar(self) -> str | None:
        """SNAPSTORE_<NAME>, or `env_name` ("": none)."""
        return f"SNAPSTORE_{self.name.upper()}" if self.env_name is None else self.env_name or None

    @property
    def opts(self) -> list[str]:
        return [*([self.short] if self.short else []), self.flag]

    @property
    def help_text(self) -> str:
        """The help with its variable named, before any [default: ...]."""
        text, bracket, rest = self.help.partition(" [default")
        lines = ", one per line" if self.multiple else ""
        env = f" (env {self.envvar}{lines})" if self.envvar else ""
        return f"{text.rstrip('.')}{env}{bracket}{rest}".rstrip(".") + "."

    def option(self, group: str, envvar: bool = True, **extra: Any) -> SharedOption:
        """The click option; `envvar=False` for a command's copy of a global option, whose
        variable the group reads (app.py passes the group's values down as defaults)."""
        return SharedOption([*self.opts, self.param], **self._settings(group, envvar, extra))

    def decorator(self, group: str, envvar: bool = True, **extra: Any) -> Decorator:
        return click.option(*self.opts, self.param, cls=SharedOption,
                            **self._settings(group, envvar, extra))  # fmt: skip

    def _settings(self, group: str, envvar: bool, extra: dict[str, Any]) -> dict[str, Any]:
        return {
            "group": group, "metavar": None if self.is_flag else self.metavar, "type": self.type,
            "is_flag": self.is_flag, "count": self.count, "multiple": self.multiple,
            "default": False if self.is_flag else 0 if self.count else () if self.multiple else None,
            "envvar": self.envvar if envvar else None, "callback": self.callback,
            "expose_value": self.expose, "help": self.help_text, **extra,
        }  # fmt: skip


def _storage_setting(row: snapstore.StorageOption, prefix: str = "") -> Setting:
    """A storage option's row (prefix "to_": copy's --to-s3-*, env SNAPSTORE_TO_S3_*, no key)."""
    kind = click.Choice(row.choices) if row.choices else click.Path(dir_okay=False) if row.path else None
    return Setting(f"{prefix}{row.scheme}_{row.name}", row.metavar, row.help, type=kind,
                   path=row.path, section=row.scheme, key_name=row.name, in_file=not prefix,
                   backend=row.option)  # fmt: skip


REPOSITORY = "Repository options"
REPOSITORY_SETTINGS = (
    Setting("repo", "URL", "Repository path or URL", short="-r", env_name="SNAPSTORE_REPOSITORY",
            key_name="repository"),
    Setting("password_file", "FILE", "Read the password from this file",
            type=click.Path(dir_okay=False), path=True),
    Setting("password_command", "CMD", "Run this shell command to get the password"),
    *(_storage_setting(row) for row in snapstore.STORAGE_OPTIONS),
    Setting("connections", "N", "Parallel uploads/downloads [default: 5; a local repository: the cores].",
            click.IntRange(1, 64), (int,)),
    Setting("cache_dir", "DIR", "Where remote repositories' metadata is cached "
            "[default: ~/.cache/snapstore].", click.Path(file_okay=False), path=True),
    Setting("retry_for", "DURATION", "How long a remote repository may keep failing before "
            "the command gives up, e.g. 30s, 10m; each retry is reported [default: 5m].",
            toml_types=(str, int), callback=duration_option),
    Setting("no_cache", "", "Read everything from the repository; keep no local cache",
            toml_types=(bool,), is_flag=True),
)  # fmt: skip
"""The options naming a repository and how to reach it, one row each: every repository
command takes them, before or after its name."""


def _new_interrupt() -> snapstore.Interrupt:
    """Not `default_factory=snapstore.Interrupt`: that would import the library's backends
    when this module is imported, which `snapstore --help` does."""
    return snapstore.Interrupt()


@dataclass(frozen=True)
class RemoteOptions:
    s3: Mapping[str, str] = field(default_factory=dict)
    sftp: Mapping[str, str] = field(default_factory=dict)
    connections: int | None = None
    cache_dir: str | None = None  # None: no cache
    retry_for: float | None = None  # None: the library's default
    interrupt: snapstore.Interrupt = field(default_factory=_new_interrupt)
    """Set on Ctrl-C/SIGTERM while the command runs (see options.py): retries stop waiting."""

    def backend_options(self, location: str) -> dict[str, str]:
        """The options for this location's scheme (a local path takes none)."""
        scheme = location.partition("://")[0].lower() if "://" in location else ""
        if scheme in ("s3", "s3a"):
            return dict(self.s3)
        if scheme in ("sftp", "ssh"):
            return {"known_hosts": default_known_hosts(), **self.sftp}
        return {}

    def repository_kwargs(self, location: str) -> dict[str, Any]:
        """Keyword arguments for snapstore.open_repository and init_repository."""
        return {
            "backend_options": self.backend_options(location),
            "connections": self.connections,
            "cache_dir": self.cache_dir,
            "retry": self.retry_policy(),
        }

    def retry_policy(self) -> snapstore.RetryPolicy:
        """Retries reported on stderr as they happen, ended by the command's interrupt."""
        limit = {} if self.retry_for is None else {"retry_for": self.retry_for}
        return snapstore.RetryPolicy(**limit, warn=print_warning, interrupt=self.interrupt)

    def with_s3(self, overrides: Mapping[str, str]) -> RemoteOptions:
        return replace(self, s3={**self.s3, **overrides})


def repository_decorators(envvar: bool = True) -> list[Decorator]:
    """Every repository option (the group's read their variables; a command's do not)."""
    return [setting.decorator(REPOSITORY, envvar) for setting in REPOSITORY_SETTINGS]


def s3_decorators(prefix: str = "") -> list[Decorator]:
    """--s3-* options (with prefix "to_": --to-s3-*, env SNAPSTORE_TO_S3_*)."""
    rows = [_storage_setting(row, prefix) for row in snapstore.STORAGE_OPTIONS if row.scheme == "s3"]
    return [click.option(*row.opts, row.name, type=row.type, metavar=row.metavar,
                         envvar=row.envvar, help=row.help_text) for row in rows]  # fmt: skip


def pop_s3(kwargs: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Take the --s3-* values out of a command's keyword arguments: open_backend's options."""
    return _pop_storage(kwargs, "s3", prefix)


def _pop_storage(kwargs: dict[str, Any], scheme: str, prefix: str = "") -> dict[str, str]:
    found = {}
    for row in snapstore.STORAGE_OPTIONS:
        value = kwargs.pop(f"{prefix}{row.scheme}_{row.name}", None) if row.scheme == scheme else None
        if value:
            found[row.option] = str(Path(value).expanduser()) if row.path else str(value)
    return found


def pop_remote(kwargs: dict[str, Any]) -> RemoteOptions:
    """Take every remote option out of a command's keyword arguments."""
    s3 = _pop_storage(kwargs, "s3")
    sftp = _pop_storage(kwargs, "sftp")
    connections = kwargs.pop("connections", None)
    cache_dir = kwargs.pop("cache_dir", None)
    no_cache = kwargs.pop("no_cache", False)
    return RemoteOptions(
        s3=s3,
        sftp=sftp,
        connections=connections,
        cache_dir=None if no_cache else str(Path(cache_dir or default_cache_dir()).expanduser()),
        retry_for=kwargs.pop("retry_for", None),
    )


def default_cache_dir() -> str:
    """$XDG_CACHE_HOME/snapstore, else ~/.cache/snapstore; each repository gets a folder
    named by its id inside."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "snapstore")


def default_known_hosts() -> str:
    return os.path.join(os.path.expanduser("~"), ".ssh", "known_hosts")
