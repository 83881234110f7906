"""Options naming the PostgreSQL server that `restore --pg-database` and `drill` write to."""

from __future__ import annotations

import shlex
from collections.abc import Callable
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


def pg_connection(
    pg_host: str | None, pg_port: int | None, pg_user: str | None, pg_command_prefix: str | None
) -> snapstore.PgConnection:
    try:
        prefix = shlex.split(pg_command_prefix) if pg_command_prefix else []
    except ValueError as exc:
        raise UsageError(f"cannot split --pg-command-prefix: {exc}") from None
    return snapstore.PgConnection(pg_host, pg_port, pg_user, command_prefix=prefix)
