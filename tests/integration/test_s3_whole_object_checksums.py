"""The installed command on an S3 work-alike that answers ranged GETs with the checksum of the
whole object (moto's server behind `WholeObjectChecksums`). botocore's default validation
made every ranged read fail there, so backups worked but ls, restore, dump, check and prune
all failed (issue 10, item 7)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import required_server
from tests.support.cli import Cli
from tests.support.remote_cli import s3_cli
from tests.support.s3server import S3Endpoint, running_s3_server
from tests.support.trees import make_tree, tree_state


@pytest.fixture(scope="module")
def checksum_endpoint() -> Iterator[S3Endpoint]:
    server = running_s3_server(whole_object_checksums=True)
    with required_server(server, "S3 endpoint") as endpoint:
        yield endpoint


@pytest.fixture
def s3(checksum_endpoint: S3Endpoint, tmp_path: Path) -> Iterator[Cli]:
    with s3_cli(checksum_endpoint, tmp_path) as cli:
        yield cli


def ok(cli: Cli, *args: str) -> bytes:
    done = cli(*args, "--no-cache")  # every read goes to the server
    assert done.code == 0, done.err
    return done.out


def test_every_reading_command_works(s3: Cli, tmp_path: Path) -> None:
    source = tmp_path / "src"
    make_tree(source)
    ok(s3, "init")
    ok(s3, "snapshot", "files", str(source))
    (source / "small.txt").write_text("changed\n")
    ok(s3, "snapshot", "files", str(source))

    listed = ok(s3, "ls", "latest").decode()
    assert "/big.bin" in listed and "/sub/deeper/x.bin" in listed
    ok(s3, "restore", "latest", "--target", str(tmp_path / "out"))
    assert tree_state(tmp_path / "out" / str(source).lstrip("/")) == tree_state(source)
    dumped = ok(s3, "dump", "latest", str(source / "big.bin"))
    assert dumped == (source / "big.bin").read_bytes()
    assert b"no errors were found" in ok(s3, "check", "--read-data")
    ok(s3, "forget", "--keep-last", "1")
    ok(s3, "prune")
    assert len(json.loads(ok(s3, "snapshots", "--json"))) == 1
    assert b"no errors were found" in ok(s3, "check", "--read-data")
