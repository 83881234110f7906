"""`snapstore drill [SNAPSHOT]`: restore the database into a scratch database, check, drop."""

from __future__ import annotations

import click

import snapstore
from snapstore.cli.options import RepoOptions, repository_options
from snapstore.cli.output import print_json
from snapstore.cli.pg_options import pg_connection, pg_connection_options

EXIT_DRILL_FAILED = 1


def build() -> click.Command:
    @click.command("drill")
    @click.argument("snapshot_name", metavar="[SNAPSHOT]", required=False)
    @pg_connection_options
    @click.option("--keep", is_flag=True, help="Leave the scratch database for inspection.")
    @click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
    @repository_options
    def drill(repo_options: RepoOptions, snapshot_name: str | None, pg_host: str | None,
              pg_port: int | None, pg_user: str | None, pg_command_prefix: str | None,
              keep: bool, as_json: bool) -> int:
        """Prove a backup restores: the database of SNAPSHOT (default: the newest snapshot
        holding one) goes into a scratch database, is checked against the row counts
        recorded at backup time, and is dropped. Exit 0 when every check passes."""
        connection = pg_connection(pg_host, pg_port, pg_user, pg_command_prefix)
        with repo_options.open(lock="shared") as repo:
            if snapshot_name is None or snapshot_name == "latest":
                snap = snapstore.latest_database_snapshot(repo)
            else:
                snap = snapstore.find_snapshot(repo, snapshot_name)
            report = snapstore.drill(repo, snap, connection, keep=keep)
        if as_json:
            print_json({
                "snapshot_id": report.snapshot_id, "database": report.source_database,
                "scratch_database": report.scratch_database, "dropped": report.dropped,
                "passed": report.passed, "duration_s": report.duration_s,
                "checks": [vars(check) for check in report.checks],
            })  # fmt: skip
        else:
            click.echo(f"drill of snapshot {report.snapshot_id[:8]} ({report.source_database}) "
                       f"in scratch database {report.scratch_database}:")
            for check in report.checks:
                click.echo(f"  {'ok  ' if check.passed else 'FAIL'}  {check.name}: {check.detail}")
            verdict = "passed" if report.passed else "FAILED"
            kept = "" if report.dropped else f"; {report.scratch_database} was kept"
            click.echo(f"drill {verdict} in {report.duration_s:.1f} s{kept}")
        if not report.passed:
            click.echo("snapstore: error: the restore drill failed", err=True)
            return EXIT_DRILL_FAILED
        return 0

    return drill
