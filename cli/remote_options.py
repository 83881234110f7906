"""Options for remote repositories, taken by every repository command: S3 and work-alikes
(R2, B2, Wasabi, MinIO), SFTP, how many connections to use, the local metadata cache, and how
long to retry.

Each has a flag, an environment variable (SNAPSTORE_S3_ENDPOINT, ...) and a config file key
(`[s3]`, `[sftp]`, and the top-level SETTINGS; see config_file.py), all made from the tables
here. S3 credentials are botocore's business: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or
AWS_PROFILE, or --s3-profile. Options for a scheme reach only a repository of that scheme, so
one set of variables can serve a local repository and an off-site one.
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

S3_FLAGS = {
    "endpoint_url": ("endpoint", "S3 endpoint URL, e.g. https://<account>.r2.cloudflarestorage.com"),
    "region": ("region", "S3 region (R2: auto)"),
    "profile": ("profile", "AWS profile with the credentials (default: AWS_* variables)"),
    "addressing_style": ("addressing-style", "S3 addressing style: auto, virtual or path"),
    "storage_class": ("storage-class", "S3 storage class for data packs, e.g. STANDARD_IA"),
}
"""open_backend's s3 option -> (flag suffix after --s3-, help)."""
SFTP_FLAGS = {
    "key_filename": ("key-file", "SSH private key (default: the SSH agent and ~/.ssh/id_*)"),
    "known_hosts": ("known-hosts", "known_hosts file with the server's key [~/.ssh/known_hosts]"),
}
"""open_backend's sftp option -> (flag suffix after --sftp-, help)."""

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


@dataclass(frozen=True)
class Setting:
    """One option in one place: flag --<name>, environment SNAPSTORE_<NAME>, config key
    `key` (default: the name) in `section` ("" for the top level). The remote options here
    and the run options (cli/run_options.py: hooks, metrics) are rows of this."""

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

    @property
    def key(self) -> str:
        return self.key_name or self.name

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def envvar(self) -> str:
        return f"SNAPSTORE_{self.name.upper()}"


SETTINGS = (
    Setting("connections", "N", "Parallel uploads/downloads [default: 5].",
            click.IntRange(1, 64), (int,)),
    Setting("cache_dir", "DIR", "Where remote repositories' metadata is cached "
            "[default: ~/.cache/snapstore].", click.Path(file_okay=False), path=True),
    Setting("retry_for", "DURATION", "How long a remote repository may keep failing before "
            "the command gives up, e.g. 30s, 10m; each retry is reported [default: 5m].",
            toml_types=(str, int), callback=duration_option),
)  # fmt: skip
"""The top-level remote options, one row each."""


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


def _param(prefix: str, scheme: str, suffix: str) -> str:
    return f"{prefix}{scheme}_{suffix.replace('-', '_')}"


def s3_decorators(prefix: str = "") -> list[Decorator]:
    """--s3-* options (with prefix "to_": --to-s3-*, env SNAPSTORE_TO_S3_*)."""
    flag, env = prefix.replace("_", "-"), prefix.upper()
    return [
        click.option(
            f"--{flag}s3-{suffix}", _param(prefix, "s3", suffix), metavar=_metavar(suffix),
            envvar=f"SNAPSTORE_{env}S3_{suffix.replace('-', '_').upper()}",
            type=click.Choice(["auto", "virtual", "path"]) if suffix == "addressing-style" else None,
            help=f"{text} (env SNAPSTORE_{env}S3_{suffix.replace('-', '_').upper()}).",
        )
        for suffix, text in S3_FLAGS.values()
    ]  # fmt: skip


def _metavar(suffix: str) -> str | None:
    return {"endpoint": "URL", "region": "NAME", "profile": "NAME", "storage-class": "CLASS"}.get(
        suffix
    )


def remote_decorators() -> list[Decorator]:
    """Every remote option, for `repository_options`."""
    sftp = [
        click.option(
            f"--sftp-{suffix}", _param("", "sftp", suffix), type=click.Path(dir_okay=False),
            envvar=f"SNAPSTORE_SFTP_{suffix.replace('-', '_').upper()}",
            help=f"{text} (env SNAPSTORE_SFTP_{suffix.replace('-', '_').upper()}).",
        )
        for suffix, text in SFTP_FLAGS.values()
    ]  # fmt: skip
    settings = [
        click.option(
            setting.flag, setting.name, metavar=setting.metavar, type=setting.type,
            envvar=setting.envvar, callback=setting.callback,
            help=setting.help.replace(" [default", f" (env {setting.envvar}) [default"),
        )
        for setting in SETTINGS
    ]  # fmt: skip
    return s3_decorators() + sftp + settings + [
        click.option(
            "--no-cache", is_flag=True, envvar="SNAPSTORE_NO_CACHE",
            help="Read everything from the repository; keep no local cache.",
        ),
    ]  # fmt: skip


def pop_s3(kwargs: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Take the --s3-* values out of a command's keyword arguments: open_backend's options."""
    found = {}
    for option, (suffix, _) in S3_FLAGS.items():
        value = kwargs.pop(_param(prefix, "s3", suffix), None)
        if value:
            found[option] = str(value)
    return found


def pop_remote(kwargs: dict[str, Any]) -> RemoteOptions:
    """Take every remote option out of a command's keyword arguments."""
    s3 = pop_s3(kwargs)
    sftp = {}
    for option, (suffix, _) in SFTP_FLAGS.items():
        value = kwargs.pop(_param("", "sftp", suffix), None)
        if value:
            sftp[option] = str(Path(value).expanduser())
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
