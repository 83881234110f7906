"""The installed command pointed at remote repositories: S3 on moto's server, SFTP on sshd.

Each `Cli` gets a fresh bucket (or folder), its own cache folder and HOME under the test's
temp folder, and an environment without the caller's SNAPSTORE_* and AWS_* variables, so a
developer's real credentials or cache can never be touched.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from tests.support.cli import PASSWORD, Cli
from tests.support.s3server import S3Endpoint, delete_bucket, fresh_bucket_name
from tests.support.sshd import SshServer


def clean_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SNAPSTORE_", "AWS_"))}
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env.update(
        HOME=str(home),
        SNAPSTORE_PASSWORD=PASSWORD,
        SNAPSTORE_CACHE_DIR=str(tmp_path / "cache"),
        AWS_CONFIG_FILE=str(home / "no-aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(home / "no-aws-credentials"),
        AWS_EC2_METADATA_DISABLED="true",
    )
    return env


@contextlib.contextmanager
def s3_cli(endpoint: S3Endpoint, tmp_path: Path, prefix: str = "repo") -> Iterator[Cli]:
    """A Cli whose repository is s3://<fresh bucket>/<prefix>; the bucket goes afterwards."""
    bucket = fresh_bucket_name()
    env = clean_env(tmp_path)
    env.update(endpoint.cli_env(), SNAPSTORE_REPOSITORY=f"s3://{bucket}/{prefix}")
    try:
        yield Cli(tmp_path / "no-local-repository", env)
    finally:
        with contextlib.suppress(Exception):  # a test may never have created it
            delete_bucket(endpoint, bucket)


def bucket_of(cli: Cli) -> str:
    return cli.env["SNAPSTORE_REPOSITORY"].removeprefix("s3://").split("/", 1)[0]


def sftp_cli(server: SshServer, tmp_path: Path) -> Cli:
    env = clean_env(tmp_path)
    env.update(
        SNAPSTORE_REPOSITORY=server.url(tmp_path / "sftp-repo"),
        SNAPSTORE_SFTP_KEY_FILE=str(server.client_key),
        SNAPSTORE_SFTP_KNOWN_HOSTS=str(server.known_hosts),
    )
    return Cli(tmp_path / "sftp-repo", env)
