"""`snapstore ls SNAPSHOT [PATH]`: list what a snapshot holds."""

from __future__ import annotations

import json

import click

import snapstore
from snapstore.cli.options import RepoOptions, reads_only, repository_options
from snapstore.cli.output import node_json, node_line
from snapstore.cli.snapshot_filter import snapshot_filter_options


def build() -> click.Command:
    @click.command("ls")
    @click.argument("snapshot_name", metavar="SNAPSHOT")
    @click.argument("path", default="/")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON, one object per entry.")
    @snapshot_filter_options
    @repository_options
    @reads_only
    def ls(repo_options: RepoOptions, snapshot_name: str, path: str, as_json: bool,
           selection: snapstore.SnapshotFilter) -> int:
        """List files in a snapshot (SNAPSHOT is an id prefix or 'latest')."""
        with repo_options.open(lock="shared") as repo:
            snap = snapstore.find_snapshot(repo, snapshot_name, selection)
            entries = snapstore.list_tree(repo, snap, path)
            if as_json:  # a JSON array, written entry by entry: a huge tree costs no memory
                click.echo("[", nl=False)
                for n_entry, (p, n) in enumerate(entries):
                    click.echo(("," if n_entry else "") + "\n  " + json.dumps(node_json(p, n)), nl=False)
                click.echo("\n]")
                return 0
            for p, n in entries:
                click.echo(node_line(p, n))
        return 0

    return ls

