"""`snapstore snapshots`: list the snapshots in the repository."""

from __future__ import annotations

import click
from rich.console import Console
from rich.table import Table

import snapstore
from snapstore.cli.options import RepoOptions, repository_options
from snapstore.cli.output import human_size, print_json

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
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @repository_options
    def snapshots(repo_options: RepoOptions, as_json: bool) -> int:
        """List snapshots, oldest first. One whose source reported errors is marked
        incomplete (with the Mastodon parts that failed): `latest`, the delta parent and the
        --keep-* rules pass it over. One that cannot be read is named on stderr and left out
        (exit 3)."""
        with repo_options.open(load_index=False) as repo:
            snaps = snapstore.list_snapshots(repo)
            damaged = [d for d in repo.damaged if d.kind == "snapshot"]
        code = EXIT_INCOMPLETE if damaged else 0
        if as_json:
            print_json([snapshot_record(s) for s in snaps])
            return code
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
        Console(soft_wrap=True).print(table)
        notes = ([f"{incomplete} incomplete"] if incomplete else []) + (
            [f"{len(damaged)} damaged, left out"] if damaged else [])
        click.echo(f"{len(snaps)} snapshots" + (f" ({'; '.join(notes)})" if notes else ""))
        return code

    return snapshots
