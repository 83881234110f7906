"""A writer killed with SIGKILL never leaves a partial object that list or load would show.

Each test forks a child that saves through LocalBackend and kills it mid-write; the parent then
looks at the repository with a fresh backend, as the next process after a crash would.
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from snapstore.backend import layout
from snapstore.backend.base import FileType, Handle
from snapstore.backend.local import LocalBackend
from snapstore.errors import ObjectNotFound

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")

BIG = 32 * 1024 * 1024


def content(number: int, size: int = BIG) -> bytes:
    return random.Random(number).randbytes(size)


def fork_writer(body: Callable[[], None]) -> int:
    """Run `body` in a child process that exits without touching pytest's state."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        status = 1
        try:
            body()
            status = 0
        finally:
            os._exit(status)
    return pid


def kill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status), "the writer finished before it could be killed"


def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the writer"
        time.sleep(0.005)


def temp_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return [p for p in folder.iterdir() if p.name.startswith(layout.TEMP_PREFIX)]


def test_kill_mid_write_leaves_nothing_visible(tmp_path: Path) -> None:
    LocalBackend(tmp_path).create()
    handle = Handle(FileType.PACK, "ab" + "0" * 62)
    shard = tmp_path / "data" / "ab"

    def slow_save() -> None:
        real_write = os.write

        def slow_write(fd: int, data: Any) -> int:  # about 1 MiB per 20 ms
            time.sleep(0.02)
            return real_write(fd, data)

        os.write = slow_write  # only in the child
        LocalBackend(tmp_path).save(handle, content(1))

    pid = fork_writer(slow_save)
    wait_for(lambda: any(p.stat().st_size >= 2 << 20 for p in temp_files(shard)))
    kill(pid)

    backend = LocalBackend(tmp_path)
    assert temp_files(shard), "the killed writer's temporary file should still be there"
    assert list(backend.list(FileType.PACK)) == []
    with pytest.raises(ObjectNotFound):
        backend.load(handle)
    with pytest.raises(ObjectNotFound):
        backend.stat(handle)

    # the next writer is not disturbed by the leftover and the object appears whole
    backend.save(handle, content(1))
    assert backend.load(handle) == content(1)
    assert [info.handle for info in backend.list(FileType.PACK)] == [handle]


@pytest.mark.parametrize("delay", [0.05, 0.15, 0.3])
def test_kill_at_any_moment_shows_only_whole_objects(tmp_path: Path, delay: float) -> None:
    LocalBackend(tmp_path).create()
    size = 8 * 1024 * 1024

    def save_many() -> None:
        backend = LocalBackend(tmp_path)
        for number in range(1000):
            backend.save(Handle(FileType.PACK, f"{number:04x}"), content(number, size))

    pid = fork_writer(save_many)
    wait_for(lambda: (tmp_path / "data").is_dir() and any((tmp_path / "data").iterdir()))
    time.sleep(delay)
    kill(pid)

    backend = LocalBackend(tmp_path)
    listed = list(backend.list(FileType.PACK))
    for info in listed:
        number = int(info.handle.name, 16)
        assert info.size == size
        assert backend.load(info.handle) == content(number, size)
    names = {info.handle.name for info in listed}
    for shard in (tmp_path / "data").iterdir():
        for path in shard.iterdir():
            assert path.name in names or path.name.startswith(layout.TEMP_PREFIX)
