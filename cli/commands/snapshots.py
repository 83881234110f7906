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
        "program_version": snap.program_version,
        "metadata": snap.metadata,
    }


def build() -> click.Command:
    @click.command("snapshots")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @repository_options
    def snapshots(repo_options: RepoOptions, as_json: bool) -> int:
        """List snapshots, oldest first. One that cannot be read is named on stderr and
        left out (exit 3)."""
        with repo_options.open(load_index=False) as repo:
            snaps = snapstore.list_snapshots(repo)
            damaged = [d for d in repo.damaged if d.kind == "snapshot"]
        code = EXIT_INCOMPLETE if damaged else 0
        if as_json:
            print_json([snapshot_record(s) for s in snaps])
            return code
        table = Table(box=None, pad_edge=False)
        for column in ("ID", "Time", "Host", "Tags", "Source", "Paths", "Size"):
            table.add_column(column, justify="right" if column == "Size" else "left")
        for snap in snaps:
            table.add_row(
                snap.short_id,
                snap.time.astimezone().strftime("%Y-%m-%d %H:%M:%S"),
                snap.host,
                ",".join(snap.tags),
                snap.source,
                "\n".join(snap.paths),
                human_size(snap.summary.bytes_read),
            )
        Console(soft_wrap=True).print(table)
        left_out = f" ({len(damaged)} damaged, left out)" if damaged else ""
        click.echo(f"{len(snaps)} snapshots{left_out}")
        return code

    return snapshots
