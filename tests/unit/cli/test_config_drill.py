"""The config file's say in `drill`: the instance's env file, [postgres] run_as, [drill]."""

from __future__ import annotations

from pathlib import Path

import pytest

from snapstore.cli.app import build_cli
from snapstore.cli.config_file import build_default_map, load_config
from snapstore.errors import UsageError

CONFIG = """
repository = "/srv/backup/snapstore"

[mastodon]
env_file = "live/.env.production"

[postgres]
username = "mastodon"
run_as = "mastodon"

[drill]
max_shrink = 25
"""


def test_drill_takes_the_env_file_the_run_as_user_and_the_threshold(tmp_path: Path) -> None:
    path = tmp_path / "snapstore.toml"
    path.write_text(CONFIG)
    defaults = build_default_map(load_config(path), build_cli())
    drill = defaults["drill"]
    assert drill["env_file"] == str(tmp_path / "live/.env.production")
    assert drill["pg_run_as"] == "mastodon" and drill["pg_user"] == "mastodon"
    assert drill["max_shrink"] == 25


def test_a_wrong_drill_setting_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "snapstore.toml"
    path.write_text('[drill]\nmax_shrink = "half"\n')
    with pytest.raises(UsageError, match=r"\[drill\] max_shrink has the wrong type"):
        load_config(path)
    path.write_text("[drill]\nkeep = true\n")
    with pytest.raises(UsageError, match="unknown key 'keep' at \\[drill\\]"):
        load_config(path)
