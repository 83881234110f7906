"""The S3 and SFTP options through the installed command before and after the command's name
(issue 14, item 6), on moto's S3 server and a real sshd; an option given on the command line
wins over its variable wherever it stands."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import required_server
from tests.support.cli import Cli
from tests.support.remote_cli import s3_cli, sftp_cli
from tests.support.s3server import S3Endpoint, running_s3_server
from tests.support.sshd import SshServer, running_sshd
from tests.support.trees import make_tree


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[S3Endpoint]:
    with required_server(running_s3_server(), "S3 endpoint") as endpoint:
        yield endpoint


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    with required_server(running_sshd(tmp_path_factory.mktemp("sshd")), "SFTP server") as server:
        yield server


def ok(cli: Cli, *args: str, env: dict[str, str] | None = None) -> bytes:
    done = cli(*args, env=env)
    assert done.code == 0, done.err
    return done.out


def test_s3_options_before_or_after_the_name(s3_endpoint: S3Endpoint, tmp_path: Path) -> None:
    source = tmp_path / "src"
    make_tree(source)
    with s3_cli(s3_endpoint, tmp_path) as given:
        cli = Cli(given.repo, {k: v for k, v in given.env.items() if not k.startswith("SNAPSTORE_S3_")})
        options = ["--s3-endpoint", s3_endpoint.url, "--s3-region", s3_endpoint.region,
                   "--s3-addressing-style", "path"]  # fmt: skip
        ok(cli, *options, "init")
        ok(cli, "snapshot", "files", str(source), *options)
        ok(cli, *options, "snapshot", "files", str(source))
        assert len(json.loads(ok(cli, *options, "snapshots", "--json"))) == 2
        assert len(json.loads(ok(cli, "snapshots", "--json", *options))) == 2
        refused = {"SNAPSTORE_S3_ENDPOINT": "http://127.0.0.1:9", "SNAPSTORE_RETRY_FOR": "1s"}
        assert len(json.loads(ok(cli, "snapshots", "--json", *options, env=refused))) == 2
        assert len(json.loads(ok(cli, *options, "snapshots", "--json", env=refused))) == 2


def test_sftp_options_before_or_after_the_name(sshd: SshServer, tmp_path: Path) -> None:
    source = tmp_path / "src"
    make_tree(source)
    given = sftp_cli(sshd, tmp_path)
    cli = Cli(given.repo, {k: v for k, v in given.env.items() if not k.startswith("SNAPSTORE_SFTP_")})
    options = ["--sftp-key-file", str(sshd.client_key), "--sftp-known-hosts", str(sshd.known_hosts)]
    ok(cli, *options, "init")
    ok(cli, "snapshot", "files", str(source), *options)
    assert len(json.loads(ok(cli, *options, "snapshots", "--json"))) == 1
    assert len(json.loads(ok(cli, "snapshots", "--json", *options))) == 1
    unknown = tmp_path / "empty_known_hosts"
    unknown.write_text("")
    refused = cli("snapshots", "--sftp-known-hosts", str(unknown), "--sftp-key-file", str(sshd.client_key))
    assert refused.code != 0  # the host key is not in that file: the option after the name counted
