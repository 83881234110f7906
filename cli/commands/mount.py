"""`snapstore mount MOUNTPOINT`: the snapshots as a read-only filesystem until unmounted."""

from __future__ import annotations

import click

import snapstore
from snapstore.cli.options import RepoOptions, reads_only, repository_options
from snapstore.cli.snapshot_filter import snapshot_filter_options
from snapstore.errors import SnapstoreError


def build() -> click.Command:
    @click.command("mount")
    @click.argument("mountpoint", type=click.Path(file_okay=False))
    @click.option(
        "--allow-other", is_flag=True,
        help="Let users other than the one mounting browse it (their access is still checked "
             "against the modes as backed up; needs user_allow_other in /etc/fuse.conf unless root).",
    )
    @snapshot_filter_options
    @repository_options
    @reads_only
    def mount(repo_options: RepoOptions, mountpoint: str, allow_other: bool,
              selection: snapstore.SnapshotFilter) -> int:
        """Browse the snapshots as a read-only filesystem at MOUNTPOINT until unmounted.

        \b
        MOUNTPOINT/snapshots/<time>_<id>/   every snapshot (time in local time)
        MOUNTPOINT/latest                   the newest complete snapshot
        MOUNTPOINT/hosts/<host>/            the snapshots of each host, and its latest
        MOUNTPOINT/tags/<tag>/              the snapshots carrying each tag, and its latest

        With --host, --tag or --path only the snapshots they choose are shown. Snapshots
        taken while it is mounted appear within seconds. Ctrl-C, SIGTERM or
        `fusermount3 -u MOUNTPOINT` unmounts and releases the repository's (shared) lock. A
        file whose data is damaged fails to read (EIO) and the damaged blob is named here.
        Needs libfuse3 (apt install fuse3) and pip install 'snapstore[mount]'.
        """

        def mounted() -> None:
            click.echo(f"snapstore: mounted at {mountpoint}; Ctrl-C or "
                       f"`fusermount3 -u {mountpoint}` unmounts", err=True)

        said: set[str] = set()  # the kernel retries a failed read: one line for each error

        def failed(what: str, error: SnapstoreError) -> None:
            line = f"snapstore: error: {what}: {error}"
            if line in said:
                return
            if len(said) >= 10_000:
                said.clear()
            said.add(line)
            click.echo(line, err=True)

        options = snapstore.MountOptions(allow_other=allow_other, on_mounted=mounted,
                                         on_error=failed, selection=selection)
        with repo_options.open(lock="shared") as repo:
            snapstore.mount_snapshots(repo, mountpoint, options)
        click.echo(f"snapstore: unmounted {mountpoint}", err=True)
        return 0

    return mount
