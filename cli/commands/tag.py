"""`snapstore tag`: add, remove or set the tags of the snapshots named (restic's `tag`); each
changed snapshot is saved as a new object (a new id, the first id kept in its metadata as
`original`) before the old one is removed."""

from __future__ import annotations

import click

import snapstore
from snapstore.cli.options import RepoOptions, repository_options
from snapstore.cli.output import print_json
from snapstore.cli.snapshot_filter import snapshot_filter_options, tag_list


def build() -> click.Command:
    @click.command("tag")
    @click.argument("snapshot_ids", nargs=-1, metavar="[SNAPSHOT]...")
    @click.option("--add", "add", multiple=True, metavar="TAG", help="Add TAG (repeat, or a,b).")
    @click.option("--remove", "remove", multiple=True, metavar="TAG", help="Remove TAG (repeat, or a,b).")
    @click.option("--set", "set_to", multiple=True, metavar="TAG",
                  help="Replace every tag with these (repeat, or a,b; --set '' removes all).")
    @click.option("--json", "as_json", is_flag=True, help="Print what changed as JSON.")
    @snapshot_filter_options
    @repository_options
    def tag(
        repo_options: RepoOptions, snapshot_ids: tuple[str, ...], add: tuple[str, ...],
        remove: tuple[str, ...], set_to: tuple[str, ...], as_json: bool,
        selection: snapstore.SnapshotFilter,
    ) -> int:
        """Add, remove or set tags of snapshots (ids, id prefixes or 'latest'); a changed
        snapshot gets a new id. With no SNAPSHOT, every snapshot --host, --tag and --path
        choose."""
        with repo_options.open(load_index=False, lock="shared") as repo:
            results = snapstore.retag_snapshots(
                repo, snapshot_ids, add=tag_list(add), remove=tag_list(remove),
                set_to=tag_list(set_to) if set_to else None, selection=selection,
            )  # fmt: skip
        if as_json:
            print_json([
                {"original": r.original.id.hex() if r.original.id else None,
                 "new": r.new.id.hex() if r.new is not None and r.new.id else None,
                 "tags": (r.new or r.original).tags}
                for r in results
            ])  # fmt: skip
            return 0
        for r in results:
            tags = ", ".join((r.new or r.original).tags) or "(none)"
            if r.new is None:
                click.echo(f"snapshot {r.original.short_id}: unchanged (tags: {tags})")
            else:
                click.echo(f"snapshot {r.original.short_id}: saved as {r.new.short_id} (tags: {tags})")
        return 0

    return tag
