"""Pack descriptors kept open between reads (backend/open_files.py), alone and in the local
backend: at most the limit stay open, none is closed under a reader, and a pack removed or
saved again through the backend is opened anew."""

from __future__ import annotations

import gc
import os
import threading
from pathlib import Path

import pytest

from snapstore.backend.base import FileType, Handle
from snapstore.backend.local import LocalBackend
from snapstore.backend.open_files import OpenFiles
from snapstore.errors import BackendError, ObjectNotFound


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def files(tmp_path: Path, count: int) -> list[str]:
    paths = []
    for n in range(count):
        path = tmp_path / f"pack{n}"
        path.write_bytes(bytes([n]) * (n + 1))
        paths.append(str(path))
    return paths


def test_a_file_read_again_is_not_opened_again(tmp_path: Path) -> None:
    (path,) = files(tmp_path, 1)
    opened = OpenFiles()
    before = open_descriptors()
    with opened.reading(path) as (fd, size):
        first = fd
        assert size == 1 and os.pread(fd, 1, 0) == b"\0"
    with opened.reading(path) as (fd, _):
        assert fd == first
    assert open_descriptors() == before + 1
    opened.close()
    assert open_descriptors() == before


def test_no_more_than_the_limit_stay_open(tmp_path: Path) -> None:
    paths = files(tmp_path, 10)
    opened = OpenFiles(limit=3)
    before = open_descriptors()
    for n, path in enumerate(paths * 2):
        with opened.reading(path) as (fd, size):
            assert os.pread(fd, size, 0) == bytes([n % 10]) * (n % 10 + 1)
        assert open_descriptors() <= before + 3
    opened.close()
    assert open_descriptors() == before


def test_a_descriptor_dropped_while_read_is_closed_only_when_the_read_ends(tmp_path: Path) -> None:
    paths = files(tmp_path, 3)
    opened = OpenFiles(limit=1)
    before = open_descriptors()
    with opened.reading(paths[2]) as (fd, _):
        opened.drop(paths[2])
        with opened.reading(paths[0]), opened.reading(paths[1]):  # evictions under the reader too
            pass
        assert os.pread(fd, 3, 0) == b"\2\2\2"  # still this file's descriptor
    opened.close()
    assert open_descriptors() == before


def test_a_file_that_cannot_be_opened_raises_and_leaves_nothing_open(tmp_path: Path) -> None:
    opened = OpenFiles()
    before = open_descriptors()
    with pytest.raises(FileNotFoundError), opened.reading(str(tmp_path / "missing")):
        pass
    assert open_descriptors() == before


def test_threads_reading_many_files_each_get_their_own_bytes(tmp_path: Path) -> None:
    paths = files(tmp_path, 20)
    opened = OpenFiles(limit=4)
    before = open_descriptors()
    wrong: list[str] = []

    def read(offset: int) -> None:
        for n in range(400):
            k = (n + offset) % 20
            with opened.reading(paths[k]) as (fd, size):
                if os.pread(fd, size, 0) != bytes([k]) * (k + 1):
                    wrong.append(paths[k])
            if n % 7 == 0:
                opened.drop(paths[(k + 3) % 20])

    threads = [threading.Thread(target=read, args=(t,)) for t in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []
    opened.close()
    assert open_descriptors() == before


PACK = Handle(FileType.PACK, "ab" + "0" * 62)


@pytest.fixture
def backend(tmp_path: Path) -> LocalBackend:
    local = LocalBackend(tmp_path / "repo", fsync=False)
    local.create()
    return local


def test_a_removed_pack_is_not_read_through_a_kept_descriptor(backend: LocalBackend) -> None:
    backend.save(PACK, b"pack bytes")
    assert backend.load(PACK, 0, 4) == b"pack"
    backend.remove(PACK)
    with pytest.raises(ObjectNotFound):
        backend.load(PACK, 0, 4)
    backend.close()


def test_a_pack_saved_again_is_read_anew(backend: LocalBackend) -> None:
    backend.save(PACK, b"first bytes")
    assert backend.load(PACK, 0, 5) == b"first"
    backend.save(PACK, b"other bytes, longer")  # repair writes a pack under its name again
    assert backend.load(PACK) == b"other bytes, longer"
    assert backend.load(PACK, 13, 6) == b"longer"
    backend.close()


def test_a_pack_cut_short_behind_the_backends_back_is_an_error_not_short_bytes(backend: LocalBackend) -> None:
    backend.save(PACK, b"0123456789")
    assert backend.load(PACK, 0, 2) == b"01"
    path = Path(backend.location, "data", "ab", PACK.name)
    os.truncate(path, 5)  # the same file, shorter: the kept size is stale
    with pytest.raises(BackendError, match="past the end|shrank"):
        backend.load(PACK, 4, 4)
    with pytest.raises(BackendError, match="past the end"):
        backend.load(PACK, 8, 4)
    assert backend.load(PACK) == b"01234"
    backend.close()


def test_closing_the_backend_closes_its_pack_descriptors(tmp_path: Path) -> None:
    before = open_descriptors()
    local = LocalBackend(tmp_path / "repo", fsync=False)
    local.create()
    for n in range(5):
        handle = Handle(FileType.PACK, f"{n:02x}" + "0" * 62)
        local.save(handle, b"x" * 10)
        assert local.load(handle, 2, 3) == b"xxx"
    assert open_descriptors() == before + 5
    local.close()
    assert open_descriptors() == before


def test_a_backend_dropped_without_close_leaves_nothing_open(tmp_path: Path) -> None:
    before = open_descriptors()
    local = LocalBackend(tmp_path / "repo", fsync=False)
    local.create()
    local.save(PACK, b"x" * 10)
    assert local.load(PACK, 0, 3) == b"xxx"
    assert open_descriptors() == before + 1
    del local
    gc.collect()
    assert open_descriptors() == before
