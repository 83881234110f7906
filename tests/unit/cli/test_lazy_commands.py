"""The command group imports a command's module only when the command is looked up; what
`snapstore --help` lists without importing them (app.COMMANDS) must match the commands."""

from __future__ import annotations

from pathlib import Path

import click
from click.testing import CliRunner

from snapstore.cli.app import COMMANDS, build_cli
from snapstore.cli.config_file import build_default_map, load_config

ROOT = Path(__file__).resolve().parents[3]


def test_every_command_module_is_listed() -> None:
    modules = {p.stem for p in (ROOT / "cli" / "commands").glob("*.py")} - {"__init__"}
    assert set(COMMANDS) == modules


def test_the_listing_matches_the_commands_once_imported() -> None:
    group = build_cli()
    runner = CliRunner()
    before = runner.invoke(group, ["--help"], terminal_width=100)
    assert before.exit_code == 0 and group.commands == {}  # nothing imported for --help
    ctx = click.Context(group)
    for name in COMMANDS:
        command = group.get_command(ctx, name)
        assert command is not None and command.name == name
        assert command.get_short_help_str(limit=10_000) == COMMANDS[name]
    after = runner.invoke(group, ["--help"], terminal_width=100)
    assert after.output == before.output
    for name in COMMANDS:
        assert f"  {name} " in before.output


def test_a_typo_still_gets_a_suggestion() -> None:
    result = CliRunner().invoke(build_cli(), ["snapshotz"])
    assert result.exit_code == 2
    assert "No such command 'snapshotz'" in result.output and "snapshots" in result.output


def test_the_config_file_defaults_reach_only_the_command_run(tmp_path: Path) -> None:
    path = tmp_path / "snapstore.toml"
    path.write_text('repository = "/srv/backup"\n[retention]\nkeep_daily = 7\n')
    group = build_cli()
    defaults = build_default_map(load_config(path), group, only="forget")
    assert defaults == {"forget": {"repo": "/srv/backup", "keep_daily": "7"}}
    assert set(group.commands) == {"forget"}
