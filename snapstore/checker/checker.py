"""The structural check: index files, packs present, every snapshot's trees and blobs indexed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from snapstore.backend.base import FileType
from snapstore.checker import findings as F
from snapstore.checker.findings import Finding
from snapstore.checker.read_data import read_packs
from snapstore.errors import SnapstoreError
from snapstore.ids import Id
from snapstore.repository.repository import Repository
from snapstore.snapshot.manifest import Snapshot
from snapstore.snapshot.store import load_snapshot, load_tree
from snapstore.snapshot.tree import NodeType


@dataclass
class CheckReport:
    findings: list[Finding] = field(default_factory=list)
    snapshots: int = 0
    packs: int = 0
    blobs: int = 0
    packs_read: int = 0

    @property
    def ok(self) -> bool:
        return not any(f.error for f in self.findings)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.error]


@dataclass
class CheckOptions:
    read_data: bool = False
    subset: tuple[int, int] | None = None  # (n, m): read packs in slice n of m, 1-based


def check_repository(
    repo: Repository, options: CheckOptions | None = None, on_pack: Callable[[], None] | None = None
) -> CheckReport:
    options = options or CheckOptions()
    report = CheckReport()

    # 1. Index files: each must decrypt and parse.
    for info in repo.list_objects(FileType.INDEX):
        try:
            index_file = repo.load_index_file(info.handle.name)
        except SnapstoreError as exc:
            report.findings.append(Finding(F.INDEX_DAMAGED, info.handle.name[:16], str(exc)))
            continue
        for pack_id, entries in index_file.packs.items():
            repo.index.add_pack(pack_id, entries)
    repo.index.compact()

    # 2. Packs named by the index must exist and be long enough for their blobs.
    on_backend = {Id.from_hex(i.handle.name): i.size for i in repo.list_objects(FileType.PACK)}
    extents: dict[Id, int] = {}
    contents: dict[Id, set[tuple[bytes, int, int]]] = {}
    for blob_id, loc in repo.index.entries():
        end = loc.offset + loc.length
        if end > extents.get(loc.pack_id, 0):
            extents[loc.pack_id] = end
        if options.read_data:
            contents.setdefault(loc.pack_id, set()).add((bytes(blob_id), loc.offset, loc.length))
        report.blobs += 1
    bad_packs: dict[Id, Finding] = {}
    for pack_id, end in extents.items():
        size = on_backend.get(pack_id)
        if size is None:
            bad_packs[pack_id] = Finding(F.PACK_MISSING, pack_id.hex(), "named by the index but not on the backend")
        elif size < end:
            bad_packs[pack_id] = Finding(F.PACK_DAMAGED, pack_id.hex(), f"{size} bytes, but the index needs {end}")
    for pack_id in on_backend.keys() - extents.keys():
        report.findings.append(
            Finding(F.PACK_UNINDEXED, pack_id.hex(), "not named by any index (left by an interrupted backup; prune removes it)", error=False)
        )
    report.packs = len(on_backend)

    # 3. Snapshots: every tree decodes, every blob they name is indexed.
    snapshots: list[Snapshot] = []
    for info in repo.list_objects(FileType.SNAPSHOT):
        try:
            snapshots.append(load_snapshot(repo, info.handle.name))
        except SnapstoreError as exc:
            report.findings.append(Finding(F.SNAPSHOT_DAMAGED, info.handle.name[:8], str(exc)))
    report.snapshots = len(snapshots)
    bad_blobs: dict[Id, Finding] = {}
    checked_trees: set[bytes] = set()
    for snap in snapshots:
        _check_tree(repo, snap.tree, checked_trees, bad_blobs)

    # 4. With --read-data: every selected pack read whole, every blob decrypted and verified.
    if options.read_data:
        for pack_id, finding in read_packs(repo, on_backend, contents, options.subset, on_pack):
            report.packs_read += 1
            if finding is not None and pack_id not in bad_packs:
                bad_packs[pack_id] = finding

    # 5. Name the snapshots each damaged pack or blob hurts.
    if bad_packs or bad_blobs:
        _attribute(repo, snapshots, bad_packs, bad_blobs)
    report.findings.extend(bad_packs.values())
    report.findings.extend(bad_blobs.values())
    return report


def _check_tree(repo: Repository, tree_id: Id, seen: set[bytes], bad: dict[Id, Finding]) -> None:
    stack = [tree_id]
    while stack:
        current = stack.pop()
        if bytes(current) in seen:
            continue
        seen.add(bytes(current))
        if repo.lookup(current) is None:
            bad[current] = Finding(F.BLOB_MISSING, current.hex(), "tree is not in the index")
            continue
        try:
            nodes = load_tree(repo, current)
        except SnapstoreError as exc:
            bad[current] = Finding(F.TREE_DAMAGED, current.hex(), str(exc))
            continue
        for node in nodes:
            if node.type is NodeType.DIR and node.subtree is not None:
                stack.append(node.subtree)
            elif node.type is NodeType.FILE:
                for blob_id in node.content:
                    if blob_id not in bad and repo.lookup(blob_id) is None:
                        bad[blob_id] = Finding(F.BLOB_MISSING, blob_id.hex(), "data blob is not in the index")


def _attribute(
    repo: Repository, snapshots: list[Snapshot], bad_packs: dict[Id, Finding], bad_blobs: dict[Id, Finding]
) -> None:
    """Second pass, only when damage was found: which snapshots use what is damaged."""
    for snap in snapshots:
        hurt: set[bytes] = set()
        stack = [snap.tree]
        seen: set[bytes] = set()
        while stack:
            tree_id = stack.pop()
            if bytes(tree_id) in seen:
                continue
            seen.add(bytes(tree_id))
            ids: list[Id] = [tree_id]
            try:
                nodes = load_tree(repo, tree_id)
            except SnapstoreError:
                nodes = []
            for node in nodes:
                if node.type is NodeType.DIR and node.subtree is not None:
                    stack.append(node.subtree)
                elif node.type is NodeType.FILE:
                    ids.extend(node.content)
            for blob_id in ids:
                if blob_id in bad_blobs:
                    hurt.add(bytes(blob_id))
                for loc in repo.index.lookup_all(blob_id):
                    if loc.pack_id in bad_packs:
                        hurt.add(bytes(loc.pack_id))
        for key in hurt:
            finding = bad_packs.get(Id(key)) or bad_blobs.get(Id(key))
            if finding is not None:
                finding.snapshots.append(snap.short_id)

