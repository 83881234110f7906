"""Rendering: human sizes, JSON, and a rich progress display that implements snapstore.Progress."""

from __future__ import annotations

import json
import stat as statmod
import sys
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from rich.live import Live
    from rich.text import Text

    import snapstore


def human_size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def print_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, sort_keys=False, default=str))


_TYPE_CHAR = {"dir": "d", "symlink": "l", "file": "-"}


def node_line(path: str, node: snapstore.Node) -> str:
    """One entry as `ls` shows it: mode, owner, size, mtime, path (and a symlink's target)."""
    mode = _TYPE_CHAR[node.type.value] + statmod.filemode(node.mode)[1:]
    when = datetime.fromtimestamp(node.mtime_ns / 1e9).strftime("%Y-%m-%d %H:%M")
    owner = f"{node.user or node.uid}/{node.group or node.gid}"
    line = f"{mode} {owner:>16} {node.size:>12} {when} {path}"
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
    }


def print_warning(where: str, message: str) -> None:
    """One warning line on stderr; the shape of `Progress.warning`, so the library can be
    handed this for reports that come before any progress display (retries)."""
    click.echo(f"snapstore: warning: {where}: {message}", err=True)


class TerminalProgress:
    """Live progress on stderr when it is a terminal; warnings always go to stderr.

    rich is imported when a progress display is made, not with this module: every command
    imports this module, and `--help`, `check` or `--json` output need no rich.
    """

    def __init__(self, enabled: bool | None = None) -> None:
        from rich.console import Console

        self._console = Console(stderr=True)
        self._enabled = sys.stderr.isatty() if enabled is None else enabled
        self._read = 0
        self._added = 0
        self._current = ""
        self._live: Live | None = None

    def __enter__(self) -> TerminalProgress:
        if self._enabled:
            from rich.live import Live

            self._live = Live(self._render(), console=self._console, refresh_per_second=4, transient=True)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(None, None, None)

    def _render(self) -> Text:
        from rich.text import Text

        return Text(
            f"read {human_size(self._read)}, added {human_size(self._added)}  {self._current[-60:]}"
        )

    def _refresh(self) -> None:
        if self._live is not None:
            self._live.update(self._render())

    def item(self, path: str) -> None:
        self._current = path
        self._refresh()

    def advance(self, bytes_read: int, bytes_added: int) -> None:
        self._read += bytes_read
        self._added += bytes_added
        self._refresh()

    def warning(self, path: str, message: str) -> None:
        print_warning(path, message)
