"""`snapstore migrate`: list the format features the repository can take on, or add them."""

from __future__ import annotations

import click

import snapstore
from snapstore.cli.options import RepoOptions, repository_options


def build() -> click.Command:
    @click.command("migrate")
    @click.argument("names", nargs=-1, metavar="[NAME]...")
    @repository_options
    def migrate(repo_options: RepoOptions, names: tuple[str, ...]) -> int:
        """Add format features to an older repository (`snapstore migrate` lists them).

        Without NAME, lists each migration and whether the repository has it. With names, adds
        those features under an exclusive lock: new backups use them at once, everything
        stored stays as it is, and snapstore versions older than the feature can no longer
        open the repository (SPEC.md section 3)."""
        if not names:
            with repo_options.open(load_index=False, lock="shared") as repo:
                states = snapstore.migration_states(repo)
            for migration, applied in states:
                state = "applied" if applied else "available"
                click.echo(f"{migration.name:<14} {state:<10} {migration.summary}")
            return 0
        with repo_options.open(load_index=False, lock="exclusive") as repo:
            added = snapstore.apply_migrations(repo, list(names))
        for name in names:
            click.echo(f"{name}: {'added' if name in added else 'already there'}")
        return 0

    return migrate
