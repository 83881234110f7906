"""`snapstore find PATTERN... [--snapshot ID]... [--json]`: which snapshots hold matching paths.

Grouped by snapshot, newest first, as restic's find. Output is written as the search goes, the
JSON array too: a pattern matching a million files costs no memory.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from itertools import groupby

import click

import snapstore
from snapstore.cli.options import RepoOptions, reads_only, repository_options
from snapstore.cli.output import node_json, node_line
from snapstore.cli.snapshot_filter import snapshot_filter_options


def build() -> click.Command:
    @click.command("find")
    @click.argument("patterns", metavar="PATTERN...", nargs=-1, required=True)
    @click.option(
        "--snapshot", "snapshot_names", metavar="ID", multiple=True,
        help="Search only this snapshot (id prefix or 'latest'; repeatable). Default: all "
             "(that --host, --tag and --path choose).",
    )
    @click.option("--json", "as_json", is_flag=True, help="Print a JSON array, one object per snapshot.")
    @snapshot_filter_options
    @repository_options
    @reads_only
    def find(
        repo_options: RepoOptions, patterns: tuple[str, ...], snapshot_names: tuple[str, ...],
        as_json: bool, selection: snapstore.SnapshotFilter,
    ) -> int:
        """Find paths matching a pattern in snapshots (a glob on the whole path or the name, as
        restore --exclude: '*.log', '/home/*/.bashrc'), newest snapshot first."""
        with repo_options.open(lock="shared") as repo:
            snaps = snapstore.select_snapshots(repo, snapshot_names, selection)
            matches = snapstore.find_paths(repo, snaps, list(patterns))
            groups = groupby(matches, key=lambda m: m.snapshot.id)
            if as_json:
                _print_json(groups)
            else:
                for n_group, (_, group) in enumerate(groups):
                    for n_match, match in enumerate(group):
                        if not n_match:
                            click.echo(("\n" if n_group else "") + _header(match.snapshot))
                        click.echo(node_line(match.path, match.node))
        return 0

    return find


def _header(snap: snapstore.Snapshot) -> str:
    when = snap.time.astimezone().strftime("%Y-%m-%d %H:%M:%S")
    return f"Found matching entries in snapshot {snap.short_id} from {when}"


def _print_json(groups: Iterator[tuple[object, Iterator[snapstore.PathMatch]]]) -> None:
    """[{"snapshot": id, "time": ..., "matches": [...], "hits": n}, ...], written as it goes."""
    click.echo("[", nl=False)
    for n_group, (_, group) in enumerate(groups):
        hits = 0
        for match in group:
            if not hits:
                snap = match.snapshot
                head = {"snapshot": snap.id.hex() if snap.id else None, "short_id": snap.short_id,
                        "time": snap.time.isoformat()}
                click.echo(("," if n_group else "") + "\n  " + json.dumps(head)[:-1]
                           + ', "matches": [', nl=False)
            click.echo(("," if hits else "") + "\n    " + json.dumps(node_json(match.path, match.node)),
                       nl=False)
            hits += 1
        click.echo(f"\n  ], \"hits\": {hits}}}", nl=False)
    click.echo("\n]")
