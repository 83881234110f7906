"""`snapstore prune`: delete the data no snapshot uses, under an exclusive lock."""

from __future__ import annotations

import click

import snapstore
from snapstore.cli.options import RepoOptions, repository_options
from snapstore.cli.output import human_size
from snapstore.cli.progress import Reporter, print_summary
from snapstore.errors import UsageError


def parse_percent(value: str) -> float:
    """'5', '5%' or '2.5%' as a fraction (0.05); 'unlimited' means never repack."""
    text = value.strip().rstrip("%").strip()
    if text.lower() == "unlimited":
        return 1.0
    try:
        percent = float(text)
    except ValueError:
        raise UsageError(f"--max-unused {value!r} is not a percentage like 5 or 5%") from None
    if not 0 <= percent <= 100:
        raise UsageError(f"--max-unused {value!r} must be between 0 and 100")
    return percent / 100


def report_record(report: snapstore.PruneReport) -> dict[str, object]:
    return {
        "dry_run": report.dry_run,
        "snapshots": report.snapshots,
        "blobs_used": report.blobs_used,
        "blobs_unused": report.blobs_unused,
        "packs_before": report.packs_before,
        "packs_deleted": report.packs_deleted,
        "packs_repacked": report.packs_repacked,
        "packs_written": report.packs_written,
        "unindexed_packs": report.unindexed_packs,
        "index_files_deleted": report.index_files_deleted,
        "index_files_written": report.index_files_written,
        "bytes_before": report.bytes_before,
        "bytes_after": report.bytes_after,
        "bytes_freed": report.bytes_freed,
        "bytes_deleted": report.bytes_deleted,
        "bytes_read": report.bytes_read,
        "bytes_written": report.bytes_written,
        "unused_before": report.unused_before,
        "unused_after": report.unused_after,
        "blobs_rebased": report.blobs_rebased,
        "rebase_bytes_written": report.rebase_bytes_written,
        "bases_freed": report.bases_freed,
        "bases_freed_bytes": report.bases_freed_bytes,
    }


def render(report: snapstore.PruneReport) -> str:
    """The report in a few lines of text."""
    would = "would " if report.dry_run else ""
    lines = [
        f"{report.snapshots} snapshots use {report.blobs_used} blobs; "
        f"{report.blobs_unused} blobs ({human_size(report.unused_before)}) are unused"
    ]
    if report.unindexed_packs:
        damaged = (
            f", {report.damaged_unindexed_packs} unreadable"
            if report.damaged_unindexed_packs
            else ""
        )
        lines.append(
            f"found {report.unindexed_packs} packs no index names (left by interrupted runs{damaged})"
        )
    lines.append(
        f"{would}delete {report.packs_deleted} packs, repack {report.packs_repacked} "
        f"(reading {human_size(report.bytes_read)}, writing {human_size(report.bytes_written)})"
    )
    if report.blobs_rebased:
        lines.append(
            f"{would}store {report.blobs_rebased} deltas whole ({human_size(report.rebase_bytes_written)}) "
            f"so that {report.bases_freed} bases no snapshot uses ({human_size(report.bases_freed_bytes)}) can go"
        )
    lines.append(
        f"{would}free {human_size(report.bytes_freed)}: {human_size(report.bytes_before)} -> "
        f"{human_size(report.bytes_after)}, {human_size(report.unused_after)} left unused"
    )
    return "\n".join(lines)


def build() -> click.Command:
    @click.command("prune")
    @click.option(
        "--max-unused",
        default="5%",
        show_default=True,
        metavar="PERCENT",
        help="Repack partly used packs until at most this share of the repository is unused.",
    )
    @click.option("--dry-run", is_flag=True, help="Only say what would be deleted and repacked.")
    @click.option("--json", "as_json", is_flag=True,
                  help="Print JSON lines: status while running, then the report.")
    @repository_options
    def prune(repo_options: RepoOptions, max_unused: str, dry_run: bool, as_json: bool) -> int:
        """Delete data no snapshot uses (run after forget). Takes an exclusive lock."""
        options = snapstore.PruneOptions(max_unused=parse_percent(max_unused), dry_run=dry_run)
        lock = "shared" if dry_run else "exclusive"
        with repo_options.open(load_index=False, lock=lock) as repo, Reporter(as_json=as_json) as progress:
            report = snapstore.prune(repo, options, progress)
        print_summary(report_record(report), render(report), as_json=as_json)
        return 0

    return prune
