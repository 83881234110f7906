"""Repository locks (SPEC.md section 10): who is using the repository right now, and how.

A lock is an encrypted object in `locks/` (envelope kind LOCK) whose plaintext is a msgpack map
naming the holder (host, pid, user), when it was taken and last refreshed, and whether it is
exclusive. Shared locks coexist; an exclusive lock excludes every other lock.

Taking a lock (the restic way): list `locks/` and stop at a conflicting lock; otherwise write
ours, list again, and if a conflicting lock appeared meanwhile, remove ours and back off. Two
writers racing for exclusive locks may both back off; retrying with a random delay settles it.

A held lock is refreshed by a daemon thread: every `refresh_every` it writes a new lock object
(new refresh time, new random nonce, hence a new name) and then removes the old one. A lock is
**stale** when it has not been refreshed for `stale_after`, or when it was taken on this host
by a process that no longer exists. Stale locks never block anyone; `remove_locks` deletes them.
A holder that could not refresh its lock for `stale_after` must consider it lost (`check`).
"""

from __future__ import annotations

import getpass
import os
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Protocol, TypeVar

import msgpack

from snapstore.backend.base import FileInfo, FileType
from snapstore.errors import IntegrityError, ObjectNotFound, RepositoryLocked, SnapstoreError
from snapstore.ids import Id

LOCK_VERSION = 1
#: A lock not refreshed for this long is stale: its holder is gone or cut off.
STALE_AFTER = timedelta(minutes=30)
#: How often a holder rewrites its lock; well inside STALE_AFTER.
REFRESH_EVERY = timedelta(minutes=5)
_NONCE_SIZE = 16
_FIRST_RETRY_DELAY = 0.1
_MAX_RETRY_DELAY = 5.0

Clock = Callable[[], datetime]
T = TypeVar("T")


def _elapsed() -> float:
    """Seconds on a clock that keeps counting while the machine sleeps (unlike monotonic)."""
    return (
        time.clock_gettime(time.CLOCK_BOOTTIME) if hasattr(time, "CLOCK_BOOTTIME") else time.time()
    )


def utc_now() -> datetime:
    return datetime.now(UTC)


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists on this host (a zombie counts as alive)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists but belongs to someone else
        return True
    return True


class LockObjects(Protocol):
    """What locks need from the repository: whole encrypted objects."""

    def save_object(self, file_type: FileType, plaintext: bytes) -> Id: ...

    def load_object(self, file_type: FileType, name: str) -> bytes: ...

    def list_objects(self, file_type: FileType) -> Iterator[FileInfo]: ...

    def remove_object(self, file_type: FileType, name: str) -> None: ...


@dataclass(frozen=True)
class LockInfo:
    """The content of one lock object."""

    exclusive: bool
    host: str
    pid: int
    user: str
    time: datetime
    refreshed: datetime
    nonce: bytes = b""

    @classmethod
    def new(cls, exclusive: bool, now: datetime) -> LockInfo:
        return cls(
            exclusive,
            socket.gethostname(),
            os.getpid(),
            current_user(),
            now,
            now,
            os.urandom(_NONCE_SIZE),
        )

    def refreshed_at(self, now: datetime) -> LockInfo:
        return replace(self, refreshed=now, nonce=os.urandom(_NONCE_SIZE))

    def encode(self) -> bytes:
        return msgpack.packb(
            {
                "v": LOCK_VERSION,
                "exclusive": self.exclusive,
                "host": self.host,
                "pid": self.pid,
                "user": self.user,
                "time": self.time.isoformat(),
                "refreshed": self.refreshed.isoformat(),
                "nonce": self.nonce,
            },
            use_bin_type=True,
        )

    @classmethod
    def decode(cls, plaintext: bytes) -> LockInfo:
        """Every field of the type the encoder writes (no conversions: `bytes(2**31)` would
        allocate 2 GiB), a pid `os.kill` takes, times with a UTC offset that convert to local
        time."""
        try:
            doc = msgpack.unpackb(plaintext, raw=False)
            if not isinstance(doc, dict) or doc.get("v") != LOCK_VERSION:
                raise ValueError(f"not a version {LOCK_VERSION} lock")
            info = cls(
                exclusive=_field(doc, "exclusive", bool),
                host=_field(doc, "host", str),
                pid=_field(doc, "pid", int),
                user=_field(doc, "user", str),
                time=_lock_time(_field(doc, "time", str)),
                refreshed=_lock_time(_field(doc, "refreshed", str)),
                nonce=_field(doc, "nonce", bytes),
            )
            if not 0 <= info.pid < 2**31:
                raise ValueError(f"pid {info.pid} is out of range")
        except (ValueError, KeyError, TypeError, OverflowError, msgpack.UnpackException) as exc:
            raise IntegrityError(f"lock is malformed: {exc}") from None
        return info

    def is_stale(
        self,
        now: datetime,
        *,
        stale_after: timedelta = STALE_AFTER,
        host: str | None = None,
        alive: Callable[[int], bool] = pid_alive,
    ) -> bool:
        """Not refreshed for `stale_after`, or taken on this host by a process now gone."""
        if now - self.refreshed > stale_after:
            return True
        return self.host == (host if host is not None else socket.gethostname()) and not alive(
            self.pid
        )

    def describe(self) -> str:
        kind = "an exclusive" if self.exclusive else "a shared"
        who = f"{self.user}@{self.host}" if self.user else self.host
        return (
            f"{kind} lock held by {who} (pid {self.pid}) since {self.time.astimezone():%Y-%m-%d %H:%M:%S}, "
            f"refreshed {self.refreshed.astimezone():%H:%M:%S}"
        )


def _field(doc: dict[str, object], key: str, kind: type[T]) -> T:
    value = doc[key]
    if type(value) is not kind:
        raise TypeError(f"lock field {key!r} is not {kind.__name__}")
    return value


def _lock_time(text: str) -> datetime:
    when = datetime.fromisoformat(text)
    if when.tzinfo is None:
        raise ValueError("lock times carry no UTC offset")
    if not 1 < when.astimezone(UTC).year < 9999:  # astimezone() to any zone stays in range
        raise ValueError(f"lock time {text!r} is out of range")
    return when


@dataclass(frozen=True)
class StoredLock:
    """A lock object as listed: its name, and its content unless it could not be read."""

    name: str
    info: LockInfo | None
    error: str = ""

    def describe(self) -> str:
        if self.info is None:
            return f"an unreadable lock locks/{self.name[:16]} ({self.error})"
        return self.info.describe()


def list_locks(objects: LockObjects) -> list[StoredLock]:
    """Every lock object; ones removed while listing are left out, damaged ones kept as such."""
    found = []
    for info in objects.list_objects(FileType.LOCK):
        name = info.handle.name
        try:
            found.append(
                StoredLock(name, LockInfo.decode(objects.load_object(FileType.LOCK, name)))
            )
        except ObjectNotFound:
            continue  # released between the listing and the read
        except IntegrityError as exc:
            found.append(StoredLock(name, None, str(exc)))
    return found


def remove_locks(
    objects: LockObjects,
    *,
    remove_all: bool = False,
    clock: Clock = utc_now,
    stale_after: timedelta = STALE_AFTER,
) -> list[StoredLock]:
    """Deletes stale locks (or, with `remove_all`, every lock); returns what it deleted."""
    now = clock()
    removed = []
    for stored in list_locks(objects):
        stale = stored.info is not None and stored.info.is_stale(now, stale_after=stale_after)
        if remove_all or stale:
            try:
                objects.remove_object(FileType.LOCK, stored.name)
            except ObjectNotFound:
                continue
            removed.append(stored)
    return removed


class RepositoryLock:
    """One lock held by this process; `acquire`, then `release` (the repository's close does)."""

    def __init__(
        self,
        objects: LockObjects,
        exclusive: bool,
        *,
        clock: Clock = utc_now,
        refresh_every: timedelta = REFRESH_EVERY,
        stale_after: timedelta = STALE_AFTER,
    ) -> None:
        self.exclusive = exclusive
        self._objects = objects
        self._clock = clock
        self._refresh_every = refresh_every
        self._stale_after = stale_after
        self._state_lock = threading.Lock()
        self._info: LockInfo | None = None
        self._name: str | None = None
        self._refreshed_at = 0.0
        self._lost = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def name(self) -> str | None:
        with self._state_lock:
            return self._name

    # -- taking and giving back -----------------------------------------------------------
    def acquire(self, retry: float = 0.0) -> None:
        """Takes the lock, waiting up to `retry` seconds; raises RepositoryLocked if it cannot."""
        deadline = time.monotonic() + max(0.0, retry)
        delay = _FIRST_RETRY_DELAY
        while True:
            conflict = self._try_once()
            if conflict is None:
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RepositoryLocked(f"repository is locked: {conflict.describe()}")
            time.sleep(min(remaining, delay * random.uniform(0.5, 1.5)))
            delay = min(delay * 2, _MAX_RETRY_DELAY)
        self._thread = threading.Thread(
            target=self._refresh_loop, name="snapstore-lock", daemon=True
        )
        self._thread.start()

    def _try_once(self) -> StoredLock | None:
        conflict = self._conflict(ignore=None)
        if conflict is not None:
            return conflict
        info = LockInfo.new(self.exclusive, self._clock())
        name = self._objects.save_object(FileType.LOCK, info.encode()).hex()
        try:
            conflict = self._conflict(ignore=name)
        except BaseException:
            self._remove_quietly(name)
            raise
        if conflict is not None:
            self._remove_quietly(name)
            return conflict
        with self._state_lock:
            self._info, self._name = info, name
            self._refreshed_at = _elapsed()
        return None

    def _conflict(self, ignore: str | None) -> StoredLock | None:
        now = self._clock()
        for stored in list_locks(self._objects):
            if stored.name == ignore:
                continue
            if stored.info is None:
                return stored  # cannot tell who holds it: assume the worst
            if stored.info.is_stale(now, stale_after=self._stale_after):
                continue
            if self.exclusive or stored.info.exclusive:
                return stored
        return None

    def release(self) -> None:
        """Stops refreshing and removes the lock object (best effort: a lock left behind is stale
        once this process is gone)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        with self._state_lock:
            name, self._name = self._name, None
        if name is not None:
            self._remove_quietly(name)

    def _remove_quietly(self, name: str) -> None:
        try:
            self._objects.remove_object(FileType.LOCK, name)
        except SnapstoreError:
            pass

    # -- keeping it -----------------------------------------------------------------------
    def _overdue(self) -> float:
        """Seconds since the last refresh if others may soon call the lock stale, else 0.

        The margin of one refresh interval keeps this side ahead of the others' verdict.
        """
        age = _elapsed() - self._refreshed_at
        limit = (
            self._stale_after - min(self._refresh_every, self._stale_after / 2)
        ).total_seconds()
        return age if age > limit else 0.0

    def refresh(self) -> None:
        """Writes a fresh lock object, then removes the previous one."""
        with self._state_lock:
            info, old = self._info, self._name
            overdue = self._overdue()
            if overdue and not self._lost:
                self._lost = (
                    f"it was not refreshed for {overdue / 60:.0f} minutes (asleep, or cut off?)"
                )
        if info is None or old is None or overdue:
            return  # a lock others may have found stale is not revived: it stays lost
        new_info = info.refreshed_at(self._clock())
        new_name = self._objects.save_object(FileType.LOCK, new_info.encode()).hex()
        with self._state_lock:
            if self._name is None:  # released meanwhile
                released = True
            else:
                released = False
                self._info, self._name = new_info, new_name
                self._refreshed_at = _elapsed()
        if released:
            self._remove_quietly(new_name)
            return
        try:
            self._objects.remove_object(FileType.LOCK, old)
        except ObjectNotFound:
            with self._state_lock:
                self._lost = "the lock object was removed by someone else (snapstore unlock?)"

    def _refresh_loop(self) -> None:
        interval = self._refresh_every.total_seconds()
        wait = interval
        while not self._stop.wait(wait):
            try:
                self.refresh()
                wait = interval
            except SnapstoreError:
                wait = max(interval / 10, 0.01)  # try again soon; `check` tells when it is too late

    def check(self) -> None:
        """Raises RepositoryLocked if this lock may no longer protect us. Holders call it before
        deleting anything, and before storing an index file or a snapshot."""
        with self._state_lock:
            lost = self._lost
            held = self._name is not None
            overdue = self._overdue()
        if not held:
            raise RepositoryLocked("the repository lock is not held")
        if lost:
            raise RepositoryLocked(f"the repository lock was lost: {lost}")
        if overdue:
            raise RepositoryLocked(
                f"the repository lock was lost: it could not be refreshed for {overdue / 60:.0f} "
                "minutes, so others may consider it stale"
            )


def current_user() -> str:
    """The login name, or "" when there is none (a container running as an unnamed uid)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return ""
