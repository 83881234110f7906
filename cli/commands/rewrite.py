"""`snapstore rewrite`: take files out of snapshots, e.g. a secret that was backed up by mistake
(restic's `rewrite`). New trees without the matching paths, a new snapshot; the original is
removed with --forget, and `prune` then frees the data only it used."""

from __future__ import annotations

import click

import snapstore
from snapstore.cli.options import RepoOptions, repository_options
from snapstore.cli.output import print_json
from snapstore.cli.snapshot_filter import snapshot_filter_options


def build() -> click.Command:
    @click.command("rewrite")
    @click.argument("snapshot_ids", nargs=-1, metavar="[SNAPSHOT]...")
    @click.option("--exclude", "excludes", multiple=True, required=True, metavar="PATTERN",
                  help="Remove paths matching PATTERN (a glob on the whole path or the name, as "
                       "restore --exclude; a directory goes with all below it). Repeatable.")
    @click.option("--forget", is_flag=True,
                  help="Remove each original snapshot (else the new one is tagged 'rewrite').")
    @click.option("--dry-run", is_flag=True, help="Show what would be removed, change nothing.")
    @click.option("--json", "as_json", is_flag=True, help="Print what changed as JSON.")
    @snapshot_filter_options
    @repository_options
    def rewrite(
        repo_options: RepoOptions, snapshot_ids: tuple[str, ...], excludes: tuple[str, ...],
        forget: bool, dry_run: bool, as_json: bool, selection: snapstore.SnapshotFilter,
    ) -> int:
        """Save snapshots (ids, id prefixes or 'latest') again without the paths matching
        --exclude; run `prune` afterwards to free their data. With no SNAPSHOT, every
        snapshot --host, --tag and --path choose."""
        with repo_options.open(lock="shared") as repo:
            results = snapstore.rewrite_snapshots(
                repo, snapshot_ids, excludes, forget=forget, dry_run=dry_run, selection=selection
            )
        if as_json:
            print_json([
                {"original": r.original.id.hex() if r.original.id else None,
                 "new": r.new.id.hex() if r.new is not None and r.new.id else None,
                 "removed_paths": r.removed_paths, "original_removed": r.original_removed}
                for r in results
            ])  # fmt: skip
            return 0
        would = "would be " if dry_run else ""
        for r in results:
            click.echo(f"snapshot {r.original.short_id}:")
            for path in r.removed_paths:
                click.echo(f"  {would}removed {path}")
            if not r.removed_paths:
                click.echo("  nothing matches: unchanged")
            elif r.new is not None:
                gone = ", original removed" if r.original_removed else ", original kept"
                click.echo(f"  saved as {r.new.short_id}{gone}")
        if not dry_run and any(r.new is not None for r in results):
            click.echo("run `snapstore prune` to delete the data only the removed paths used"
                       + ("" if forget else ", after forgetting the originals"))
        return 0

    return rewrite
