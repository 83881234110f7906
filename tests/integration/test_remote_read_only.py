"""A repository behind a read-only S3 key (issue 14, item 7), through the installed command.

moto's server enforces IAM once its `INITIAL_NO_AUTH_ACTION_COUNT` is reached (the server runs
in this process, so the test lowers it to 0 for its own duration): the repository is written
with the ordinary test key, then read with the key of an IAM user whose policy allows only
s3:Get* and s3:List*, as a restore host's key would be. Its lock PUT is answered 403
AccessDenied by moto's policy check, not by a fake: the readers go on without a lock and say
so once; a writer fails with one line. (moto's SigV4 check is left out: see `iam_enforced`.)"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.support import required_server
from tests.support.cli import Cli
from tests.support.remote_cli import bucket_of, s3_cli
from tests.support.s3server import S3Endpoint, running_s3_server
from tests.support.trees import make_tree, tree_state

READ_ONLY_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": ["s3:Get*", "s3:List*"], "Resource": "*"}],
}
WARNING = "snapstore: warning: reading without a lock, the repository refuses writes: "


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[S3Endpoint]:
    with required_server(running_s3_server(), "S3 endpoint") as endpoint:
        yield endpoint


@pytest.fixture
def s3(s3_endpoint: S3Endpoint, tmp_path: Path) -> Iterator[Cli]:
    with s3_cli(s3_endpoint, tmp_path) as cli:
        yield cli


def ok(cli: Cli, *args: str, env: dict[str, str] | None = None) -> tuple[str, str]:
    done = cli(*args, env=env)
    assert done.code == 0, done.err
    return done.text, done.err


def read_only_key(endpoint: S3Endpoint, user: str) -> dict[str, str]:
    """AWS_* for a new IAM user allowed to get and list, and nothing else."""
    iam: Any = boto3.client("iam", endpoint_url=endpoint.url, aws_access_key_id=endpoint.key,
                            aws_secret_access_key=endpoint.secret, region_name=endpoint.region)
    iam.create_user(UserName=user)
    iam.put_user_policy(UserName=user, PolicyName="read-only",
                        PolicyDocument=json.dumps(READ_ONLY_POLICY))
    key = iam.create_access_key(UserName=user)["AccessKey"]
    return {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}


@pytest.fixture
def iam_enforced(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto checks every request's key and its IAM policy from now until the test ends.

    Not its SigV4 signature: moto computes it differently from aiobotocore for s3fs's listing
    requests (SignatureDoesNotMatch for a valid key); the key and the policy are what a
    read-only key is about."""
    from moto import settings
    from moto.core.authorization import ActionAuthenticatorMixin
    from moto.iam.access_control import IAMRequestBase

    monkeypatch.setattr(settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)
    monkeypatch.setattr(ActionAuthenticatorMixin, "request_count", 0)
    monkeypatch.setattr(IAMRequestBase, "check_signature", lambda self: None)


def test_a_read_only_key_reads_without_a_lock(
    s3: Cli, s3_endpoint: S3Endpoint, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    source = tmp_path / "src"
    make_tree(source)
    ok(s3, "init")
    ok(s3, "snapshot", "files", str(source))
    reader = read_only_key(s3_endpoint, f"reader-{bucket_of(s3)}")
    reader["SNAPSTORE_CACHE_DIR"] = str(tmp_path / "reader-cache")
    request.getfixturevalue("iam_enforced")

    assert s3("snapshots").code == 1  # the writer's key is not an IAM key: moto enforces IAM now
    out, err = ok(s3, "ls", "latest", env=reader)
    warnings = [line for line in err.splitlines() if line.startswith(WARNING)]
    assert len(warnings) == 1 and "AccessDenied" in warnings[0], err
    assert f"{source}/" in out
    target = tmp_path / "restored"
    ok(s3, "restore", "latest", "--target", str(target), env=reader)
    assert tree_state(target / str(source).lstrip("/")) == tree_state(source)
    out, err = ok(s3, "check", "--read-data", env=reader)
    assert "no errors were found" in out and err.count(WARNING) == 1
    out, err = ok(s3, "ls", "latest", "--no-lock", env=reader)
    assert err == ""

    written = s3("snapshot", "files", str(source), env=reader)
    assert written.code == 1
    lines = written.err.strip().splitlines()
    assert len(lines) == 1 and "permission denied" in lines[0] and "AccessDenied" in lines[0], written.err

    bucket = bucket_of(s3)
    listing: Any = boto3.client("s3", endpoint_url=s3_endpoint.url, region_name=s3_endpoint.region,
                                aws_access_key_id=reader["AWS_ACCESS_KEY_ID"],
                                aws_secret_access_key=reader["AWS_SECRET_ACCESS_KEY"])
    keys = [o["Key"] for o in listing.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert not [k for k in keys if "/locks/" in k]
    assert len([k for k in keys if "/snapshots/" in k]) == 1
