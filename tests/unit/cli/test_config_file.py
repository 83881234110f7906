"""The TOML config file: validation, and the click defaults it turns into."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from snapstore.cli.app import build_cli
from snapstore.cli.config_file import build_default_map, load_config
from snapstore.errors import UsageError

EXAMPLE = """
repository = "/srv/backup/snapstore"
password_file = "secret"

[mastodon]
env_file = "/home/mastodon/live/.env.production"
media = false
letsencrypt = false

[postgres]
command_prefix = ["docker", "exec", "-i", "-e", "PGPASSWORD", "mastodon db"]
host = "127.0.0.1"
port = 5433

[redis]
command_prefix = "docker exec -i redis"

[retention]
keep-daily = 7
keep_weekly = 4
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "snapstore.toml"
    path.write_text(text)
    return path


def test_example_loads_and_resolves_relative_paths(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, EXAMPLE))
    assert config.repository == "/srv/backup/snapstore"
    assert config.settings["password_file"] == str(tmp_path / "secret")
    assert config.retention == {"keep_daily": 7, "keep_weekly": 4}
    assert config.postgres["port"] == 5433


def test_default_map_reaches_every_command(tmp_path: Path) -> None:
    group = build_cli()
    defaults = build_default_map(load_config(write(tmp_path, EXAMPLE)), group)
    mastodon = defaults["snapshot"]["mastodon"]
    assert mastodon["repo"] == "/srv/backup/snapstore"
    assert mastodon["no_media"] is True and mastodon["no_letsencrypt"] is True
    assert "no_redis" not in mastodon  # not in the file: the option's own default stays
    assert mastodon["pg_command_prefix"] == "docker exec -i -e PGPASSWORD 'mastodon db'"
    assert mastodon["redis_command_prefix"] == "docker exec -i redis"
    assert defaults["restore"]["snapshot"]["pg_port"] == 5433  # `restore SNAPSHOT`
    assert defaults["restore"]["mastodon"]["pg_port"] == 5433
    assert defaults["drill"]["pg_host"] == "127.0.0.1"
    assert defaults["snapshot"]["postgres"]["pg_host"] == "127.0.0.1"
    assert defaults["snapshots"] == {"repo": "/srv/backup/snapstore",
                                     "password_file": str(tmp_path / "secret")}  # fmt: skip
    assert defaults["forget"]["keep_daily"] == "7"


def test_command_line_and_environment_beat_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, object] = {}

    @click.group()
    @click.pass_context
    def group(ctx: click.Context) -> None:
        ctx.default_map = build_default_map(load_config(write(tmp_path, EXAMPLE)), group)

    @group.command("drill")
    @click.option("--repo", envvar="TEST_SNAPSTORE_REPO")
    @click.option("--pg-port", type=int)
    def drill(repo: str, pg_port: int) -> None:
        seen.update(repo=repo, pg_port=pg_port)

    group.main(["drill"], standalone_mode=False)
    assert seen == {"repo": "/srv/backup/snapstore", "pg_port": 5433}
    monkeypatch.setenv("TEST_SNAPSTORE_REPO", "/from/env")
    group.main(["drill", "--pg-port", "1"], standalone_mode=False)
    assert seen == {"repo": "/from/env", "pg_port": 1}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("repositry = 'x'\n", "unknown key 'repositry'"),
        ("[mastodon]\nmedia = 'no'\n", "media has the wrong type"),
        ("[postgres]\nport = true\n", "port has the wrong type"),
        ("[postgres]\ncommand_prefix = [1]\n", "list of strings"),
        ("[nginx]\nx = 1\n", "unknown section"),
        ("[retention]\nkeep_daily = [1]\n", "number or a string"),
        ("repository = \n", "config file"),
    ],
)
def test_mistakes_are_usage_errors(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        load_config(write(tmp_path, text))


def test_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot read config file"):
        load_config(tmp_path / "nope.toml")
