"""The `snapstore` command: builds the command group and turns errors into exit codes.

Exit codes (also in the README):
    0  success
    1  error (the message says which)
    2  usage error
    3  incomplete: a snapshot taken, but some source files could not be read; or a listing
       (snapshots, stats, forget) that left out snapshots which cannot be read
    10 repository does not exist
    11 repository is locked
    12 wrong password
    130 interrupted (Ctrl-C)
    143 terminated (SIGTERM); like Ctrl-C, locks are released and uploaded data is kept
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
import traceback
from collections.abc import Callable
from types import FrameType
from typing import Any

import click

from snapstore.cli.config_file import current_config, run_settings
from snapstore.cli.run import CommandRun
from snapstore.cli.run_options import resolve_plan, run_decorators
from snapstore.cli.shared_options import group_decorators, group_help, pass_down, share
from snapstore.errors import (
    RepositoryLocked,
    RepositoryNotFound,
    SnapstoreError,
    UsageError,
    WrongPassword,
)

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INCOMPLETE = 3
EXIT_NO_REPOSITORY = 10
EXIT_LOCKED = 11
EXIT_WRONG_PASSWORD = 12
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so `with` blocks unwind and locks are released."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise Terminated()

#: The one table from exception class to exit code; the first matching class wins.
EXIT_CODES: list[tuple[type[BaseException], int]] = [
    (RepositoryNotFound, EXIT_NO_REPOSITORY),
    (RepositoryLocked, EXIT_LOCKED),
    (WrongPassword, EXIT_WRONG_PASSWORD),
    (UsageError, EXIT_USAGE),
    (SnapstoreError, EXIT_ERROR),
]


def exit_code_for(exc: BaseException) -> int:
    for cls, code in EXIT_CODES:
        if isinstance(exc, cls):
            return code
    return EXIT_ERROR


COMMANDS = {
    "check": "Check the structure (and with --read-data, every byte) of the repository.",
    "copy": "Copy snapshots (default: all) to the repository --to, which has its own keys.",
    "drill": "Prove a backup restores: the database of SNAPSHOT (default: the newest snapshot "
             "holding one) goes into a scratch database on the server it came from, is checked "
             "against the row counts recorded at backup time and against the previous "
             "snapshot's, and is dropped.",
    "diff": "Show what changed from SNAPSHOT1 to SNAPSHOT2 (id prefixes or 'latest'), below PATH "
            "(default: everything); identical directories are skipped without being read.",
    "dump": "Write one file from a snapshot to standard output (e.g.",
    "find": "Find paths matching a pattern in snapshots (a glob on the whole path or the name, "
            "as restore --exclude: '*.log', '/home/*/.bashrc'), newest snapshot first.",
    "health": "Exit 1 with one line when a backup is overdue, a lock is stale or the last "
              "check found damage (or none was recorded); 0 and one line otherwise.",
    "forget": "Remove snapshots by a retention policy, saying why each kept one stays, or remove "
              "the snapshots named (ids, id prefixes or 'latest'; no --keep-* rule then).",
    "init": "Create a new encrypted repository (refuses to overwrite one).",
    "key": "Manage the key files (one per password) and the paper key of the repository.",
    "ls": "List files in a snapshot (SNAPSHOT is an id prefix or 'latest').",
    "migrate": "Add format features to an older repository (`snapstore migrate` lists them).",
    "mount": "Browse the snapshots as a read-only filesystem at MOUNTPOINT until unmounted.",
    "prune": "Delete data no snapshot uses (run after forget).",
    "repair": "Repair a damaged repository: `index` first, then `snapshots` (run `check` to see "
              "what is damaged).",
    "restore": "Restore a snapshot; `restore mastodon` brings back a whole instance.",
    "rewrite": "Save snapshots (ids, id prefixes or 'latest') again without the paths matching "
               "--exclude; run `prune` afterwards to free their data.",
    "schedule": "Run the configured snapshot, forget --prune and a rotating check on timers.",
    "snapshot": "Take a snapshot of files, a stream, a database or a Mastodon instance.",
    "snapshots": "List snapshots, oldest first.",
    "stats": "Show what the repository stores and how well it deduplicates.",
    "tag": "Add, remove or set tags of snapshots (ids, id prefixes or 'latest'); a changed "
           "snapshot gets a new id.",
    "unlock": "Remove stale locks: not refreshed for 30 minutes, or taken on this host by a "
              "process that no longer exists.",
}  # fmt: skip
"""Each command (the module cli/commands/<name>.py builds it) and the first sentence of its
help, which `snapstore --help` lists without importing the module (a test keeps them equal)."""


class LazyGroup(click.Group):
    """The top-level group: a command's module is imported when the command is looked up,
    which happens only for the command being run, so start-up pays for one command, not all.
    `--help` lists them from COMMANDS."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMANDS, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in COMMANDS and cmd_name not in self.commands:
            module = importlib.import_module(f"snapstore.cli.commands.{cmd_name}")
            command = module.build()
            share(command, _plan)  # --config, --debug, -q, -v and the help's option groups
            self.add_command(command, cmd_name)
        return self.commands.get(cmd_name)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        if args and args[0] not in COMMANDS:  # a typo: click suggests from the loaded commands
            for name in COMMANDS:
                self.get_command(ctx, name)
        return super().resolve_command(ctx, args)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = []
        for name in names:
            command = self.commands.get(name) or click.Command(name, help=COMMANDS[name])
            if not command.hidden:
                rows.append((name, command.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _group_options(func: Callable[..., Any]) -> Callable[..., Any]:
    for decorate in reversed([*group_decorators(), *run_decorators()]):
        func = decorate(func)
    return func


def _plan(root: click.Context) -> None:
    """What to run around the command (hooks, metrics file): the run options given before
    its name and the config file, also when --config comes after the name."""
    if isinstance(root.obj, CommandRun) and root.invoked_subcommand:
        config = current_config()
        configured = run_settings(config) if config is not None else None
        root.obj.plan = resolve_plan(root, root.params, root.invoked_subcommand, COMMANDS, configured)


def build_cli() -> click.Group:
    @click.group(
        cls=LazyGroup,
        context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    )
    @click.version_option(package_name="snapstore", prog_name="snapstore")
    @_group_options
    @click.pass_context
    def group(ctx: click.Context, **values: Any) -> None:
        """Deduplicating, encrypted snapshots: files, streams, PostgreSQL, Redis, Mastodon.

        The global and repository options go before or after the command's name."""
        pass_down(ctx)  # the repository and global options, as the command's defaults
        _plan(ctx)

    group_help(group)
    return group


def _message(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        where = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror}{where}"
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def main(argv: list[str] | None = None) -> int:
    debug = "--debug" in (argv or sys.argv[1:]) or os.environ.get("SNAPSTORE_DEBUG") == "1"
    cli = build_cli()
    run = CommandRun()
    error: str | None = None  # the one line saying what failed, for the hooks
    try:
        previous_handler = signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:  # not the main thread: leave signals alone
        previous_handler = None
    try:
        result = cli.main(args=argv, prog_name="snapstore", standalone_mode=False, obj=run)
        code = result if isinstance(result, int) else EXIT_OK
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.UsageError as exc:
        exc.show()
        code, error = EXIT_USAGE, exc.format_message()
    except click.ClickException as exc:
        exc.show()
        code, error = exc.exit_code, exc.format_message()
    except (KeyboardInterrupt, click.exceptions.Abort) as exc:
        if isinstance(exc, Terminated) or isinstance(exc.__cause__, Terminated):  # click wraps it
            click.echo("snapstore: terminated", err=True)
            code, error = EXIT_TERMINATED, "terminated"
        else:
            click.echo("snapstore: interrupted", err=True)
            code, error = EXIT_INTERRUPTED, "interrupted"
    except BrokenPipeError:
        sys.stderr.close()
        code = EXIT_ERROR
    except (SnapstoreError, OSError) as exc:
        if debug:
            traceback.print_exc()
        error = _message(exc)
        click.echo(f"snapstore: error: {error}", err=True)
        code = exit_code_for(exc)
    except Exception as exc:  # a bug: still one line unless --debug
        if debug:
            traceback.print_exc()
        error = f"internal error: {type(exc).__name__}: {_message(exc)}"
        click.echo(f"snapstore: {error} (run with --debug for details)", err=True)
        code = EXIT_ERROR
    finally:
        if previous_handler is not None:
            signal.signal(signal.SIGTERM, previous_handler)
    sys.stdout.flush()
    return run.finish(code, error)  # the metrics file, the after or failure hooks


def run() -> None:
    sys.exit(main())
