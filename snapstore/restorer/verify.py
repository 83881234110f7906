"""--verify: every restored file read back and each chunk checked against its id, special
files looked at (never opened), after the restore has written them."""

from __future__ import annotations

import os
import stat

from snapstore.errors import SnapstoreError
from snapstore.ids import Id
from snapstore.repository.repository import Repository
from snapstore.restorer.file_writer import existing, same_special
from snapstore.restorer.options import RestoreOptions, RestoreResult
from snapstore.restorer.target import (
    Selection,
    TargetDir,
    dir_identity,
    display_path,
    push_dir,
    reopen_parent_dir,
)
from snapstore.snapshot.content import iter_chunk_ids
from snapstore.snapshot.tree import Node, NodeType
from snapstore.snapshot.walk import Walker

#: Chunk ids whose lengths are looked up at once.
_ID_GROUP = 4096


class Verifier:
    """--verify: reads every restored file back and checks each chunk against its id."""

    def __init__(self, repo: Repository, options: RestoreOptions, result: RestoreResult) -> None:
        self._repo = repo
        self._selection = Selection(options.includes, options.excludes)
        self._result = result
        self._failed = {line.split(": ", 1)[0] for line in result.errors}

    def verify(self, tree: Id, root_fd: int) -> None:
        stack = [TargetDir(root_fd, dir_identity(root_fd), None, ())]

        def descend(path: tuple[bytes, ...], node: Node) -> bool:
            return stack[-1].path == path

        try:
            for step in Walker(self._repo, each_tree_once=False).steps(tree, descend):
                node, path = step.node, step.path
                if step.leaving:
                    if node is not None and stack[-1].path == path:
                        done = stack.pop()
                        assert done.fd is not None
                        reopen_parent_dir(stack, done)
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
                        self._result.errors.append(f"{display_path(path)}: verify: cannot open: {exc.strerror}")
                        continue
                    push_dir(stack, TargetDir(sub, dir_identity(sub), node, path))
                elif node.type is NodeType.FILE and self._selection.whole(path):
                    display = display_path(path)
                    if display not in self._failed:
                        self._verify_file(parent_fd, node, display)
                elif node.type.special and node.type is not NodeType.SOCKET and self._selection.whole(path):
                    display = display_path(path)
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
