"""Back up what a program writes on its standard output as one file (`snapshot command`).

`pg_dump ... | snapstore snapshot stdin` cannot see pg_dump fail: a dump that died half-way
still becomes a snapshot (restic issue #4251; restic's answer is `--stdin-from-command`).
Here the program is run by `CommandStream`, without a shell, and its exit status decides: a
non-zero exit or a death by signal raises `DumpFailed` (with the tail of its stderr) as the
content closes, which aborts the snapshot, so none is recorded. A program that exits 0
having written nothing is refused too, unless `allow_empty`: an empty dump is more likely a
broken producer than an empty database.

What the snapshot records: one file, `name`; `paths` is `[name]`, the same every night
whatever the program's arguments, so that the parent is yesterday's snapshot of the same
name and a database dump is stored as deltas against it; metadata `command` names the
program by its basename (never its arguments, which may hold a password) and its exit
status.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import BinaryIO, cast

from snapstore.archiver.source import ChunkingProfile, EntryKind, ErrorCallback, SourceEntry
from snapstore.errors import SourceError, UsageError
from snapstore.sources.command import CommandStream, display_name
from snapstore.sources.stdin import CountingReader, check_stream_name


class ProgramSource:
    """One FILE entry at `(name,)`: the standard output of `argv`, which must exit 0."""

    def __init__(
        self,
        argv: Sequence[str],
        name: str,
        *,
        profile: ChunkingProfile = ChunkingProfile.DATABASE,
        mode: int = 0o600,
        env: Mapping[str, str] | None = None,
        allow_empty: bool = False,
    ) -> None:
        if not argv or not argv[0]:
            raise UsageError("no program was given to run")
        check_stream_name(name)
        self.argv = list(argv)
        self.name = name
        self.profile = profile
        self.mode = mode
        self.env = env
        self.allow_empty = allow_empty
        self.program = display_name(self.argv)
        self.exit_status: int | None = None
        self._read = False

    @property
    def kind(self) -> str:
        return "command"

    def describe(self) -> list[str]:
        return [self.name]

    def metadata(self) -> dict[str, object]:
        return {
            "command": {"name": self.name, "program": self.program, "exit_status": self.exit_status}
        }

    def entries(self, on_error: ErrorCallback) -> Iterator[SourceEntry]:
        yield SourceEntry(
            (self.name.encode(),),
            EntryKind.FILE,
            mode=self.mode,
            mtime_ns=time.time_ns(),
            open_content=self._open,
            profile=self.profile,
        )

    @contextlib.contextmanager
    def _open(self) -> Iterator[BinaryIO]:
        if self._read:
            raise SourceError(f"{self.program}: a program's output can be read only once")
        self._read = True
        with CommandStream(self.argv, env=self.env, name=self.program) as out:
            counted = CountingReader(out)
            yield cast(BinaryIO, counted)
        self.exit_status = 0  # CommandStream raised DumpFailed for anything else
        if not counted.count and not self.allow_empty:
            raise SourceError(
                f"{self.program} exited 0 but wrote nothing, so no snapshot was recorded "
                "(--allow-empty records an empty file)"
            )
