"""Restoring a snapshot (or parts of it) into a target directory."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from snapstore.ids import Id
from snapstore.progress import NoProgress, Progress
from snapstore.repository.repository import Repository
from snapstore.restorer.file_writer import (
    apply_link_metadata,
    apply_metadata,
    make_symlink,
    open_dir,
    write_file,
)
from snapstore.restorer.stream import file_content
from snapstore.snapshot.manifest import Snapshot
from snapstore.snapshot.store import load_tree, split_path
from snapstore.snapshot.tree import Node, NodeType


@dataclass
class RestoreResult:
    files: int = 0
    dirs: int = 0
    symlinks: int = 0
    bytes_written: int = 0
    errors: list[str] = field(default_factory=list)


class _Selection:
    """Which paths an --include list selects: the included paths, their ancestors and contents."""

    def __init__(self, includes: list[str]) -> None:
        self._paths = [tuple(split_path(p)) for p in includes]

    def wants(self, path: tuple[bytes, ...]) -> bool:
        if not self._paths:
            return True
        for inc in self._paths:
            n = min(len(inc), len(path))
            if inc[:n] == path[:n]:
                return True
        return False

    def whole(self, path: tuple[bytes, ...]) -> bool:
        return not self._paths or any(path[: len(inc)] == inc for inc in self._paths)


class Restorer:
    def __init__(
        self, repo: Repository, progress: Progress | None = None, *, owners: bool | None = None
    ) -> None:
        self._repo = repo
        self._progress = progress or NoProgress()
        self._owners = os.geteuid() == 0 if owners is None else owners
        self._pool: ThreadPoolExecutor  # one per restore() call

    def restore(
        self, snapshot: Snapshot, target: str | Path, includes: list[str] | None = None
    ) -> RestoreResult:
        result = RestoreResult()
        os.makedirs(target, exist_ok=True)
        root_fd = os.open(target, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            with ThreadPoolExecutor(8, thread_name_prefix="snapstore-restore") as self._pool:
                self._restore_tree(snapshot.tree, root_fd, (), _Selection(includes or []), result)
        finally:
            os.close(root_fd)
        return result

    def _restore_tree(
        self,
        tree_id: Id,
        dir_fd: int,
        path: tuple[bytes, ...],
        selection: _Selection,
        result: RestoreResult,
    ) -> None:
        for node in load_tree(self._repo, tree_id):
            node_path = path + (node.name,)
            if not selection.wants(node_path):
                continue
            display = "/" + b"/".join(node_path).decode("utf-8", "surrogateescape")
            self._progress.item(display)
            if node.type is NodeType.DIR:
                self._restore_dir(node, dir_fd, node_path, selection, result)
            elif not selection.whole(node_path):
                continue
            elif node.type is NodeType.FILE:
                self._restore_file(node, dir_fd, result)
            else:
                make_symlink(dir_fd, node.name, node.target)
                apply_link_metadata(dir_fd, node, self._owners)
                result.symlinks += 1

    def _restore_dir(
        self,
        node: Node,
        parent_fd: int,
        path: tuple[bytes, ...],
        selection: _Selection,
        result: RestoreResult,
    ) -> None:
        fd = open_dir(parent_fd, node.name)
        try:
            if node.subtree is not None:
                self._restore_tree(node.subtree, fd, path, selection, result)
            apply_metadata(fd, node, self._owners)
        finally:
            os.close(fd)
        result.dirs += 1

    def _restore_file(self, node: Node, dir_fd: int, result: RestoreResult) -> None:
        chunks = file_content(self._repo, node, self._pool)
        fd, written = write_file(dir_fd, node.name, chunks)
        try:
            apply_metadata(fd, node, self._owners)
        finally:
            os.close(fd)
        result.files += 1
        result.bytes_written += written
        self._progress.advance(written, 0)
