"""`snapstore health`: one line and an exit code for a monitoring job (0 healthy, 1 not)."""

from __future__ import annotations

from datetime import timedelta

import click

import snapstore
from snapstore.cli.options import RepoOptions, repository_options
from snapstore.cli.output import print_json
from snapstore.cli.remote_options import parse_wait
from snapstore.cli.snapshot_filter import snapshot_filter_options


def _age(ctx: click.Context, param: click.Parameter, value: str | None) -> timedelta | None:
    return timedelta(seconds=parse_wait(value)) if value else None


def build() -> click.Command:
    @click.command("health")
    @click.option("--max-age", metavar="DURATION", default="26h", show_default=True,
                  callback=_age, help="How old the newest complete snapshot of each group "
                  "(host and paths) may be, e.g. 26h, 8d.")
    @click.option("--max-check-age", metavar="DURATION", callback=_age,
                  help="How old the last check may be [default: any age].")
    @click.option("--ignore-check", is_flag=True,
                  help="Judge without the last check (recorded by `check` in the cache directory).")
    @click.option("--json", "as_json", is_flag=True, help="Print the verdict as JSON.")
    @snapshot_filter_options
    @repository_options
    def health(repo_options: RepoOptions, max_age: timedelta, selection: snapstore.SnapshotFilter,
               max_check_age: timedelta | None, ignore_check: bool, as_json: bool) -> int:
        """Exit 1 with one line when a backup is overdue, a lock is stale or the last check
        found damage (or none was recorded); 0 and one line otherwise.

        The last check is the one `snapstore check` ran with the same cache directory
        (--cache-dir); with --no-cache or --ignore-check it is not judged."""
        cache_dir = repo_options.remote.cache_dir
        with repo_options.open(load_index=False) as repo:
            record = None
            if cache_dir is not None and not ignore_check:
                record = snapstore.load_check_record(cache_dir, repo.repository_id)
            options = snapstore.HealthOptions(
                max_age, selection.hosts, selection.tags,
                require_check=not ignore_check and cache_dir is not None,
                max_check_age=None if ignore_check else max_check_age, paths=selection.paths,
            )  # fmt: skip
            report = snapstore.assess_health(repo, options, record)
        if as_json:
            print_json(_json(report))
        else:
            click.echo(report.line())
        return 0 if report.ok else 1

    return health


def _json(report: snapstore.HealthReport) -> dict[str, object]:
    check = report.last_check
    return {
        "ok": report.ok,
        "problems": report.problems,
        "groups": [
            {"host": g.host, "paths": list(g.paths), "ok": g.ok,
             "newest": g.newest.id.hex() if g.newest and g.newest.id else None,
             "time": g.newest.time.isoformat() if g.newest else None,
             "age_s": g.age.total_seconds() if g.age is not None else None}
            for g in report.groups
        ],
        "stale_locks": [lock.describe() for lock in report.stale_locks],
        "last_check": None if check is None else {
            "time": check.time.isoformat(), "ok": check.ok, "errors": check.errors,
            "read_data": check.read_data,
        },
    }  # fmt: skip
