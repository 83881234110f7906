"""`snapstore dump SNAPSHOT PATH`: one file's content to standard output."""

from __future__ import annotations

import sys

import click

import snapstore
from snapstore.cli.options import RepoOptions, repository_options


def build() -> click.Command:
    @click.command("dump")
    @click.argument("snapshot_name", metavar="SNAPSHOT")
    @click.argument("path")
    @repository_options
    def dump(repo_options: RepoOptions, snapshot_name: str, path: str) -> int:
        """Write one file from a snapshot to standard output (e.g. into pg_restore)."""
        out = sys.stdout.buffer
        with repo_options.open(lock="shared") as repo:
            snap = snapstore.find_snapshot(repo, snapshot_name)
            for chunk in snapstore.dump_file(repo, snap, path):
                out.write(chunk)
        out.flush()
        return 0

    return dump
