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

Beside it: options.py (what a restore is asked and what it did), target.py (the selection,
and the window of directory descriptors, which the walk here and --verify share) and
verify.py (--verify, once everything is written).
"""

from __future__ import annotations

import os
import resource
import stat
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from dataclasses import dataclass
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
    same_special,
    write_keeping_holes,
)
from snapstore.restorer.options import Overwrite, RestoreOptions, RestoreResult
from snapstore.restorer.target import (
    Selection,
    TargetDir,
    dir_identity,
    display_path,
    push_dir,
    reopen_parent_dir,
)
from snapstore.restorer.verify import Verifier
from snapstore.snapshot.content import iter_chunk_ids
from snapstore.snapshot.hardlinks import LinkKey, link_key
from snapstore.snapshot.manifest import Snapshot
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
#: Chunk ids whose lengths are looked up at once when planning a file.
_ID_GROUP = 4096


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
                Verifier(self._repo, options, run.result).verify(tree, root_fd)
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
    selection = Selection(options.includes, options.excludes)
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
        self._selection = Selection(options.includes, options.excludes)
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
        ident = dir_identity(root_fd) if root_fd is not None else (0, 0)
        self._root_fd = root_fd
        stack = [TargetDir(root_fd, ident, None, ())]

        def unreadable(problem: Unreadable) -> None:
            if stack[-1].node is None:
                raise problem.error  # the snapshot's root: nothing can be restored
            self.result.errors.append(f"{display_path(stack[-1].path)}: directory cannot be read: {problem.error}")

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
                display = display_path(path)
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
                    self.result.errors.append(f"{display_path(path)}: {exc.strerror or exc}")
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

    def _enter(self, stack: list[TargetDir], node: Node, path: tuple[bytes, ...]) -> None:
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
        push_dir(stack, TargetDir(fd, dir_identity(fd) if fd is not None else (0, 0), node, path, made=made))

    def _leave(self, stack: list[TargetDir]) -> None:
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
                self._warn(display_path(done.path), apply_metadata(done.fd, done.node, self._owners))
            self.result.dirs += 1
            reopen_parent_dir(stack, done)
        finally:
            os.close(done.fd)

    def _delete_extra(self, done: TargetDir) -> None:
        assert done.fd is not None
        for name in sorted(os.listdir(done.fd)):
            raw = os.fsencode(name)
            if raw not in done.names and not self._selection_excluded(done.path + (raw,)):
                if not self._options.dry_run:
                    remove_entry(done.fd, raw)
                self.result.deleted += 1

    def _selection_excluded(self, path: tuple[bytes, ...]) -> bool:
        return not self._selection.wants(path)

    def _symlink(self, parent: TargetDir, node: Node) -> None:
        self.result.symlinks += 1
        if parent.fd is None or self._options.dry_run:
            return
        if self._options.overwrite is Overwrite.NEVER and existing(parent.fd, node.name) is not None:
            return
        make_symlink(parent.fd, node.name, node.target)
        apply_link_metadata(parent.fd, node, self._owners)

    def _special(self, parent: TargetDir, node: Node, path: tuple[bytes, ...]) -> None:
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
        display = display_path(path)
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
    def _keep_existing(self, parent: TargetDir, node: Node) -> bool:
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

    def _plan_file(self, parent: TargetDir, node: Node, path: tuple[bytes, ...], display: str) -> None:
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


def _all_zeros(data: bytes) -> bool:
    """A blob of zeros is left as a hole (the ends are looked at first: most blobs are not)."""
    return not data or (data[0] == 0 and data[-1] == 0 and data.count(0) == len(data))


