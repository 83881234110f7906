"""What a restore is asked to do (RestoreOptions, Overwrite) and what it did (RestoreResult)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Overwrite(enum.Enum):
    """What to do with a file that already exists in the target."""

    ALWAYS = "always"
    IF_CHANGED = "if-changed"  # rewrite unless size and mtime match the snapshot's
    IF_NEWER = "if-newer"  # rewrite only if the snapshot's copy is newer
    NEVER = "never"


@dataclass
class RestoreOptions:
    includes: list[str] = field(default_factory=list)
    excludes: list[str] = field(default_factory=list)
    overwrite: Overwrite = Overwrite.IF_CHANGED
    dry_run: bool = False  # plan and count, write nothing
    verify: bool = False  # read every restored file back and check it against the snapshot
    delete: bool = False  # remove what the target has and the snapshot lacks
    #: Restore the contents of this directory of the snapshot into the target (as restic's
    #: `snapshot:subfolder`): `media` puts media/... straight into the live media folder.
    #: Includes and excludes are then relative to it.
    subtree: str | None = None


@dataclass
class RestoreResult:
    files: int = 0
    dirs: int = 0
    symlinks: int = 0
    bytes_written: int = 0  # file content written (or to be written, in a dry run)
    files_skipped: int = 0  # already in the target, left as they are (--overwrite)
    deleted: int = 0  # entries removed with --delete
    files_verified: int = 0
    hardlinks: int = 0  # files of `files` restored as another link to an earlier one
    special: int = 0  # FIFOs and device nodes created (or to be, in a dry run)
    sockets_skipped: int = 0  # socket nodes, never created
    #: one line per file that could not be restored or verified (path, then why)
    errors: list[str] = field(default_factory=list)
    #: one line per fact the target could not take (an extended attribute it refused)
    warnings: list[str] = field(default_factory=list)
    #: (display path, bytes) of every file written, or to be written in a dry run
    planned: list[tuple[str, int]] = field(default_factory=list)
