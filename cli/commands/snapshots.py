"""`snapstore snapshots`: list the snapshots in the repository."""

from __future__ import annotations

import sys

import click
from rich.console import Console
from rich.table import Table

import snapstore
from snapstore.cli.options import RepoOptions, reads_only, repository_options
from snapstore.cli.output import human_size, print_json
from snapstore.cli.snapshot_filter import snapshot_filter_options

#: Some snapshot could not be read: the listing is incomplete (each one was named on stderr).
EXIT_INCOMPLETE = 3


def snapshot_record(snap: snapstore.Snapshot) -> dict[str, object]:
    return {
        "id": snap.id.hex() if snap.id else None,
        "short_id": snap.short_id,
        "time": snap.time.isoformat(),
        "host": snap.host,
        "user": snap.user,
        "tags": snap.tags,
        "source": snap.source,
        "paths": snap.paths,
        "tree": snap.tree.hex(),
        "summary": snap.summary.to_dict(),
        "complete": snap.complete,
        "failed_parts": snap.failed_parts,
        "program_version": snap.program_version,
        "metadata": snap.metadata,
    }


def build() -> click.Command:
    @click.command("snapshots")
    @click.option("--group-by", metavar="FIELDS", default="",
                  help="List the snapshots in groups of host, paths and/or tags (e.g. host,paths).")
    @click.option("--json", "as_json", is_flag=True,
                  help="Print JSON (with --group-by: one object per group, its snapshots inside).")
    @snapshot_filter_options
    @repository_options
    @reads_only
    def snapshots(repo_options: RepoOptions, group_by: str, as_json: bool,
                  selection: snapstore.SnapshotFilter) -> int:
        """List snapshots, oldest first. One whose source reported errors is marked
        incomplete (with the Mastodon parts that failed): `latest`, the delta parent and the
        --keep-* rules pass it over. One that cannot be read is named on stderr and left out
        (exit 3). Piped, lines are as long as their paths need (no wrapping)."""
        fields = [name for name in group_by.split(",") if name.strip()]
        with repo_options.open(load_index=False) as repo:
            snaps = selection.select(snapstore.list_snapshots(repo))
            damaged = [d for d in repo.damaged if d.kind == "snapshot"]
        groups = snapstore.group_snapshots(snaps, fields) if fields else []
        code = EXIT_INCOMPLETE if damaged else 0
        if as_json:
            if fields:
                print_json([{"group_key": _key_record(key),
                             "snapshots": [snapshot_record(s) for s in members]}
                            for key, members in groups])
            else:
                print_json([snapshot_record(s) for s in snaps])
            return code
        # piped or redirected, never cut to 80 columns: a script reads whole paths
        console = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 1_000_000)
        for n_group, (key, members) in enumerate(groups or [(None, snaps)]):
            if key is not None:
                click.echo(("\n" if n_group else "") + f"group: {key.describe()}")
            _print_table(console, members)
        incomplete = sum(not s.complete for s in snaps)
        notes = ([f"{incomplete} incomplete"] if incomplete else []) + (
            [f"{len(damaged)} damaged, left out"] if damaged else [])
        groups_note = f" in {len(groups)} groups" if fields else ""
        click.echo(f"{len(snaps)} snapshots{groups_note}" + (f" ({'; '.join(notes)})" if notes else ""))
        return code

    return snapshots


def _key_record(key: snapstore.GroupKey) -> dict[str, object]:
    return {"host": key.host, "paths": None if key.paths is None else list(key.paths),
            "tags": None if key.tags is None else list(key.tags)}


def _print_table(console: Console, snaps: list[snapstore.Snapshot]) -> None:
    incomplete = sum(not s.complete for s in snaps)
    table = Table(box=None, pad_edge=False)
    columns = ("ID", "Time", "Host", "Tags", "Source", "Paths", "Size")
    for column in columns + (("Status",) if incomplete else ()):
        table.add_column(column, justify="right" if column == "Size" else "left",
                         no_wrap=column == "Status")
    for snap in snaps:
        table.add_row(
            snap.short_id,
            snap.time.astimezone().strftime("%Y-%m-%d %H:%M:%S"),
            snap.host,
            ",".join(snap.tags),
            snap.source,
            "\n".join(snap.paths),
            human_size(snap.summary.bytes_read),
            *((snap.describe_incomplete(),) if incomplete else ()),
        )
    console.print(table)
