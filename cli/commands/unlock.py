"""`snapstore unlock`: remove locks left by processes that are gone."""

from __future__ import annotations

import click

import snapstore
from snapstore.cli.options import RepoOptions, repository_options


def build() -> click.Command:
    @click.command("unlock")
    @click.option(
        "--remove-all",
        is_flag=True,
        help="Remove every lock, also those of processes that may still be running.",
    )
    @repository_options
    def unlock(repo_options: RepoOptions, remove_all: bool) -> int:
        """Remove stale locks: not refreshed for 30 minutes, or taken on this host by a process
        that no longer exists."""
        with repo_options.open(load_index=False) as repo:
            removed = snapstore.unlock(repo, remove_all=remove_all)
        for stored in removed:
            click.echo(f"removed {stored.describe()}", err=True)
        click.echo(f"removed {len(removed)} {'lock' if len(removed) == 1 else 'locks'}")
        return 0

    return unlock
