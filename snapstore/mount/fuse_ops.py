"""The FUSE adapter: mfusepy calls these methods, they call `SnapshotFilesystem`.

The only module that knows FUSE. `mfusepy` (ctypes over libfuse3) is an optional dependency:
it is imported when a mount starts, and its absence, or libfuse's, is one error saying what to
install. The filesystem is mounted read-only, in the foreground, multi-threaded, with the
kernel checking permissions against the modes as backed up (`default_permissions`).

Unmounting: libfuse ends its loop on SIGINT, SIGTERM or SIGHUP, and when the mount point is
unmounted (`fusermount3 -u`), unmounting as it leaves; `mount_snapshots` then returns and the
caller closes the repository, which releases its lock. libfuse installs its handlers only for
signals left to the system, so Python's own handlers are set aside while it runs (Python could
only run them between two bytecodes of the main thread, which waits inside libfuse).
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from snapstore.errors import SnapstoreError, UsageError
from snapstore.mount.fs import Attr, MountOptions, SnapshotFilesystem
from snapstore.repository.repository import Repository
from snapstore.snapshot.tree import NodeType

INSTALL_HINT = (
    "mounting needs the mfusepy package and libfuse3: pip install 'snapstore[mount]' "
    "and apt install fuse3"
)
_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _stat(attr: Attr) -> dict[str, int]:
    return {
        "st_mode": attr.st_mode,
        "st_nlink": attr.nlink,
        "st_size": attr.size,
        "st_uid": attr.uid,
        "st_gid": attr.gid,
        "st_mtime": attr.mtime_ns,
        "st_ctime": attr.mtime_ns,
        "st_atime": attr.mtime_ns,
        "st_blocks": (attr.size + 511) // 512,
        "st_rdev": attr.rdev,
    }


class FuseOperations:
    """What mfusepy's `FUSE` calls (its `Operations` protocol; operations not defined here
    are left to libfuse, which answers ENOSYS, and the mount is read-only anyway)."""

    use_ns = True  # times in nanoseconds

    def __init__(self, fs: SnapshotFilesystem) -> None:
        self.fs = fs

    def init(self, path: str) -> None:
        if self.fs.options.on_mounted is not None:
            self.fs.options.on_mounted()

    def getattr(self, path: str, fh: int | None = None) -> dict[str, int]:
        return _stat(self.fs.getattr(path))

    def readdir(self, path: str, fh: int) -> Iterator[tuple[str, int, int]]:
        entries = self.fs.readdir(path)  # errors now, before the first entry
        yield ".", _MODE[NodeType.DIR], 0
        yield "..", _MODE[NodeType.DIR], 0
        for name, kind in entries:
            yield name, _MODE[kind], 0

    def readlink(self, path: str) -> str:
        return self.fs.readlink(path)

    def open(self, path: str, flags: int) -> int:
        return self.fs.open(path, flags)

    def read(self, path: str, size: int, offset: int, fh: int) -> bytes:
        return self.fs.read(fh, size, offset)

    def release(self, path: str, fh: int) -> int:
        self.fs.release(fh)
        return 0

    def statfs(self, path: str) -> dict[str, int]:
        return {"f_bsize": 4096, "f_frsize": 4096, "f_namemax": 255}


_MODE = {kind: Attr(kind, 0, 0, 0, 0, 0).st_mode for kind in NodeType}


def mount_snapshots(repo: Repository, mountpoint: str | Path, options: MountOptions | None = None) -> None:
    """Mounts the repository's snapshots read-only at `mountpoint` (see snapstore/mount) and
    serves them until unmounted (Ctrl-C, SIGTERM, SIGHUP or `fusermount3 -u`). The repository
    should be open with a shared lock, which the caller releases once this returns."""
    target = Path(mountpoint)
    if not target.is_dir():
        raise UsageError(f"mount point {target} is not a directory")
    fuse = _load_mfusepy()
    operations = FuseOperations(SnapshotFilesystem(repo, options))
    settings: dict[str, Any] = {
        "foreground": True,
        "ro": True,
        "nodev": True,  # a device node in a snapshot never opens this machine's device
        "nosuid": True,
        "default_permissions": True,
        "fsname": "snapstore",
        "subtype": "snapstore",
        "kernel_cache": True,  # a file's bytes never change: keep them across opens
    }
    if operations.fs.options.allow_other:
        settings["allow_other"] = True
    with _signals_left_to_libfuse():
        try:
            fuse.FUSE(operations, str(target), **settings)
        except RuntimeError as exc:  # fuse_main's status; libfuse said why on stderr
            raise SnapstoreError(f"could not mount at {target} (libfuse status {exc})") from None


def _load_mfusepy() -> Any:
    """mfusepy, which loads libfuse when imported; an error saying what to install if not."""
    try:
        import mfusepy  # an optional dependency (the `mount` extra): imported when needed
    except (ImportError, OSError) as exc:
        raise SnapstoreError(f"{INSTALL_HINT} ({exc})") from None
    return mfusepy


@contextlib.contextmanager
def _signals_left_to_libfuse() -> Iterator[None]:
    previous = {}
    with contextlib.suppress(ValueError):  # not the main thread: nothing to set aside
        for number in _SIGNALS:
            previous[number] = signal.signal(number, signal.SIG_DFL)
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
