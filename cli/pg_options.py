"""The PostgreSQL server `snapshot postgres` dumps, `snapshot mastodon` reaches, and `restore
--pg-database`, `restore mastodon` and `drill` write to: one spelling for all of them.

    --pg-host H --pg-port P --pg-user U --pg-command-prefix CMD --pg-run-as USER

    [postgres]                      # the config file's keys for the same
    host = "127.0.0.1"
    port = 5432
    username = "postgres"
    command_prefix = ["docker", "exec", "-i", "mastodon-db-1"]
    run_as = "mastodon"

The password comes from libpq (PGPASSWORD, ~/.pgpass), never from a flag.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

import snapstore
from snapstore.cli.remote_options import Setting
from snapstore.errors import UsageError

F = TypeVar("F", bound=Callable[..., Any])

POSTGRES = "PostgreSQL server options"
PG_SETTINGS = (
    Setting("pg_host", "HOST", "PostgreSQL host or socket directory [default: libpq's]",
            section="postgres", key_name="host", env_name=""),
    Setting("pg_port", "PORT", "PostgreSQL port [default: libpq's]", type=int,
            toml_types=(int,), section="postgres", key_name="port", env_name=""),
    Setting("pg_user", "USER", "PostgreSQL user [default: libpq's]; its password from "
            "PGPASSWORD or ~/.pgpass", section="postgres", key_name="username", env_name=""),
    Setting("pg_command_prefix", "CMD", "Run psql, pg_dump and pg_restore through this, "
            "e.g. 'docker exec -i mastodon-db-1'", toml_types=(list, str), section="postgres",
            key_name="command_prefix", env_name=""),
    Setting("pg_run_as", "USER", "Run the PostgreSQL clients as this system user (peer "
            "authentication from root's cron, e.g. mastodon)", section="postgres",
            key_name="run_as", env_name=""),
)  # fmt: skip
"""One row each: flag, config key ([postgres]); no variable (libpq's PG* serve)."""


def pg_options(*names: str) -> Callable[[F], F]:
    """The options named (all of them when none is), passed by their names (pg_host, ...)."""
    rows = [s for s in PG_SETTINGS if not names or s.param in names]

    def decorate(func: F) -> F:
        for setting in reversed(rows):
            func = setting.decorator(POSTGRES)(func)
        return func

    return decorate


def pg_connection_options(func: F) -> F:
    """--pg-host/--pg-port/--pg-user/--pg-command-prefix."""
    return pg_options("pg_host", "pg_port", "pg_user", "pg_command_prefix")(func)


def pg_run_as_option(func: F) -> F:
    """--pg-run-as USER, passed as `pg_run_as`."""
    return pg_options("pg_run_as")(func)


def renamed_options(renames: dict[str, str], same_as: str = "restore and drill") -> Callable[[F], F]:
    """Hidden old flags that fail naming the new one (`snapshot postgres --host` was the
    server, which every other command calls --pg-host; so was `snapshot redis --host`)."""

    def refuse(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        if value is not None:
            flag = param.opts[0]
            raise UsageError(f"{flag} is now {renames[flag]}, as for {same_as} (the host name "
                             "to record is --snapshot-host)")  # fmt: skip

    def decorate(func: F) -> F:
        for old in renames:
            func = click.option(old, f"renamed_{old.strip('-').replace('-', '_')}", hidden=True,
                                expose_value=False, callback=refuse)(func)  # fmt: skip
        return func

    return decorate


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
