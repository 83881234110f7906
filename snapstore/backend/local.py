"""A repository in a directory on a local (or locally mounted) filesystem.

Writes are atomic and durable: the bytes go to a `.tmp-*` file in the destination folder, are
fsynced, renamed over the final name, and the folder is fsynced so the rename survives a power
cut. A writer killed half-way leaves only a temporary file, which listings ignore. Pack shard
folders are made on first use; `create` makes the fixed folders. `save` never recreates a
missing root, so an unmounted disk is reported instead of silently filled.
"""

from __future__ import annotations

import errno
import os
import stat as statmod
from collections.abc import Iterator
from contextlib import contextmanager

from snapstore.backend import layout
from snapstore.backend.base import FileInfo, FileType, Handle
from snapstore.backend.open_files import OpenFiles
from snapstore.errors import BackendError, ObjectNotFound, PermissionDenied

_WRITE_CHUNK = 1 << 20
_FILE_MODE = 0o600
_DIR_MODE = 0o700
_DIR_SYNC_UNSUPPORTED = {errno.EINVAL, errno.ENOTSUP, errno.EBADF}
_DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
_REFUSED = {errno.EROFS, errno.EACCES, errno.EPERM}


class LocalBackend:
    """Objects as files under `root`; `fsync=False` trades durability for speed in tests."""

    def __init__(self, root: str | os.PathLike[str], *, fsync: bool = True) -> None:
        self._root = os.path.abspath(os.fspath(root))
        self._fsync = fsync
        self._packs = OpenFiles()

    @property
    def location(self) -> str:
        return self._root

    def create(self) -> None:
        with _os_errors("create the repository folders at", self._root):
            os.makedirs(self._root, mode=_DIR_MODE, exist_ok=True)
            for file_type in FileType:
                folder = layout.directory(file_type)
                if folder:
                    os.makedirs(os.path.join(self._root, folder), mode=_DIR_MODE, exist_ok=True)

    def save(self, handle: Handle, data: bytes) -> None:
        path = self._path(handle)
        folder = os.path.dirname(path)
        temp = os.path.join(folder, layout.temp_name())
        try:
            with _os_errors("save", path):
                fd = self._open_temp(temp, folder)
                try:
                    self._write_all(fd, data)
                    if self._fsync:
                        os.fsync(fd)
                finally:
                    os.close(fd)
                os.replace(temp, path)
                self._packs.drop(path)
            self._sync_dir(folder)
        except BaseException:
            _unlink_quietly(temp)
            raise

    def load(self, handle: Handle, offset: int = 0, length: int | None = None) -> bytes:
        path = self._path(handle)
        layout.check_range(offset, length)
        if handle.type is FileType.PACK:
            return self._load_pack(path, offset, length)
        with _os_errors("load", path):
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
            try:
                size = os.fstat(fd).st_size
                end = layout.range_end(size, offset, length, path)
                return _pread_all(fd, end - offset, offset)
            finally:
                os.close(fd)

    def _load_pack(self, path: str, offset: int, length: int | None) -> bytes:
        """A range of a pack through a descriptor kept open (`OpenFiles`); its size is asked
        again only when the range seems to pass the end."""
        with _os_errors("load", path), self._packs.reading(path) as (fd, size):
            if length is None or offset + length > size:
                size = os.fstat(fd).st_size
            end = layout.range_end(size, offset, length, path)
            return _pread_all(fd, end - offset, offset)

    def stat(self, handle: Handle) -> FileInfo:
        path = self._path(handle)
        with _os_errors("stat", path):
            st = os.stat(path)
        if not statmod.S_ISREG(st.st_mode):
            raise ObjectNotFound(f"{path} is not a file")
        return FileInfo(handle, st.st_size)

    def remove(self, handle: Handle) -> None:
        path = self._path(handle)
        self._packs.drop(path)
        with _os_errors("remove", path):
            os.unlink(path)

    def list(self, file_type: FileType) -> Iterator[FileInfo]:
        if file_type is FileType.CONFIG:
            yield from self._list_config()
            return
        top = os.path.join(self._root, layout.directory(file_type))
        if file_type is FileType.PACK:
            for shard in _scan(top):
                if shard.is_dir() and len(shard.name) == layout.SHARD_LENGTH:
                    yield from self._list_folder(shard.path, f"{file_type.value}/{shard.name}")
        else:
            yield from self._list_folder(top, file_type.value)

    def close(self) -> None:
        self._packs.close()

    def _path(self, handle: Handle) -> str:
        return os.path.join(self._root, *layout.object_path(handle).split("/"))

    def _list_config(self) -> Iterator[FileInfo]:
        try:
            yield self.stat(Handle(FileType.CONFIG))
        except ObjectNotFound:
            return

    def _list_folder(self, folder: str, relative: str) -> Iterator[FileInfo]:
        for entry in _scan(folder):
            handle = layout.handle_from_path(f"{relative}/{entry.name}")
            if handle is None:
                continue
            try:
                with _os_errors("list", entry.path):
                    if not entry.is_file():
                        continue
                    size = entry.stat().st_size
            except ObjectNotFound:
                continue  # removed while we listed
            yield FileInfo(handle, size)

    def _open_temp(self, temp: str, folder: str) -> int:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
        try:
            return os.open(temp, flags, _FILE_MODE)
        except FileNotFoundError:
            pass
        # A pack shard (or a type folder) not made yet; its parent must exist.
        try:
            os.mkdir(folder, _DIR_MODE)
        except FileExistsError:
            pass
        except FileNotFoundError as exc:
            raise BackendError(
                f"cannot save into {folder}: {os.path.dirname(folder)} does not exist "
                "(was the repository created, is its disk mounted?)"
            ) from exc
        else:
            self._sync_dir(os.path.dirname(folder))
        return os.open(temp, flags, _FILE_MODE)

    def _write_all(self, fd: int, data: bytes) -> None:
        view = memoryview(data).cast("B")
        while view:
            written = os.write(fd, view[:_WRITE_CHUNK])
            view = view[written:]

    def _sync_dir(self, folder: str) -> None:
        if not self._fsync:
            return
        if os.name == "nt":
            return  # Windows cannot open a folder to fsync it
        with _os_errors("sync folder", folder):
            fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
            try:
                os.fsync(fd)
            except OSError as exc:
                if exc.errno not in _DIR_SYNC_UNSUPPORTED:
                    raise
            finally:
                os.close(fd)


def _pread_all(fd: int, count: int, offset: int) -> bytes:
    """pread until `count` bytes arrive; one call may return fewer for very large reads."""
    parts: list[bytes] = []
    while count > 0:
        part = os.pread(fd, count, offset)
        if not part:
            raise BackendError("object shrank while it was being read")
        parts.append(part)
        count -= len(part)
        offset += len(part)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def _scan(folder: str) -> Iterator[os.DirEntry[str]]:
    """Entries of a folder, none if it does not exist (a type with no objects yet)."""
    try:
        with _os_errors("list", folder), os.scandir(folder) as entries:
            yield from entries
    except ObjectNotFound:
        return


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


@contextmanager
def _os_errors(action: str, path: str) -> Iterator[None]:
    """Turn OSError into the snapstore error tree, naming the path and what was being done."""
    try:
        yield
    except OSError as exc:
        reason = exc.strerror or str(exc)
        if exc.errno == errno.ENOENT:
            raise ObjectNotFound(f"cannot {action} {path}: no such object") from exc
        if exc.errno in _DISK_FULL:
            raise BackendError(f"cannot {action} {path}: {reason} (the disk is full)") from exc
        if exc.errno in _REFUSED:
            raise PermissionDenied(f"cannot {action} {path}: {reason}") from exc
        raise BackendError(f"cannot {action} {path}: {reason}") from exc
