"""Repair: rebuild the index from the packs, and rewrite snapshots around what is lost.

The meanings are restic's:

- `repair_index` writes a new index from what the packs say of themselves. Every index file
  that can be read is read; a pack no readable index file names, or whose entries there do
  not fit it (the pack is shorter than they say, or two index files disagree), is described by
  its own header instead (with `read_all_packs`, every pack is). The new index names every
  pack whose description is whole, less any delta whose base is stored whole in no pack; the
  last file written lists every old index file in `supersedes`, and only then are the old files deleted (the order prune follows, SPEC.md
  section 11). A pack whose header cannot be read and that no index file describes correctly
  is left unindexed: its blobs cannot be found, and prune deletes it.
- `repair_snapshots` rewrites every snapshot whose trees reach something lost. A file whose
  content (a data blob, a chunk list or a chunk a list names) is in no pack on the backend, or
  is a delta whose base is stored whole nowhere, is removed from its directory; a directory
  whose tree cannot be read becomes an empty directory. The result is saved as a new snapshot
  with the original's time, host, paths and tags plus the tag `repaired` (the original's id is
  kept in its metadata under `repaired_from`); the original is removed only with `forget`. A
  snapshot object that cannot be read at all is reported, and removed only with `forget`.
  What is missing is judged by the index: run `repair index` first when index files or packs
  are damaged (`check` says so), as with restic.

Both need an exclusive lock (a dry run makes do with a shared one): a backup running meanwhile
could otherwise store a snapshot using what the new index leaves out.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from snapstore.backend.base import FileInfo, FileType
from snapstore.errors import (
    IntegrityError,
    ObjectNotFound,
    SnapstoreError,
    UnsafePath,
    UsageError,
)
from snapstore.ids import Id
from snapstore.index import deltas
from snapstore.index.codec import IndexFile
from snapstore.index.index import BlobIndex, BlobLocation
from snapstore.pack import BlobType, PackEntry
from snapstore.progress import NoProgress, Progress
from snapstore.repository.lock import RepositoryLock
from snapstore.repository.repository import Repository, servable_entries
from snapstore.snapshot.manifest import Snapshot
from snapstore.snapshot.store import load_snapshot, replace_snapshot
from snapstore.snapshot.tree import Node, NodeType, encode_tree
from snapstore.snapshot.walk import Unreadable, Walker, display_path

REPAIRED_TAG = "repaired"
REPAIRED_FROM = "repaired_from"  # metadata key: the id of the snapshot a repaired one replaces
#: What counts as a damaged object or blob: it was read and is not what was written, it is
#: not there, or it is not a valid tree. Anything else (the backend failing) stops a repair.
_DAMAGE = (IntegrityError, ObjectNotFound, UnsafePath)


@contextmanager
def _exclusive(repo: Repository, dry_run: bool, what: str) -> Iterator[RepositoryLock]:
    """The repository's exclusive lock, taken here if it holds none (a dry run is content
    with a shared one)."""
    held = repo.held_lock
    if held is not None:
        if not held.exclusive and not dry_run:
            raise UsageError(f"{what} needs an exclusive lock, but this repository holds a shared one")
        yield held
        return
    lock = repo.lock(exclusive=not dry_run)
    try:
        yield lock
    finally:
        repo.unlock()


def _remove(repo: Repository, file_type: FileType, name: str) -> None:
    try:
        repo.remove_object(file_type, name)
    except ObjectNotFound:
        pass  # already gone


# -- repair index -----------------------------------------------------------------------------
@dataclass
class IndexRepairReport:
    dry_run: bool = False
    index_files_read: int = 0
    damaged_index_files: dict[str, str] = field(default_factory=dict)  # name -> why
    packs: int = 0  # on the backend
    packs_indexed: int = 0  # named by the new index
    headers_read: int = 0
    packs_from_headers: int = 0  # described by their header, not by an old index file
    damaged_packs: dict[str, str] = field(default_factory=dict)  # left unindexed: name -> why
    vanished_packs: int = 0  # named by an old index file, not on the backend
    #: deltas whose base is stored whole in no pack (left by a prune killed as it deleted
    #: packs): left unindexed, so that no backup deduplicates against them; prune deletes them
    deltas_left_out: int = 0
    index_files_written: int = 0
    index_files_deleted: int = 0  # in a dry run: would be deleted


def repair_index(
    repo: Repository,
    *,
    read_all_packs: bool = False,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> IndexRepairReport:
    """Rebuilds the index from the index files that can be read and the packs' own headers
    (see the module docstring); `read_all_packs` reads every pack's header. Takes an exclusive
    lock unless the repository holds one."""
    progress = progress or NoProgress()
    with _exclusive(repo, dry_run, "repair index") as lock:
        report = IndexRepairReport(dry_run=dry_run)
        progress.item("reading the index")

        def damaged(info: FileInfo, error: SnapstoreError) -> None:
            if not isinstance(error, (IntegrityError, ObjectNotFound)):
                raise error  # the backend failing: not a damaged file
            if isinstance(error, IntegrityError):
                report.damaged_index_files[info.handle.name] = str(error)

        files = repo.read_index_files(on_damaged=damaged)
        old = sorted({info.handle.name for info, _ in files} | report.damaged_index_files.keys())
        report.index_files_read = len(files)
        sizes = repo.list_packs()
        report.packs = len(sizes)
        named, suspect, vanished = _described(files, sizes)
        report.vanished_packs = len(vanished)
        todo = set(sizes) if read_all_packs else (sizes.keys() - named.keys()) | suspect
        progress.item(f"reading the headers of {len(todo)} packs")
        found, unreadable = repo.read_pack_headers({p: sizes[p] for p in todo})
        report.headers_read = len(todo)
        packs: dict[Id, list[PackEntry]] = {}
        for pack_id in sorted(sizes):
            if pack_id in found:
                packs[pack_id] = found[pack_id]
            elif pack_id in named and pack_id not in suspect:
                packs[pack_id] = named[pack_id]  # the header is damaged; the index entries fit
        packs, report.deltas_left_out = servable_entries(
            packs, BlobIndex(), deltas.max_depth(repo.config.delta_chains)
        )
        report.packs_from_headers = sum(
            1 for p in packs if p in found and (p not in named or p in suspect)
        )
        for pack_id, why in unreadable.items():
            kept = " (its index entries are kept)" if pack_id in packs else ""
            report.damaged_packs[pack_id.hex()] = f"header unreadable{kept}: {why}"
        report.packs_indexed = len(packs)
        if dry_run:
            report.index_files_deleted = len(old)  # would be
            return report
        lock.check()
        written = {name.hex() for name, _ in repo.write_index_files(packs, old)}
        report.index_files_written = len(written)
        lock.check()
        for name in old:
            if name not in written:
                progress.item(f"deleting index/{name[:16]}")
                _remove(repo, FileType.INDEX, name)
                report.index_files_deleted += 1
        repo.replace_index(packs)
        return report


def _described(
    files: list[tuple[FileInfo, IndexFile]], sizes: dict[Id, int]
) -> tuple[dict[Id, list[PackEntry]], set[Id], set[Id]]:
    """What the index files say of the packs on the backend, the packs whose description is
    suspect (it does not fit the pack, or two files disagree), and the packs they name that
    are not on the backend."""
    named: dict[Id, list[PackEntry]] = {}
    suspect: set[Id] = set()
    vanished: set[Id] = set()
    for _, index_file in sorted(files, key=lambda f: f[0].handle.name):
        for pack_id, entries in index_file.packs.items():
            if pack_id not in sizes:
                vanished.add(pack_id)
            elif pack_id in named and named[pack_id] != list(entries):
                suspect.add(pack_id)
            else:
                named[pack_id] = list(entries)
    for pack_id, entries in named.items():
        if max((e.offset + e.length for e in entries), default=0) > sizes[pack_id]:
            suspect.add(pack_id)
    return named, suspect, vanished


# -- repair snapshots -------------------------------------------------------------------------
@dataclass(frozen=True)
class RepairChange:
    """One path of a snapshot a repair removed (a file) or emptied (a directory), and why."""

    path: str
    action: str  # "removed" or "emptied"
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.action} ({self.reason})"


@dataclass
class RepairedSnapshot:
    original: Snapshot
    changes: list[RepairChange]
    repaired: Snapshot | None = None  # the new snapshot (None in a dry run, or if already there)
    already: Snapshot | None = None  # a repaired copy saved by an earlier run
    forgotten: bool = False  # the original was removed


@dataclass
class SnapshotsRepairReport:
    dry_run: bool = False
    forget: bool = False
    snapshots: int = 0  # snapshots read and checked
    repaired: list[RepairedSnapshot] = field(default_factory=list)
    damaged: dict[str, str] = field(default_factory=dict)  # unreadable snapshot objects -> why
    damaged_removed: list[str] = field(default_factory=list)


def repair_snapshots(
    repo: Repository,
    *,
    forget: bool = False,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> SnapshotsRepairReport:
    """Rewrites the snapshots that reach lost data (see the module docstring); with `forget`,
    removes the originals and the snapshot objects that cannot be read. The repository's index
    must be loaded. Takes an exclusive lock unless the repository holds one."""
    progress = progress or NoProgress()
    with _exclusive(repo, dry_run, "repair snapshots") as lock:
        report = SnapshotsRepairReport(dry_run=dry_run, forget=forget)
        snapshots = _read_snapshots(repo, report)
        earlier = {
            str(s.metadata[REPAIRED_FROM]): s
            for s in snapshots
            if isinstance(s.metadata.get(REPAIRED_FROM), str)
        }
        rewriter = _Rewriter(repo, dry_run)
        for snap in snapshots:
            assert snap.id is not None  # loaded snapshots have one
            progress.item(f"checking snapshot {snap.short_id}")
            tree, changes = rewriter.rewrite(snap.tree)
            if tree == snap.tree:
                continue
            entry = RepairedSnapshot(snap, changes, already=earlier.get(snap.id.hex()))
            report.repaired.append(entry)
            if dry_run:
                continue
            if entry.already is None:
                entry.repaired = dataclasses.replace(
                    snap,
                    tree=tree,
                    tags=[*snap.tags, REPAIRED_TAG] if REPAIRED_TAG not in snap.tags else snap.tags,
                    metadata={**snap.metadata, REPAIRED_FROM: snap.id.hex()},
                )
                replace_snapshot(repo, snap, entry.repaired, remove_old=forget, before_remove=lock.check)
            elif forget:
                lock.check()
                _remove(repo, FileType.SNAPSHOT, snap.id.hex())
            entry.forgotten = forget
        if forget and not dry_run:
            lock.check()
            for name in sorted(report.damaged):
                _remove(repo, FileType.SNAPSHOT, name)
                report.damaged_removed.append(name)
        return report


def _read_snapshots(repo: Repository, report: SnapshotsRepairReport) -> list[Snapshot]:
    """Every snapshot that can be read, oldest first; the others go to `report.damaged`. A
    snapshot of another format version stops the repair before it changes anything."""
    snapshots = []
    for info in repo.list_objects(FileType.SNAPSHOT):
        try:
            snapshots.append(load_snapshot(repo, info.handle.name))
        except IntegrityError as exc:
            report.damaged[info.handle.name] = str(exc)
        except ObjectNotFound:
            continue  # removed since it was listed
    report.snapshots = len(snapshots)
    return sorted(snapshots, key=lambda s: (s.time, bytes(s.id or b"")))


class _Rewriter:
    """Rewrites trees bottom-up around lost blobs, remembering its verdicts for the whole run:
    a tree shared by many snapshots is read and rewritten once, and what it lost is kept by
    tree (each change by name, each changed subtree by name and id) so that every snapshot
    holding it can name its own paths."""

    def __init__(self, repo: Repository, dry_run: bool) -> None:
        self._repo = repo
        self._dry_run = dry_run
        self._sizes = repo.list_packs()
        self._why: dict[bytes, str | None] = {}  # blob -> why it cannot be read, or None
        self._depths: deltas.ChainDepths | None = None  # made once the index is loaded
        self._lists: dict[bytes, str | None] = {}  # chunk list -> why its files are lost, or None
        self._unreadable: dict[bytes, str] = {}  # trees and chunk lists -> why
        self._new: dict[bytes, Id] = {}  # tree id -> its repaired id (the same if whole)
        #: tree id -> its own changes: (name, or None for the tree itself; action; reason)
        self._direct: dict[bytes, list[tuple[bytes | None, str, str]]] = {}
        #: tree id -> (name, subtree id) of its subtrees that changed
        self._below: dict[bytes, list[tuple[bytes, bytes]]] = {}
        self._walker = Walker(repo, on_error=self._on_error)

    def rewrite(self, root: Id) -> tuple[Id, list[RepairChange]]:
        """The repaired root tree of a snapshot, and the paths it lost."""
        for visit in self._walker.post_order(root):  # the trees not met before
            key = bytes(visit.tree_id)
            if key in self._unreadable:
                self._direct[key] = [(None, "emptied", f"its tree cannot be read: {self._unreadable[key]}")]
                self._new[key] = self._save([])
                continue
            nodes: list[Node] = []
            direct: list[tuple[bytes | None, str, str]] = []
            below: list[tuple[bytes, bytes]] = []
            for node in visit.nodes:
                if node.type is NodeType.DIR and node.subtree is not None:
                    old = bytes(node.subtree)
                    node.subtree = self._new[old]
                    if node.subtree != old:
                        below.append((node.name, old))
                elif node.type is NodeType.FILE and (lost := self._lost(node)) is not None:
                    direct.append((node.name, "removed", lost))
                    continue
                nodes.append(node)
            if direct or below:
                self._direct[key], self._below[key] = direct, below
                self._new[key] = self._save(nodes)
            else:
                self._new[key] = visit.tree_id
        return self._new[bytes(root)], self._changes(bytes(root))

    def _changes(self, root: bytes) -> list[RepairChange]:
        """Every change below `root`, by path (an explicit stack: trees may be deep)."""
        changes = []
        stack: list[tuple[tuple[bytes, ...], bytes]] = [((), root)]
        while stack:
            path, key = stack.pop()
            for name, action, reason in self._direct.get(key, ()):
                where = path if name is None else (*path, name)
                changes.append(RepairChange("/" + display_path(where), action, reason))
            stack.extend(((*path, name), child) for name, child in self._below.get(key, ()))
        return sorted(changes, key=lambda c: c.path)

    def _save(self, nodes: list[Node]) -> Id:
        data = encode_tree(nodes)
        if self._dry_run:
            return self._repo.hash_blob(data)
        return self._repo.save_blob(BlobType.TREE, data).id

    def _on_error(self, problem: Unreadable) -> None:
        if not isinstance(problem.error, _DAMAGE) and self._missing(problem.blob_id) is None:
            raise problem.error  # the backend failing, say: repairing on that would lose data
        self._unreadable[bytes(problem.blob_id)] = str(problem.error)

    def _lost(self, node: Node) -> str | None:
        """Why a file's content cannot be read, or None if it can."""
        for blob_id in node.content:
            if (why := self._missing(blob_id)) is not None:
                return why
        for list_id, ids in self._walker.chunk_lists(node):  # those not read before
            key = bytes(list_id)
            if key in self._unreadable:
                self._lists[key] = f"chunk list {list_id.hex()[:16]} cannot be read: {self._unreadable[key]}"
            else:
                self._lists[key] = next((w for i in ids if (w := self._missing(i)) is not None), None)
        return next((why for i in node.content_lists if (why := self._lists[bytes(i)]) is not None), None)

    def _missing(self, blob_id: Id) -> str | None:
        """Why no copy of a blob can be read (None if one can): a copy serves if it lies
        whole inside a pack on the backend and, if it is a delta, its chain of bases ends in
        such a whole copy within the depth the rules allow."""
        key = bytes(blob_id)
        if key not in self._why:
            index = self._repo.index
            if self._depths is None:
                self._depths = deltas.ChainDepths(index, self._fits)
            copies = [c for c in index.lookup_all(key) if self._fits(c)]
            if not copies:
                self._why[key] = f"content blob {blob_id.hex()[:16]} is in no pack"
            elif self._depths(key) is None:
                self._why[key] = f"content blob {blob_id.hex()[:16]} is a delta whose base is in no pack"
            else:
                self._why[key] = None
        return self._why[key]

    def _fits(self, location: BlobLocation) -> bool:
        size = self._sizes.get(location.pack_id)
        return size is not None and location.offset + location.length <= size
