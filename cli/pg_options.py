"""Options naming the PostgreSQL server that `restore --pg-database` and `drill` write to."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

import snapstore
from snapstore.errors import UsageError

F = TypeVar("F", bound=Callable[..., Any])


def pg_connection_options(func: F) -> F:
    """--pg-host/--pg-port/--pg-user/--pg-command-prefix; the password comes from libpq."""
    decorators = [
        click.option("--pg-host", help="PostgreSQL host or socket directory (libpq default)."),
        click.option("--pg-port", type=int, help="PostgreSQL port (libpq default)."),
        click.option("--pg-user", help="PostgreSQL user (libpq default); PGPASSWORD or ~/.pgpass."),
        click.option("--pg-command-prefix", help="Run psql/pg_restore through this."),
    ]
    for decorate in reversed(decorators):
        func = decorate(func)
    return func


def pg_run_as_option(func: F) -> F:
    """--pg-run-as USER: the clients run as that system user (peer authentication from root's
    cron), passed as `pg_run_as`; config key [postgres] run_as."""
    return click.option(
        "--pg-run-as", metavar="USER",
        help="Run psql/pg_restore as this system user (peer authentication, e.g. mastodon).",
    )(func)  # fmt: skip


def _split_prefix(pg_command_prefix: str | None) -> list[str]:
    try:
        return shlex.split(pg_command_prefix) if pg_command_prefix else []
    except ValueError as exc:
        raise UsageError(f"cannot split --pg-command-prefix: {exc}") from None


def pg_connection(
    pg_host: str | None, pg_port: int | None, pg_user: str | None, pg_command_prefix: str | None,
    pg_run_as: str | None = None,
) -> snapstore.PgConnection:
    """The server the options name, libpq's defaults for the rest."""
    prefix = _split_prefix(pg_command_prefix)
    return snapstore.PgConnection(pg_host, pg_port, pg_user, command_prefix=prefix,
                                  run_as=pg_run_as)  # fmt: skip


def pg_overrides(
    pg_host: str | None, pg_port: int | None, pg_user: str | None, pg_command_prefix: str | None,
    pg_run_as: str | None, env_file: str | None = None,
) -> snapstore.ServerOverrides:
    """The options as overrides of the server a snapshot names (`snapstore.snapshot_server`)."""
    return snapstore.ServerOverrides(
        pg_host, pg_port, pg_user, _split_prefix(pg_command_prefix), pg_run_as,
        Path(env_file) if env_file else None,
    )  # fmt: skip
