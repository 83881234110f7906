"""Restoring a snapshot (or parts of it) into a target directory, planned by pack.

The restorer walks the snapshot once, without recursion (a tree 10,000 levels deep is fine),
and creates directories, symlinks and files as it goes: each file is created empty and what
it needs is noted as (blob, offset) places (the blobs' lengths of small files are looked up
for many files at once); once its content is in, it is given its content's length, unless its
last byte was written (not the size its node claims: see `_check_length`). Every batch of places
(`BATCH_BLOBS` blobs or `MAX_OPEN_FILES` files) goes to the blob reader, on a thread of the
run while the walk plans the next batch, and the reader reads each stretch of each pack once,
in parallel, a blob shared by several files once; each blob is then written with positional
writes to every place that needs it. A blob of zeros is not written at all, nor a run of
4 KiB of zeros or more inside a blob, so a sparse file's holes stay holes. A file's metadata
is set once its last blob is in (when its batch is through), a directory's after everything
below it was created (writing content into a file does not change its directory); only a
window of directory descriptors stays open (`reopen_parent` finds the way back up).

Hard links (snapshot/hardlinks.py): the first file node of a linked file is restored as any
file; each later one in the same restore is linked to it (counted in `files` and `hardlinks`,
no content written). Where linking fails (a filesystem without hard links), it is written as
a file of its own.

FIFOs and device nodes are created with mkfifo/mknod and their metadata set without opening
them; a device node needs root, so without it each is named in `errors` (exit 1, as a file
that could not be written). Sockets are not created (as restic and borg: the program that
listens on one makes it), only counted. Neither --verify nor --overwrite ever opens one in
the target: a FIFO would block the restore.

Damage does not stop a restore: a file whose blob cannot be read, or cannot be written (a
full disk), is named in `RestoreResult.errors` (which blob, which pack), and every other file
is restored.
"""

from __future__ import annotations

import enum
import os
import resource
import stat
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from dataclasses import dataclass, field
from functools import partial
from itertools import islice
from pathlib import Path

from snapstore.errors import PathNotFound, SnapstoreError
from snapstore.ids import Id
from snapstore.pack import BlobType
from snapstore.progress import NoProgress, Progress, Scan
from snapstore.repository.blob_reader import BlobRead
from snapstore.repository.repository import Repository
from snapstore.restorer.file_writer import (
    apply_link_metadata,
    apply_metadata,
    apply_node_metadata,
    create_file,
    existing,
    make_dir,
    make_hardlink,
    make_special,
    make_symlink,
    remove_entry,
    reopen_parent,
    same_special,
    write_keeping_holes,
)
from snapstore.snapshot.content import iter_chunk_ids
from snapstore.snapshot.hardlinks import LinkKey, link_key
from snapstore.snapshot.manifest import Snapshot
from snapstore.snapshot.patterns import PathPatterns
from snapstore.snapshot.store import find_node, split_path
from snapstore.snapshot.tree import Node, NodeType
from snapstore.snapshot.walk import Unreadable, Walker

#: Distinct blobs fetched in one batch.
BATCH_BLOBS = 16384


def _open_files_allowed() -> int:
    """Files open for writing at once: a quarter of the process's descriptors, 384 to 4096
    (each batch closes the files it finished; a pack whose blobs fall in two batches is read
    twice, so larger batches save requests)."""
    try:
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (OSError, ValueError):  # pragma: no cover - no such limit on this platform
        return 384
    if soft == resource.RLIM_INFINITY:
        return 4096
    return max(384, min(4096, soft // 4))


MAX_OPEN_FILES = _open_files_allowed()
#: Directory descriptors kept open along the current path; deeper ones are reopened.
DIR_FD_WINDOW = 64
#: Chunk ids whose lengths are looked up at once when planning a file.
_ID_GROUP = 4096


class Overwrite(enum.Enum):
    """What to do with a file that already exists in the target."""

    ALWAYS = "always"
    IF_CHANGED = "if-changed"  # rewrite unless size and mtime match the snapshot's
    IF_NEWER = "if-newer"  # rewrite only if the snapshot's copy is newer
    NEVER = "never"


@dataclass
class RestoreOptions:
    includes: list[str] = field(default_factory=list)
    excludes: list[str] = field(default_factory=list)
    overwrite: Overwrite = Overwrite.IF_CHANGED
    dry_run: bool = False  # plan and count, write nothing
    verify: bool = False  # read every restored file back and check it against the snapshot
    delete: bool = False  # remove what the target has and the snapshot lacks
    #: Restore the contents of this directory of the snapshot into the target (as restic's
    #: `snapshot:subfolder`): `media` puts media/... straight into the live media folder.
    #: Includes and excludes are then relative to it.
    subtree: str | None = None


@dataclass
class RestoreResult:
    files: int = 0
    dirs: int = 0
    symlinks: int = 0
    bytes_written: int = 0  # file content written (or to be written, in a dry run)
    files_skipped: int = 0  # already in the target, left as they are (--overwrite)
    deleted: int = 0  # entries removed with --delete
    files_verified: int = 0
    hardlinks: int = 0  # files of `files` restored as another link to an earlier one
    special: int = 0  # FIFOs and device nodes created (or to be, in a dry run)
    sockets_skipped: int = 0  # socket nodes, never created
    #: one line per file that could not be restored or verified (path, then why)
    errors: list[str] = field(default_factory=list)
    #: one line per fact the target could not take (an extended attribute it refused)
    warnings: list[str] = field(default_factory=list)
    #: (display path, bytes) of every file written, or to be written in a dry run
    planned: list[tuple[str, int]] = field(default_factory=list)


class _Selection:
    """Which paths --include and --exclude select: the included paths, their ancestors and
    contents, less what an exclude pattern matches."""

    def __init__(self, includes: list[str], excludes: list[str]) -> None:
        self._paths = [tuple(split_path(p)) for p in includes]
        self._hit = [False] * len(self._paths)
        self._excludes = PathPatterns(excludes)

    def wants(self, path: tuple[bytes, ...]) -> bool:
        if self._excludes and self._excludes.matches(b"/" + b"/".join(path)):
            return False
        if not self._paths:
            return True
        for n, inc in enumerate(self._paths):
            common = min(len(inc), len(path))
            if inc[:common] == path[:common]:
                if len(path) >= len(inc):
                    self._hit[n] = True
                return True
        return False

    def whole(self, path: tuple[bytes, ...]) -> bool:
        return not self._paths or any(path[: len(inc)] == inc for inc in self._paths)

    def unmatched(self) -> list[str]:
        return [
            "/" + b"/".join(p).decode("utf-8", "surrogateescape")
            for p, hit in zip(self._paths, self._hit, strict=True)
            if p and not hit
        ]


@dataclass(eq=False, slots=True)
class _File:
    fd: int
    node: Node
    display: str
    length: int = 0  # of its content, once planned
    outstanding: int = 0  # places planned, not yet written
    planned: bool = False  # every place of the file is planned
    #: its last byte was written, so it already has its length (no ftruncate at the end)
    written_to_end: bool = False
    error: str | None = None


@dataclass
class _Dir:
    """A directory on the current path: its descriptor (None when closed to stay within the
    window, or in a dry run where it does not exist), its identity to check a reopen by, and
    the names the snapshot has in it (for --delete)."""

    fd: int | None
    ident: tuple[int, int]
    node: Node | None  # None for the target itself
    path: tuple[bytes, ...]
    names: set[bytes] = field(default_factory=set)
    made: bool = False  # made by this restore: nothing was in it to keep or replace


def _display(path: tuple[bytes, ...]) -> str:
    return "/" + b"/".join(path).decode("utf-8", "surrogateescape")


class Restorer:
    def __init__(
        self, repo: Repository, progress: Progress | None = None, *, owners: bool | None = None
    ) -> None:
        self._repo = repo
        self._progress = progress or NoProgress()
        self._owners = os.geteuid() == 0 if owners is None else owners

    def restore(
        self,
        snapshot: Snapshot,
        target: str | Path,
        includes: list[str] | None = None,
        options: RestoreOptions | None = None,
    ) -> RestoreResult:
        options = options or RestoreOptions()
        if includes:
            options.includes = [*options.includes, *includes]
        run = _Run(self._repo, self._progress, self._owners, options)
        tree = self._root_tree(snapshot, options.subtree)
        self._progress.phase("restore")
        if not options.dry_run:
            os.makedirs(target, exist_ok=True)
        elif not os.path.isdir(target):
            with Scan(partial(_selected_sizes, self._repo, tree, options), self._progress):
                run.walk(tree, None)
            return run.result
        root_fd = os.open(target, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            with Scan(partial(_selected_sizes, self._repo, tree, options), self._progress):
                run.walk(tree, root_fd)
            if options.verify and not options.dry_run:
                _Verifier(self._repo, options, run.result).verify(tree, root_fd)
        finally:
            os.close(root_fd)
        return run.result


    def _root_tree(self, snapshot: Snapshot, subtree: str | None) -> Id:
        if not subtree or not split_path(subtree):
            return snapshot.tree
        node = find_node(self._repo, snapshot.tree, subtree)
        if node is None or node.type is not NodeType.DIR or node.subtree is None:
            raise PathNotFound(f"{subtree!r} is not a directory in snapshot {snapshot.short_id}")
        return node.subtree


def _selected_sizes(repo: Repository, tree: Id, options: RestoreOptions) -> Iterator[int]:
    """The size of each file the restore selects, from a walk of its own (the progress
    totals); what it cannot read, the restore's walk reports."""
    selection = _Selection(options.includes, options.excludes)
    walker = Walker(repo, each_tree_once=False)
    for step in walker.steps(tree, lambda path, node: selection.wants(path)):
        node = step.node
        if (not step.leaving and node is not None and node.type is NodeType.FILE
                and selection.wants(step.path) and selection.whole(step.path)):
            yield node.size


class _Run:
    """One restore: the walk, the batches and their files."""

    def __init__(self, repo: Repository, progress: Progress, owners: bool, options: RestoreOptions):
        self._repo = repo
        self._progress = progress
        self._owners = owners
        self._options = options
        self._selection = _Selection(options.includes, options.excludes)
        self.result = RestoreResult()
        self._places: dict[bytes, list[tuple[_File, int]]] = {}
        #: files open for writing, in the order they were made (a dict: one leaves in O(1))
        self._files: dict[_File, None] = {}
        #: small files made but not planned yet, with their blob ids (`_plan_unplanned`)
        self._unplanned: list[tuple[_File, list[bytes]]] = []
        self._unplanned_ids = 0
        self._batch_files = 0  # files made since the last batch went to the reader
        #: the batch being read while the walk plans the next (`_run_batch`), on `_reading`
        self._in_flight: Future[None] | None = None
        self._reading: ThreadPoolExecutor | None = None
        #: guards what a batch being read and the walk both change: a file's `outstanding`
        #: and `error`, and the result's counters the reader's threads add to
        self._lock = threading.Lock()
        self._root_fd: int | None = None
        self._links: dict[LinkKey, bytes] = {}  # first restored path of each linked file

    # -- the walk -------------------------------------------------------------------------
    def walk(self, tree: Id, root_fd: int | None) -> None:
        ident = _ident(root_fd) if root_fd is not None else (0, 0)
        self._root_fd = root_fd
        stack = [_Dir(root_fd, ident, None, ())]

        def unreadable(problem: Unreadable) -> None:
            if stack[-1].node is None:
                raise problem.error  # the snapshot's root: nothing can be restored
            self.result.errors.append(f"{_display(stack[-1].path)}: directory cannot be read: {problem.error}")

        def descend(path: tuple[bytes, ...], node: Node) -> bool:
            return stack[-1].path == path  # the directory was selected and opened

        walker = Walker(self._repo, on_error=unreadable, each_tree_once=False)
        self._reading = ThreadPoolExecutor(1, thread_name_prefix="snapstore-restore")
        try:
            for step in walker.steps(tree, descend):
                if step.leaving:
                    self._leave(stack)
                    continue
                node, path = step.node, step.path
                assert node is not None
                top = stack[-1]
                top.names.add(node.name)
                if not self._selection.wants(path):
                    continue
                display = _display(path)
                self._progress.item(display)
                try:
                    if node.type is NodeType.DIR:
                        self._enter(stack, node, path)
                    elif not self._selection.whole(path):
                        continue
                    elif node.type is NodeType.FILE:
                        self._plan_file(top, node, path, display)
                    elif node.type is NodeType.SYMLINK:
                        self._symlink(top, node)
                    else:
                        self._special(top, node, path)
                except OSError as exc:  # this entry cannot be written: name it, go on
                    self.result.errors.append(f"{_display(path)}: {exc.strerror or exc}")
            self._run_batch()
            self._wait_for_batch()
        finally:
            try:
                if self._in_flight is not None:  # the walk failed: no write may follow the closes
                    wait_for([self._in_flight])
                self._reading.shutdown()
            finally:
                for frame in stack:
                    if frame.fd is not None and frame.node is not None:
                        os.close(frame.fd)
                for open_file in self._files:
                    os.close(open_file.fd)
                self._files = {}
        missing = self._selection.unmatched()
        if missing:
            raise PathNotFound(f"not in the snapshot: {', '.join(missing)}")

    def _enter(self, stack: list[_Dir], node: Node, path: tuple[bytes, ...]) -> None:
        """Creates (or, in a dry run, looks up) a directory and puts it on the stack; the walk
        then goes below it."""
        parent = stack[-1]
        fd = None
        made = False
        if parent.fd is not None and not self._options.dry_run:
            fd, made = make_dir(parent.fd, node.name)
        elif parent.fd is not None:
            found = existing(parent.fd, node.name)
            if found is not None and stat.S_ISDIR(found.st_mode):
                fd = os.open(node.name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent.fd)
        _push(stack, _Dir(fd, _ident(fd) if fd is not None else (0, 0), node, path, made=made))

    def _leave(self, stack: list[_Dir]) -> None:
        done = stack.pop()
        if done.node is None:  # the target itself: its own metadata is left as it is
            if done.fd is not None and self._options.delete and self._selection.whole(()):
                self._delete_extra(done)
            return
        if done.fd is None:
            self.result.dirs += 1  # dry run into a directory that does not exist yet
            return
        try:
            if self._options.delete and self._selection.whole(done.path):
                self._delete_extra(done)
            if not self._options.dry_run:
                self._warn(_display(done.path), apply_metadata(done.fd, done.node, self._owners))
            self.result.dirs += 1
            _reopen_parent(stack, done)
        finally:
            os.close(done.fd)

    def _delete_extra(self, done: _Dir) -> None:
        assert done.fd is not None
        for name in sorted(os.listdir(done.fd)):
            raw = os.fsencode(name)
            if raw not in done.names and not self._selection_excluded(done.path + (raw,)):
                if not self._options.dry_run:
                    remove_entry(done.fd, raw)
                self.result.deleted += 1

    def _selection_excluded(self, path: tuple[bytes, ...]) -> bool:
        return not self._selection.wants(path)

    def _symlink(self, parent: _Dir, node: Node) -> None:
        self.result.symlinks += 1
        if parent.fd is None or self._options.dry_run:
            return
        if self._options.overwrite is Overwrite.NEVER and existing(parent.fd, node.name) is not None:
            return
        make_symlink(parent.fd, node.name, node.target)
        apply_link_metadata(parent.fd, node, self._owners)

    def _special(self, parent: _Dir, node: Node, path: tuple[bytes, ...]) -> None:
        """A FIFO or device node is made and given its metadata, never opened; a socket is
        left out, as restic and borg do."""
        if node.type is NodeType.SOCKET:
            self.result.sockets_skipped += 1
            return
        if self._keep_existing(parent, node):
            self.result.files_skipped += 1
            return
        if parent.fd is None or self._options.dry_run:
            self.result.special += 1
            return
        display = _display(path)
        try:
            make_special(parent.fd, node)
        except PermissionError:
            if not node.type.is_device:
                raise
            self.result.errors.append(
                f"{display}: {node.type.description} {node.rdev_major},{node.rdev_minor} "
                "not created (creating device nodes needs root)"
            )
            return
        self._warn(display, apply_node_metadata(parent.fd, node, self._owners))
        self.result.special += 1

    # -- files ----------------------------------------------------------------------------
    def _keep_existing(self, parent: _Dir, node: Node) -> bool:
        """Whether the file already in the target stays, by the --overwrite policy."""
        if parent.fd is None or parent.made or self._options.overwrite is Overwrite.ALWAYS:
            return False
        found = existing(parent.fd, node.name)
        if found is None or stat.S_ISDIR(found.st_mode):
            return False
        policy = self._options.overwrite
        if policy is Overwrite.NEVER:
            return True
        if policy is Overwrite.IF_NEWER:
            return found.st_mtime_ns >= node.mtime_ns
        if node.type is not NodeType.FILE:  # a FIFO or device: never opened, only looked at
            return same_special(found, node) and found.st_mtime_ns == node.mtime_ns
        return stat.S_ISREG(found.st_mode) and found.st_size == node.size and found.st_mtime_ns == node.mtime_ns

    def _plan_file(self, parent: _Dir, node: Node, path: tuple[bytes, ...], display: str) -> None:
        if self._keep_existing(parent, node):
            self.result.files_skipped += 1
            self._progress.advance(node.size, 0)
            self._progress.item_done(display)
            return
        self.result.planned.append((display, node.size))
        if self._options.dry_run:
            self.result.files += 1
            self.result.bytes_written += node.size
            self._progress.advance(node.size, 0)
            self._progress.item_done(display)
            return
        assert parent.fd is not None
        key = link_key(node.extra)
        if key is not None and key in self._links and self._link(parent.fd, node, self._links[key]):
            self._progress.advance(node.size, 0)
            self._progress.item_done(display)
            return
        if self._batch_files >= MAX_OPEN_FILES:
            self._run_batch()
        open_file = _File(create_file(parent.fd, node.name, 0), node, display)
        if key is not None:
            self._links.setdefault(key, b"/".join(path))
        self._files[open_file] = None
        self._batch_files += 1
        try:
            ids = iter_chunk_ids(self._repo, node)
            group = [bytes(b) for b in islice(ids, _ID_GROUP)]
            if not group:  # empty: nothing to look up
                self._planned(open_file)
                return
            if len(group) < _ID_GROUP:  # the whole content: planned with other files' at once
                self._unplanned.append((open_file, group))
                self._unplanned_ids += len(group)
                if self._unplanned_ids >= _ID_GROUP:
                    self._plan_unplanned()
                return
            self._plan_unplanned()  # a large file: planned on its own, a group at a time
            while group:
                lengths = self._repo.plain_lengths(b"".join(group)).tolist()
                self._place(open_file, group, lengths)
                if open_file.error is not None:
                    break
                if len(self._places) >= BATCH_BLOBS:
                    self._run_batch()
                group = [bytes(b) for b in islice(ids, _ID_GROUP)]
        except SnapstoreError as exc:
            with self._lock:
                self._damaged(open_file, str(exc))
        self._planned(open_file)

    def _plan_unplanned(self) -> None:
        """Plans the small files noted since the last call, their blobs' lengths looked up in
        one call (one per file was most of the planning of many small files)."""
        unplanned, self._unplanned, self._unplanned_ids = self._unplanned, [], 0
        if not unplanned:
            return
        lengths = self._repo.plain_lengths(b"".join(b"".join(group) for _, group in unplanned)).tolist()
        start = 0
        for open_file, group in unplanned:
            self._place(open_file, group, lengths[start : start + len(group)])
            start += len(group)
            self._planned(open_file)

    def _place(self, open_file: _File, group: list[bytes], lengths: list[int]) -> None:
        """Notes where each blob of the group goes in the file, after what it has so far; a
        blob the index lacks damages the file (none of the group is placed)."""
        for blob_id, length in zip(group, lengths, strict=True):
            if length < 0:
                with self._lock:
                    self._damaged(open_file, f"blob {blob_id.hex()} is not in the index")
                return
        offset = open_file.length
        places = self._places
        for blob_id, length in zip(group, lengths, strict=True):
            found = places.get(blob_id)
            if found is None:
                places[blob_id] = [(open_file, offset)]
            else:
                found.append((open_file, offset))
            offset += length
        with self._lock:  # a large file's earlier places may be being written
            open_file.outstanding += len(group)
        open_file.length = offset

    def _planned(self, open_file: _File) -> None:
        """Every place of the file is noted: it is checked against its node's size, and
        finished at once if there is nothing to wait for. A damaged file with places left
        waits for them all the same (they are not written): one may be being read, and its
        descriptor must stay open until then."""
        open_file.planned = True
        self._check_length(open_file)
        if not open_file.outstanding:
            del self._files[open_file]
            self._finish([open_file])

    def _link(self, dir_fd: int, node: Node, first: bytes) -> bool:
        """Restores the node as a link to the file restored first; False: it could not be."""
        assert self._root_fd is not None
        try:
            make_hardlink(self._root_fd, first, dir_fd, node.name)
        except OSError:
            return False
        self.result.files += 1
        self.result.hardlinks += 1
        return True

    def _check_length(self, open_file: _File) -> None:
        """A file is given its content's length (when finished), whatever its node's size
        says. A node claiming 10^18 bytes for 6 must not make a huge sparse file. Its content,
        authenticated blob by blob, is what was saved, so it is restored; the disagreement is
        named as an error."""
        if open_file.length != open_file.node.size and open_file.error is None:
            self.result.errors.append(
                f"{open_file.display}: its node says {open_file.node.size} bytes but its content "
                f"is {open_file.length} bytes; restored with the content's length"
            )

    def _run_batch(self) -> None:
        """Sends the blobs planned so far to the reader, on a thread of the run, while the
        walk goes on planning the next batch; the batch before is waited for first (its
        files finished), so two batches of files at most are open. The reader fetches pack
        by pack and each blob is written to its places as it comes in, on the reader's
        worker threads (positional writes release the GIL)."""
        self._plan_unplanned()
        places, self._places = self._places, {}
        self._batch_files = 0
        self._wait_for_batch()
        if places:
            assert self._reading is not None
            self._in_flight = self._reading.submit(self._read_batch, places)

    def _wait_for_batch(self) -> None:
        """Waits for the batch being read, then finishes every file whose content is in."""
        if self._in_flight is not None:
            in_flight, self._in_flight = self._in_flight, None
            in_flight.result()
        self._finish_done()

    def _read_batch(self, places: dict[bytes, list[tuple[_File, int]]]) -> None:
        lock = self._lock

        def consume(read: BlobRead) -> None:
            targets = places[bytes(read.id)]
            if read.error is not None:
                with lock:
                    for open_file, _ in targets:
                        self._damaged(open_file, str(read.error))
                        open_file.outstanding -= 1
                return
            data = read.data
            assert data is not None
            zeros = _all_zeros(data)
            written = 0
            for open_file, offset in targets:
                if open_file.error is None:
                    if not zeros:
                        try:
                            write_keeping_holes(open_file.fd, data, offset)
                        except OSError as exc:  # a full disk, an I/O error: this file's, go on
                            with lock:
                                self._damaged(open_file, f"cannot be written: {exc.strerror or exc}")
                            continue
                        if data[-1] and open_file.planned and offset + len(data) == open_file.length:
                            open_file.written_to_end = True
                    written += len(data)
            with lock:
                for open_file, _ in targets:
                    open_file.outstanding -= 1
                self.result.bytes_written += written
                self._progress.advance(written, 0)

        self._repo.read_each_blob(((BlobType.DATA, Id(b)) for b in places), consume)

    def _finish_done(self) -> None:
        """Sets the metadata of, and closes, every file whose content is all in."""
        waiting: dict[_File, None] = {}
        done: list[_File] = []
        for open_file in self._files:
            if open_file.planned and not open_file.outstanding:
                done.append(open_file)
            else:
                waiting[open_file] = None
        self._files = waiting
        self._finish(done)

    def _finish(self, done: list[_File]) -> None:
        """Gives each file its content's length (unless its last byte was written: a hole at
        the end, or a damaged file), then its metadata, and closes it."""
        for open_file in done:
            try:
                if not open_file.written_to_end and open_file.length:
                    os.ftruncate(open_file.fd, open_file.length)
                if open_file.error is None:
                    self._warn(open_file.display, apply_metadata(open_file.fd, open_file.node, self._owners))
                    self.result.files += 1
            except OSError as exc:
                self.result.errors.append(f"{open_file.display}: {exc.strerror or exc}")
            finally:
                os.close(open_file.fd)
                self._progress.item_done(open_file.display)

    def _warn(self, display: str, problems: list[str]) -> None:
        self.result.warnings.extend(f"{display}: {problem}" for problem in problems)

    def _damaged(self, open_file: _File, why: str) -> None:
        """Names the file as damaged, once (the caller holds `_lock`)."""
        if open_file.error is None:
            open_file.error = why
            self.result.errors.append(f"{open_file.display}: {why}")


class _Verifier:
    """--verify: reads every restored file back and checks each chunk against its id."""

    def __init__(self, repo: Repository, options: RestoreOptions, result: RestoreResult) -> None:
        self._repo = repo
        self._selection = _Selection(options.includes, options.excludes)
        self._result = result
        self._failed = {line.split(": ", 1)[0] for line in result.errors}

    def verify(self, tree: Id, root_fd: int) -> None:
        stack = [_Dir(root_fd, _ident(root_fd), None, ())]

        def descend(path: tuple[bytes, ...], node: Node) -> bool:
            return stack[-1].path == path

        try:
            for step in Walker(self._repo, each_tree_once=False).steps(tree, descend):
                node, path = step.node, step.path
                if step.leaving:
                    if node is not None and stack[-1].path == path:
                        done = stack.pop()
                        assert done.fd is not None
                        _reopen_parent(stack, done)
                        os.close(done.fd)
                    continue
                assert node is not None
                if not self._selection.wants(path):
                    continue
                parent_fd = stack[-1].fd
                assert parent_fd is not None
                if node.type is NodeType.DIR and node.subtree is not None:
                    try:
                        sub = os.open(node.name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent_fd)
                    except OSError as exc:
                        self._result.errors.append(f"{_display(path)}: verify: cannot open: {exc.strerror}")
                        continue
                    _push(stack, _Dir(sub, _ident(sub), node, path))
                elif node.type is NodeType.FILE and self._selection.whole(path):
                    display = _display(path)
                    if display not in self._failed:
                        self._verify_file(parent_fd, node, display)
                elif node.type.special and node.type is not NodeType.SOCKET and self._selection.whole(path):
                    display = _display(path)
                    if display not in self._failed:
                        self._verify_special(parent_fd, node, display)
        finally:
            for frame in stack[1:]:
                if frame.fd is not None:
                    os.close(frame.fd)

    def _verify_special(self, dir_fd: int, node: Node, display: str) -> None:
        """A FIFO or device node is looked at, never opened: its kind and device number."""
        try:
            found = os.stat(node.name, dir_fd=dir_fd, follow_symlinks=False)
        except OSError as exc:
            self._result.errors.append(f"{display}: verify: {exc.strerror}")
            return
        if not same_special(found, node):
            self._result.errors.append(f"{display}: verify: not the {node.type.description} of the snapshot")

    def _verify_file(self, dir_fd: int, node: Node, display: str) -> None:
        # What --overwrite left in the target may be a FIFO or a device: looked at first, never
        # opened (O_NONBLOCK too: one swapped in meanwhile must not block the restore)
        found = existing(dir_fd, node.name)
        if found is not None and not stat.S_ISREG(found.st_mode):
            self._result.errors.append(f"{display}: verify: not a regular file in the target")
            return
        try:
            fd = os.open(node.name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
        except OSError as exc:
            self._result.errors.append(f"{display}: verify: cannot open: {exc.strerror}")
            return
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            self._result.errors.append(f"{display}: verify: not a regular file in the target")
            return
        try:
            with os.fdopen(fd, "rb", closefd=False) as handle:
                ids = iter_chunk_ids(self._repo, node)
                while True:
                    group = [bytes(b) for _, b in zip(range(_ID_GROUP), ids, strict=False)]
                    if not group:
                        break
                    for blob_id, length in zip(group, self._repo.plain_lengths(b"".join(group)).tolist(), strict=True):
                        data = handle.read(max(length, 0))
                        if self._repo.hash_blob(data) != blob_id:
                            self._result.errors.append(f"{display}: verify: content differs from the snapshot")
                            return
                if handle.read(1):
                    self._result.errors.append(f"{display}: verify: longer than in the snapshot")
                    return
        except SnapstoreError as exc:
            self._result.errors.append(f"{display}: verify: {exc}")
            return
        finally:
            os.close(fd)
        self._result.files_verified += 1


def _push(stack: list[_Dir], frame: _Dir) -> None:
    """Puts a directory on the stack, closing the descriptor of one far above it: only
    DIR_FD_WINDOW stay open, however deep the tree (`_reopen_parent` finds the way back)."""
    stack.append(frame)
    if len(stack) > DIR_FD_WINDOW + 1:
        far = stack[-DIR_FD_WINDOW - 1]
        if far.fd is not None and far.node is not None:
            os.close(far.fd)
            far.fd = None


def _reopen_parent(stack: list[_Dir], done: _Dir) -> None:
    """Before a directory's descriptor closes, reopens its parent's if the window closed it."""
    parent = stack[-1] if stack else None
    if parent is not None and parent.fd is None and parent.ident != (0, 0) and done.fd is not None:
        parent.fd = reopen_parent(done.fd, parent.ident)


def _all_zeros(data: bytes) -> bool:
    """A blob of zeros is left as a hole (the ends are looked at first: most blobs are not)."""
    return not data or (data[0] == 0 and data[-1] == 0 and data.count(0) == len(data))


def _ident(fd: int) -> tuple[int, int]:
    st = os.fstat(fd)
    return st.st_dev, st.st_ino

