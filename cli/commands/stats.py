"""`snapstore stats`: sizes and the deduplication ratio."""

from __future__ import annotations

import click

import snapstore
from snapstore.cli.options import RepoOptions, reads_only, repository_options
from snapstore.cli.output import human_size, print_json
from snapstore.cli.snapshot_filter import snapshot_filter_options

#: Some snapshot could not be read: the figures leave it out (it was named on stderr).
EXIT_INCOMPLETE = 3


def build() -> click.Command:
    @click.command("stats")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @snapshot_filter_options
    @repository_options
    @reads_only
    def stats(repo_options: RepoOptions, as_json: bool, selection: snapstore.SnapshotFilter) -> int:
        """Show what the repository stores and how well it deduplicates. A snapshot that
        cannot be read is named on stderr and left out (exit 3). With --host, --tag or
        --path, the snapshot count and the logical and unique sizes are those of the
        snapshots chosen; what is stored is the whole repository's."""
        with repo_options.open(lock="shared") as repo:
            s = snapstore.repository_stats(repo, selection)
        code = EXIT_INCOMPLETE if s.damaged_snapshots else 0
        if as_json:
            print_json(
                {
                    "snapshots": s.snapshots,
                    "stored_bytes": s.stored_bytes,
                    "packs": s.packs,
                    "blobs": s.blobs,
                    "logical_bytes": s.logical_bytes,
                    "unique_content_bytes": s.unique_content_bytes,
                    "dedup_ratio": round(s.dedup_ratio, 3),
                    "damaged_snapshots": s.damaged_snapshots,
                }
            )
            return code
        left_out = f" ({len(s.damaged_snapshots)} damaged, left out)" if s.damaged_snapshots else ""
        click.echo(f"snapshots:          {s.snapshots}{left_out}")
        click.echo(f"stored on backend:  {human_size(s.stored_bytes)} in {s.packs} packs, {s.blobs} blobs")
        click.echo(f"logical size:       {human_size(s.logical_bytes)}")
        click.echo(f"unique content:     {human_size(s.unique_content_bytes)}")
        click.echo(f"deduplication:      {s.dedup_ratio:.2f}x")
        return code

    return stats
