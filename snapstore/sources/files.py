"""Back up files and directories from the local filesystem.

Layout. Each path given becomes its absolute path split into components, as restic does:
backing up /home/a/x stores the tree /home/a/x. The parents /home and /home/a are yielded
as DIR entries carrying their real metadata (taken with `stat`, so a parent that is a
symlink to a directory is recorded as that directory). Nested or repeated arguments are
merged; the walk is depth first, each directory's entries sorted by their name bytes.

Symlinks are never followed, including a symlink given as an argument: it is recorded as a
SYMLINK entry whose `link_target` is the raw `readlink` bytes.

Excludes are fnmatch globs (case-sensitive; `*` also matches `/`; `iexcludes` ignore case).
Each pattern is tried against the entry's absolute path and against its basename; a match on
either excludes the entry and, for a directory, everything under it. "*.log" drops every log
file; "/home/mastodon/live/public/system/cache" or "*/public/system/cache" drop that one tree.
Parent directories of the arguments are never excluded. Exclude files, tagged directories
(CACHEDIR.TAG, --exclude-if-present) and --one-file-system are file_filter.py's rules.

Errors. A directory that cannot be listed or an entry that vanishes before `lstat` is
reported through `on_error` and the walk carries on. File content is opened lazily by
`open_content`, which raises `OSError` when the file cannot be opened (vanished, permission
denied) or is no longer a regular file; the archiver catches that, reports it through
`on_error` and records the file as missing. When nothing at all could be read (every path
missing, as on an unmounted volume), the archiver records no snapshot. Files are opened
with O_NOFOLLOW and O_NONBLOCK, so a file swapped for a symlink or a FIFO after listing can
neither redirect the read nor block it.

FIFOs, sockets and character and block devices are FIFO, SOCKET, CHARDEV and BLOCKDEV entries
(a version 3 tree's special nodes, SPEC.md section 9) with their mode, owner, times, file
facts and extended attributes, a device's number split as (major, minor); they are never
opened, and counted as `special` in `metadata()`. Excludes and --one-file-system apply to them
as to files. Anything else `lstat` may report (a Solaris door, say) is named through
`on_error` and counted as `special_skipped`.
"""

from __future__ import annotations

import errno
import grp
import os
import pwd
import stat
from collections.abc import Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import BinaryIO

from snapstore.archiver.source import EntryKind, ErrorCallback, SourceEntry
from snapstore.errors import SourceError, UsageError
from snapstore.snapshot.tree import NodeType
from snapstore.snapshot.xattrs import XATTRS, encode_xattrs
from snapstore.sources.file_filter import ExcludeOptions, FileFilter

Components = tuple[bytes, ...]

_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_NOATIME = getattr(os, "O_NOATIME", 0)


def to_components(path: str | bytes | os.PathLike[str]) -> Components:
    """An absolute, lexically normalised path as name components; "/" is ()."""
    absolute = os.path.abspath(os.fsencode(path))
    return tuple(part for part in absolute.split(b"/") if part)


def to_path(components: Components) -> bytes:
    return b"/" + b"/".join(components)


def _prefix(components: Components) -> bytes:
    """The path of the directory `components` with a slash: its entries' paths start so."""
    return to_path(components) + b"/" if components else b"/"


def open_regular(path: bytes) -> BinaryIO:
    """Open a regular file for reading without following symlinks or blocking on FIFOs.

    Tries O_NOATIME first, so backups leave access times alone where the kernel allows it
    (only the owner or root may ask).
    """
    try:
        fd = os.open(path, _OPEN_FLAGS | _NOATIME)
    except PermissionError as exc:
        if not _NOATIME or exc.errno != errno.EPERM:
            raise
        fd = os.open(path, _OPEN_FLAGS)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "no longer a regular file", os.fsdecode(path))
        os.set_blocking(fd, True)
        # Unbuffered: the chunker reads into its own buffer (a BufferedReader would copy
        # each read once more, and costs an isatty call and 2 us to set up for each file).
        return open(fd, "rb", buffering=0, closefd=True)
    except BaseException:
        os.close(fd)
        raise


class FileSource:
    """Files and directories under the given paths."""

    def __init__(
        self,
        paths: Sequence[str | Path | bytes],
        excludes: Sequence[str] = (),
        *,
        iexcludes: Sequence[str] = (),
        exclude_files: Sequence[str | Path] = (),
        exclude_caches: bool = False,
        exclude_if_present: Sequence[str] = (),
        one_file_system: bool = False,
    ) -> None:
        if not paths:
            raise UsageError("FileSource needs at least one path")
        self._targets = _outermost(sorted({to_components(p) for p in paths}))
        self._filter = FileFilter(ExcludeOptions(
            excludes, iexcludes, exclude_files, exclude_caches, exclude_if_present, one_file_system
        ))  # fmt: skip
        self._users: dict[int, str] = {}
        self._groups: dict[int, str] = {}
        self._counts = {"files": 0, "dirs": 0, "symlinks": 0, "special": 0,
                        "special_skipped": 0, "excluded": 0, "errors": 0}  # fmt: skip

    @property
    def kind(self) -> str:
        return "files"

    def describe(self) -> list[str]:
        return [os.fsdecode(to_path(target)) for target in self._targets]

    def metadata(self) -> dict[str, object]:
        return {"files": dict(self._counts)}

    def is_excluded(self, path: bytes) -> bool:
        """True when a pattern matches the absolute path or its basename."""
        return self._filter.excluded(path)

    def entries(self, on_error: ErrorCallback) -> Iterator[SourceEntry]:
        def report(components: Components, exc: Exception) -> None:
            self._counts["errors"] += 1
            on_error(components, exc)

        parents_done: set[Components] = set()
        for target in self._targets:
            if target and self.is_excluded(to_path(target)):
                self._counts["excluded"] += 1
                continue
            for depth in range(1, len(target)):
                parent = target[:depth]
                if parent in parents_done:
                    continue
                parents_done.add(parent)
                try:
                    info = os.stat(to_path(parent))
                except OSError as exc:
                    report(parent, exc)
                    continue
                yield self._entry(parent, to_path(parent), EntryKind.DIR, info)
            entry = self._entry
            for components, path, kind, info, link_target in self._walk(
                target, report, on_error, self._counts
            ):
                yield entry(components, path, kind, info, link_target)

    def scan(self) -> Iterator[int]:
        """The size of each file `entries` would yield, walked again without opening, counting
        or reporting anything (the archiver's progress totals)."""

        def ignore(components: Components, exc: Exception) -> None:
            pass

        counts = dict.fromkeys(self._counts, 0)
        for target in self._targets:
            if target and self.is_excluded(to_path(target)):
                continue
            for _, _, kind, info, _ in self._walk(target, ignore, ignore, counts):
                if kind is EntryKind.FILE:
                    yield info.st_size

    def _walk(
        self, root: Components, report: ErrorCallback, on_error: ErrorCallback,
        counts: dict[str, int],
    ) -> Iterator[tuple[Components, bytes, EntryKind, os.stat_result, bytes | None]]:
        """Depth first without recursion, yielding each entry's components and path: the
        stack holds what is still to be visited, as (directory, its path and a slash, name),
        the name b"" for the directory itself (only "/" as a root). `report` counts read
        errors; `on_error` alone reports what was skipped on purpose; `counts` (the source's
        own, or a scan's) counts what was met."""
        if root:
            stack = [(root[:-1], _prefix(root[:-1]), root[-1])]
        else:
            stack = [((), b"/", b"")]
        root_device: int | None = None
        excluded = self._filter.excluded
        while stack:
            parent, prefix, name = stack.pop()
            components, path = (parent + (name,), prefix + name) if name else (parent, prefix)
            try:
                info = os.lstat(path)
            except OSError as exc:
                report(components, exc)
                continue
            if root_device is None:
                root_device = info.st_dev
            mode = info.st_mode
            if stat.S_ISREG(mode):  # most entries: tested first
                counts["files"] += 1
                yield components, path, EntryKind.FILE, info, None
            elif stat.S_ISDIR(mode):
                other_fs = self._filter.one_file_system and info.st_dev != root_device
                names = []
                if not other_fs:  # a mount point is kept, empty
                    try:
                        names = sorted(os.listdir(path))
                    except OSError as exc:
                        report(components, exc)
                tag = self._filter.tag(path, names)
                if tag is not None:  # a tagged directory keeps its tag file alone
                    counts["excluded"] += len(names) - 1
                    names = [tag]
                if components:  # "/" itself is the snapshot root, not an entry
                    counts["dirs"] += 1
                    yield components, path, EntryKind.DIR, info, None
                prefix = _prefix(components)
                children = []
                for name in reversed(names):
                    if excluded(prefix + name):
                        counts["excluded"] += 1
                    else:
                        children.append((components, prefix, name))
                stack.extend(children)
            elif stat.S_ISLNK(mode):
                try:
                    target = os.readlink(path)
                except OSError as exc:
                    report(components, exc)
                    continue
                counts["symlinks"] += 1
                yield components, path, EntryKind.SYMLINK, info, target
            elif (node_type := NodeType.from_mode(mode)) is not None:
                counts["special"] += 1  # a FIFO, socket or device node: never opened
                yield components, path, EntryKind(node_type.value), info, None
            else:
                counts["special_skipped"] += 1
                on_error(components, SourceError(
                    f"a file of unknown type {stat.S_IFMT(mode):#o}, not backed up"
                ))

    def _entry(
        self,
        components: Components,
        path: bytes,
        kind: EntryKind,
        info: os.stat_result,
        link_target: bytes | None = None,
    ) -> SourceEntry:
        uid, gid = info.st_uid, info.st_gid
        user = self._users.get(uid)
        if user is None:
            user = self._user(uid)
        group = self._groups.get(gid)
        if group is None:
            group = self._group(gid)
        if kind is EntryKind.FILE:  # most entries: no more to find out
            return SourceEntry(
                components, kind, mode=stat.S_IMODE(info.st_mode), uid=uid, gid=gid,
                user=user, group=group, mtime_ns=info.st_mtime_ns, size=info.st_size,
                open_content=partial(open_regular, path), extra=_stat_facts(kind, info, path),
            )  # fmt: skip
        return SourceEntry(
            components,
            kind,
            mode=stat.S_IMODE(info.st_mode),
            uid=uid,
            gid=gid,
            user=user,
            group=group,
            mtime_ns=info.st_mtime_ns,
            size=len(link_target or b"") if kind is EntryKind.SYMLINK else 0,
            link_target=link_target,
            rdev=(os.major(info.st_rdev), os.minor(info.st_rdev))
            if kind in (EntryKind.CHARDEV, EntryKind.BLOCKDEV) else None,
            extra=_stat_facts(kind, info, path),
        )

    def _user(self, uid: int) -> str:
        if uid not in self._users:
            try:
                self._users[uid] = pwd.getpwuid(uid).pw_name
            except KeyError:
                self._users[uid] = ""
        return self._users[uid]

    def _group(self, gid: int) -> str:
        if gid not in self._groups:
            try:
                self._groups[gid] = grp.getgrgid(gid).gr_name
            except KeyError:
                self._groups[gid] = ""
        return self._groups[gid]


def _stat_facts(kind: EntryKind, info: os.stat_result, path: bytes) -> dict[str, object]:
    """For change detection against a parent snapshot, as restic does; for a file of several
    hard links, their number: files of one snapshot with `nlink` and the same inode and device
    are one file, stored once and linked again on restore; and the extended attributes of
    files and directories (SPEC.md section 9)."""
    facts: dict[str, object] = {
        "inode": info.st_ino, "device": info.st_dev, "ctime_ns": info.st_ctime_ns,
    }  # fmt: skip
    if kind is EntryKind.FILE and info.st_nlink > 1:
        facts["nlink"] = info.st_nlink
    if kind is not EntryKind.SYMLINK:
        xattrs = read_xattrs(path)
        if xattrs:
            facts[XATTRS] = encode_xattrs(xattrs)
    return facts


def read_xattrs(path: bytes) -> list[tuple[bytes, bytes]]:
    """The extended attributes of a file or directory (not followed if a symlink); none where
    the filesystem has none or refuses (one that vanishes meanwhile is left out)."""
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return []
    pairs = []
    for name in names:
        try:
            pairs.append((os.fsencode(name), os.getxattr(path, name, follow_symlinks=False)))
        except OSError:
            continue
    return pairs


def _outermost(targets: list[Components]) -> list[Components]:
    """Drop targets inside another target; `targets` is sorted, so parents come first."""
    kept: list[Components] = []
    for target in targets:
        if kept and target[: len(kept[-1])] == kept[-1]:
            continue
        kept.append(target)
    return kept
