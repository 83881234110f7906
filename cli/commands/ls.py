"""`snapstore ls SNAPSHOT [PATH]`: list what a snapshot holds."""

from __future__ import annotations

import json
import stat as statmod
from datetime import datetime

import click

import snapstore
from snapstore.cli.options import RepoOptions, repository_options

_TYPE_CHAR = {"dir": "d", "symlink": "l", "file": "-"}


def build() -> click.Command:
    @click.command("ls")
    @click.argument("snapshot_name", metavar="SNAPSHOT")
    @click.argument("path", default="/")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON, one object per entry.")
    @repository_options
    def ls(repo_options: RepoOptions, snapshot_name: str, path: str, as_json: bool) -> int:
        """List files in a snapshot (SNAPSHOT is an id prefix or 'latest')."""
        with repo_options.open(lock="shared") as repo:
            snap = snapstore.find_snapshot(repo, snapshot_name)
            entries = snapstore.list_tree(repo, snap, path)
            if as_json:  # a JSON array, written entry by entry: a huge tree costs no memory
                click.echo("[", nl=False)
                for n_entry, (p, n) in enumerate(entries):
                    click.echo(("," if n_entry else "") + "\n  " + json.dumps(_as_json(p, n)), nl=False)
                click.echo("\n]")
                return 0
            for p, n in entries:
                mode = _TYPE_CHAR[n.type.value] + statmod.filemode(n.mode)[1:]
                when = datetime.fromtimestamp(n.mtime_ns / 1e9).strftime("%Y-%m-%d %H:%M")
                owner = f"{n.user or n.uid}/{n.group or n.gid}"
                line = f"{mode} {owner:>16} {n.size:>12} {when} {p}"
                if n.type.value == "symlink":
                    line += " -> " + n.target.decode("utf-8", "surrogateescape")
                click.echo(line)
        return 0

    return ls


def _as_json(path: str, n: snapstore.Node) -> dict[str, object]:
    return {
        "path": path,
        "type": n.type.value,
        "mode": n.mode,
        "uid": n.uid,
        "gid": n.gid,
        "user": n.user,
        "group": n.group,
        "size": n.size,
        "mtime": datetime.fromtimestamp(n.mtime_ns / 1e9).astimezone().isoformat(),
        **({"target": n.target.decode("utf-8", "surrogateescape")} if n.type.value == "symlink" else {}),
    }
