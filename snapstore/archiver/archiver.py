"""Taking a snapshot: entries from a Source become blobs, trees and one snapshot object.

Write order (SPEC.md section 11): data blobs and trees go into packs, packs are stored, then
the index file naming them, and only then the snapshot. A crash before the snapshot leaves
packs (and maybe index files) that no snapshot uses; they cost space, never correctness, and
a later backup reuses them.

A snapshot in which nothing could be read is not recorded: when the source reported errors
and the tree holds no file, no symlink and no directory other than those on the way to what
failed (every path given missing, an unmounted volume, a stream that cannot be read), `run`
raises SourceError instead. Such a snapshot would be the newest of its group, and `forget
--keep-last 1` would then keep it and delete the real backups. A snapshot that read some of
its paths is recorded with its errors.

Unchanged files (unchanged.py) are not read: a file whose size, times, inode and device are
those of its node in the parent snapshot takes that node's content. The parent is looked up
when a file first needs it: an unchanged file, a database dump (delta bases) or a file of
many chunks (chunk lists). A directory whose every child is the parent's own node (and no
fewer) takes the parent's tree id as it is, neither encoded nor hashed again, and its node
stands in its own directory's tree the same way: an unchanged snapshot writes no tree.

Hard links (snapshot/hardlinks.py) are read once: a later link to a file already seen in
this snapshot takes its content, waiting for its chunks if they are still being saved.
"""

from __future__ import annotations

import contextlib
import getpass
import socket
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import BinaryIO

from snapstore.archiver.detect import HEAD_BYTES, PROFILE_KEY, Prefixed, database_format, read_head
from snapstore.archiver.parent import ParentStream, ParentTree, find_parent, parent_chunk_ids
from snapstore.archiver.source import (
    ChunkingProfile,
    EntryKind,
    ScannableSource,
    Source,
    SourceEntry,
)
from snapstore.archiver.unchanged import (
    ChangeRule,
    content_in_index,
    has_stat_facts,
    is_unchanged,
    keeps_node,
)
from snapstore.chunker import PROFILES, ByteReader, Chunker, ChunkerParams
from snapstore.errors import SourceError
from snapstore.ids import Id
from snapstore.pack import BlobType
from snapstore.progress import ItemStatus, NoProgress, Progress, Scan
from snapstore.repository.packer import SavedBlob
from snapstore.repository.repository import Repository
from snapstore.snapshot.content import INLINE_CHUNK_LIMIT, split_id_run
from snapstore.snapshot.hardlinks import LinkKey, link_key
from snapstore.snapshot.manifest import Snapshot, Summary
from snapstore.snapshot.store import save_snapshot
from snapstore.snapshot.tree import Node, NodeType, check_name, encode_tree

PROGRAM_VERSION = "snapstore 0.1.0"


@dataclass
class SnapshotOptions:
    tags: list[str] = field(default_factory=list)
    host: str | None = None
    time: datetime | None = None
    user: str | None = None
    #: Where unchanged files and delta bases come from; None: the latest complete snapshot
    #: of the same source, host and paths (parent.py `find_parent`).
    parent: Snapshot | None = None
    #: False: no parent at all (every file is read, every new chunk is stored whole).
    use_parent: bool = True
    #: Read every file, even one unchanged since the parent (restic's --force).
    force: bool = False
    #: Do not compare inode, device nor ctime (restic's --ignore-inode); see unchanged.py.
    ignore_inode: bool = False
    #: Do not compare ctime (restic's --ignore-ctime).
    ignore_ctime: bool = False
    #: Database chunking for files and streams: None recognises databases by their first
    #: bytes (detect.py); True takes every file as one; False never looks. A source that
    #: names its entries' profile (pg_dump, an RDB) keeps it either way.
    database: bool | None = None


@dataclass
class BackupResult:
    snapshot: Snapshot
    errors: list[tuple[str, str]]

    @property
    def complete(self) -> bool:
        return not self.errors


def _display(path: tuple[bytes, ...]) -> str:
    return "/" + b"/".join(path).decode("utf-8", "surrogateescape")


@dataclass(slots=True)
class _PendingNode:
    """A node whose content blobs may still be in the pipeline.

    Finished blobs move from `futures` to `ids` (32 bytes each) as the file is read, so a
    file of millions of chunks holds only its ids, not millions of futures. `futures` is made
    for the first blob: a directory of 200,000 unchanged files holds no empty deque each.
    """

    node: Node
    futures: deque[Future[SavedBlob]] | None = None
    ids: bytearray = field(default_factory=bytearray)
    added: int = 0
    deltas: int = 0
    path: tuple[bytes, ...] = ()
    parent: Node | None = None  # the same file in the parent snapshot
    parent_known: bool = False  # `parent` was looked up

    def collect(self, *, wait: bool) -> None:
        while self.futures and (wait or self.futures[0].done()):
            saved = self.futures.popleft().result()
            self.ids += saved.id
            self.added += saved.added
            self.deltas += saved.delta

    @property
    def has_content(self) -> bool:
        return bool(self.futures or self.ids)


#: A directory of the parent snapshot: its tree id and its nodes by name.
_ParentDir = tuple[Id, dict[bytes, Node]]


@dataclass
class _OpenDir:
    path: tuple[bytes, ...]
    node: Node | None  # None for the snapshot root
    #: A node with nothing in the pipeline (a directory's, a symlink's, an unchanged file's)
    #: is kept as it is: no _PendingNode for each of 200,000 unchanged files.
    children: list[_PendingNode | Node] = field(default_factory=list)
    #: The parent snapshot's directory here, once looked up (Archiver._before)
    before: _ParentDir | None = None
    before_known: bool = False


class Archiver:
    def __init__(
        self,
        repo: Repository,
        progress: Progress | None = None,
        *,
        inline_chunk_limit: int = INLINE_CHUNK_LIMIT,
    ) -> None:
        self._repo = repo
        self._progress = progress or NoProgress()
        self._chunkers: dict[ChunkingProfile, Chunker] = {}
        self._summary = Summary()
        self._errors: list[tuple[str, str]] = []
        # Until something is read: every failed path and its parents (see the module docstring).
        self._read_something = False
        self._failed_paths: set[tuple[bytes, ...]] = set()
        self._inline_chunk_limit = inline_chunk_limit
        self._parent: Snapshot | None = None
        self._parent_tree: ParentTree | None = None
        self._find_parent: Callable[[], Snapshot | None] | None = None
        self._change_rule: ChangeRule | None = None  # None: read every file
        self._links: dict[LinkKey, _PendingNode] = {}  # first node of each hard-linked file

    def _chunker(self, profile: ChunkingProfile) -> Chunker:
        if profile not in self._chunkers:
            configured = self._repo.config.chunker.get(profile.value)
            params = ChunkerParams(*configured) if configured else PROFILES[profile.value]
            self._chunkers[profile] = Chunker(params, self._repo.chunker_seed)
        return self._chunkers[profile]

    def _record_error(self, path: tuple[bytes, ...], exc: Exception) -> None:
        message = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        self._errors.append((_display(path), message))
        self._summary.errors += 1
        self._progress.warning(_display(path), message)
        if not self._read_something:
            self._failed_paths.update(path[:depth] for depth in range(len(path) + 1))

    def run(self, source: Source, options: SnapshotOptions | None = None) -> BackupResult:
        options = options or SnapshotOptions()
        started = time.monotonic()
        self._summary = Summary()
        self._errors = []
        self._read_something, self._failed_paths = False, set()
        self._links = {}
        self._repo.recover_unindexed_packs()  # resume: reuse what an interrupted run uploaded
        uploaded_before = self._repo.bytes_uploaded
        snapshot_time = options.time or datetime.now(UTC).astimezone()
        host = options.host or socket.gethostname()
        self._parent, self._parent_tree, self._find_parent = None, None, None
        if options.use_parent:
            # looked up when a file first needs it: a backup of a stream alone never does
            chosen, paths = options.parent, source.describe()
            self._find_parent = lambda: chosen or find_parent(self._repo, source.kind, paths, host)
        self._database = options.database
        self._change_rule = None
        if not options.force:
            self._change_rule = ChangeRule(options.ignore_inode, options.ignore_ctime)
        stack: list[_OpenDir] = [_OpenDir((), None)]

        self._progress.phase("snapshot")
        scan: contextlib.AbstractContextManager[object] = contextlib.nullcontext()
        if isinstance(source, ScannableSource):  # totals for the progress display
            scan = Scan(source.scan, self._progress)
        with scan:
            for entry in source.entries(self._record_error):
                parent = entry.path[:-1]
                if parent == stack[-1].path:  # in the directory of the entry before
                    check_name(entry.path[-1])
                else:
                    self._enter(stack, entry.path)
                shown = _display(entry.path)
                self._progress.item(shown)
                if entry.kind is EntryKind.FILE:
                    saved = self._save_file(entry, shown)
                    if saved is not None:
                        stack[-1].children.append(saved)
                        self._read_something = True
                        if type(saved) is Node and not stack[-1].before_known:
                            self._before(stack[-1])  # while it holds the node objects
                elif entry.kind is EntryKind.DIR:
                    stack.append(_OpenDir(entry.path, _node_for(entry, NodeType.DIR)))
                    self._summary.dirs += 1
                elif entry.kind is EntryKind.SYMLINK:
                    node = _node_for(entry, NodeType.SYMLINK)
                    node.target = entry.link_target or b""
                    stack[-1].children.append(node)
                    self._read_something = True
                else:  # a FIFO, socket or device: no content
                    node = _node_for(entry, NodeType(entry.kind.value))
                    node.size = 0
                    if node.type.is_device and entry.rdev is not None:
                        node.rdev_major, node.rdev_minor = entry.rdev
                    stack[-1].children.append(node)
                    self._read_something = True
        while len(stack) > 1:
            self._close_dir(stack)
        if self._errors and not self._read_something:
            raise SourceError(_nothing_read(self._errors))
        root_tree = self._save_tree(stack[0].children, self._before(stack[0]))
        self._repo.flush()

        self._summary.bytes_added = self._repo.bytes_uploaded - uploaded_before
        self._summary.duration_s = round(time.monotonic() - started, 3)
        snapshot = Snapshot(
            time=snapshot_time,
            host=host,
            user=options.user if options.user is not None else _user(),
            tags=sorted(set(options.tags)),
            source=source.kind,
            paths=source.describe(),
            tree=root_tree,
            parent=self._parent.id if self._parent is not None else None,
            summary=self._summary,
            chunker={p.value: list(self._params(p)) for p in self._chunkers},
            program_version=PROGRAM_VERSION,
            metadata=source.metadata(),
        )
        save_snapshot(self._repo, snapshot)
        return BackupResult(snapshot, self._errors)

    def _enter(self, stack: list[_OpenDir], path: tuple[bytes, ...]) -> None:
        """Closes the open directories `path` is not in, opens those it is in (with default
        metadata where the source gave none) and checks the names that are new."""
        parent = path[:-1]
        while stack[-1].path != parent[: len(stack[-1].path)] or len(stack[-1].path) > len(parent):
            self._close_dir(stack)
        for name in path[len(stack[-1].path) :]:  # the open directories' were checked
            check_name(name)
        while len(stack[-1].path) < len(parent):
            missing = parent[: len(stack[-1].path) + 1]
            stack.append(_OpenDir(missing, Node(missing[-1], NodeType.DIR, mode=0o755)))

    def _params(self, profile: ChunkingProfile) -> tuple[int, int, int, int]:
        p = self._chunkers[profile].params
        return (p.min_size, p.avg_size, p.max_size, p.normalization)

    def _save_file(self, entry: SourceEntry, shown: str) -> _PendingNode | Node | None:
        """The file's node: unchanged since the parent (not opened), another link to a file
        saved before, or read; None when it could not be read."""
        key = link_key(entry.extra)
        if key is not None and key in self._links:
            return self._link(entry, self._links[key], shown)
        unchanged = self._unchanged_node(entry)
        if unchanged is not None:
            self._summary.files += 1
            self._summary.files_unchanged += 1
            if unchanged.size:
                self._progress.advance(unchanged.size, 0)
            self._progress.item_done(shown, ItemStatus.UNCHANGED)
            if key is None:
                return unchanged
            pending: _PendingNode | None = _PendingNode(unchanged)
        else:
            pending = self._read_file(entry, shown)
        if key is not None and pending is not None:
            self._links[key] = pending
        return pending

    def _link(self, entry: SourceEntry, first: _PendingNode, shown: str) -> _PendingNode:
        """Another link to a file already saved: its content, without opening it."""
        node = _node_for(entry, NodeType.FILE)
        first.collect(wait=True)  # its chunks' ids (their counts stay with the first)
        node.size = first.node.size
        if not first.ids:  # reused from the parent, or empty: its node lists the content
            node.content, node.content_lists = list(first.node.content), list(first.node.content_lists)
        if PROFILE_KEY in first.node.extra:
            node.extra[PROFILE_KEY] = first.node.extra[PROFILE_KEY]
        self._summary.files += 1
        self._progress.advance(node.size, 0)
        self._progress.item_done(shown, self._compared(entry.path))
        return _PendingNode(node, ids=bytearray(first.ids), path=entry.path,
                            parent=first.parent, parent_known=first.parent_known)  # fmt: skip

    def _read_file(self, entry: SourceEntry, shown: str) -> _PendingNode | None:
        node = _node_for(entry, NodeType.FILE)
        pending = _PendingNode(node)
        if entry.open_content is None:
            self._progress.item_done(shown, self._compared(entry.path))
            return pending
        pending.path = entry.path
        read = 0
        try:
            with entry.open_content() as opened:
                stream, profile = self._profile(entry, opened)
                if profile is ChunkingProfile.DATABASE:
                    node.extra[PROFILE_KEY] = profile.value
                aligner = self._aligner(pending, profile)
                for chunk in self._chunker(profile).iter_chunks(stream):
                    read += len(chunk)
                    if aligner is None:
                        future = self._repo.submit_blob(BlobType.DATA, chunk)
                    else:
                        chunk_id = self._repo.hash_blob(chunk)
                        start = aligner.offset
                        bases = aligner.candidates(chunk_id, len(chunk))
                        future = self._repo.submit_blob(
                            BlobType.DATA, chunk, blob_id=chunk_id, bases=bases
                        )
                        if bases:
                            aligner.submitted(start, future)
                    future.add_done_callback(self._count_added)
                    if pending.futures is None:
                        pending.futures = deque()
                    pending.futures.append(future)
                    pending.collect(wait=False)
        except SourceError:
            raise
        except OSError as exc:
            self._record_error(entry.path, exc)
            self._progress.item_done(shown, None)
            return None
        node.size = read
        self._summary.files += 1
        self._summary.bytes_read += read
        self._progress.item_done(shown, self._compared(entry.path))
        return pending

    def _compared(self, path: tuple[bytes, ...]) -> ItemStatus:
        """A file that was read (or linked): new, or changed from the parent's copy. A run
        that has not needed its parent (streams, --force) does not look it up for this: no
        parent is in use, and the file is new."""
        if self._find_parent is not None or self._parent_file(path) is None:
            return ItemStatus.NEW
        return ItemStatus.CHANGED

    def _profile(
        self, entry: SourceEntry, stream: BinaryIO
    ) -> tuple[ByteReader, ChunkingProfile]:
        """The chunking profile for this content: the source's, or the database profile for
        a file or stream whose first bytes name a database (detect.py)."""
        if entry.profile is not ChunkingProfile.FILES or self._database is False:
            return stream, entry.profile
        if self._database is True:
            return stream, ChunkingProfile.DATABASE
        head = read_head(stream, HEAD_BYTES)
        found = database_format(entry.path[-1], head)
        profile = ChunkingProfile.DATABASE if found else ChunkingProfile.FILES
        return Prefixed(head, stream), profile

    def _aligner(self, pending: _PendingNode, profile: ChunkingProfile) -> ParentStream | None:
        """Delta bases for database content: yesterday's copy of the same file."""
        if profile is not ChunkingProfile.DATABASE or not self._repo.config.deltas:
            return None
        pending.parent = self._parent_file(pending.path)
        pending.parent_known = True
        if pending.parent is None:
            return None
        return ParentStream(self._repo, parent_chunk_ids(self._repo, pending.parent))

    def _unchanged_node(self, entry: SourceEntry) -> Node | None:
        """The node of a file unchanged since the parent snapshot, with the parent's content
        (unchanged.py): the parent's node itself when nothing else changed either (it is
        shared with the parent's tree, so nothing may change it in place); None: the file
        must be read."""
        if self._change_rule is None or entry.open_content is None or not has_stat_facts(entry):
            return None
        previous = self._parent_file(entry.path)
        if previous is None:
            return None
        # the same in every field (the usual case) is unchanged under every rule
        kept = keeps_node(entry, previous)
        if not kept and not is_unchanged(entry, previous, self._change_rule):
            return None
        if not content_in_index(self._repo, previous):
            return None
        if kept:
            return previous
        node = _node_for(entry, NodeType.FILE)
        node.content, node.content_lists = list(previous.content), list(previous.content_lists)
        if PROFILE_KEY in previous.extra:  # as it was cut: the same node, the same tree
            node.extra[PROFILE_KEY] = previous.extra[PROFILE_KEY]
        return node

    def _parent_file(self, path: tuple[bytes, ...]) -> Node | None:
        """The same file in the parent snapshot, finding the parent on first use."""
        if self._find_parent is not None:
            self._parent = self._find_parent()
            self._find_parent = None
            if self._parent is not None:
                self._parent_tree = ParentTree(self._repo, self._parent.tree)
        return self._parent_tree.file_at(path) if self._parent_tree is not None else None

    def _count_added(self, future: Future[SavedBlob]) -> None:
        if not future.cancelled() and future.exception() is None:
            saved = future.result()
            self._progress.advance(saved.plain_length, saved.stored_length)

    def _set_content(self, pending: _PendingNode) -> None:
        """Lists the file's chunks in its node, or in chunk-list blobs when there are many."""
        ids = pending.ids
        count = len(ids) // 32
        if count <= self._inline_chunk_limit or not self._repo.config.deltas:
            pending.node.content = [Id(bytes(ids[i : i + 32])) for i in range(0, len(ids), 32)]
            return
        lists = split_id_run(bytes(ids))
        if not pending.parent_known:
            pending.parent = self._parent_file(pending.path)
        aligner = None
        if pending.parent is not None and pending.parent.content_lists:
            aligner = ParentStream(self._repo, b"".join(bytes(i) for i in pending.parent.content_lists))
        list_ids = []
        for plaintext in lists:
            list_id = self._repo.hash_blob(plaintext)
            bases = aligner.candidates(list_id, len(plaintext)) if aligner is not None else []
            saved = self._repo.save_blob(BlobType.DATA, plaintext, blob_id=list_id, bases=bases)
            self._summary.blobs_added += saved.added
            self._summary.deltas_added += saved.delta
            list_ids.append(saved.id)
        pending.node.content_lists = list_ids

    def _close_dir(self, stack: list[_OpenDir]) -> None:
        closing = stack.pop()
        assert closing.node is not None
        if not closing.children and closing.path not in self._failed_paths:
            self._read_something = True  # an empty directory that was read
        node = closing.node
        node.subtree = self._save_tree(closing.children, self._before(closing))
        stack[-1].children.append(self._kept_dir(stack[-1], node) or node)

    def _before(self, open_dir: _OpenDir) -> _ParentDir | None:
        """The parent snapshot's directory at this open directory's path (its tree id and
        nodes), looked up once and held while the directory is open: the parent tree's cache
        may let it go meanwhile, and a new decode would hold other node objects. Only when
        unchanged files are looked for and a file has already found the parent: before
        that, no node of the new snapshot can be one of the parent's."""
        if not open_dir.before_known and self._change_rule is not None and self._parent_tree is not None:
            open_dir.before = self._parent_tree.tree_at(open_dir.path)
            open_dir.before_known = True
        return open_dir.before

    def _unchanged_tree(self, children: list[_PendingNode | Node], before: _ParentDir | None) -> Id | None:
        """The parent's tree for this directory when the new one would be it byte for byte:
        every child is the parent's own node object there (an unchanged file that keeps its
        node, a directory `_kept_dir` kept) and the parent's directory has no other. The
        nodes are then the ones encoding gave the parent's tree, in the same name order, so
        the tree and its id are the same: they are neither encoded nor hashed again. The
        tree must still be in the index (a damaged repository writes it anew)."""
        if before is None or not children:
            return None
        tree_id, nodes = before
        if len(nodes) != len(children):
            return None
        for child in children:
            if type(child) is not Node or nodes.get(child.name) is not child:
                return None
        location = self._repo.index.lookup(tree_id)
        if location is None or location.type is not BlobType.TREE:
            return None
        return tree_id

    def _kept_dir(self, parent: _OpenDir, node: Node) -> Node | None:
        """The parent snapshot's node of this directory when the new one equals it field for
        field (its tree too, `extra` in the same order), to stand in `parent`'s children as
        an unchanged file's node does, so that `parent`'s tree can be the parent's too."""
        before = self._before(parent)
        previous = before[1].get(node.name) if before is not None else None
        if previous is None or previous.subtree != node.subtree or previous != node:
            return None
        if list(previous.extra.items()) != list(node.extra.items()):
            return None
        return previous

    def _save_tree(self, children: list[_PendingNode | Node], before: _ParentDir | None = None) -> Id:
        unchanged = self._unchanged_tree(children, before)
        if unchanged is not None:
            return unchanged
        nodes = []
        for pending in children:
            if isinstance(pending, Node):
                nodes.append(pending)
                continue
            if pending.has_content:
                pending.collect(wait=True)
                self._summary.blobs_added += pending.added
                self._summary.deltas_added += pending.deltas
                self._set_content(pending)
            nodes.append(pending.node)
        tree = self._repo.save_blob(BlobType.TREE, encode_tree(nodes))
        if tree.added:
            self._summary.blobs_added += 1
        return tree.id


def _nothing_read(errors: list[tuple[str, str]]) -> str:
    path, message = errors[0]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"nothing could be read, so no snapshot was recorded: {path}: {message}{more}"


def _node_for(entry: SourceEntry, node_type: NodeType) -> Node:
    return Node(
        name=entry.path[-1],
        type=node_type,
        mode=entry.mode,
        uid=entry.uid,
        gid=entry.gid,
        user=entry.user,
        group=entry.group,
        mtime_ns=entry.mtime_ns,
        size=entry.size,
        extra=dict(entry.extra),
    )


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return ""


ProgressFactory = Callable[[], Progress]
