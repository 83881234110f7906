"""`snapstore diff SNAPSHOT1 SNAPSHOT2 [PATH] [--json]`: what changed between two snapshots.

One line per path, as restic's diff: `+` added, `-` removed, `M` content changed, `U` metadata
only, with a file's size change; then the totals. Lines are printed as they are found.
"""

from __future__ import annotations

import json

import click

import snapstore
from snapstore.cli.options import RepoOptions, reads_only, repository_options
from snapstore.cli.output import human_size
from snapstore.cli.snapshot_filter import snapshot_filter_options


def build() -> click.Command:
    @click.command("diff")
    @click.argument("old_name", metavar="SNAPSHOT1")
    @click.argument("new_name", metavar="SNAPSHOT2")
    @click.argument("path", default="/")
    @click.option("--json", "as_json", is_flag=True, help="Print one JSON object: changes, summary.")
    @snapshot_filter_options
    @repository_options
    @reads_only
    def diff(
        repo_options: RepoOptions, old_name: str, new_name: str, path: str, as_json: bool,
        selection: snapstore.SnapshotFilter,
    ) -> int:
        """Show what changed from SNAPSHOT1 to SNAPSHOT2 (id prefixes or 'latest'), below
        PATH (default: everything); identical directories are skipped without being read."""
        with repo_options.open(lock="shared") as repo:
            old = snapstore.find_snapshot(repo, old_name, selection)
            new = snapstore.find_snapshot(repo, new_name, selection)
            changes = snapstore.diff_snapshots(repo, old, new, path)
            if as_json:
                _print_json(changes)
                return 0
            click.echo(f"comparing snapshot {old.short_id} to {new.short_id}:\n")
            for entry in changes:
                click.echo(_line(entry))
            _print_summary(changes.summary)
        return 0

    return diff


def _line(entry: snapstore.DiffEntry) -> str:
    line = f"{entry.change.value}    {entry.path}"
    if entry.node.type.value == "dir":
        return line + "/"
    delta = entry.size_change
    if delta:
        line += f"  ({'+' if delta > 0 else '-'}{human_size(abs(delta))})"
    return line


def _print_summary(summary: snapstore.DiffSummary) -> None:
    s = summary
    click.echo(
        f"\nFiles:    {s.files_added:5} new, {s.files_removed:5} removed, {s.files_changed:5} changed\n"
        f"Dirs:     {s.dirs_added:5} new, {s.dirs_removed:5} removed\n"
        f"Others:   {s.others_added:5} new, {s.others_removed:5} removed, {s.others_changed:5} changed\n"
        f"Metadata: {s.metadata_changed:5} changed\n"
        f"Added:    {human_size(s.bytes_added)}\n"
        f"Removed:  {human_size(s.bytes_removed)}"
    )


def _print_json(changes: snapstore.SnapshotDiff) -> None:
    """{"old": id, "new": id, "changes": [...], "summary": {...}}, the changes written as found."""
    ids = {"old": changes.old.id.hex() if changes.old.id else None,
           "new": changes.new.id.hex() if changes.new.id else None}
    click.echo(json.dumps(ids)[:-1] + ', "changes": [', nl=False)
    for n_entry, entry in enumerate(changes):
        item = {
            "path": entry.path,
            "modifier": entry.change.value,
            "type": entry.node.type.value,
            "old_size": entry.old.size if entry.old is not None else None,
            "new_size": entry.new.size if entry.new is not None else None,
            "size_change": entry.size_change,
        }
        click.echo(("," if n_entry else "") + "\n  " + json.dumps(item), nl=False)
    click.echo('\n], "summary": ' + json.dumps(changes.summary.to_dict()) + "}")
