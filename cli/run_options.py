"""Options around a command rather than of it: hooks and the metrics file, given before the
command (`snapstore --hook-before CMD --metrics-file PATH snapshot mastodon`).

Each has a flag, an environment variable and a config file key, all made from RUN_SETTINGS:

    metrics_file = "/var/lib/prometheus/node-exporter/snapstore.prom"   # top level

    [hooks]                         # around every command run with this file
    before = ["curl -fsS -m 10 --retry 3 https://hc-ping.com/<uuid>/start"]
    after = ["curl -fsS -m 10 --retry 3 https://hc-ping.com/<uuid>"]
    failure = ["curl -fsS -m 10 --retry 3 https://hc-ping.com/<uuid>/fail"]
    timeout = "5m"

    [hooks.snapshot]                # around `snapshot ...` only, after [hooks]'s own
    before = ["..."]

A flag or its variable replaces the file's hooks of its kind (the file only supplies
defaults). A variable holds one command per line (a shell command has spaces).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from snapstore.cli.remote_options import Decorator, Setting, duration_option, parse_wait
from snapstore.errors import UsageError

HOOK_KINDS = ("before", "after", "failure")
DEFAULT_HOOK_TIMEOUT = 300.0


class _CommandLine(click.ParamType):
    """A shell command; in an environment variable, one per line."""

    name = "command"
    envvar_list_splitter = "\n"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        return value


_HOOK_HELP = {
    "before": "Run this shell command before the command; if it fails, the command does not "
              "run (exit 1). Repeatable",
    "after": "Run this shell command after the command succeeded; a failure is a warning. "
             "Repeatable",
    "failure": "Run this shell command after the command failed (any exit but 0); a failure "
               "is a warning. Repeatable",
}  # fmt: skip

RUN_SETTINGS = (
    Setting("metrics_file", "PATH",
            "Write Prometheus metrics (node_exporter's textfile format) to this file, "
            "keeping other sources' series", path=True),
    *(Setting(f"hook_{kind}", "CMD", text, section="hooks", key_name=kind, multiple=True,
              toml_types=(list, str))
      for kind, text in _HOOK_HELP.items()),
    Setting("hook_timeout", "DURATION",
            "Stop a hook running longer than this, e.g. 30s, 5m [default: 5m]",
            section="hooks", key_name="timeout", toml_types=(str, int, float),
            callback=duration_option),
)  # fmt: skip
"""The run options, one row each."""


def run_decorators() -> list[Decorator]:
    """The options for the top-level group."""
    return [setting.decorator("Options", type=_CommandLine() if setting.multiple else None)
            for setting in RUN_SETTINGS]  # fmt: skip


@dataclass(frozen=True)
class RunPlan:
    """What to do around the command being run."""

    command: str
    hooks: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    hook_timeout: float = DEFAULT_HOOK_TIMEOUT
    metrics_file: Path | None = None


def resolve_plan(
    ctx: click.Context,
    values: Mapping[str, Any],
    command: str,
    commands: Collection[str],
    configured: Mapping[str, Any] | None = None,
) -> RunPlan:
    """The flags and variables given, else the config file's values for `command`.
    `configured`: the config file's top-level values and its `hooks` (config_file.py's
    `run_settings`)."""
    configured = configured or {}
    hooks_config: Mapping[str, Mapping[str, Any]] = configured.get("hooks", {})
    for name in hooks_config:
        if name and name not in commands:
            raise UsageError(f"config file: [hooks.{name}] names no command "
                             f"(known: {', '.join(sorted(commands))})")
    general, specific = hooks_config.get("", {}), hooks_config.get(command, {})

    def given(name: str) -> bool:
        source = ctx.get_parameter_source(name)
        return source in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)

    hooks = {}
    for kind in HOOK_KINDS:
        if given(f"hook_{kind}"):
            listed = list(values[f"hook_{kind}"])
        else:
            listed = _as_list(general.get(kind)) + _as_list(specific.get(kind))
        hooks[kind] = tuple(line for line in listed if line.strip())
    timeout = values.get("hook_timeout")
    if not given("hook_timeout") or timeout is None:
        in_file = specific.get("timeout", general.get("timeout"))
        timeout = parse_wait(str(in_file)) if in_file is not None else DEFAULT_HOOK_TIMEOUT
    metrics = values.get("metrics_file")
    if not given("metrics_file") or not metrics:
        metrics = configured.get("metrics_file")
    return RunPlan(command, hooks, timeout, Path(metrics) if metrics else None)


def _as_list(value: list[str] | str | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)
