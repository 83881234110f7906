"""Exclude patterns, one rule for backup and restore.

A pattern is an fnmatch glob (case-sensitive; `*` also matches `/`) tried against the whole
absolute path and against the basename, so `*.log` excludes every log file and
`/home/*/.cache` one directory in each home. `ignore_case` (restic's --iexclude) compares
both sides casefolded, so `*.JPG` also drops `a.jpg` (non-ASCII names too: they are decoded
as UTF-8 with surrogate escapes for bytes that are not).

A pattern file (`read_pattern_lines`) holds one pattern a line; surrounding whitespace is
trimmed, and blank lines and lines starting with `#` are ignored, as restic's and borg's
--exclude-file are read.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable, Sequence


def _fold(value: bytes) -> bytes:
    return value.decode("utf-8", "surrogateescape").casefold().encode("utf-8", "surrogateescape")


class PathPatterns:
    def __init__(self, patterns: Sequence[str | bytes], *, ignore_case: bool = False) -> None:
        self._ignore_case = ignore_case
        encoded = [os.fsencode(p) for p in patterns]
        self._patterns = [_fold(p) for p in encoded] if ignore_case else encoded

    def __bool__(self) -> bool:
        return bool(self._patterns)

    def matches(self, path: bytes) -> bool:
        """True when a pattern matches the absolute path or its basename."""
        if not self._patterns:
            return False
        if self._ignore_case:
            path = _fold(path)
        name = os.path.basename(path)
        return any(
            fnmatch.fnmatchcase(path, pattern) or fnmatch.fnmatchcase(name, pattern)
            for pattern in self._patterns
        )


def read_pattern_lines(lines: Iterable[str]) -> list[str]:
    """The patterns of a pattern file's lines: trimmed, without blanks and `#` comments."""
    patterns = []
    for line in lines:
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            patterns.append(stripped)
    return patterns
