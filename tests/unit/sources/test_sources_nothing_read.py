"""Sources whose every path fails give no snapshot; a partial read still gives one."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from snapstore.archiver.archiver import Archiver
from snapstore.backend.base import FileType
from snapstore.errors import SourceError
from snapstore.repository.repository import Repository
from snapstore.snapshot.store import list_snapshots
from snapstore.sources.files import FileSource
from snapstore.sources.stdin import StreamSource
from tests.conftest import assert_repository_ok


def test_files_every_path_missing(repo: Repository, tmp_path: Path) -> None:
    """An unmounted volume: the mount point exists and is empty. Then the volume is back
    but one path is still missing: that snapshot is recorded, with its error."""
    mount = tmp_path / "mnt" / "backup"
    mount.mkdir(parents=True)
    paths = [mount / "etc", mount / "home"]
    with pytest.raises(SourceError, match="nothing could be read") as caught:
        Archiver(repo).run(FileSource(paths))
    assert f"{mount}/etc: No such file or directory (and 1 more)" in str(caught.value)
    assert not list(repo.backend.list(FileType.SNAPSHOT))

    (mount / "etc").mkdir()
    (mount / "etc" / "hosts").write_text("127.0.0.1 localhost\n")
    result = Archiver(repo).run(FileSource(paths))
    assert [path for path, _ in result.errors] == [f"{mount}/home"]
    assert result.snapshot.summary.files == 1
    assert len(list_snapshots(repo)) == 1
    assert_repository_ok(repo)


class BrokenStream(io.RawIOBase):
    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        raise OSError(5, "Input/output error")


def test_stream_that_cannot_be_read(repo: Repository) -> None:
    source = StreamSource(io.BufferedReader(BrokenStream()), "db.dump")
    with pytest.raises(SourceError, match="/db.dump: Input/output error"):
        Archiver(repo).run(source)
    assert not list_snapshots(repo)
    assert_repository_ok(repo)
