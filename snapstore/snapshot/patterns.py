"""Exclude patterns, one rule for backup and restore.

A pattern is an fnmatch glob (case-sensitive; `*` also matches `/`) tried against the whole
absolute path and against the basename, so `*.log` excludes every log file and
`/home/*/.cache` one directory in each home.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Sequence


class PathPatterns:
    def __init__(self, patterns: Sequence[str | bytes]) -> None:
        self._patterns = [os.fsencode(p) for p in patterns]

    def __bool__(self) -> bool:
        return bool(self._patterns)

    def matches(self, path: bytes) -> bool:
        """True when a pattern matches the absolute path or its basename."""
        name = os.path.basename(path)
        return any(
            fnmatch.fnmatchcase(path, pattern) or fnmatch.fnmatchcase(name, pattern)
            for pattern in self._patterns
        )
