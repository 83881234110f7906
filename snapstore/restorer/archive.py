"""A directory of a snapshot as a tar or zip archive written to a stream (`dump --archive`).

The entries come from the shared `Walker` (every copy of an identical directory, as `ls`
shows them), a directory before its contents, and each file's content from `stream_file`, the
one content stream (restorer/stream.py): nothing is held but the blob being written, so a
100 GB dump goes into the archive in constant memory, and the output may be a pipe.

- **tar** (POSIX pax, stdlib `tarfile` in stream mode): mode bits, uid and gid, user and group
  names, mtime to the nanosecond (a pax `mtime` record), symlinks with their targets; long
  names, big ids and sizes over 8 GiB in pax records. Each member's header carries the size
  the snapshot records; content of another length is an IntegrityError naming the file (the
  archive is then cut short, never padded with made-up bytes). FIFOs and character and block
  devices are tar's FIFOTYPE, CHRTYPE and BLKTYPE members (devmajor, devminor); tar has no
  member for a socket, so a socket is left out and named in `ArchiveResult.skipped` (as GNU
  tar says "socket ignored").
- **zip** (stdlib `zipfile`, deflated, ZIP64 as needed, data descriptors on a pipe): Unix mode
  and type in the external attributes, mtime in the DOS field (local time, from 1980) and to the
  second in the extended-timestamp field, uid and gid in Info-ZIP's Unix field (`unzip -X`
  applies them), symlinks as Info-ZIP stores them (the target as content). Zip names are
  UTF-8: bytes that do not decode are written as `\\xNN`. Zip has no FIFOs, sockets or
  devices (Info-ZIP's unzip would make them regular files): each is left out and named in
  `ArchiveResult.skipped`.

Member names are the snapshot paths without the leading "/", as `restore --target` lays them
out: `srv/www/index.html`.
"""

from __future__ import annotations

import enum
import struct
import tarfile
import time
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from snapstore.errors import IntegrityError
from snapstore.ids import Id
from snapstore.repository.repository import Repository
from snapstore.restorer.stream import stream_file
from snapstore.snapshot.tree import Node, NodeType
from snapstore.snapshot.walk import Walker

Entry = tuple[tuple[bytes, ...], Node]


class ArchiveFormat(enum.Enum):
    TAR = "tar"
    ZIP = "zip"


@dataclass
class ArchiveResult:
    """What went into the archive."""

    entries: int = 0
    bytes: int = 0
    #: (path, why) of each node the format cannot hold, left out
    skipped: list[tuple[str, str]] = field(default_factory=list)


def archive_entries(
    repo: Repository, base: tuple[bytes, ...], node: Node | None, tree: Id | None
) -> Iterator[Entry]:
    """(path, node) for `node` at `base` (None for a snapshot's root) and everything below
    `tree` (a directory's tree, or None), parents first."""
    if node is not None:
        yield base, node
    if tree is not None:
        for visit in Walker(repo, each_tree_once=False).pre_order(tree):
            yield (*base, *visit.path), visit.node


def write_archive(
    repo: Repository, entries: Iterable[Entry], out: BinaryIO, archive_format: ArchiveFormat
) -> ArchiveResult:
    """Writes `entries` (from `archive_entries`) to `out` as a tar or zip archive."""
    if archive_format is ArchiveFormat.TAR:
        return _write_tar(repo, entries, out)
    return _write_zip(repo, entries, out)


class _Content:
    """A file's content as the file object tarfile reads a member from, `size` bytes exactly."""

    def __init__(self, chunks: Iterator[bytes], size: int, name: str) -> None:
        self._chunks = chunks
        self._size = size
        self._name = name
        self._buffer = memoryview(b"")
        self._read = 0

    def read(self, n: int = -1) -> bytes:
        parts = []
        want = self._size - self._read if n < 0 else n
        while want > 0:
            if not self._buffer:
                chunk = next(self._chunks, None)
                if chunk is None:
                    raise self._wrong_length(self._read)
                self._buffer = memoryview(chunk)
            part = self._buffer[:want]
            self._buffer = self._buffer[len(part) :]
            parts.append(part)
            want -= len(part)
            self._read += len(part)
        if self._read == self._size:
            self.finish()  # before tarfile writes the last block: a reader sees the cut
        return b"".join(parts)

    def finish(self) -> None:
        """Raises unless the content ended where the recorded size said."""
        extra = len(self._buffer) + sum(len(chunk) for chunk in self._chunks)
        self._buffer = memoryview(b"")
        if extra:
            raise self._wrong_length(self._read + extra)

    def _wrong_length(self, actual: int) -> IntegrityError:
        return IntegrityError(
            f"{self._name}: its content is {actual} bytes, its snapshot records {self._size}"
        )


def _display(path: tuple[bytes, ...], errors: str = "surrogateescape") -> str:
    return b"/".join(path).decode("utf-8", errors)


def _write_tar(repo: Repository, entries: Iterable[Entry], out: BinaryIO) -> ArchiveResult:
    result = ArchiveResult()
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for path, node in entries:
            if node.type is NodeType.SOCKET:
                result.skipped.append((f"/{_display(path)}", "a socket, left out (tar has no sockets)"))
                continue
            info = _tar_info(_display(path), node)
            if node.type is NodeType.FILE:
                content = _Content(stream_file(repo, node), node.size, "/" + _display(path))
                tar.addfile(info, content)
                content.finish()
                result.bytes += node.size
            else:
                tar.addfile(info)
            result.entries += 1
    return result


def _tar_info(name: str, node: Node) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mode = node.mode & 0o7777
    info.uid, info.gid = node.uid, node.gid
    info.uname, info.gname = node.user, node.group
    seconds, nanos = divmod(node.mtime_ns, 1_000_000_000)
    info.mtime = seconds
    if nanos and seconds >= 0:  # a pax record keeps the nanoseconds
        info.pax_headers = {"mtime": f"{seconds}.{nanos:09d}"}
    if node.type is NodeType.DIR:
        info.type = tarfile.DIRTYPE
    elif node.type is NodeType.SYMLINK:
        info.type = tarfile.SYMTYPE
        info.linkname = node.target.decode("utf-8", "surrogateescape")
    elif node.type in _TAR_SPECIAL:
        info.type = _TAR_SPECIAL[node.type]
        info.devmajor, info.devminor = node.rdev_major, node.rdev_minor
    else:
        info.type = tarfile.REGTYPE
        info.size = node.size
    return info


_TAR_SPECIAL = {
    NodeType.FIFO: tarfile.FIFOTYPE, NodeType.CHARDEV: tarfile.CHRTYPE, NodeType.BLOCKDEV: tarfile.BLKTYPE
}  # fmt: skip
_DOS_DIRECTORY = 0x10
_EARLIEST_DOS = (1980, 1, 1, 0, 0, 0)
_LATEST_DOS = (2107, 12, 31, 23, 59, 58)


class _Sink:
    """The stream zipfile writes to: never seekable, so the output is the same on a pipe and
    on a file; `cut` drops everything after it, so an archive stopped by an error gets no
    central directory and no reader takes it for whole."""

    def __init__(self, out: BinaryIO) -> None:
        self._out: BinaryIO | None = out

    def write(self, data: bytes) -> int:
        if self._out is not None:
            self._out.write(data)
        return len(data)

    def flush(self) -> None:
        if self._out is not None:
            self._out.flush()

    def cut(self) -> None:
        self._out = None


def _write_zip(repo: Repository, entries: Iterable[Entry], out: BinaryIO) -> ArchiveResult:
    result = ArchiveResult()
    sink = _Sink(out)
    archive = zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True)  # type: ignore[call-overload]
    try:
        for path, node in entries:
            if node.type.special:
                why = f"a {node.type.description}, left out (zip cannot hold one)"
                result.skipped.append((f"/{_display(path)}", why))
                continue
            info = _zip_info(_display(path, "backslashreplace"), node)
            if node.type is NodeType.FILE:
                written = 0
                with archive.open(info, "w") as member:
                    for chunk in stream_file(repo, node):
                        member.write(chunk)
                        written += len(chunk)
                if written != node.size:
                    raise IntegrityError(
                        f"/{_display(path)}: its content is {written} bytes, "
                        f"its snapshot records {node.size}"
                    )
                result.bytes += written
            else:
                archive.writestr(info, node.target if node.type is NodeType.SYMLINK else b"")
            result.entries += 1
    except BaseException:
        sink.cut()
        raise
    finally:
        archive.close()
    return result


def _zip_info(name: str, node: Node) -> zipfile.ZipInfo:
    seconds = node.mtime_ns // 1_000_000_000
    is_dir = node.type is NodeType.DIR
    info = zipfile.ZipInfo(name + "/" if is_dir else name, date_time=_dos_time(seconds))
    info.create_system = 3  # Unix: the external attributes hold st_mode
    info.external_attr = ((node.type.type_bits | (node.mode & 0o7777)) << 16) | (
        _DOS_DIRECTORY if is_dir else 0
    )
    info.compress_type = zipfile.ZIP_DEFLATED if node.type is NodeType.FILE else zipfile.ZIP_STORED
    info.file_size = node.size if node.type is NodeType.FILE else 0  # decides ZIP64 up front
    extra = b""
    if -(2**31) <= seconds < 2**31:  # extended timestamp (UT): mtime only
        extra += struct.pack("<HHBi", 0x5455, 5, 1, seconds)
    extra += struct.pack("<HHBBIBI", 0x7875, 11, 1, 4, node.uid, 4, node.gid)  # Unix uid/gid
    info.extra = extra
    return info


def _dos_time(seconds: int) -> tuple[int, int, int, int, int, int]:
    try:
        local = time.localtime(seconds)[:6]
    except (OverflowError, OSError, ValueError):
        return _EARLIEST_DOS if seconds < 0 else _LATEST_DOS
    return min(max(local, _EARLIEST_DOS), _LATEST_DOS)
