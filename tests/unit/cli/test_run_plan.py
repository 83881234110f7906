"""Hooks and the metrics file from flags, variables and the config file ([hooks],
[hooks.<command>], metrics_file): one table (cli/run_options.py)."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from snapstore.cli.app import COMMANDS
from snapstore.cli.config_file import load_config, run_settings
from snapstore.cli.run_options import RunPlan, resolve_plan, run_decorators
from snapstore.errors import UsageError

CONFIG = """
metrics_file = "metrics/snapstore.prom"
[hooks]
before = "echo start"
failure = ["echo failed"]
timeout = "30s"
[hooks.snapshot]
before = ["echo snapshot starts"]
timeout = 90
"""


def plan_for(args: list[str], config: str | None, tmp_path: Path, command: str = "snapshot",
             env: dict[str, str] | None = None) -> RunPlan:
    configured = None
    if config is not None:
        (tmp_path / "c.toml").write_text(config)
        configured = run_settings(load_config(tmp_path / "c.toml"))
    plans = []

    def callback(**values: object) -> None:
        ctx = click.get_current_context()
        plans.append(resolve_plan(ctx, values, command, COMMANDS, configured))

    command_ = click.Command("x", callback=callback)
    for decorate in run_decorators():
        command_ = decorate(command_)
    result = CliRunner().invoke(command_, args, env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return plans[0]


def test_config_file_general_then_per_command(tmp_path: Path) -> None:
    plan = plan_for([], CONFIG, tmp_path)
    assert plan.hooks == {"before": ("echo start", "echo snapshot starts"), "after": (),
                          "failure": ("echo failed",)}
    assert plan.hook_timeout == 90 and plan.metrics_file == tmp_path / "metrics/snapstore.prom"
    other = plan_for([], CONFIG, tmp_path, command="prune")
    assert other.hooks["before"] == ("echo start",) and other.hook_timeout == 30


def test_flags_and_variables_replace_the_file(tmp_path: Path) -> None:
    plan = plan_for(["--hook-before", "a b", "--hook-before", "c", "--metrics-file", "m.prom",
                     "--hook-timeout", "2m"], CONFIG, tmp_path)
    assert plan.hooks["before"] == ("a b", "c") and plan.hooks["failure"] == ("echo failed",)
    assert plan.metrics_file == Path("m.prom") and plan.hook_timeout == 120
    from_env = plan_for([], None, tmp_path, env={"SNAPSTORE_HOOK_AFTER": "curl -fsS x\ntrue\n"})
    assert from_env.hooks["after"] == ("curl -fsS x", "true") and from_env.hook_timeout == 300


def test_a_hooks_table_must_name_a_command(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"\[hooks.snaphsot\] names no command"):
        plan_for([], "[hooks.snaphsot]\nbefore = ['x']\n", tmp_path)
    (tmp_path / "bad.toml").write_text("[hooks]\nbefore = 3\n")
    with pytest.raises(UsageError, match="before has the wrong type"):
        load_config(tmp_path / "bad.toml")
