"""Put one file of a snapshot at a path, atomically: a live file is replaced whole or not at all.

The content goes to a temporary file in the target's own directory, is checked (a caller's
`check`, such as an RDB's header and trailer), given its owner and mode, flushed to disk and
renamed over the target; the directory is flushed too. So the target is at every moment
either the old file or the complete new one, which is what a service reading it at start-up
(Redis's dump.rdb, Mastodon's .env.production) needs.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from snapstore.repository.repository import Repository
from snapstore.restorer.stream import stream_file
from snapstore.snapshot.tree import Node

#: Called with the written temporary file (at its start) and its size; raises to refuse it.
ContentCheck = Callable[[BinaryIO, int], object]


def write_file_atomically(
    repo: Repository,
    node: Node,
    target: Path,
    *,
    mode: int,
    owner: tuple[int, int] | None = None,
    check: ContentCheck | None = None,
) -> int:
    """Write `node`'s content to `target` by temp file and rename; the size written.

    `owner` (uid, gid) is applied only when running as root, as tar and restic do.
    """
    directory = target.parent
    fd, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w+b") as out:
            for chunk in stream_file(repo, node):
                out.write(chunk)
            out.flush()
            size = out.tell()
            if check is not None:
                out.seek(0)
                check(out, size)
            if owner is not None and os.geteuid() == 0:
                os.fchown(out.fileno(), *owner)
            os.fchmod(out.fileno(), mode)
            os.fsync(out.fileno())
        os.replace(temp_name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise
    fsync_dir(directory)
    return size


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
