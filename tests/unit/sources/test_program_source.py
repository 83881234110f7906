"""ProgramSource (`snapshot command`): the producer's exit status decides whether a snapshot
exists; its output, nothing else, is the one file; its arguments are never recorded."""

from __future__ import annotations

import random
import signal
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from snapstore.archiver.archiver import Archiver, BackupResult, SnapshotOptions
from snapstore.archiver.source import ChunkingProfile
from snapstore.errors import DumpFailed, SourceError, UsageError
from snapstore.pack import BlobType
from snapstore.repository.repository import Repository
from snapstore.snapshot.content import chunk_ids
from snapstore.snapshot.store import find_node, list_snapshots
from snapstore.sources.program import ProgramSource
from tests.conftest import assert_repository_ok

WHEN = datetime(2026, 5, 1, 3, 0, tzinfo=UTC)


def sh(script: str) -> list[str]:
    return ["sh", "-c", script]


def take(repo: Repository, source: ProgramSource, day: int = 0) -> BackupResult:
    options = SnapshotOptions(time=WHEN + timedelta(days=day), host="db-host", user="backup")
    return Archiver(repo).run(source, options)


def stored(repo: Repository, result: BackupResult, name: str = "db.dump") -> bytes:
    node = find_node(repo, result.snapshot.tree, name)
    assert node is not None
    return b"".join(repo.load_blob(BlobType.DATA, i) for i in chunk_ids(repo, node))


def test_output_is_stored_and_only_the_program_name_recorded(repo: Repository, tmp_path: Path) -> None:
    data = random.Random(1).randbytes(300_000)
    (tmp_path / "dump").write_bytes(data)
    argv = [sys.executable, "-c", "import shutil, sys; shutil.copyfileobj(open(sys.argv[1], 'rb'), "
            "sys.stdout.buffer)", str(tmp_path / "dump"), "--password=hunter2"]
    result = take(repo, ProgramSource(argv, "db.dump"))
    snap = result.snapshot
    assert stored(repo, result) == data
    assert (snap.source, snap.paths, result.errors) == ("command", ["db.dump"], [])
    program = Path(sys.executable).name
    assert snap.metadata == {"command": {"name": "db.dump", "program": program, "exit_status": 0}}
    assert "hunter2" not in repr(snap)
    assert_repository_ok(repo)


def test_a_failed_producer_records_nothing_and_names_its_error(repo: Repository) -> None:
    script = ("printf 'half a dump'; echo 'pg_dump: error: connection to server failed' >&2; "
              "echo 'pg_dump: detail: the server went away' >&2; exit 3")
    with pytest.raises(DumpFailed) as caught:
        take(repo, ProgramSource(sh(script), "db.dump"))
    assert caught.value.returncode == 3
    assert str(caught.value) == "sh exited 3: pg_dump: error: connection to server failed"
    assert "the server went away" in caught.value.stderr_tail
    assert list_snapshots(repo) == []
    assert_repository_ok(repo)


def test_a_producer_killed_by_a_signal_records_nothing(repo: Repository) -> None:
    with pytest.raises(DumpFailed) as caught:
        take(repo, ProgramSource(sh("echo partial; kill -9 $$"), "db.dump"))
    assert caught.value.returncode == -signal.SIGKILL
    assert "was killed" in str(caught.value)
    assert list_snapshots(repo) == []
    assert_repository_ok(repo)


def test_a_program_that_cannot_run_records_nothing(repo: Repository, tmp_path: Path) -> None:
    with pytest.raises(DumpFailed, match="cannot execute"):
        take(repo, ProgramSource([str(tmp_path / "no-such-dump")], "db.dump"))
    assert list_snapshots(repo) == []


def test_empty_output_is_refused_unless_allowed(repo: Repository) -> None:
    with pytest.raises(SourceError, match="exited 0 but wrote nothing"):
        take(repo, ProgramSource(["true"], "db.dump"))
    assert list_snapshots(repo) == []
    result = take(repo, ProgramSource(["true"], "db.dump", allow_empty=True))
    assert stored(repo, result) == b""
    assert len(list_snapshots(repo)) == 1
    assert_repository_ok(repo)


def test_failure_wins_over_empty_output(repo: Repository) -> None:
    with pytest.raises(DumpFailed, match="exited 2: boom"):
        take(repo, ProgramSource(sh("echo boom >&2; exit 2"), "db.dump", allow_empty=True))


@pytest.mark.parametrize("argv, name", [([], "db.dump"), ([""], "db.dump"), (["true"], "a/b"), (["true"], "")])
def test_bad_arguments_are_usage_errors(argv: list[str], name: str) -> None:
    with pytest.raises(UsageError):
        ProgramSource(argv, name)


def test_day_two_finds_day_one_whatever_the_arguments(repo: Repository, tmp_path: Path) -> None:
    rng = random.Random(5)
    rows = [f"{i}\t{rng.randrange(10**9)}\tuser{rng.randrange(10**4)}\n" for i in range(30_000)]
    day_one = "".join(rows).encode()
    for i in rng.sample(range(len(rows)), len(rows) // 50):
        rows[i] = rows[i].replace("user", "edited user")
    day_two = "".join(rows).encode()
    (tmp_path / "1.dump").write_bytes(day_one)
    (tmp_path / "2.dump").write_bytes(day_two)

    first = take(repo, ProgramSource(["cat", str(tmp_path / "1.dump")], "db.dump"))
    second = take(repo, ProgramSource(["cat", str(tmp_path / "2.dump")], "db.dump"), day=1)
    assert second.snapshot.paths == first.snapshot.paths == ["db.dump"]
    assert second.snapshot.parent == first.snapshot.id
    assert second.snapshot.summary.deltas_added > 0
    assert stored(repo, second) == day_two and stored(repo, first) == day_one
    assert_repository_ok(repo)


def test_files_profile_is_passed_on(repo: Repository) -> None:
    result = take(repo, ProgramSource(["echo", "hello"], "hello.txt", profile=ChunkingProfile.FILES))
    assert stored(repo, result, "hello.txt") == b"hello\n"
    assert list(result.snapshot.chunker) == ["files"]
