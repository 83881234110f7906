"""`snapstore repair index|snapshots`: rebuild the index from the packs, and rewrite snapshots
around lost data (restic's meanings; the library's snapstore.repair says how)."""

from __future__ import annotations

import click

import snapstore
from snapstore.cli.options import LockMode, RepoOptions, repository_options
from snapstore.cli.output import print_json
from snapstore.cli.progress import Reporter


def _index_record(report: snapstore.IndexRepairReport) -> dict[str, object]:
    return {
        "dry_run": report.dry_run, "index_files_read": report.index_files_read,
        "damaged_index_files": report.damaged_index_files, "packs": report.packs,
        "packs_indexed": report.packs_indexed, "headers_read": report.headers_read,
        "packs_from_headers": report.packs_from_headers, "damaged_packs": report.damaged_packs,
        "vanished_packs": report.vanished_packs, "index_files_written": report.index_files_written,
        "index_files_deleted": report.index_files_deleted,
    }  # fmt: skip


def _render_index(report: snapstore.IndexRepairReport) -> None:
    for name, why in sorted(report.damaged_index_files.items()):
        click.echo(f"index file {name[:8]} is damaged: {why}")
    click.echo(f"read {report.index_files_read} index files and the headers of "
               f"{report.headers_read} of {report.packs} packs")
    for name, why in sorted(report.damaged_packs.items()):
        click.echo(f"pack {name[:16]}: {why}")
    if report.packs_from_headers:
        click.echo(f"{report.packs_from_headers} packs described by their own header")
    if report.vanished_packs:
        click.echo(f"{report.vanished_packs} packs the old index named are gone")
    if report.dry_run:
        click.echo(f"dry run: would write an index naming {report.packs_indexed} packs and "
                   f"delete {report.index_files_deleted} old index files")
    else:
        click.echo(f"wrote {report.index_files_written} index files naming "
                   f"{report.packs_indexed} packs; deleted {report.index_files_deleted} old ones")


def _id(snapshot: snapstore.Snapshot | None) -> str | None:
    return snapshot.id.hex() if snapshot is not None and snapshot.id is not None else None


def _snapshots_record(report: snapstore.SnapshotsRepairReport) -> dict[str, object]:
    return {
        "dry_run": report.dry_run, "forget": report.forget, "snapshots": report.snapshots,
        "repaired": [
            {"original": _id(e.original),
             "repaired": _id(e.repaired or e.already), "forgotten": e.forgotten,
             "changes": [{"path": c.path, "action": c.action, "reason": c.reason}
                         for c in e.changes]}
            for e in report.repaired
        ],
        "damaged": report.damaged, "damaged_removed": report.damaged_removed,
    }  # fmt: skip


def _render_snapshots(report: snapstore.SnapshotsRepairReport) -> None:
    would = "would be " if report.dry_run else ""
    for entry in report.repaired:
        click.echo(f"snapshot {entry.original.short_id}:")
        for change in entry.changes:
            click.echo(f"  {change}")
        if entry.already is not None:
            saved = f"already repaired as {entry.already.short_id}"
        elif entry.repaired is not None:
            saved = f"saved as {entry.repaired.short_id}"
        else:
            saved = "would be saved as a new snapshot tagged 'repaired'"
        gone = f", original {would}removed" if report.forget else ""
        click.echo(f"  {saved}{gone}")
    for name, why in sorted(report.damaged.items()):
        fate = f"{would}removed" if report.forget else "left as it is (--forget removes it)"
        click.echo(f"snapshot {name[:8]} cannot be read ({why}): {fate}")
    click.echo(f"checked {report.snapshots} snapshots: {len(report.repaired)} "
               f"{'need' if report.dry_run else 'needed'} repair, {len(report.damaged)} cannot be read")


def build() -> click.Group:
    @click.group("repair")
    def repair() -> None:
        """Repair a damaged repository: `index` first, then `snapshots` (run `check` to see
        what is damaged). Both take an exclusive lock."""

    @repair.command("index")
    @click.option("--read-all-packs", is_flag=True,
                  help="Read every pack's header, not only those the index does not describe.")
    @click.option("--dry-run", is_flag=True, help="Say what would be written, change nothing.")
    @click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
    @repository_options
    def index(repo_options: RepoOptions, read_all_packs: bool, dry_run: bool, as_json: bool) -> int:
        """Rebuild the index from the index files that can be read and the packs' own
        headers; then delete the old index files."""
        lock: LockMode = "shared" if dry_run else "exclusive"
        with repo_options.open(load_index=False, lock=lock) as repo, Reporter() as progress:
            report = snapstore.repair_index(
                repo, read_all_packs=read_all_packs, dry_run=dry_run, progress=progress
            )
        if as_json:
            print_json(_index_record(report))
        else:
            _render_index(report)
        return 0

    @repair.command("snapshots")
    @click.option("--forget", is_flag=True,
                  help="Remove each repaired snapshot's original, and snapshots that cannot be read.")
    @click.option("--dry-run", is_flag=True, help="Show what would change, change nothing.")
    @click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
    @repository_options
    def snapshots(repo_options: RepoOptions, forget: bool, dry_run: bool, as_json: bool) -> int:
        """Save a copy of each snapshot whose data is partly lost, tagged 'repaired': files
        whose content is missing are removed, unreadable directories emptied."""
        lock: LockMode = "shared" if dry_run else "exclusive"
        with repo_options.open(lock=lock) as repo, Reporter() as progress:
            report = snapstore.repair_snapshots(
                repo, forget=forget, dry_run=dry_run, progress=progress
            )
        if as_json:
            print_json(_snapshots_record(report))
        else:
            _render_snapshots(report)
        return 0

    return repair
