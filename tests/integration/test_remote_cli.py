"""The installed command on remote repositories: S3 (moto's server on loopback) and SFTP (a
real sshd), with options from flags, the environment and the config file; faults injected at
the HTTP level; and `copy` from a local repository to an off-site one."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import required_server
from tests.support.cli import Cli, command_json
from tests.support.remote_cli import bucket_of, clean_env, s3_cli, sftp_cli
from tests.support.s3server import S3Endpoint, running_s3_server
from tests.support.sshd import SshServer, running_sshd
from tests.support.trees import make_tree, tree_state


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[S3Endpoint]:
    with required_server(running_s3_server(), "S3 endpoint") as endpoint:
        yield endpoint


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    with required_server(running_sshd(tmp_path_factory.mktemp("sshd")), "SFTP server") as server:
        yield server


@pytest.fixture
def s3(s3_endpoint: S3Endpoint, tmp_path: Path) -> Iterator[Cli]:
    with s3_cli(s3_endpoint, tmp_path) as cli:
        yield cli


@pytest.fixture
def source(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    make_tree(root)
    return root


def ok(cli: Cli, *args: str, **kwargs: object) -> str:
    done = cli(*args, **kwargs)  # type: ignore[arg-type]
    assert done.code == 0, done.err
    return done.text


def one_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1, err
    return lines[0]


def restored(target: Path, source: Path) -> Path:
    return target / str(source).lstrip("/")


def test_s3_end_to_end(s3: Cli, s3_endpoint: S3Endpoint, source: Path, tmp_path: Path) -> None:
    client = s3_endpoint.boto3_client()
    ok(s3, "init", env={"SNAPSTORE_S3_STORAGE_CLASS": "STANDARD_IA"})  # creates the bucket
    ok(s3, "snapshot", "files", str(source), env={"SNAPSTORE_S3_STORAGE_CLASS": "STANDARD_IA"})
    ok(s3, "restore", "latest", "--target", str(tmp_path / "out"))
    assert tree_state(restored(tmp_path / "out", source)) == tree_state(source)
    assert "no errors were found" in ok(s3, "check", "--read-data")
    bucket = bucket_of(s3)
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]]
    heads = {key: client.head_object(Bucket=bucket, Key=key) for key in keys if key.count("/") >= 2}
    classes: dict[str, set[str]] = {}
    for key, head in heads.items():
        classes.setdefault(key.split("/")[1], set()).add(head.get("StorageClass", "STANDARD"))
    # data packs only: the packs of trees (listings every ls and backup reads) stay standard
    assert classes["data"] == {"STANDARD_IA", "STANDARD"}
    biggest = max((k for k in heads if k.split("/")[1] == "data"), key=lambda k: heads[k]["ContentLength"])
    assert heads[biggest].get("StorageClass") == "STANDARD_IA"
    assert classes["index"] == classes["snapshots"] == classes["keys"] == {"STANDARD"}


def test_s3_options_from_the_config_file(
    s3: Cli, s3_endpoint: S3Endpoint, source: Path, tmp_path: Path
) -> None:
    config = tmp_path / "snapstore.toml"
    config.write_text(textwrap.dedent(f"""\
        repository = "{s3.env["SNAPSTORE_REPOSITORY"]}"
        connections = 2

        [s3]
        endpoint = "{s3_endpoint.url}"
        region = "{s3_endpoint.region}"
        addressing_style = "path"
    """))
    env = {k: v for k, v in s3.env.items() if not k.startswith("SNAPSTORE_S3_")}
    env.pop("SNAPSTORE_REPOSITORY")
    cli = Cli(s3.repo, env)
    ok(cli, "--config", str(config), "init")
    ok(cli, "--config", str(config), "snapshot", "files", str(source))
    assert len(json.loads(ok(cli, "--config", str(config), "snapshots", "--json"))) == 1


def test_s3_transient_errors_are_retried(
    s3: Cli, s3_endpoint: S3Endpoint, source: Path, tmp_path: Path
) -> None:
    ok(s3, "init")
    s3_endpoint.requests.fail_next("PUT", times=2, status=503, path_part="/data/")
    s3_endpoint.requests.fail_next("GET", times=1, status=500, path_part="/config")
    ok(s3, "snapshot", "files", str(source))
    ok(s3, "restore", "latest", "--target", str(tmp_path / "out"))
    assert tree_state(restored(tmp_path / "out", source)) == tree_state(source)


def test_s3_permanent_error_fails_cleanly(
    s3: Cli, s3_endpoint: S3Endpoint, source: Path
) -> None:
    ok(s3, "init")
    s3_endpoint.requests.fail_next("PUT", times=1, status=403, path_part="/data/")
    done = s3("snapshot", "files", str(source))
    assert done.code == 1
    assert "permission denied" in one_line(done.err)
    assert "no errors were found" in ok(s3, "check")
    assert json.loads(ok(s3, "snapshots", "--json")) == []
    ok(s3, "snapshot", "files", str(source))  # and the next run works


def test_copy_local_to_s3(s3: Cli, source: Path, tmp_path: Path) -> None:
    env = clean_env(tmp_path)
    env.update(SNAPSTORE_REPOSITORY=str(tmp_path / "local"))
    local = Cli(tmp_path / "local", env)
    ok(local, "init")
    first = command_json(ok(local, "snapshot", "files", str(source), "--json"))["snapshot_id"]
    ok(s3, "init", env={"SNAPSTORE_PASSWORD": "another password"})
    remote = {k: v for k, v in s3.env.items() if k.startswith(("SNAPSTORE_S3_", "AWS_"))}
    to = {"SNAPSTORE_TO_REPOSITORY": s3.env["SNAPSTORE_REPOSITORY"],
          "SNAPSTORE_TO_PASSWORD": "another password", **remote}  # fmt: skip
    copied = command_json(ok(local, "copy", "--json", env=to))
    assert [c["source"] for c in copied["copied"]] == [first]
    again = command_json(ok(local, "copy", "--json", env=to))
    assert again["copied"] == [] and again["skipped"] == [first] and again["bytes_read"] == 0
    offsite = Cli(s3.repo, dict(s3.env, SNAPSTORE_PASSWORD="another password"))
    [snap] = json.loads(ok(offsite, "snapshots", "--json"))
    assert snap["metadata"]["copied_from"] == first
    ok(offsite, "restore", "latest", "--target", str(tmp_path / "out"))
    assert tree_state(restored(tmp_path / "out", source)) == tree_state(source)
    assert "no errors were found" in ok(offsite, "check", "--read-data")


def test_copy_needs_a_destination(s3: Cli) -> None:
    done = s3("copy")
    assert done.code == 2
    assert "--to" in one_line(done.err)


def test_sftp_end_to_end(sshd: SshServer, source: Path, tmp_path: Path) -> None:
    cli = sftp_cli(sshd, tmp_path)
    ok(cli, "init")
    assert (tmp_path / "sftp-repo" / "config").is_file()
    ok(cli, "snapshot", "files", str(source))
    ok(cli, "restore", "latest", "--target", str(tmp_path / "out"))
    assert tree_state(restored(tmp_path / "out", source)) == tree_state(source)
    assert "no errors were found" in ok(cli, "check", "--read-data")
    unknown = cli("snapshots", env={"SNAPSTORE_SFTP_KNOWN_HOSTS": str(tmp_path / "none")})
    assert unknown.code == 1
    assert "host key" in one_line(unknown.err)
