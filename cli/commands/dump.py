"""`snapstore dump SNAPSHOT PATH [--archive tar|zip]`: one file's content, or a directory as
an archive, to standard output."""

from __future__ import annotations

import sys

import click

import snapstore
from snapstore.cli.options import RepoOptions, reads_only, repository_options
from snapstore.cli.output import Level, output_level, print_warning
from snapstore.cli.progress import Reporter
from snapstore.cli.snapshot_filter import latest_holding, snapshot_filter_options
from snapstore.errors import PathIsDirectory


def build() -> click.Command:
    @click.command("dump")
    @click.argument("snapshot_name", metavar="SNAPSHOT")
    @click.argument("path")
    @click.option(
        "--archive", "archive_format", type=click.Choice(["tar", "zip"]), default=None,
        help="Write PATH and everything below it (PATH '/': the whole snapshot) as a tar or zip "
             "archive, with modes, times, owners and symlinks.",
    )
    @snapshot_filter_options
    @repository_options
    @reads_only
    def dump(
        repo_options: RepoOptions, snapshot_name: str, path: str, archive_format: str | None,
        selection: snapstore.SnapshotFilter,
    ) -> int:
        """Write one file from a snapshot to standard output (e.g. into pg_restore), or with
        --archive a directory as a tar or zip archive.

        'latest' is the newest complete snapshot (of those --host, --tag and --path choose)
        that holds PATH; -v says which on stderr."""
        out = sys.stdout.buffer
        # the display goes to a terminal the content does not (dump ... > file, | pg_restore)
        on_terminal = sys.stderr.isatty() and not sys.stdout.isatty()
        with repo_options.open(lock="shared") as repo, Reporter(terminal=on_terminal) as progress:
            whole = path.strip("/") in ("", ".")
            # its stderr is for trouble (the content goes to pg_restore...): -v names the snapshot
            snap = latest_holding(repo, snapshot_name, selection, () if whole else (path,),
                                  say=output_level() in (Level.VERBOSE, Level.VERY_VERBOSE))
            if archive_format is not None:
                archived = snapstore.dump_archive(repo, snap, path, out, archive_format)
                for where, why in archived.skipped:  # sockets in tar; FIFOs, devices too in zip
                    print_warning(where, why)
            else:
                try:
                    content = snapstore.dump_file(repo, snap, path, progress)
                except PathIsDirectory as exc:
                    raise PathIsDirectory(f"{exc}: add --archive tar (or zip)") from None
                for chunk in content:
                    out.write(chunk)
        out.flush()
        return 0

    return dump
