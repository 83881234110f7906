"""A wrapper that spreads calls over a few backends, each used by one thread at a time.

For connections that must not be shared between threads: one paramiko SFTP session answers
requests in order and loses replies when two threads wait on it at once. The pool opens a
member (a connection) only when every open one is busy, up to `size`, and makes further
callers wait for a free one, so `size` also bounds the connections in use. A member that
failed with a TransientBackendError is closed and dropped, since its connection may be dead;
the next call that needs one opens a fresh member (and the retry wrapper above makes that
call again).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from snapstore.backend.base import Backend, FileInfo, FileType, Handle
from snapstore.errors import SnapstoreError, TransientBackendError


class PooledBackend:
    """Calls go to one of up to `size` backends made by `factory` when first needed."""

    def __init__(self, factory: Callable[[], Backend], *, size: int, location: str) -> None:
        if size < 1:
            raise ValueError("a pool needs at least one member")
        self._factory = factory
        self._size = size
        self._location = location
        self._idle: list[Backend] = []
        self._open = 0
        self._closed = False
        self._cond = threading.Condition()

    @property
    def location(self) -> str:
        return self._location

    def create(self) -> None:
        with self._member() as member:
            member.create()

    def save(self, handle: Handle, data: bytes) -> None:
        with self._member() as member:
            member.save(handle, data)

    def load(self, handle: Handle, offset: int = 0, length: int | None = None) -> bytes:
        with self._member() as member:
            return member.load(handle, offset, length)

    def stat(self, handle: Handle) -> FileInfo:
        with self._member() as member:
            return member.stat(handle)

    def remove(self, handle: Handle) -> None:
        with self._member() as member:
            member.remove(handle)

    def list(self, file_type: FileType) -> Iterator[FileInfo]:
        """The whole listing is read on one member before the first item is handed out, so a
        caller that loads each listed object does not need a second member meanwhile."""
        with self._member() as member:
            found = list(member.list(file_type))
        return iter(found)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._open -= len(idle)
            self._cond.notify_all()
        for member in idle:
            member.close()

    @contextmanager
    def _member(self) -> Iterator[Backend]:
        member = self._checkout()
        try:
            yield member
        except TransientBackendError:
            self._drop(member)
            raise
        except BaseException:
            self._checkin(member)
            raise
        self._checkin(member)

    def _checkout(self) -> Backend:
        with self._cond:
            while not self._idle and self._open >= self._size:
                self._cond.wait()
            if self._idle:
                return self._idle.pop()
            self._open += 1
        try:
            return self._factory()
        except BaseException:
            with self._cond:
                self._open -= 1
                self._cond.notify()
            raise

    def _checkin(self, member: Backend) -> None:
        with self._cond:
            if not self._closed:
                self._idle.append(member)
                self._cond.notify()
                return
            self._open -= 1
        member.close()

    def _drop(self, member: Backend) -> None:
        with self._cond:
            self._open -= 1
            self._cond.notify()
        with contextlib.suppress(SnapstoreError):  # it is dropped because it failed already
            member.close()
