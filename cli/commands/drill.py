"""`snapstore drill [SNAPSHOT]`: restore the database into a scratch database, check, drop."""

from __future__ import annotations

import click

import snapstore
from snapstore.cli.options import RepoOptions, reads_only, repository_options
from snapstore.cli.output import print_json
from snapstore.cli.pg_options import pg_connection_options, pg_overrides, pg_run_as_option
from snapstore.cli.snapshot_filter import snapshot_filter_options

EXIT_DRILL_FAILED = 1


def build() -> click.Command:
    @click.command("drill")
    @click.argument("snapshot_name", metavar="[SNAPSHOT]", required=False)
    @click.option("--env-file", type=click.Path(dir_okay=False),
                  help="A mastodon snapshot's env file on this host (default: the path the "
                       "snapshot recorded, else its own copy).")
    @pg_connection_options
    @pg_run_as_option
    @click.option("--max-shrink", type=click.FloatRange(0, 100), metavar="PERCENT",
                  default=snapstore.DEFAULT_MAX_SHRINK, show_default=True,
                  help="Fail when a table or the database lost more than this share since "
                       "the previous snapshot.")
    @click.option("--keep", is_flag=True, help="Leave the scratch database for inspection.")
    @click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
    @snapshot_filter_options
    @repository_options
    @reads_only
    def drill(repo_options: RepoOptions, selection: snapstore.SnapshotFilter,
              snapshot_name: str | None, env_file: str | None,
              pg_host: str | None, pg_port: int | None, pg_user: str | None,
              pg_command_prefix: str | None, pg_run_as: str | None, max_shrink: float,
              keep: bool, as_json: bool) -> int:
        """Prove a backup restores: the database of SNAPSHOT (default: the newest snapshot
        holding one) goes into a scratch database on the server it came from, is checked
        against the row counts recorded at backup time and against the previous snapshot's,
        and is dropped. Exit 0 when every check passes."""
        overrides = pg_overrides(pg_host, pg_port, pg_user, pg_command_prefix, pg_run_as,
                                 env_file)  # fmt: skip
        with repo_options.open(lock="shared") as repo:
            if snapshot_name is None or snapshot_name == "latest":
                snap = snapstore.latest_database_snapshot(repo, selection)
            else:
                snap = snapstore.find_snapshot(repo, snapshot_name, selection)
            server = snapstore.snapshot_server(repo, snap, overrides)
            report = snapstore.drill(repo, snap, server.connection, keep=keep,
                                     max_shrink=max_shrink)  # fmt: skip
        if as_json:
            print_json({
                "snapshot_id": report.snapshot_id, "database": report.source_database,
                "server": report.server, "settings_from": server.origin,
                "scratch_database": report.scratch_database, "dropped": report.dropped,
                "kept": report.kept, "previous_snapshot_id": report.previous_snapshot_id,
                "passed": report.passed, "duration_s": report.duration_s,
                "checks": [vars(check) for check in report.checks],
            })  # fmt: skip
        else:
            click.echo(f"drill of snapshot {report.snapshot_id[:8]} ({report.source_database}) "
                       f"in scratch database {report.scratch_database} on {report.server} "
                       f"(settings from {server.origin}):")
            for check in report.checks:
                click.echo(f"  {'ok  ' if check.passed else 'FAIL'}  {check.name}: {check.detail}")
            verdict = "passed" if report.passed else "FAILED"
            click.echo(f"drill {verdict} in {report.duration_s:.1f} s{_kept(report, keep)}")
        failed = [check for check in report.checks if not check.passed]
        if failed:
            more = f" (and {len(failed) - 1} more failed checks)" if len(failed) > 1 else ""
            click.echo(f"snapstore: error: the restore drill failed: {failed[0].name}: "
                       f"{failed[0].detail}{more}", err=True)
            return EXIT_DRILL_FAILED
        if not report.passed:
            click.echo("snapstore: error: the restore drill failed: no check ran", err=True)
            return EXIT_DRILL_FAILED
        return 0

    return drill


def _kept(report: snapstore.DrillReport, keep: bool) -> str:
    """What became of the scratch database, told only as it is."""
    if report.kept:
        return f"; {report.scratch_database} was kept"
    if keep:
        return f"; nothing kept: {report.scratch_database} does not exist (a failed " \
               "restore drops the database it created)"
    return ""
