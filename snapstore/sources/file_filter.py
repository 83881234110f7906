"""Which entries a walk of the filesystem leaves out: the files source's exclusion rules.

- **Patterns** (`excludes`, case-sensitive; `iexcludes`, case-insensitive; and the lines of
  `exclude_files`, read once here: one pattern a line, `#` comments and blank lines ignored)
  follow snapshot/patterns.py: a glob tried against the absolute path and its basename. A
  matching directory is left out with everything under it.
- **Tagged directories** (`exclude_caches`; `exclude_if_present` names): a directory holding
  a valid `CACHEDIR.TAG` (its first 43 bytes are the signature of the Cache Directory Tagging
  Specification) or a file of one of the given names keeps its own entry and the tag file,
  and loses everything else in it, as borg's --keep-exclude-tags does: a restore shows that
  the cache was there and why it is empty.
- **Other filesystems** (`one_file_system`): a directory on another device than the path
  given (a mount point) is kept as an empty directory, and not entered (restic's and borg's
  --one-file-system). Each path given is compared with its own device, so naming two
  filesystems backs up both.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from snapstore.errors import UsageError
from snapstore.snapshot.patterns import PathPatterns, read_pattern_lines

CACHEDIR_TAG = b"CACHEDIR.TAG"
CACHEDIR_SIGNATURE = b"Signature: 8a477f597d28d172789f06886806bc55"


@dataclass
class ExcludeOptions:
    """How the files source chooses what to leave out (see the module docstring)."""

    excludes: Sequence[str] = ()
    iexcludes: Sequence[str] = ()
    exclude_files: Sequence[str | Path] = ()
    exclude_caches: bool = False
    exclude_if_present: Sequence[str] = ()
    one_file_system: bool = False


def _read_exclude_file(path: str | Path) -> list[str]:
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as handle:
            return read_pattern_lines(handle)
    except OSError as exc:
        raise UsageError(f"cannot read exclude file {os.fsdecode(path)}: {exc.strerror}") from None


class FileFilter:
    def __init__(self, options: ExcludeOptions) -> None:
        from_files = [p for path in options.exclude_files for p in _read_exclude_file(path)]
        self._patterns = PathPatterns([*options.excludes, *from_files])
        self._ipatterns = PathPatterns(options.iexcludes, ignore_case=True)
        self._caches = options.exclude_caches
        self._tags = [os.fsencode(name) for name in options.exclude_if_present]
        self.one_file_system = options.one_file_system

    def excluded(self, path: bytes) -> bool:
        """Whether a pattern leaves out this absolute path."""
        return self._patterns.matches(path) or self._ipatterns.matches(path)

    def tag(self, path: bytes, names: Sequence[bytes]) -> bytes | None:
        """The tag file that empties the directory at `path` (listing `names`), or None."""
        for name in self._tags:
            if name in names:
                return name
        if self._caches and CACHEDIR_TAG in names and _valid_cache_tag(path + b"/" + CACHEDIR_TAG):
            return CACHEDIR_TAG
        return None


def _valid_cache_tag(path: bytes) -> bool:
    """A regular file (not followed if a symlink) starting with the signature."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        return os.read(fd, len(CACHEDIR_SIGNATURE)) == CACHEDIR_SIGNATURE
    except OSError:
        return False
    finally:
        os.close(fd)
