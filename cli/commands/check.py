"""`snapstore check`: prove the repository is whole."""

from __future__ import annotations

import re

import click

import snapstore
from snapstore.cli.options import RepoOptions, repository_options
from snapstore.cli.output import print_json
from snapstore.errors import UsageError


def _subset(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    match = re.fullmatch(r"(\d+)/(\d+)", value)
    if not match or not 1 <= int(match[1]) <= int(match[2]):
        raise UsageError(f"--read-data-subset {value!r} must be N/M with 1 <= N <= M")
    return int(match[1]), int(match[2])


def build() -> click.Command:
    @click.command("check")
    @click.option("--read-data", is_flag=True, help="Read and verify every pack and blob.")
    @click.option("--read-data-subset", metavar="N/M", help="Read only slice N of M of the packs.")
    @click.option("--json", "as_json", is_flag=True, help="Print findings as JSON.")
    @repository_options
    def check(repo_options: RepoOptions, read_data: bool, read_data_subset: str | None, as_json: bool) -> int:
        """Check the structure (and with --read-data, every byte) of the repository."""
        subset = _subset(read_data_subset)
        options = snapstore.CheckOptions(read_data=read_data or subset is not None, subset=subset)
        # never the local cache: check proves what the repository holds, not what we kept
        with repo_options.open(load_index=False, lock="shared", cache=False) as repo:
            report = snapstore.check(repo, options)
        if as_json:
            print_json(
                {
                    "ok": report.ok,
                    "snapshots": report.snapshots,
                    "packs": report.packs,
                    "blobs": report.blobs,
                    "packs_read": report.packs_read,
                    "findings": [
                        {"kind": f.kind, "subject": f.subject, "message": f.message,
                         "error": f.error, "snapshots": f.snapshots}
                        for f in report.findings
                    ],
                }
            )
        else:
            for finding in report.findings:
                label = "error" if finding.error else "note"
                click.echo(f"{label}: {finding}", err=not finding.error)
            read = f", read {report.packs_read} packs" if options.read_data else ""
            verdict = "no errors were found" if report.ok else f"{len(report.errors)} errors found"
            click.echo(
                f"checked {report.snapshots} snapshots, {report.packs} packs, {report.blobs} blobs{read}: {verdict}"
            )
        return 0 if report.ok else 1

    return check
