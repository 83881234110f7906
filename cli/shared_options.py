"""Options a command takes before or after its name (restic's global flags): the repository
options (remote_options.REPOSITORY_SETTINGS), --config, --debug, --json, -q and -v.

    snapstore -r /srv/backup --config /etc/snapstore.toml snapshots
    snapstore snapshots -r /srv/backup --config /etc/snapstore.toml

The group takes them first, from its flags, their variables, then the config file (--config
before the command's name). It hands each value so found down as a default of the command
being run (click's default_map, with the file's settings for that command), so the same
option after the command's name wins over it. The commands' copies read no variable: the
group did. --config after the command's name is an eager option, so the file it names is
loaded before the command's other options are read, and they see its defaults.

A command's help lists its own options first, then these in groups of their own.
"""

from __future__ import annotations

import types
from collections.abc import Callable

import click
from click.core import ParameterSource

from snapstore.cli.config_file import (
    CONFIG_META,
    build_default_map,
    command_default_map,
    current_config,
    load_config,
)
from snapstore.cli.output import note_quiet, note_verbose
from snapstore.cli.remote_options import (
    REPOSITORY_SETTINGS,
    Decorator,
    Setting,
    SharedOption,
    repository_decorators,
)

GLOBAL = "Global options"
GLOBAL_SETTINGS = (
    Setting("config", "FILE", "TOML file of defaults: repository, password, S3/SFTP, copy, "
            "Mastodon, retention, schedule, hooks", type=click.Path(dir_okay=False),
            in_file=False, dest="config_path"),
    Setting("debug", "", "Show tracebacks", is_flag=True, in_file=False),
    Setting("json", "", "Print JSON (the commands that can)", is_flag=True, in_file=False,
            env_name="", dest="as_json"),
    Setting("quiet", "", "Print nothing on success (warnings and errors still go to stderr)",
            short="-q", is_flag=True, in_file=False, env_name="", expose=False,
            callback=note_quiet),
    Setting("verbose", "", "List new and changed files (-vv: unchanged ones too)", short="-v",
            count=True, in_file=False, env_name="", expose=False, callback=note_verbose),
)  # fmt: skip
"""The options of every command that are not about the repository, one row each."""

_OUTSIDE = "snapstore.outside"  # the group's values from its flags and their variables
_SHARED = {setting.param for setting in (*REPOSITORY_SETTINGS, *GLOBAL_SETTINGS)
           if setting.expose} - {"config_path"}  # fmt: skip
"""What the group passes down; -q and -v note themselves (cli/output.py)."""
OnConfig = Callable[[click.Context], None]


def _group_config(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """--config before the command's name: the file's repository settings become the
    defaults of the group's own options (read after this eager one)."""
    if value:
        config = load_config(value)
        ctx.meta[CONFIG_META] = config
        ctx.default_map = command_default_map(config, ctx.command, ())
    return value


def group_decorators() -> list[Decorator]:
    """The group's options: these rows with their variables."""
    config, *others = GLOBAL_SETTINGS
    return [config.decorator(GLOBAL, is_eager=True, callback=_group_config),
            *(setting.decorator(GLOBAL) for setting in others),
            *repository_decorators(envvar=True)]  # fmt: skip


def pass_down(ctx: click.Context) -> None:
    """In the group's callback: its values (flags, variables, file) become the defaults of
    the command being run, beside the file's settings for that command."""
    if ctx.invoked_subcommand is None or not isinstance(ctx.command, click.Group):
        return
    given, outside = {}, {}
    for name in _SHARED:
        source = ctx.get_parameter_source(name)
        if source not in (None, ParameterSource.DEFAULT):
            given[name] = ctx.params[name]
        if source in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT):
            outside[name] = ctx.params[name]
    ctx.meta[_OUTSIDE] = outside
    ctx.default_map = build_default_map(current_config(), ctx.command, ctx.invoked_subcommand, given)


def share(command: click.Command, on_config: OnConfig) -> None:
    """Gives `command` (each command, for a group) --config, --debug, -q and -v, and a help
    that lists shared options apart; `on_config` is told of a --config after its name."""
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            share(sub, on_config)
    elif not any(param.name == "config_path" for param in command.params):
        config, debug, _, *levels = GLOBAL_SETTINGS  # --json: the commands that can have theirs

        def leaf_config(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
            if value:  # from the command line: this copy has no variable and no default
                loaded = load_config(value)
                root = ctx.find_root()
                root.meta[CONFIG_META] = loaded
                path = tuple(ctx.command_path.split()[1:])
                ctx.default_map = command_default_map(loaded, ctx.command, path,
                                                      root.meta.get(_OUTSIDE, {}))  # fmt: skip
                on_config(root)
            return value

        command.params += [
            config.option(GLOBAL, envvar=False, is_eager=True, expose_value=False,
                          callback=leaf_config),
            debug.option(GLOBAL, envvar=False, expose_value=False),
            *(level.option(GLOBAL, envvar=False) for level in levels),
        ]  # fmt: skip
    group_help(command)


def group_help(command: click.Command) -> None:
    """The command's help: its own options, then each group of shared ones."""
    command.format_options = types.MethodType(_format_options, command)  # type: ignore[method-assign]


def _format_options(self: click.Command, ctx: click.Context, formatter: click.HelpFormatter) -> None:
    sections: dict[str, list[tuple[str, str]]] = {"Options": []}
    for param in self.get_params(ctx):
        record = param.get_help_record(ctx)
        if record is not None:
            group = param.group if isinstance(param, SharedOption) else "Options"
            sections.setdefault(group, []).append(record)
    for title, rows in sections.items():
        if rows:
            with formatter.section(title):
                formatter.write_dl(rows)
    if isinstance(self, click.Group):
        self.format_commands(ctx, formatter)
