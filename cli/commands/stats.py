"""`snapstore stats`: sizes and the deduplication ratio."""

from __future__ import annotations

import click

import snapstore
from snapstore.cli.options import RepoOptions, repository_options
from snapstore.cli.output import human_size, print_json


def build() -> click.Command:
    @click.command("stats")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @repository_options
    def stats(repo_options: RepoOptions, as_json: bool) -> int:
        """Show what the repository stores and how well it deduplicates."""
        with repo_options.open(lock="shared") as repo:
            s = snapstore.repository_stats(repo)
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
                }
            )
            return 0
        click.echo(f"snapshots:          {s.snapshots}")
        click.echo(f"stored on backend:  {human_size(s.stored_bytes)} in {s.packs} packs, {s.blobs} blobs")
        click.echo(f"logical size:       {human_size(s.logical_bytes)}")
        click.echo(f"unique content:     {human_size(s.unique_content_bytes)}")
        click.echo(f"deduplication:      {s.dedup_ratio:.2f}x")
        return 0

    return stats
