"""The structural check: index files, packs present, every delta's base stored whole, every
snapshot's trees, chunk lists and blobs indexed."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from snapstore.backend.base import FileType
from snapstore.checker import findings as F
from snapstore.checker.findings import Finding
from snapstore.checker.read_data import read_packs
from snapstore.errors import SnapstoreError
from snapstore.ids import Id
from snapstore.pack import BlobType
from snapstore.repository.repository import Repository
from snapstore.snapshot.content import parse_chunk_list
from snapstore.snapshot.manifest import Snapshot
from snapstore.snapshot.store import load_snapshot, load_tree
from snapstore.snapshot.tree import Node, NodeType


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

    # 2. Packs named by the index must exist and be long enough for their blobs; each delta's
    # base must be indexed in a pack that exists, and stored whole (chains are one level deep).
    on_backend = {Id.from_hex(i.handle.name): i.size for i in repo.list_objects(FileType.PACK)}
    extents: dict[Id, int] = {}
    contents: dict[Id, set[tuple[bytes, int, int]]] = {}
    bad_deltas: dict[bytes, tuple[str, str, Id | None]] = {}
    for blob_id, loc in repo.index.entries():
        if loc.is_delta and bytes(blob_id) not in bad_deltas:
            problem = _base_problem(repo, loc.base_key, on_backend)
            if problem is not None:
                bad_deltas[bytes(blob_id)] = problem
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

    bad_blobs: dict[Id, Finding] = {}
    delta_findings = set(bad_deltas)  # deltas found unreadable for want of their base
    if bad_deltas:
        named = _base_ids(repo, bad_deltas.keys())
        for delta, (kind, reason, base) in sorted(bad_deltas.items()):
            base = base or named.get(delta)
            base_name = base.hex() if base is not None else "(unknown)"
            bad_blobs[Id(delta)] = Finding(kind, delta.hex(), f"its base {base_name} {reason}")

    # 3. Snapshots: every tree and chunk list decodes, every blob they name is indexed.
    snapshots: list[Snapshot] = []
    for info in repo.list_objects(FileType.SNAPSHOT):
        try:
            snapshots.append(load_snapshot(repo, info.handle.name))
        except SnapstoreError as exc:
            report.findings.append(Finding(F.SNAPSHOT_DAMAGED, info.handle.name[:8], str(exc)))
    report.snapshots = len(snapshots)
    checked_trees: set[bytes] = set()
    checked_lists: set[bytes] = set()
    for snap in snapshots:
        _check_tree(repo, snap.tree, checked_trees, checked_lists, bad_blobs)

    # 4. With --read-data: every selected pack read whole, every blob decrypted and verified.
    if options.read_data:
        for pack_id, finding, deltas in read_packs(
            repo, on_backend, contents, options.subset, on_pack
        ):
            report.packs_read += 1
            if finding is not None and pack_id not in bad_packs:
                bad_packs[pack_id] = finding
            for delta_finding in deltas:
                delta_findings.add(bytes.fromhex(delta_finding.subject))
                bad_blobs.setdefault(Id.from_hex(delta_finding.subject), delta_finding)

    # 5. Name the snapshots each damaged pack or blob hurts.
    if bad_packs or bad_blobs:
        _attribute(repo, snapshots, bad_packs, bad_blobs)
    for blob_id, finding in bad_blobs.items():
        if not finding.snapshots and bytes(blob_id) in delta_findings:
            finding.message += (
                "; no readable snapshot uses it, but a backup would deduplicate against it: "
                "`snapstore prune` drops it"
            )
    report.findings.extend(bad_packs.values())
    report.findings.extend(bad_blobs.values())
    return report


def _base_problem(
    repo: Repository, base_key: int, on_backend: dict[Id, int]
) -> tuple[str, str, Id | None] | None:
    """What is wrong with a delta's base, found by its key in the index: (kind, reason, base id
    when known), or None. Whether the base's bytes are sound is for `read_data` to say."""
    candidates = repo.index.ids_with_key(base_key)
    if not candidates:
        return F.DELTA_BASE_MISSING, "is not in the index", None
    base = candidates[0] if len(candidates) == 1 else None
    locations = [
        loc for c in candidates for loc in repo.index.lookup_all(c) if loc.pack_id in on_backend
    ]
    if not locations:
        return F.DELTA_BASE_MISSING, "is only in packs that are missing", base
    if not any(loc.type is BlobType.DATA and not loc.is_delta for loc in locations):
        return F.DELTA_CHAIN, "is itself stored only as a delta (a base must be whole)", base
    return None


def _base_ids(repo: Repository, deltas: Iterable[bytes]) -> dict[bytes, Id]:
    """The full base id of each of these deltas, from the index files (the in-memory index
    keeps only 8 bytes of it). Read again only when some delta's base is in trouble."""
    wanted = set(deltas)
    found: dict[bytes, Id] = {}
    for info in repo.list_objects(FileType.INDEX):
        try:
            index_file = repo.load_index_file(info.handle.name)
        except SnapstoreError:
            continue  # reported in step 1
        for entries in index_file.packs.values():
            for entry in entries:
                if entry.base is not None and bytes(entry.id) in wanted:
                    found[bytes(entry.id)] = entry.base
    return found


def _check_tree(
    repo: Repository, tree_id: Id, seen: set[bytes], lists: set[bytes], bad: dict[Id, Finding]
) -> None:
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
                _check_blobs(repo, node.content, bad)
                for list_id in node.content_lists:
                    if bytes(list_id) not in lists:
                        lists.add(bytes(list_id))
                        _check_chunk_list(repo, list_id, bad)


def _check_blobs(repo: Repository, blob_ids: list[Id], bad: dict[Id, Finding]) -> None:
    for blob_id in blob_ids:
        if blob_id not in bad and repo.lookup(blob_id) is None:
            bad[blob_id] = Finding(F.BLOB_MISSING, blob_id.hex(), "data blob is not in the index")


def _check_chunk_list(repo: Repository, list_id: Id, bad: dict[Id, Finding]) -> None:
    if list_id in bad:
        return  # a delta whose base is missing: reported already
    if repo.lookup(list_id) is None:
        bad[list_id] = Finding(F.BLOB_MISSING, list_id.hex(), "chunk list blob is not in the index")
        return
    try:
        ids = parse_chunk_list(repo.load_blob(BlobType.DATA, list_id))
    except SnapstoreError as exc:
        bad[list_id] = Finding(F.CHUNK_LIST_DAMAGED, list_id.hex(), str(exc))
        return
    _check_blobs(repo, ids, bad)


def _attribute(
    repo: Repository,
    snapshots: list[Snapshot],
    bad_packs: dict[Id, Finding],
    bad_blobs: dict[Id, Finding],
) -> None:
    """Second pass, only when damage was found: which snapshots use what is damaged.

    A blob stored as a delta is hurt by damage to its base's pack as well as its own. Each
    chunk list is read once: what hurts through it is remembered.
    """

    def hurts(blob_id: Id) -> set[bytes]:
        found: set[bytes] = set()
        if blob_id in bad_blobs:
            found.add(bytes(blob_id))
        for loc in repo.index.lookup_all(blob_id):
            stored = [loc]
            if loc.is_delta:
                for base in repo.index.ids_with_key(loc.base_key):
                    stored.extend(repo.index.lookup_all(base))
            found.update(bytes(s.pack_id) for s in stored if s.pack_id in bad_packs)
        return found

    through_list: dict[bytes, set[bytes]] = {}

    def hurts_through_list(list_id: Id) -> set[bytes]:
        cached = through_list.get(bytes(list_id))
        if cached is None:
            cached = hurts(list_id)
            try:
                ids = parse_chunk_list(repo.load_blob(BlobType.DATA, list_id))
            except SnapstoreError:
                ids = []
            for blob_id in ids:
                cached |= hurts(blob_id)
            through_list[bytes(list_id)] = cached
        return cached

    for snap in snapshots:
        hurt: set[bytes] = set()
        stack = [snap.tree]
        seen: set[bytes] = set()
        while stack:
            tree_id = stack.pop()
            if bytes(tree_id) in seen:
                continue
            seen.add(bytes(tree_id))
            hurt |= hurts(tree_id)
            try:
                nodes: list[Node] = load_tree(repo, tree_id)
            except SnapstoreError:
                nodes = []
            for node in nodes:
                if node.type is NodeType.DIR and node.subtree is not None:
                    stack.append(node.subtree)
                elif node.type is NodeType.FILE:
                    for blob_id in node.content:
                        hurt |= hurts(blob_id)
                    for list_id in node.content_lists:
                        hurt |= hurts_through_list(list_id)
        for key in hurt:
            finding = bad_packs.get(Id(key)) or bad_blobs.get(Id(key))
            if finding is not None:
                finding.snapshots.append(snap.short_id)
