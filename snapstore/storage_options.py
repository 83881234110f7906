"""The options a remote storage backend takes, one row each, declared once (as restic's backends
declare theirs with a name and a help text).

`open_backend` (backend/location.py) accepts each row's `option`; the command line derives
from the same row its flag (`--s3-endpoint`), environment variable (`SNAPSTORE_S3_ENDPOINT`)
and config file key (`[s3] endpoint`), from `scheme` and `name`. Credentials (S3's key,
secret and token) are taken from code only: on a command line they would show in `ps`.

This module imports nothing, so that the command line can build `snapstore --help` from it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StorageOption:
    scheme: str  # the URL scheme it serves: s3, sftp
    name: str  # as flags and config files spell it, after the scheme: endpoint
    option: str  # as open_backend takes it: endpoint_url
    help: str
    metavar: str = "TEXT"
    choices: tuple[str, ...] = ()
    path: bool = False  # a local file: ~ is expanded, a config file's relative path is its folder's


STORAGE_OPTIONS = (
    StorageOption("s3", "endpoint", "endpoint_url",
                  "S3 endpoint URL, e.g. https://<account>.r2.cloudflarestorage.com", "URL"),
    StorageOption("s3", "region", "region", "S3 region (R2: auto)", "NAME"),
    StorageOption("s3", "profile", "profile",
                  "AWS profile with the credentials (default: AWS_* variables)", "NAME"),
    StorageOption("s3", "addressing_style", "addressing_style",
                  "S3 addressing style: auto, virtual or path", "STYLE",
                  choices=("auto", "virtual", "path")),
    StorageOption("s3", "storage_class", "storage_class",
                  "S3 storage class for data packs, e.g. STANDARD_IA", "CLASS"),
    StorageOption("sftp", "key_file", "key_filename",
                  "SSH private key (default: the SSH agent and ~/.ssh/id_*)", "FILE", path=True),
    StorageOption("sftp", "known_hosts", "known_hosts",
                  "known_hosts file with the server's key [default: ~/.ssh/known_hosts]", "FILE",
                  path=True),
)  # fmt: skip
"""Every option a user may give a backend."""

CODE_ONLY_OPTIONS = {"s3": ("key", "secret", "token")}
"""Options taken from code only, never from a flag or a file."""


def accepted_options(scheme: str) -> frozenset[str]:
    """The options open_backend takes for a scheme."""
    rows = (row.option for row in STORAGE_OPTIONS if row.scheme == scheme)
    return frozenset((*rows, *CODE_ONLY_OPTIONS.get(scheme, ())))


def choices(scheme: str, name: str) -> tuple[str, ...]:
    """The values an option allows (empty: any)."""
    return next(row.choices for row in STORAGE_OPTIONS if (row.scheme, row.name) == (scheme, name))
