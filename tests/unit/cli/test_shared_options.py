"""Every repository option from each of its five places: its flag before the command's name,
after it, its environment variable, and its config file key with --config before or after the
name; and which one wins. A probe command built with `repository_options` records what the
command receives (the real commands get theirs the same way)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

import snapstore
from snapstore.backend.location import S3_OPTIONS, SFTP_OPTIONS
from snapstore.cli.app import COMMANDS, build_cli
from snapstore.cli.config_file import REPOSITORY_KEYS
from snapstore.cli.options import RepoOptions, repository_options
from snapstore.cli.remote_options import REPOSITORY_SETTINGS, Setting
from snapstore.cli.shared_options import share

GIVEN: dict[str, Any] = {
    "repo": "/srv/backup", "password_file": "/etc/snapstore-password",
    "password_command": "pass show snapstore", "s3_endpoint": "https://s3.example.org",
    "s3_region": "auto", "s3_profile": "backup", "s3_addressing_style": "path",
    "s3_storage_class": "STANDARD_IA", "sftp_key_file": "/root/.ssh/id_backup",
    "sftp_known_hosts": "/root/.ssh/known_hosts_backup", "connections": 7,
    "cache_dir": "/var/cache/snapstore", "retry_for": "90s", "no_cache": True,
}  # fmt: skip
"""A value for each row; a row added to the table without one here fails the tests."""


def received(options: RepoOptions, setting: Setting) -> Any:
    """What the command got for one row, in the form it was given."""
    remote = options.remote
    if setting.section == "s3":
        return remote.s3.get(setting.backend or "")
    if setting.section == "sftp":
        return remote.sftp.get(setting.backend or "")
    found = {
        "repo": options.repo, "password_file": options.password_file,
        "password_command": options.password_command, "connections": remote.connections,
        "cache_dir": remote.cache_dir, "no_cache": remote.cache_dir is None,
        "retry_for": None if remote.retry_for is None else f"{remote.retry_for:g}s",
    }  # fmt: skip
    return found[setting.param]


def probe_cli() -> tuple[click.Group, dict[str, RepoOptions]]:
    group = build_cli()
    seen: dict[str, RepoOptions] = {}

    @click.command("probe")
    @repository_options
    def probe(repo_options: RepoOptions) -> int:
        seen["options"] = repo_options
        return 0

    share(probe, lambda ctx: None)
    group.add_command(probe)
    return group, seen


def run(args: list[str], env: dict[str, str] | None = None) -> RepoOptions:
    group, seen = probe_cli()
    result = CliRunner().invoke(group, args, env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return seen["options"]


def flag(setting: Setting, value: Any) -> list[str]:
    return [setting.flag] if setting.is_flag else [setting.flag, str(value)]


def config_file(tmp_path: Path, values: dict[str, Any]) -> Path:
    """The settings as the config file spells them: top-level keys and [s3]/[sftp] tables."""
    sections: dict[str, dict[str, Any]] = {}
    for setting in REPOSITORY_SETTINGS:
        if setting.param in values:
            sections.setdefault(setting.section, {})[setting.key] = values[setting.param]
    lines = [f"{key} = {json.dumps(value)}" for key, value in sections.pop("", {}).items()]
    for section, table in sections.items():
        lines += [f"[{section}]", *(f"{key} = {json.dumps(value)}" for key, value in table.items())]
    path = tmp_path / "snapstore.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("setting", REPOSITORY_SETTINGS, ids=lambda s: s.name)
def test_each_option_before_after_from_its_variable_and_from_the_file(
    setting: Setting, tmp_path: Path
) -> None:
    value = GIVEN[setting.param]
    env_value = "1" if setting.is_flag else str(value)
    config = config_file(tmp_path, {setting.param: value})
    ways = {
        "before": run([*flag(setting, value), "probe"]),
        "after": run(["probe", *flag(setting, value)]),
        "variable": run(["probe"], env={setting.envvar or "": env_value}),
        "file before": run(["--config", str(config), "probe"]),
        "file after": run(["probe", "--config", str(config)]),
        "file by variable": run(["probe"], env={"SNAPSTORE_CONFIG": str(config)}),
    }
    assert {way: received(options, setting) for way, options in ways.items()} == dict.fromkeys(ways, value)
    assert received(run(["probe"]), setting) != value  # and not by default


@pytest.mark.parametrize("name", ["repo", "s3_region", "connections"])
def test_after_the_name_beats_before_it_beats_the_variable_beats_the_file(
    name: str, tmp_path: Path
) -> None:
    [setting] = [s for s in REPOSITORY_SETTINGS if s.param == name]
    one, two, three, four = (("/a", "/b", "/c", "/d") if name == "repo" else
                             ("r1", "r2", "r3", "r4") if name == "s3_region" else (1, 2, 3, 4))  # fmt: skip
    config = config_file(tmp_path, {name: four})
    env = {setting.envvar or "": str(three)}
    for position in (["--config", str(config), "probe"], ["probe", "--config", str(config)]):
        args = [*flag(setting, one), *position, *flag(setting, two)]
        assert received(run(args, env), setting) == two
        assert received(run([*flag(setting, one), *position], env), setting) == one
        assert received(run(position, env), setting) == three
        assert received(run(position), setting) == four


def test_the_variable_given_and_the_file_after_the_name_the_variable_wins(tmp_path: Path) -> None:
    config = config_file(tmp_path, {"repo": "/from/file", "password_command": "from file"})
    options = run(["probe", "--config", str(config)], env={"SNAPSTORE_REPOSITORY": "/from/env"})
    assert (options.repo, options.password_command) == ("/from/env", "from file")


def test_the_file_before_the_name_and_another_after_it_the_one_after_wins(tmp_path: Path) -> None:
    first = config_file(tmp_path, {"repo": "/first", "s3_region": "first"})
    (tmp_path / "second").mkdir()
    second = config_file(tmp_path / "second", {"repo": "/second"})
    options = run(["--config", str(first), "probe", "--config", str(second)])
    assert options.repo == "/second" and options.remote.s3 == {}


def test_the_storage_rows_are_what_open_backend_accepts() -> None:
    rows = [s for s in REPOSITORY_SETTINGS if s.backend]
    assert {s.backend for s in rows if s.section == "s3"} <= S3_OPTIONS
    assert {s.backend for s in rows if s.section == "sftp"} == SFTP_OPTIONS
    assert len(rows) == len(snapstore.STORAGE_OPTIONS)
    assert REPOSITORY_KEYS["s3"] == {s.key: s.param for s in rows if s.section == "s3"}


def test_the_readme_table_names_each_options_flag_variable_and_key() -> None:
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    start = readme.index("| option | environment | config file | meaning |")
    rows = {}
    for line in readme[start:].splitlines()[2:]:
        if not line.startswith("|"):
            break
        cells = re.split(r"(?<!\\)\|", line)  # `auto\|virtual` is one cell
        option, env, key = (cell.strip().strip("`") for cell in cells[1:4])
        rows[option.split()[0]] = (env.split("=")[0], key)
    for setting in REPOSITORY_SETTINGS:
        if setting.param in ("repo", "password_file", "password_command"):
            continue  # the README names these in the quick start and the password paragraph
        section = f"[{setting.section}] " if setting.section else ""
        assert rows[setting.flag] == (setting.envvar, f"{section}{setting.key}"), setting.flag


def test_help_lists_the_commands_own_options_first_then_each_group() -> None:
    group = build_cli()
    ctx = click.Context(group)
    for name in COMMANDS:
        command = group.get_command(ctx, name)
        assert command is not None
        leaves = list(command.commands.values()) if isinstance(command, click.Group) else [command]
        for leaf in leaves:
            path = [name, *([leaf.name] if leaf is not command else []), "--help"]
            text = CliRunner().invoke(group, path, terminal_width=200).output
            titles = [line for line in text.splitlines() if line.endswith(":") and not line.startswith(" ")]
            own = text.split("Options:\n", 1)[1].split("\n\n", 1)[0]
            assert "--repo" not in own and "--config" not in own, path
            if any(p.name == "repo" for p in leaf.params):
                assert titles[-2:] == ["Repository options:", "Global options:"], (path, titles)
                assert "--s3-endpoint" in text.split("Repository options:")[1].split("Global options:")[0]
            else:
                assert titles[-1] == "Global options:", (path, titles)
            assert "--config FILE" in text.split("Global options:")[1]
