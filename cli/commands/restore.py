"""`snapstore restore SNAPSHOT --target DIR`: bring files back."""

from __future__ import annotations

import click

import snapstore
from snapstore.cli.options import RepoOptions, repository_options
from snapstore.cli.output import TerminalProgress, human_size
from snapstore.errors import UsageError


def build() -> click.Command:
    @click.command("restore")
    @click.argument("snapshot_name", metavar="SNAPSHOT")
    @click.option("--target", type=click.Path(file_okay=False), help="Directory to restore into.")
    @click.option("--include", "includes", multiple=True, help="Restore only this path (repeatable).")
    @repository_options
    def restore(repo_options: RepoOptions, snapshot_name: str, target: str | None, includes: tuple[str, ...]) -> int:
        """Restore a snapshot (an id prefix or 'latest') into a directory."""
        if not target:
            raise UsageError("restore needs --target DIR")
        with repo_options.open() as repo, TerminalProgress() as progress:
            snap = snapstore.find_snapshot(repo, snapshot_name)
            result = snapstore.restore(repo, snap, target, list(includes), progress)
        click.echo(
            f"restored snapshot {snap.short_id}: {result.files} files, {result.dirs} dirs, "
            f"{result.symlinks} links, {human_size(result.bytes_written)} to {target}",
            err=True,
        )
        return 0

    return restore
