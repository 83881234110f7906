"""The folders above the snapshots, built from a listing of them and listed again as it ages.

    /snapshots/<time>_<id>/...        every snapshot, oldest first; time in local time
    /hosts/<host>/<time>_<id>/...     the snapshots taken on each host
    /tags/<tag>/<time>_<id>/...       the snapshots carrying each tag
    /latest -> snapshots/<time>_<id>  the newest complete snapshot (as `latest` everywhere)
    /hosts/<host>/latest, /tags/<tag>/latest    the same within the folder

A folder name is a host or tag with `%`, `/` and NUL written as `%25`, `%2F` and `%00` (and
`.` and `..` as `%2E` and `%2E%2E`), so any host or tag makes one safe name. Incomplete
snapshots are listed like the others; no `latest` names one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from snapstore.errors import SnapshotNotFound, SnapstoreError
from snapstore.repository.repository import Repository
from snapstore.snapshot.manifest import Snapshot
from snapstore.snapshot.selection import SnapshotFilter
from snapstore.snapshot.store import list_snapshots, newest_complete

LATEST = "latest"


@dataclass(frozen=True)
class Link:
    """A symlink above the snapshots: its target, relative to its folder."""

    target: str
    mtime_ns: int


@dataclass
class Folder:
    """A folder above the snapshots: each entry a folder, a snapshot's root or a link."""

    mtime_ns: int
    entries: dict[str, Folder | Snapshot | Link] = field(default_factory=dict)


Entry = Folder | Snapshot | Link


def time_ns(snapshot: Snapshot) -> int:
    return int(snapshot.time.timestamp()) * 1_000_000_000 + snapshot.time.microsecond * 1000


def snapshot_name(snapshot: Snapshot) -> str:
    """`2026-12-07T03:15:00_1a2b3c4d`: when it was taken in local time, and its short id."""
    return f"{snapshot.time.astimezone().strftime('%Y-%m-%dT%H:%M:%S')}_{snapshot.short_id}"


def entry_name(text: str) -> str:
    """A host or tag as one safe file name (see the module docstring)."""
    name = text.replace("%", "%25").replace("/", "%2F").replace("\0", "%00")
    if name in ("", ".", ".."):
        return {"": "%", ".": "%2E", "..": "%2E%2E"}[name]
    return name


def _snapshot_folder(snapshots: Sequence[Snapshot], empty_mtime_ns: int) -> Folder:
    """A folder of snapshot roots (oldest first) and, if one is complete, its `latest` link."""
    folder = Folder(max((time_ns(s) for s in snapshots), default=empty_mtime_ns))
    names: dict[int, str] = {}
    for snapshot in snapshots:
        name = snapshot_name(snapshot)
        if name in folder.entries:  # two ids sharing 8 characters, taken the same second
            name = f"{name[: -len(snapshot.short_id)]}{snapshot.id.hex() if snapshot.id else ''}"
        folder.entries[name] = snapshot
        names[id(snapshot)] = name
    try:
        latest = newest_complete(snapshots)
    except SnapshotNotFound:
        return folder
    folder.entries[LATEST] = Link(names[id(latest)], time_ns(latest))
    return folder


def build_layout(snapshots: Sequence[Snapshot], empty_mtime_ns: int) -> Folder:
    """The whole tree of folders for `snapshots` (oldest first); `empty_mtime_ns` dates the
    folders that hold no snapshot."""
    everything = _snapshot_folder(snapshots, empty_mtime_ns)
    root = Folder(everything.mtime_ns, {"snapshots": everything})
    root.entries["hosts"] = _grouped(((s.host,) for s in snapshots), snapshots, empty_mtime_ns)
    root.entries["tags"] = _grouped((s.tags for s in snapshots), snapshots, empty_mtime_ns)
    latest = everything.entries.get(LATEST)
    if isinstance(latest, Link):
        root.entries[LATEST] = Link(f"snapshots/{latest.target}", latest.mtime_ns)
    return root


def _grouped(keys: Iterable[Iterable[str]], snapshots: Sequence[Snapshot], empty_mtime_ns: int) -> Folder:
    """A folder of folders, one per key (host or tag), each listing the snapshots with it."""
    groups: dict[str, list[Snapshot]] = {}
    for snapshot, snapshot_keys in zip(snapshots, keys, strict=True):
        for key in dict.fromkeys(snapshot_keys):
            groups.setdefault(entry_name(key), []).append(snapshot)
    folder = Folder(max((time_ns(s) for s in snapshots), default=empty_mtime_ns))
    for name in sorted(groups):
        folder.entries[name] = _snapshot_folder(groups[name], empty_mtime_ns)
    return folder


#: Reports an error the mount met and went on from: (what it was doing, the error).
Report = Callable[[str, SnapstoreError], None]


class SnapshotTable:
    """The layout of the repository's snapshots, listed when made and again by `refresh` when
    the last listing is `refresh_every` seconds old; snapshots already read are not read
    again. Thread-safe."""

    def __init__(
        self,
        repo: Repository,
        *,
        refresh_every: float,
        clock: Callable[[], float],
        mounted_ns: int,
        report: Report,
        selection: SnapshotFilter | None = None,
    ) -> None:
        self._repo = repo
        self._selection = selection or SnapshotFilter()
        self._refresh_every = refresh_every
        self._clock = clock
        self._mounted_ns = mounted_ns
        self._report = report
        self._known: dict[str, Snapshot] = {}
        self._lock = threading.Lock()
        self._listed = False
        self._root = self._list()  # the first listing's errors fail the mount
        self._listed = True
        self._listed_at = clock()

    @property
    def root(self) -> Folder:
        """The layout as last listed."""
        return self._root

    def refresh(self) -> Folder:
        """The layout, listed again first if the last listing is old enough. A listing that
        fails is reported and the previous layout kept."""
        with self._lock:
            if self._clock() - self._listed_at >= self._refresh_every:
                self._listed_at = self._clock()
                try:
                    self._root = self._list()
                except SnapstoreError as exc:
                    self._report("listing snapshots", exc)
            return self._root

    def _list(self) -> Folder:
        before = set(self._known)
        snapshots = self._selection.select(list_snapshots(self._repo, self._known))
        if self._listed and self._known.keys() - before:
            # A snapshot's index files are stored before it (SPEC.md section 11), so reading
            # the new index files after listing the snapshots finds every blob they use.
            self._repo.load_index()
        return build_layout(snapshots, self._mounted_ns)
