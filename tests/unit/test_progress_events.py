"""What the library reports through snapstore.Progress (issue 15, item 1): a snapshot of real
files scans them for totals and says of each file whether it is new, changed or unchanged; a
restore scans the snapshot's tree; check and prune count packs; the work done adds up to
the totals."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

from snapstore.archiver.archiver import Archiver, SnapshotOptions
from snapstore.checker.checker import CheckOptions, check_repository
from snapstore.progress import ItemStatus, NoProgress, Scan
from snapstore.repository.repository import Repository
from snapstore.restorer.restorer import RestoreOptions, Restorer
from snapstore.sources.files import FileSource
from tests.conftest import reopen


class Recorder(NoProgress):
    """Every event, per phase (advance may come from worker threads)."""

    wants_totals = True  # NoProgress's is False: it shows nothing

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.phases: list[str] = []
        self.totals_seen: dict[str, list[tuple[int, int | None, bool]]] = {}
        self.done: dict[str, list[tuple[str, ItemStatus | None]]] = {}
        self.bytes_done: dict[str, int] = {}

    def phase(self, name: str, unit: str = "files") -> None:
        self.phases.append(name)

    def totals(self, items: int, nbytes: int | None, *, final: bool = True) -> None:
        with self._lock:
            self.totals_seen.setdefault(self.phases[-1], []).append((items, nbytes, final))

    def advance(self, bytes_done: int, bytes_added: int) -> None:
        with self._lock:
            self.bytes_done[self.phases[-1]] = self.bytes_done.get(self.phases[-1], 0) + bytes_done

    def item_done(self, path: str, status: ItemStatus | None = None) -> None:
        self.done.setdefault(self.phases[-1], []).append((path, status))


def tree(root: Path) -> dict[str, bytes]:
    files = {"a.txt": b"a" * 5000, "sub/b.bin": os.urandom(300_000), "sub/c": b"", "d": os.urandom(70_000)}
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return files


def take(repo: Repository, root: Path) -> Recorder:
    recorder = Recorder()
    Archiver(repo, recorder).run(FileSource([root]), SnapshotOptions())
    return recorder


def test_a_snapshot_scans_its_files_and_reports_each_one(repo: Repository, tmp_path: Path) -> None:
    files = tree(tmp_path)
    size = sum(len(d) for d in files.values())
    first = take(repo, tmp_path)
    assert first.phases == ["snapshot"]
    assert first.totals_seen["snapshot"][-1] == (len(files), size, True)
    assert first.bytes_done["snapshot"] == size
    statuses = dict(first.done["snapshot"])
    assert statuses == {str(tmp_path / name): ItemStatus.NEW for name in files}

    (tmp_path / "d").write_bytes(os.urandom(70_001))  # changed
    (tmp_path / "e").write_bytes(b"new")  # new
    second = take(reopen(repo), tmp_path)
    statuses = dict(second.done["snapshot"])
    assert statuses[str(tmp_path / "d")] is ItemStatus.CHANGED
    assert statuses[str(tmp_path / "e")] is ItemStatus.NEW
    assert statuses[str(tmp_path / "a.txt")] is ItemStatus.UNCHANGED
    assert statuses[str(tmp_path / "sub/b.bin")] is ItemStatus.UNCHANGED
    # unchanged files count as got through, so the percentage reaches 100
    assert second.bytes_done["snapshot"] == second.totals_seen["snapshot"][-1][1] == size + 4


def test_the_scan_applies_the_source_s_excludes(repo: Repository, tmp_path: Path) -> None:
    tree(tmp_path)
    recorder = Recorder()
    source = FileSource([tmp_path], ["*.bin"])
    Archiver(repo, recorder).run(source, SnapshotOptions())
    assert recorder.totals_seen["snapshot"][-1] == (3, 75_000, True)
    assert source.metadata()["files"]["files"] == 3  # the scan counted nothing of its own


def test_a_restore_scans_the_selection_and_reports_each_file(repo: Repository, tmp_path: Path) -> None:
    files = tree(tmp_path / "src")
    snapshot = Archiver(repo).run(FileSource([tmp_path / "src"]), SnapshotOptions()).snapshot
    recorder = Recorder()
    sub = str(tmp_path / "src" / "sub")
    Restorer(reopen(repo), recorder).restore(snapshot, tmp_path / "out", options=RestoreOptions(includes=[sub]))
    wanted = len(files["sub/b.bin"]) + len(files["sub/c"])
    assert recorder.totals_seen["restore"][-1] == (2, wanted, True)
    assert recorder.bytes_done["restore"] == wanted
    assert sorted(path for path, _ in recorder.done["restore"]) == [sub + "/b.bin", sub + "/c"]


def test_check_counts_snapshots_then_packs(repo: Repository, tmp_path: Path) -> None:
    tree(tmp_path)
    take(repo, tmp_path)
    recorder = Recorder()
    report = check_repository(reopen(repo, load_index=False), CheckOptions(read_data=True),
                              progress=recorder)  # fmt: skip
    assert recorder.phases == ["index", "snapshots", "read data"]
    assert recorder.totals_seen["snapshots"] == [(1, None, True)]
    assert len(recorder.done["snapshots"]) == 1
    packs, nbytes, _ = recorder.totals_seen["read data"][0]
    assert packs == report.packs_read == len(recorder.done["read data"])
    assert nbytes == report.bytes_read == recorder.bytes_done["read data"]


def test_a_scan_that_fails_says_nothing_more_and_the_work_goes_on() -> None:
    recorder = Recorder()
    recorder.phase("snapshot")

    def sizes() -> Iterator[int]:
        yield 5
        raise OSError("gone")

    with Scan(sizes, recorder):
        pass
    # no final totals from half a count
    assert all(not final for _, _, final in recorder.totals_seen.get("snapshot", []))


def test_a_scan_is_stopped_when_the_work_fails() -> None:
    recorder = Recorder()
    recorder.phase("snapshot")
    release = threading.Event()

    def sizes() -> Iterator[int]:
        while True:
            release.wait()
            yield 1

    try:
        with Scan(sizes, recorder):
            release.set()
            raise KeyError("the work failed")
    except KeyError:
        pass
    assert all(not final for _, _, final in recorder.totals_seen.get("snapshot", []))


class CountedScans(FileSource):
    """A files source that counts the scans started on it."""

    scans = 0

    def scan(self) -> Iterator[int]:
        self.scans += 1
        return super().scan()


class Silent(Recorder):
    """Records events, but shows no totals (as -q, or no terminal and no --json)."""

    wants_totals = False


def test_no_scan_runs_for_a_progress_that_shows_no_totals(repo: Repository, tmp_path: Path) -> None:
    files = tree(tmp_path)
    silent, source = Silent(), CountedScans([tmp_path])
    result = Archiver(repo, silent).run(source, SnapshotOptions())
    assert source.scans == 0 and "snapshot" not in silent.totals_seen
    assert result.snapshot.summary.files == len(files)  # the work itself is the same
    assert silent.bytes_done["snapshot"] == sum(len(d) for d in files.values())

    recorder, source = Recorder(), CountedScans([tmp_path])
    Archiver(reopen(repo), recorder).run(source, SnapshotOptions())
    assert source.scans == 1 and recorder.totals_seen["snapshot"][-1][2] is True

    source = CountedScans([tmp_path])
    Archiver(reopen(repo)).run(source, SnapshotOptions())  # NoProgress: nothing shown
    assert source.scans == 0


def test_a_scan_for_a_progress_without_totals_never_starts() -> None:
    def sizes() -> Iterator[int]:
        raise AssertionError("scanned")

    silent = Silent()
    silent.phase("restore")
    with Scan(sizes, silent):
        pass
    assert silent.totals_seen == {}
