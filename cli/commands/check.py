"""`snapstore check`: prove the repository is whole; with a cache directory, a partial
--read-data reads the packs verified least recently first, so nightly runs cover it all."""

from __future__ import annotations

import re
from typing import Any

import click

import snapstore
from snapstore.cli.options import RepoOptions, reads_only, repository_options
from snapstore.cli.output import human_size, print_info
from snapstore.cli.progress import Reporter, print_summary
from snapstore.cli.remote_options import parse_wait
from snapstore.cli.snapshot_filter import snapshot_filter_options
from snapstore.errors import UsageError


def _subset(value: str | None) -> tuple[tuple[int, int] | None, float | None]:
    """N/M (slice N of M) or P% (a share of the packs): (slice, fraction)."""
    if value is None:
        return None, None
    share = re.fullmatch(r"(\d+(?:\.\d+)?)%", value.strip())
    if share:
        percent = float(share[1])
        if not 0 < percent <= 100:
            raise UsageError(f"--read-data-subset {value!r}: the share must be above 0% and at most 100%")
        return None, percent / 100
    match = re.fullmatch(r"(\d+)/(\d+)", value)
    if not match or not 1 <= int(match[1]) <= int(match[2]):
        raise UsageError(f"--read-data-subset {value!r} must be N/M with 1 <= N <= M, or a share like 10%")
    return (int(match[1]), int(match[2])), None


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "100%"


def _coverage_line(coverage: Any) -> str:
    days = f"{coverage.days:g} day{'s' if coverage.days != 1 else ''}"
    never = f"; {coverage.never} never verified" if coverage.never else ""
    return (
        f"verified in the last {days}: {coverage.packs} of {coverage.packs_total} packs "
        f"({_percent(coverage.packs, coverage.packs_total)}), {human_size(coverage.bytes)} of "
        f"{human_size(coverage.bytes_total)} ({_percent(coverage.bytes, coverage.bytes_total)}){never}"
    )


def _record(report: snapstore.CheckReport) -> dict[str, object]:
    coverage = report.coverage
    return {
        "ok": report.ok, "snapshots": report.snapshots, "packs": report.packs,
        "blobs": report.blobs, "packs_read": report.packs_read,
        "packs_selected": report.packs_selected, "bytes_read": report.bytes_read,
        "time_up": report.time_up,
        "coverage": None if coverage is None else {
            "days": coverage.days, "packs": coverage.packs, "packs_total": coverage.packs_total,
            "bytes": coverage.bytes, "bytes_total": coverage.bytes_total, "never": coverage.never,
        },
        "findings": [
            {"kind": f.kind, "subject": f.subject, "message": f.message,
             "error": f.error, "snapshots": f.snapshots}
            for f in report.findings
        ],
    }  # fmt: skip


def _remember(cache_dir: str, repository_id: str, report: snapstore.CheckReport, read_data: bool) -> None:
    """What `snapstore health` judges: when the last check ran and whether it found damage."""
    record = snapstore.CheckRecord.now(report.ok, len(report.errors), read_data)
    try:
        snapstore.save_check_record(cache_dir, repository_id, record)
    except OSError as exc:
        click.echo(f"note: the result is not remembered for `health`: {exc.strerror or exc}", err=True)


def build() -> click.Command:
    @click.command("check")
    @click.option("--read-data", is_flag=True, help="Read and verify every pack and blob.")
    @click.option("--read-data-subset", metavar="N/M|P%",
                  help="Read only slice N of M of the packs, or P percent of them: those "
                       "verified least recently first (remembered in the cache directory).")
    @click.option("--max-duration", metavar="DURATION",
                  help="Stop starting packs after this long (e.g. 1h, 30m), least recently "
                       "verified first; what was read is remembered. Implies --read-data.")
    @click.option("--coverage-days", type=click.FloatRange(min=0, min_open=True), default=7,
                  show_default=True, help="Report how much was verified in the last N days.")
    @click.option("--json", "as_json", is_flag=True,
                  help="Print JSON lines: status while running, then a summary with the findings.")
    @snapshot_filter_options
    @repository_options
    @reads_only
    def check(
        repo_options: RepoOptions, read_data: bool, read_data_subset: str | None,
        max_duration: str | None, coverage_days: float, as_json: bool,
        selection: snapstore.SnapshotFilter,
    ) -> int:
        """Check the structure (and with --read-data, every byte) of the repository.

        With --host, --tag or --path only the trees of the snapshots chosen are walked (the
        index, every snapshot object and the packs read are the whole repository's), and the
        result is not recorded for `snapstore health`."""
        subset, fraction = _subset(read_data_subset)
        limit = parse_wait(max_duration) if max_duration is not None else None
        partial = subset is not None or fraction is not None or limit is not None
        cache_dir = repo_options.remote.cache_dir
        options = snapstore.CheckOptions(
            read_data=read_data or partial, subset=subset, fraction=fraction,
            max_duration=limit, cache_dir=cache_dir, coverage_days=coverage_days,
            selection=selection,
        )  # fmt: skip
        if partial and cache_dir is None:
            print_info("note: no cache directory (--no-cache): the packs verified are not "
                       "remembered, so they are chosen at random", err=True)
        # never the local cache for objects: check proves what the repository holds
        with repo_options.open(load_index=False, lock="shared", cache=False) as repo, \
                Reporter(as_json=as_json) as progress:
            report = snapstore.check(repo, options, progress)
            if cache_dir is not None and not selection:  # for `snapstore health`
                _remember(cache_dir, repo.repository_id, report, options.read_data)
        if as_json:
            print_summary(_record(report), "", as_json=True)
            return 0 if report.ok else 1
        for finding in report.findings:
            if finding.error:
                click.echo(f"error: {finding}")
            else:
                print_info(f"note: {finding}", err=True)
        if report.record_error:
            print_info(f"note: the packs verified are not remembered: {report.record_error}", err=True)
        read = ""
        if options.read_data:
            read = f", read {report.packs_read} packs ({human_size(report.bytes_read)})"
        if report.time_up:
            print_info(f"--max-duration {max_duration} reached: read {report.packs_read} of "
                       f"{report.packs_selected} packs selected; the rest are read first next time")
        verdict = "no errors were found" if report.ok else f"{len(report.errors)} errors found"
        line = f"checked {report.snapshots} snapshots, {report.packs} packs, {report.blobs} blobs{read}: {verdict}"
        if report.ok:
            print_info(line)
        else:
            click.echo(line)
        if report.coverage is not None:
            print_info(_coverage_line(report.coverage))
        return 0 if report.ok else 1

    return check
