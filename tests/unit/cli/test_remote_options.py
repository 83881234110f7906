"""Remote options: flags, environment and config file reach open_repository, per scheme."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import snapstore
from snapstore.cli.app import build_cli
from snapstore.cli.config_file import build_default_map, load_config
from snapstore.cli.remote_options import RemoteOptions

CONFIG = """
repository = "s3://bucket/repo"
connections = 3
cache_dir = "cache"

[s3]
endpoint = "https://acct.r2.cloudflarestorage.com"
region = "auto"
storage_class = "STANDARD_IA"

[sftp]
known_hosts = "hosts"

[copy]
repository = "sftp://me@nas/backup"
password_file = "offsite-password"
"""


def test_config_sections_become_defaults_of_every_command(tmp_path: Path) -> None:
    path = tmp_path / "snapstore.toml"
    path.write_text(CONFIG)
    defaults = build_default_map(load_config(path), build_cli())
    for command in (defaults["snapshots"], defaults["snapshot"]["files"], defaults["copy"]):
        assert command["s3_endpoint"] == "https://acct.r2.cloudflarestorage.com"
        assert command["s3_region"] == "auto" and command["s3_storage_class"] == "STANDARD_IA"
        assert command["sftp_known_hosts"] == str(tmp_path / "hosts")
        assert command["connections"] == 3 and command["cache_dir"] == str(tmp_path / "cache")
    assert defaults["copy"]["to_repo"] == "sftp://me@nas/backup"
    assert defaults["copy"]["to_password_file"] == str(tmp_path / "offsite-password")


def test_options_reach_only_their_scheme() -> None:
    remote = RemoteOptions(s3={"region": "auto"}, sftp={"key_filename": "k", "known_hosts": "h"})
    assert remote.backend_options("s3://b/p") == {"region": "auto"}
    assert remote.backend_options("sftp://u@h/p") == {"key_filename": "k", "known_hosts": "h"}
    assert remote.backend_options("/srv/backup") == {}
    assert remote.backend_options("file:///srv/backup") == {}
    default_hosts = RemoteOptions().backend_options("sftp://u@h/p")["known_hosts"]
    assert default_hosts.endswith("/.ssh/known_hosts")


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """What `snapshots` passes to open_repository (which is not really called)."""
    calls: list[dict[str, Any]] = []

    def fake_open(location: str, password: bytes, **kwargs: Any) -> Any:
        calls.append({"location": location, **kwargs})
        raise snapstore.SnapstoreError("stop here")

    monkeypatch.setattr(snapstore, "open_repository", fake_open)
    return calls


def test_flags_and_environment_reach_open_repository(
    opened: list[dict[str, Any]], tmp_path: Path
) -> None:
    env = {"SNAPSTORE_PASSWORD": "pw", "SNAPSTORE_S3_REGION": "eu-west-1", "HOME": str(tmp_path),
           "SNAPSTORE_CACHE_DIR": str(tmp_path / "c")}  # fmt: skip
    CliRunner().invoke(
        build_cli(),
        ["snapshots", "-r", "s3://b/p", "--s3-endpoint", "http://minio:9000",
         "--s3-addressing-style", "path", "--connections", "7"],
        env=env,
    )  # fmt: skip
    [call] = opened
    assert call["backend_options"] == {
        "endpoint_url": "http://minio:9000", "region": "eu-west-1", "addressing_style": "path"
    }  # fmt: skip
    assert call["connections"] == 7 and call["cache_dir"] == str(tmp_path / "c")


def test_no_cache_and_the_default_cache_folder(
    opened: list[dict[str, Any]], tmp_path: Path
) -> None:
    env = {"SNAPSTORE_PASSWORD": "pw", "HOME": str(tmp_path), "XDG_CACHE_HOME": ""}
    runner = CliRunner()
    runner.invoke(build_cli(), ["snapshots", "-r", "s3://b/p"], env=env)
    runner.invoke(build_cli(), ["snapshots", "-r", "s3://b/p", "--no-cache"], env=env)
    runner.invoke(build_cli(), ["check", "-r", "s3://b/p"], env=env)
    assert [c["cache_dir"] for c in opened] == [str(tmp_path / ".cache" / "snapstore"), None, None]
