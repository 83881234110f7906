"""`snapstore init`: create a repository."""

from __future__ import annotations

import click

import snapstore
from snapstore.cli.options import RepoOptions, repository_options


def build() -> click.Command:
    @click.command("init")
    @repository_options
    def init(repo_options: RepoOptions) -> int:
        """Create a new encrypted repository (refuses to overwrite one)."""
        location = repo_options.location()
        with snapstore.init_repository(location, repo_options.password(confirm=True)) as repo:
            click.echo(f"created repository {repo.repository_id[:8]} at {location}")
            click.echo("Keep the password safe: without it the backups cannot be read.", err=True)
        return 0

    return init
