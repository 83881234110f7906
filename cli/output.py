"""Rendering: human sizes, JSON, warnings, and the output level (-q, -v, -vv) every command
shares. The live progress display is cli/progress.py's."""

from __future__ import annotations

import enum
import json
import stat as statmod
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    import snapstore


def human_size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def print_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, sort_keys=False, default=str))


def node_line(path: str, node: snapstore.Node) -> str:
    """One entry as `ls` shows it: mode (with `ls -l`'s type letter: - d l p s c b), owner,
    size (a device's "major, minor" instead, as `ls -l`), mtime, path (and a link's target)."""
    mode = statmod.filemode(node.st_mode)
    when = datetime.fromtimestamp(node.mtime_ns / 1e9).strftime("%Y-%m-%d %H:%M")
    owner = f"{node.user or node.uid}/{node.group or node.gid}"
    size = f"{node.rdev_major}, {node.rdev_minor}" if node.type.is_device else str(node.size)
    line = f"{mode} {owner:>16} {size:>12} {when} {path}"
    if node.type.value == "symlink":
        line += " -> " + node.target.decode("utf-8", "surrogateescape")
    return line


def node_json(path: str, node: snapstore.Node) -> dict[str, object]:
    """One entry as `ls --json` shows it."""
    return {
        "path": path,
        "type": node.type.value,
        "mode": node.mode,
        "uid": node.uid,
        "gid": node.gid,
        "user": node.user,
        "group": node.group,
        "size": node.size,
        "mtime": datetime.fromtimestamp(node.mtime_ns / 1e9).astimezone().isoformat(),
        **({"target": node.target.decode("utf-8", "surrogateescape")}
           if node.type.value == "symlink" else {}),
        **({"rdev_major": node.rdev_major, "rdev_minor": node.rdev_minor}
           if node.type.is_device else {}),
    }


def format_duration(seconds: float) -> str:
    """0:05, 12:34, 1:02:03."""
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


LineSink = Callable[[str, bool], None]
_line_sink: list[LineSink] = []


def set_line_sink(sink: LineSink | None) -> None:
    """While a live display runs, warnings go through it (printed above it, not into it)."""
    _line_sink[:] = [sink] if sink is not None else []


def print_warning(where: str, message: str) -> None:
    """One warning line on stderr, as it happens (also with -q); the shape of
    `Progress.warning`, so the library can be handed this for reports that come from below
    the progress display (retries of a failing store)."""
    line = f"snapstore: warning: {where}: {message}"
    if _line_sink:
        _line_sink[0](line, True)
    else:
        click.echo(line, err=True)


class Level(enum.Enum):
    """How much a command prints: -q nothing on success (warnings and errors still go to
    stderr), by default its one-line summary, -v also the new and changed files, -vv the
    unchanged ones too."""

    QUIET = -1
    NORMAL = 0
    VERBOSE = 1
    VERY_VERBOSE = 2


_QUIET, _VERBOSE = "snapstore.quiet", "snapstore.verbose"


def note_quiet(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    """-q/--quiet's callback, before or after the command's name (a row of the global
    options' table, cli/shared_options.py): noted for the whole invocation."""
    meta = ctx.find_root().meta
    meta[_QUIET] = meta.get(_QUIET, False) or value
    _one_of(meta)


def note_verbose(ctx: click.Context, param: click.Parameter, value: int) -> None:
    """-v/--verbose's callback: -v before and -v after the command's name make -vv."""
    meta = ctx.find_root().meta
    meta[_VERBOSE] = meta.get(_VERBOSE, 0) + value
    _one_of(meta)


def _one_of(meta: dict[str, Any]) -> None:
    if meta.get(_QUIET) and meta.get(_VERBOSE):
        raise click.UsageError("-q/--quiet and -v/--verbose cannot be used together")


def output_level() -> Level:
    """The level -q and -v set for this invocation (NORMAL outside one)."""
    ctx = click.get_current_context(silent=True)
    meta = ctx.find_root().meta if ctx is not None else {}
    quiet, verbose = meta.get(_QUIET, False), meta.get(_VERBOSE, 0)
    if quiet:
        return Level.QUIET
    return Level(min(verbose, Level.VERY_VERBOSE.value))


def print_info(text: str, err: bool = False) -> None:
    """A line that says how things went (a summary, a note), left out with -q; above the
    live display while one runs."""
    if output_level() is Level.QUIET:
        return
    if _line_sink:
        _line_sink[0](text, err)
    else:
        click.echo(text, err=err)
