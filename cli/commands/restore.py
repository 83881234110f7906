"""`snapstore restore SNAPSHOT`: files into a directory, a dump into PostgreSQL, an RDB to a path;
`snapstore restore mastodon [SNAPSHOT]`: a whole instance back in place."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import click

import snapstore
from snapstore.cli.options import RepoOptions, reads_only, repository_options
from snapstore.cli.output import human_size, print_info, print_json
from snapstore.cli.pg_options import pg_connection, pg_connection_options, pg_run_as_option
from snapstore.cli.progress import Reporter, print_summary
from snapstore.cli.redis_options import redis_options
from snapstore.cli.snapshot_filter import latest_holding, snapshot_filter_options
from snapstore.errors import UsageError

#: The hidden name of the plain `restore SNAPSHOT` inside the `restore` group.
PLAIN = "snapshot"


class RestoreGroup(click.Group):
    """`restore SNAPSHOT ...` and `restore mastodon ...` under one word: a first argument
    that names no subcommand (a snapshot id, `latest`, an option) goes to the plain restore."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or args[0] not in self.commands:
            args = [PLAIN, *args]
        return super().parse_args(ctx, args)


class PlainRestore(click.Command):
    """Shows its usage as `snapstore restore SNAPSHOT`, the way it is typed."""

    def format_usage(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        path = ctx.parent.command_path if ctx.parent is not None else ctx.command_path
        formatter.write_usage(path, " ".join(self.collect_usage_pieces(ctx)))


def build() -> click.Group:
    @click.group("restore", cls=RestoreGroup)
    def group() -> None:
        """Restore a snapshot; `restore mastodon` brings back a whole instance."""

    group.add_command(_plain(), PLAIN)
    group.add_command(_mastodon(), "mastodon")
    return group


def _plain() -> click.Command:
    @click.command(PLAIN, cls=PlainRestore, hidden=True,
                   epilog="A whole Mastodon instance (database with its role, secrets, media, "
                          "Redis, certificates): snapstore restore mastodon --help")
    @click.argument("snapshot_name", metavar="SNAPSHOT")
    @click.option("--target", type=click.Path(file_okay=False), help="Directory to restore into.")
    @click.option("--include", "includes", multiple=True,
                  help="Restore only this path (repeatable); one that matches nothing is an error.")
    @click.option("--exclude", "excludes", multiple=True, metavar="PATTERN",
                  help="Skip paths matching this glob, on the whole path or the name (repeatable).")
    @click.option("--overwrite", type=click.Choice([o.value for o in snapstore.Overwrite]),
                  default=snapstore.Overwrite.IF_CHANGED.value, show_default=True,
                  help="Files already in the target: always rewrite; if-changed: unless size "
                       "and mtime match; if-newer: only if the snapshot's copy is newer; never.")
    @click.option("--dry-run", is_flag=True, help="List what would be written, write nothing.")
    @click.option("--verify", is_flag=True,
                  help="Read every restored file back and check it against the snapshot.")
    @click.option("--delete", is_flag=True,
                  help="Remove files in the target that the snapshot does not have.")
    @click.option("--pg-database", metavar="NAME",
                  help="Restore the snapshot's dump into this database.")
    @click.option("--create", is_flag=True, help="Create the database if it does not exist.")
    @click.option("--clean", is_flag=True, help="Replace the contents of a non-empty database.")
    @click.option("--jobs", type=click.IntRange(min=1), default=1, show_default=True,
                  help="Parallel pg_restore jobs (more than 1 spools the dump to a temp file).")
    @click.option("--globals", "with_globals", is_flag=True,
                  help="Apply postgres/globals.sql first.")
    @click.option("--no-owner", is_flag=True, help="Do not restore object owners.")
    @click.option("--owner", metavar="ROLE",
                  help="The role that owns a database --create makes (e.g. mastodon).")
    @click.option("--pg-dump", "dump_path", metavar="PATH",
                  help="The dump's path in the snapshot (default: the one postgres/*.dump).")
    @pg_connection_options
    @click.option("--redis-rdb", type=click.Path(dir_okay=False),
                  help="Write the snapshot's redis/dump.rdb to this file (stop Redis first).")
    @click.option("--json", "as_json", is_flag=True,
                  help="Print JSON lines: status while running, then a summary.")
    @snapshot_filter_options
    @repository_options
    @reads_only
    def restore(repo_options: RepoOptions, selection: snapstore.SnapshotFilter,
                snapshot_name: str, target: str | None,
                includes: tuple[str, ...], excludes: tuple[str, ...], overwrite: str,
                dry_run: bool, verify: bool, delete: bool, pg_database: str | None, create: bool, clean: bool,
                jobs: int, with_globals: bool, no_owner: bool, owner: str | None, dump_path: str | None,
                redis_rdb: str | None, pg_host: str | None, pg_port: int | None,
                pg_user: str | None, pg_command_prefix: str | None, as_json: bool) -> int:
        """Restore a snapshot (an id prefix or 'latest'): its files into a directory (--target),
        its database dump into PostgreSQL (--pg-database), its Redis RDB (--redis-rdb).

        'latest' with --target and --include is the newest complete snapshot (of those
        --host, --tag and --path choose) that holds every path included; which one is said
        on stderr."""
        if not (target or pg_database or redis_rdb):
            raise UsageError("restore needs --target DIR, --pg-database NAME or --redis-rdb PATH")
        if pg_database is None and (create or clean or with_globals or jobs > 1):
            raise UsageError("--create, --clean, --jobs and --globals go with --pg-database")
        with repo_options.open(lock="shared") as repo, Reporter(as_json=as_json) as progress:
            snap = latest_holding(repo, snapshot_name, selection, includes if target else ())
            if pg_database:
                db_options = snapstore.DatabaseRestoreOptions(
                    pg_database, create=create, clean=clean, jobs=jobs, globals=with_globals,
                    no_owner=no_owner, owner=owner, dump_path=dump_path,
                )  # fmt: skip
                if jobs > 1:
                    click.echo("spooling the dump to a temporary file for parallel pg_restore",
                               err=True)
                connection = pg_connection(pg_host, pg_port, pg_user, pg_command_prefix)
                db = snapstore.restore_database(repo, snap, connection, db_options, progress)
                for warning in db.warnings:
                    click.echo(f"snapstore: warning: {warning}", err=True)
                print_info(f"restored {db.dump_path} of snapshot {snap.short_id} into database "
                           f"{db.dbname} ({human_size(db.bytes_restored)})", err=True)
            if redis_rdb:
                rdb = snapstore.restore_redis_rdb(repo, snap, Path(redis_rdb))
                print_info(f"restored redis/dump.rdb of snapshot {snap.short_id} to {rdb.path} "
                           f"({human_size(rdb.size)}, RDB version {rdb.rdb_version})", err=True)
            if target:
                file_options = snapstore.RestoreOptions(
                    includes=list(includes), excludes=list(excludes),
                    overwrite=snapstore.Overwrite(overwrite), dry_run=dry_run, verify=verify,
                    delete=delete,
                )  # fmt: skip
                result = snapstore.restore(repo, snap, target, progress=progress,
                                           options=file_options)
        if target:
            return _report(result, snap.short_id, target, dry_run, as_json)
        return 0

    return restore


def _mastodon() -> click.Command:
    @click.command("mastodon")
    @click.argument("snapshot_name", metavar="[SNAPSHOT]", required=False)
    @click.option("--env-file", type=click.Path(dir_okay=False),
                  help="Where .env.production goes (default: where it was backed up from).")
    @click.option("--live-dir", type=click.Path(file_okay=False),
                  help="The live directory to restore into (the env file and media follow).")
    @click.option("--only", metavar="PARTS",
                  help=f"Comma-separated parts to restore: {','.join(snapstore.INSTANCE_PARTS)}.")
    @click.option("--dry-run", is_flag=True, help="Print the plan, change nothing.")
    @click.option("--clean", is_flag=True, help="Replace a database that already holds tables.")
    @click.option("--jobs", type=click.IntRange(min=1),
                  help="Parallel pg_restore jobs (default: up to 4 when the dump fits in TMPDIR).")
    @click.option("--redis-rdb", type=click.Path(dir_okay=False), default="/var/lib/redis/dump.rdb",
                  show_default=True, help="Where the stopped Redis loads its RDB from.")
    @click.option("--redis-running", is_flag=True,
                  help="Write the RDB even though Redis answers (it overwrites it when it saves).")
    @redis_options("redis_command_prefix")  # to see whether Redis runs
    @click.option("--letsencrypt-dir", type=click.Path(file_okay=False),
                  help="Where letsencrypt/ goes (default: where it was backed up from).")
    @click.option("--nginx-dir", type=click.Path(file_okay=False),
                  help="Where nginx/ goes (default: where it was backed up from).")
    @click.option("--systemd-dir", type=click.Path(file_okay=False),
                  help="Where systemd/ goes (default: where it was backed up from).")
    @pg_connection_options
    @pg_run_as_option
    @click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
    @snapshot_filter_options
    @repository_options
    @reads_only
    def mastodon(repo_options: RepoOptions, selection: snapstore.SnapshotFilter,
                 snapshot_name: str | None, env_file: str | None,
                 live_dir: str | None, only: str | None, dry_run: bool, clean: bool,
                 jobs: int | None, redis_rdb: str, redis_running: bool,
                 redis_command_prefix: str | None, letsencrypt_dir: str | None,
                 nginx_dir: str | None, systemd_dir: str | None, as_json: bool,
                 **pg: Any) -> int:
        """Bring a whole Mastodon instance back from SNAPSHOT (default: the newest complete
        mastodon snapshot), in Mastodon's documented order: the database (roles, the
        instance's role with its password from DB_PASS, the database owned by it, pg_restore),
        .env.production, the media, the Redis RDB, then Let's Encrypt, nginx and systemd
        files. Run it as root on the new server with PostgreSQL running and Redis stopped.
        The database work runs as --pg-user (default postgres). Exit 0 when every part
        was restored, 1 when one failed (the others still are)."""
        if env_file and live_dir:
            raise UsageError("give --env-file or --live-dir, not both")
        parts = snapstore.INSTANCE_PARTS
        chosen = frozenset(p.strip() for p in only.split(",") if p.strip()) if only else parts
        connection = pg_connection(pg.get("pg_host"), pg.get("pg_port"), pg.get("pg_user"),
                                   pg.get("pg_command_prefix"), pg.get("pg_run_as"))
        options = snapstore.InstanceRestoreOptions(
            env_file=Path(env_file) if env_file else None,
            live_dir=Path(live_dir) if live_dir else None, only=frozenset(chosen),
            dry_run=dry_run, clean=clean, jobs=jobs, redis_rdb=Path(redis_rdb),
            redis_running_ok=redis_running,
            letsencrypt_dir=Path(letsencrypt_dir) if letsencrypt_dir else None,
            nginx_dir=Path(nginx_dir) if nginx_dir else None,
            systemd_dir=Path(systemd_dir) if systemd_dir else None,
            pg_host=connection.host, pg_port=connection.port,
            pg_user=connection.username or snapstore.INSTANCE_ADMIN_USER,
            pg_command_prefix=connection.command_prefix, pg_run_as=connection.run_as,
            redis_command_prefix=_split(redis_command_prefix),
        )  # fmt: skip
        with repo_options.open(lock="shared") as repo, Reporter() as progress:
            if snapshot_name is None or snapshot_name == "latest":
                snap = snapstore.latest_instance_snapshot(repo, selection)
            else:
                snap = snapstore.find_snapshot(repo, snapshot_name, selection)
            report = snapstore.restore_instance(repo, snap, options, progress)
        if as_json:
            print_json({
                "snapshot_id": report.snapshot_id, "live_dir": str(report.live_dir),
                "dry_run": dry_run, "steps": [vars(step) for step in report.steps],
                "warnings": report.warnings, "checklist": report.checklist,
                "failed": [step.part for step in report.failed],
            })  # fmt: skip
        else:
            _instance_report(report, snap.short_id, dry_run)
        return 1 if report.failed else 0

    return mastodon


def _instance_report(report: snapstore.InstanceRestoreReport, short_id: str, dry_run: bool) -> None:
    """The plan or what was done, part by part, then what the admin does next (stdout)."""
    heading = "would restore" if dry_run else "restored"
    click.echo(f"{heading} Mastodon instance from snapshot {short_id} into {report.live_dir}:")
    marks = {"ok": "ok  ", "failed": "FAIL", "skipped": "skip", "planned": "plan"}
    for step in report.steps:
        line = f"  {marks[step.status]}  {step.part}: {step.action}"
        click.echo(line + (f"\n        {step.detail}" if step.detail else ""))
    for warning in report.warnings:
        click.echo(f"snapstore: warning: {warning}", err=True)
    click.echo("next:" if not dry_run else "then:")
    for number, item in enumerate(report.checklist, 1):
        click.echo(f"  {number}. {item}")
    for step in report.failed:
        click.echo(f"snapstore: error: {step.part}: {step.detail}", err=True)


def _split(command_prefix: str | None) -> list[str]:
    try:
        return shlex.split(command_prefix) if command_prefix else []
    except ValueError as exc:
        raise UsageError(f"cannot split the command prefix {command_prefix!r}: {exc}") from None


def _report(result: snapstore.RestoreResult, short_id: str, target: str, dry_run: bool,
            as_json: bool) -> int:
    """The summary on stdout, each damaged file on a line of its own on stderr; exit 1 if any."""
    if dry_run and not as_json:
        for path, size in result.planned:
            click.echo(f"would write {path} ({human_size(size)})")
    verb = "would restore" if dry_run else "restored"
    extra = [f"{result.files_skipped} unchanged"] if result.files_skipped else []
    if result.deleted:
        extra.append(f"{result.deleted} {'to delete' if dry_run else 'deleted'}")
    if result.files_verified:
        extra.append(f"{result.files_verified} verified")
    if result.special:
        extra.append(f"{result.special} FIFOs and devices")
    if result.sockets_skipped:
        extra.append(f"{result.sockets_skipped} sockets not created")
    record = {
        "snapshot": short_id, "target": target, "dry_run": dry_run, "files": result.files,
        "dirs": result.dirs, "symlinks": result.symlinks, "hardlinks": result.hardlinks,
        "files_skipped": result.files_skipped, "files_verified": result.files_verified,
        "deleted": result.deleted, "bytes_written": result.bytes_written,
        "special": result.special, "sockets_skipped": result.sockets_skipped,
        "warnings": result.warnings, "errors": result.errors,
    }  # fmt: skip
    print_summary(record, (
        f"{verb} snapshot {short_id}: {result.files} files, {result.dirs} dirs, "
        f"{result.symlinks} links, {human_size(result.bytes_written)} to {target}"
        + "".join(f", {e}" for e in extra)
    ), as_json=as_json)  # fmt: skip
    for warning in result.warnings:
        click.echo(f"snapstore: warning: {warning}", err=True)
    for error in result.errors:
        click.echo(f"snapstore: error: {error}", err=True)
    if result.errors:
        click.echo(f"snapstore: {len(result.errors)} paths could not be restored or verified",
                   err=True)
        return 1
    return 0
