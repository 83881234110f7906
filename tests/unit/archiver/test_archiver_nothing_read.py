"""A snapshot in which nothing could be read is not recorded (issue 10, item 3).

An empty snapshot would be the newest of its group, so `forget --keep-last 1` would keep it
and delete the real backup before it. A snapshot that read something and missed the rest is
still recorded, with its errors (the command line exits 3).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from snapstore.archiver.archiver import Archiver, SnapshotOptions
from snapstore.archiver.source import EntryKind, ErrorCallback, SourceEntry
from snapstore.backend.base import FileType
from snapstore.backend.memory import MemoryBackend
from snapstore.crypto.kdf import TEST_KDF
from snapstore.errors import SourceError
from snapstore.repository.repository import Repository
from snapstore.snapshot.store import list_snapshots, walk
from tests.conftest import PASSWORD, assert_repository_ok
from tests.support.memory_source import Dir, File, MemorySource

OPTIONS = SnapshotOptions(time=datetime(2026, 5, 1, tzinfo=UTC), host="h", user="u")
MISSING = FileNotFoundError(2, "No such file or directory")
DENIED = PermissionError(13, "Permission denied")

Step = SourceEntry | tuple[tuple[bytes, ...], Exception]


class ScriptedSource(MemorySource):
    """Entries and errors in a given order, as FileSource interleaves them."""

    def __init__(self, *script: Step) -> None:
        super().__init__({})
        self.script = script

    def entries(self, on_error: ErrorCallback) -> Iterator[SourceEntry]:
        for step in self.script:
            if isinstance(step, SourceEntry):
                yield step
            else:
                on_error(*step)


def directory(*path: bytes) -> SourceEntry:
    return SourceEntry(path, EntryKind.DIR, mode=0o755)


#: (what happened, source, the error's message or None when the snapshot is recorded)
CASES: list[tuple[str, MemorySource, str | None]] = [
    (
        "every path missing below an existing mount point (an unmounted volume)",
        ScriptedSource(
            directory(b"mnt"),
            directory(b"mnt", b"backup"),
            ((b"mnt", b"backup", b"etc"), MISSING),
            ((b"mnt", b"backup", b"home"), MISSING),
        ),
        "nothing could be read, so no snapshot was recorded: "
        "/mnt/backup/etc: No such file or directory (and 1 more)",
    ),
    (
        "the one stream cannot be read",
        MemorySource({"db.dump": File(b"x", open_error=OSError(5, "Input/output error"))}),
        "nothing could be read, so no snapshot was recorded: /db.dump: Input/output error",
    ),
    (
        "a directory whose only files cannot be opened",
        MemorySource({"a": Dir(), "a/1": File(b"1", open_error=DENIED)}),
        "nothing could be read, so no snapshot was recorded: /a/1: Permission denied",
    ),
    (
        "the only path is a directory that cannot be listed",
        ScriptedSource(((b"srv",), DENIED), directory(b"srv")),
        "nothing could be read, so no snapshot was recorded: /srv: Permission denied",
    ),
    (
        "one path missing, another an empty directory that was read",
        ScriptedSource(directory(b"mnt"), ((b"mnt", b"gone"), MISSING), directory(b"mnt", b"here")),
        None,
    ),
    (
        "one file unreadable beside one that was read",
        MemorySource({"a/bad": File(b"x", open_error=DENIED), "a/good": b"good"}),
        None,
    ),
    ("nothing to read and no error (every path excluded on purpose)", MemorySource({}), None),
]


def test_a_snapshot_is_recorded_only_when_something_was_read() -> None:
    for what, source, refusal in CASES:
        repo = Repository.init(MemoryBackend(), PASSWORD, kdf=TEST_KDF)
        if refusal is None:
            result = Archiver(repo).run(source, OPTIONS)
            assert len(list_snapshots(repo)) == 1, what
            assert result.snapshot.summary.errors == len(result.errors), what
        else:
            with pytest.raises(SourceError) as caught:
                Archiver(repo).run(source, OPTIONS)
            assert str(caught.value) == refusal, what
            assert not list(repo.backend.list(FileType.SNAPSHOT)), what
        assert_repository_ok(repo)
        repo.close()


def test_a_partial_snapshot_keeps_what_was_read_and_its_errors(repo: Repository) -> None:
    source = ScriptedSource(
        ((b"mnt", b"gone"), MISSING), directory(b"mnt", b"here"), ((b"mnt", b"lost"), MISSING)
    )
    result = Archiver(repo).run(source, OPTIONS)
    assert result.errors == [
        ("/mnt/gone", "No such file or directory"),
        ("/mnt/lost", "No such file or directory"),
    ]
    (snapshot,) = list_snapshots(repo)
    assert snapshot.summary.errors == 2
    assert [b"/".join(p) for p, _ in walk(repo, snapshot.tree)] == [b"mnt", b"mnt/here"]
    # The same source without the directory that was read records nothing.
    with pytest.raises(SourceError):
        Archiver(repo).run(ScriptedSource(((b"mnt", b"gone"), MISSING)), OPTIONS)
    assert len(list_snapshots(repo)) == 1
    assert_repository_ok(repo)
