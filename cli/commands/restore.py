"""`snapstore restore SNAPSHOT`: files into a directory, a dump into PostgreSQL, an RDB to a path."""

from __future__ import annotations

from pathlib import Path

import click

import snapstore
from snapstore.cli.options import RepoOptions, repository_options
from snapstore.cli.output import TerminalProgress, human_size
from snapstore.cli.pg_options import pg_connection, pg_connection_options
from snapstore.errors import UsageError


def build() -> click.Command:
    @click.command("restore")
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
    @click.option("--pg-dump", "dump_path", metavar="PATH",
                  help="The dump's path in the snapshot (default: the one postgres/*.dump).")
    @pg_connection_options
    @click.option("--redis-rdb", type=click.Path(dir_okay=False),
                  help="Write the snapshot's redis/dump.rdb to this file (stop Redis first).")
    @repository_options
    def restore(repo_options: RepoOptions, snapshot_name: str, target: str | None,
                includes: tuple[str, ...], excludes: tuple[str, ...], overwrite: str,
                dry_run: bool, verify: bool, delete: bool, pg_database: str | None, create: bool, clean: bool,
                jobs: int, with_globals: bool, no_owner: bool, dump_path: str | None,
                redis_rdb: str | None, pg_host: str | None, pg_port: int | None,
                pg_user: str | None, pg_command_prefix: str | None) -> int:
        """Restore a snapshot (an id prefix or 'latest'): its files into a directory (--target),
        its database dump into PostgreSQL (--pg-database), its Redis RDB (--redis-rdb)."""
        if not (target or pg_database or redis_rdb):
            raise UsageError("restore needs --target DIR, --pg-database NAME or --redis-rdb PATH")
        if pg_database is None and (create or clean or with_globals or jobs > 1):
            raise UsageError("--create, --clean, --jobs and --globals go with --pg-database")
        with repo_options.open(lock="shared") as repo, TerminalProgress() as progress:
            snap = snapstore.find_snapshot(repo, snapshot_name)
            if pg_database:
                options = snapstore.DatabaseRestoreOptions(
                    pg_database, create=create, clean=clean, jobs=jobs, globals=with_globals,
                    no_owner=no_owner, dump_path=dump_path,
                )  # fmt: skip
                if jobs > 1:
                    click.echo("spooling the dump to a temporary file for parallel pg_restore",
                               err=True)
                connection = pg_connection(pg_host, pg_port, pg_user, pg_command_prefix)
                db = snapstore.restore_database(repo, snap, connection, options, progress)
                for warning in db.warnings:
                    click.echo(f"snapstore: warning: {warning}", err=True)
                click.echo(f"restored {db.dump_path} of snapshot {snap.short_id} into database "
                           f"{db.dbname} ({human_size(db.bytes_restored)})", err=True)
            if redis_rdb:
                rdb = snapstore.restore_redis_rdb(repo, snap, Path(redis_rdb))
                click.echo(f"restored redis/dump.rdb of snapshot {snap.short_id} to {rdb.path} "
                           f"({human_size(rdb.size)}, RDB version {rdb.rdb_version})", err=True)
            if target:
                options = snapstore.RestoreOptions(
                    includes=list(includes), excludes=list(excludes),
                    overwrite=snapstore.Overwrite(overwrite), dry_run=dry_run, verify=verify,
                    delete=delete,
                )  # fmt: skip
                result = snapstore.restore(repo, snap, target, progress=progress, options=options)
        if target:
            return _report(result, snap.short_id, target, dry_run)
        return 0

    return restore


def _report(result: snapstore.RestoreResult, short_id: str, target: str, dry_run: bool) -> int:
    """The summary on stderr, each damaged file on a line of its own; exit 1 if any."""
    if dry_run:
        for path, size in result.planned:
            click.echo(f"would write {path} ({human_size(size)})")
    verb = "would restore" if dry_run else "restored"
    extra = [f"{result.files_skipped} unchanged"] if result.files_skipped else []
    if result.deleted:
        extra.append(f"{result.deleted} {'to delete' if dry_run else 'deleted'}")
    if result.files_verified:
        extra.append(f"{result.files_verified} verified")
    click.echo(
        f"{verb} snapshot {short_id}: {result.files} files, {result.dirs} dirs, "
        f"{result.symlinks} links, {human_size(result.bytes_written)} to {target}"
        + "".join(f", {e}" for e in extra),
        err=True,
    )
    for error in result.errors:
        click.echo(f"snapstore: error: {error}", err=True)
    if result.errors:
        click.echo(f"snapstore: {len(result.errors)} paths could not be restored or verified",
                   err=True)
        return 1
    return 0
