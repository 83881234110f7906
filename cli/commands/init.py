"""`snapstore init`: create a repository."""

from __future__ import annotations

import click

from snapstore.cli.options import RepoOptions, repository_options


def build() -> click.Command:
    @click.command("init")
    @click.option("--pack-size", type=click.IntRange(min=4096, max=1 << 30), hidden=True,
                  help="Target pack size in bytes (default 16 MiB).")
    @repository_options
    def init(repo_options: RepoOptions, pack_size: int | None) -> int:
        """Create a new encrypted repository (refuses to overwrite one)."""
        location = repo_options.location()
        password = repo_options.password(confirm=True)
        with repo_options.init(password, pack_size) as repo:
            click.echo(f"created repository {repo.repository_id[:8]} at {location}")
            key = f"{location.rstrip('/')}/keys/{(repo.key_name or '')[:8]}..."
            click.echo(
                f"The master key is in {key}, wrapped under the password: without both, the "
                "backups cannot be read. Keep a copy apart from the repository: `snapstore key "
                "export --paper` prints it to keep on paper.", err=True,
            )  # fmt: skip
        return 0

    return init
