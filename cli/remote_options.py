"""Options for remote repositories, taken by every repository command: S3 and work-alikes
(R2, B2, Wasabi, MinIO), SFTP, how many connections to use, and the local metadata cache.

Each has a flag, an environment variable (SNAPSTORE_S3_ENDPOINT, ...) and a config file key
(`[s3]`, `[sftp]`, top-level `connections`/`cache_dir`; see config_file.py). S3 credentials
are botocore's business: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE, or
--s3-profile. Options for a scheme reach only a repository of that scheme, so one set of
variables can serve a local repository and an off-site one.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import click

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


@dataclass(frozen=True)
class RemoteOptions:
    s3: Mapping[str, str] = field(default_factory=dict)
    sftp: Mapping[str, str] = field(default_factory=dict)
    connections: int | None = None
    cache_dir: str | None = None  # None: no cache

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
        }

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
    return s3_decorators() + sftp + [
        click.option(
            "--connections", type=click.IntRange(1, 64), envvar="SNAPSTORE_CONNECTIONS",
            help="Parallel uploads/downloads (env SNAPSTORE_CONNECTIONS) [default: 5].",
        ),
        click.option(
            "--cache-dir", type=click.Path(file_okay=False), envvar="SNAPSTORE_CACHE_DIR",
            help="Where remote repositories' metadata is cached (env SNAPSTORE_CACHE_DIR) "
                 "[default: ~/.cache/snapstore].",
        ),
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
    )


def default_cache_dir() -> str:
    """$XDG_CACHE_HOME/snapstore, else ~/.cache/snapstore; each repository gets a folder
    named by its id inside."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "snapstore")


def default_known_hosts() -> str:
    return os.path.join(os.path.expanduser("~"), ".ssh", "known_hosts")
