"""The structural check: index files, packs present, every delta's base stored whole, every
snapshot's trees, chunk lists and blobs indexed."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from snapstore.backend.base import FileType
from snapstore.checker import findings as F
from snapstore.checker import rotation
from snapstore.checker.findings import Finding
from snapstore.checker.read_data import read_packs, selected
from snapstore.checker.rotation import Coverage, VerificationRecord, record_path, select_share
from snapstore.errors import BackendError, ObjectNotFound, SnapstoreError
from snapstore.ids import Id
from snapstore.index import deltas
from snapstore.progress import NoProgress, Progress
from snapstore.repository.repository import Repository
from snapstore.snapshot.manifest import Snapshot
from snapstore.snapshot.selection import SnapshotFilter
from snapstore.snapshot.store import load_snapshot
from snapstore.snapshot.tree import NodeType
from snapstore.snapshot.walk import BlobRole, Unreadable, Walker


@dataclass
class CheckReport:
    findings: list[Finding] = field(default_factory=list)
    snapshots: int = 0
    packs: int = 0
    blobs: int = 0
    packs_read: int = 0
    packs_selected: int = 0  # what --read-data chose to read; more than packs_read if time ran out
    bytes_read: int = 0
    verified: list[Id] = field(default_factory=list)  # packs read and found whole, in read order
    time_up: bool = False  # --max-duration ended the reading before every selected pack was read
    #: with a cache directory: how much a whole read verified in the last `coverage_days` days
    coverage: Coverage | None = None
    record_error: str | None = None  # the record of verified packs could not be written

    @property
    def ok(self) -> bool:
        return not any(f.error for f in self.findings)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.error]


@dataclass
class CheckOptions:
    """What to read. `subset` (slice n of m, 1-based) and `fraction` (a share of the packs, 0
    to 1) choose packs; `max_duration` (seconds) stops starting new packs once it has passed,
    after at least one. With `cache_dir` (the one given to open_repository) the packs read are
    remembered there and read least recently verified first (checker/rotation.py); without
    it, `fraction` picks at random and nothing is remembered. `clock` (monotonic seconds)
    times `max_duration`, `now` (Unix seconds) dates what is remembered. `selection` (host,
    tag, path filters) narrows the trees walked to the snapshots it matches; every snapshot
    object is still read (a damaged one is a finding whatever the filters), and the index and
    the packs are the whole repository's."""

    read_data: bool = False
    subset: tuple[int, int] | None = None
    fraction: float | None = None
    max_duration: float | None = None
    cache_dir: str | Path | None = None
    coverage_days: float = 7
    clock: Callable[[], float] = time.monotonic
    now: Callable[[], float] = time.time
    selection: SnapshotFilter | None = None


def check_repository(
    repo: Repository,
    options: CheckOptions | None = None,
    progress: Progress | None = None,
) -> CheckReport:
    options = options or CheckOptions()
    progress = progress or NoProgress()
    report = CheckReport()
    progress.phase("index")

    # 1. Index files: each must decrypt and parse (one another supersedes is not read).
    def damaged_index(name: str, exc: SnapstoreError) -> None:
        report.findings.append(Finding(F.INDEX_DAMAGED, name[:16], str(exc)))

    repo.load_index(on_damaged=damaged_index)

    # 2. Packs named by the index must exist and be long enough for their blobs; each delta's
    # base must be indexed in a pack that exists, and its chain must end in a whole blob within
    # the repository's depth (SPEC.md section 6).
    on_backend = {Id.from_hex(i.handle.name): i.size for i in repo.list_objects(FileType.PACK)}
    columns = repo.index.columns()
    report.blobs = len(columns)
    ends = np.zeros(len(columns.pack_ids), dtype=np.int64)
    np.maximum.at(ends, columns.pack, columns.ends)
    extents = {columns.pack_ids[n]: int(ends[n]) for n in np.unique(columns.pack).tolist()}
    bad_deltas: dict[bytes, tuple[str, str, Id | None]] = {}
    limit = deltas.max_depth(repo.config.delta_chains) - 1
    chain_depths = deltas.ChainDepths(repo.index, lambda loc: loc.pack_id in on_backend)
    doubtful = np.flatnonzero(columns.is_delta)[~deltas.sound_bases(columns, set(on_backend), limit)]
    for row in doubtful.tolist():  # only these need a look blob by blob
        blob_id, loc = columns.id(row), columns.location(row)
        if bytes(blob_id) not in bad_deltas:
            problem = _base_problem(repo, loc.base_key, on_backend, chain_depths)
            if problem is not None:
                bad_deltas[bytes(blob_id)] = problem
    contents: dict[Id, set[tuple[bytes, int, int]]] = {}
    if options.read_data:
        for blob, pack, offset, length in columns.places(np.arange(len(columns))):
            contents.setdefault(columns.pack_ids[pack], set()).add((blob, offset, length))
    bad_packs: dict[Id, Finding] = {}
    for pack_id, end in extents.items():
        size = on_backend.get(pack_id)
        if size is None:
            bad_packs[pack_id] = Finding(F.PACK_MISSING, pack_id.hex(), "named by the index but not on the backend")
        elif size < end:
            bad_packs[pack_id] = Finding(F.PACK_DAMAGED, pack_id.hex(), f"{size} bytes, but the index needs {end}")
    whole_size = {p: end for p, end in extents.items() if p not in bad_packs}
    bad_packs.update(_header_findings(repo, on_backend, whole_size))
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
    progress.phase("snapshots", "snapshots")
    snapshots: list[Snapshot] = []
    for info in repo.list_objects(FileType.SNAPSHOT):
        try:
            snapshots.append(load_snapshot(repo, info.handle.name))
        except ObjectNotFound:
            continue  # listed, then forgotten (a listing that lags): gone, not damaged
        except BackendError:
            raise  # the store failed this read: that says nothing about the snapshot
        except SnapstoreError as exc:
            report.findings.append(Finding(F.SNAPSHOT_DAMAGED, info.handle.name[:8], str(exc)))
    walked = options.selection.select(snapshots) if options.selection else snapshots
    report.snapshots = len(walked)
    _check_snapshots(repo, walked, bad_blobs, progress)

    # 4. With --read-data: the selected packs read whole, every blob decrypted and verified,
    # least recently verified first when a record of earlier reads is kept.
    path = record_path(options.cache_dir, repo.repository_id) if options.cache_dir else None
    record = rotation.load(path) if path is not None else None
    if record is not None:
        record.keep_only(on_backend)
    if options.read_data:
        packs = _packs_to_read(options, on_backend, record)
        report.packs_selected = len(packs)
        progress.phase("read data", "packs")
        progress.totals(len(packs), sum(on_backend[p] for p in packs))
        deadline = None if options.max_duration is None else options.clock() + options.max_duration
        time_up = None if deadline is None else (lambda: options.clock() >= deadline)
        for pack_id, finding, blob_findings in read_packs(repo, packs, contents, time_up):
            report.packs_read += 1
            report.bytes_read += on_backend[pack_id]
            progress.item(f"data/{pack_id.hex()[:16]}")
            progress.advance(on_backend[pack_id], 0)
            progress.item_done(f"data/{pack_id.hex()[:16]}")
            if finding is not None and finding.error:
                if record is not None:
                    record.mark_damaged(pack_id, options.now(), finding.message)
            else:
                report.verified.append(pack_id)
                if record is not None:
                    record.mark_verified(pack_id, options.now())
            if finding is not None and pack_id not in bad_packs:
                bad_packs[pack_id] = finding
            for delta_finding in blob_findings:
                delta_findings.add(bytes.fromhex(delta_finding.subject))
                bad_blobs.setdefault(Id.from_hex(delta_finding.subject), delta_finding)
        report.time_up = report.packs_read < report.packs_selected
    if record is not None:
        for pack_id, (when, why) in sorted(record.damaged.items()):
            if pack_id not in bad_packs:
                bad_packs[pack_id] = Finding(
                    F.PACK_DAMAGED, pack_id.hex(),
                    f"found damaged by a check on {_date(when)} ({why}) and not read again since; "
                    "the next check --read-data reads it first",
                )  # fmt: skip
        report.coverage = record.coverage(on_backend, options.now(), options.coverage_days)
        if options.read_data and path is not None:
            try:
                rotation.save(path, record)
            except OSError as exc:
                report.record_error = f"cannot write {path}: {exc.strerror or exc}"

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


def _packs_to_read(
    options: CheckOptions, on_backend: dict[Id, int], record: VerificationRecord | None
) -> list[Id]:
    """The packs to read, in the order to read them: the slice or share asked for (all by
    default), least recently verified first with a record, in random order without one (so
    that runs cut short by --max-duration do not read the same packs every time)."""
    packs = [p for p in on_backend if selected(p, options.subset)]
    if record is not None:
        packs = record.order(packs)
    else:
        random.shuffle(packs)
    if options.fraction is not None:
        packs = select_share(packs, options.fraction, record)
    return packs


def _date(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _header_findings(repo: Repository, on_backend: dict[Id, int], extents: dict[Id, int]) -> dict[Id, Finding]:
    """Reads each pack's header (one ranged read of its tail) and compares it with the index:
    a pack cut short, extended, or with a damaged header or trailer is found without reading
    its data (a changed byte inside a blob takes `--read-data`)."""
    headers, damaged = repo.read_pack_headers({p: on_backend[p] for p in extents})
    findings = {p: Finding(F.PACK_DAMAGED, p.hex(), f"header unreadable: {why}") for p, why in damaged.items()}
    for pack_id, entries in headers.items():
        described = sum(e.length for e in entries)
        if extents[pack_id] > described:
            findings[pack_id] = Finding(
                F.PACK_DAMAGED,
                pack_id.hex(),
                f"its header describes {described} bytes of blobs, but the index needs {extents[pack_id]}",
            )
    return findings


def _base_problem(
    repo: Repository, base_key: int, on_backend: dict[Id, int], chain_depths: deltas.ChainDepths
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
    limit = deltas.max_depth(repo.config.delta_chains) - 1
    if all(chain_depths(c, limit) is None for c in candidates):
        if limit == 0:
            return F.DELTA_CHAIN, "is itself stored only as a delta (a base must be whole)", base
        return F.DELTA_CHAIN, f"reaches no whole blob within {limit} more deltas", base
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


def _check_snapshots(
    repo: Repository, snapshots: list[Snapshot], bad: dict[Id, Finding], progress: Progress
) -> None:
    """Every tree and chunk list read once, every blob they name looked up in the index."""

    def unreadable(problem: Unreadable) -> None:
        if isinstance(problem.error, BackendError) and not isinstance(problem.error, ObjectNotFound):
            raise problem.error  # the store failed, not the object: the check cannot go on
        blob_id, indexed = problem.blob_id, repo.lookup(problem.blob_id) is not None
        if problem.role is BlobRole.TREE:
            if not indexed:
                bad[blob_id] = Finding(F.BLOB_MISSING, blob_id.hex(), "tree is not in the index")
            else:
                bad[blob_id] = Finding(F.TREE_DAMAGED, blob_id.hex(), str(problem.error))
        elif blob_id in bad:
            pass  # a delta whose base is missing: reported already
        elif not indexed:
            bad[blob_id] = Finding(F.BLOB_MISSING, blob_id.hex(), "chunk list blob is not in the index")
        else:
            bad[blob_id] = Finding(F.CHUNK_LIST_DAMAGED, blob_id.hex(), str(problem.error))

    walker = Walker(repo, on_error=unreadable)
    progress.totals(len(snapshots), None)
    for snap in snapshots:
        progress.item(f"snapshot {snap.short_id}")
        for visit in walker.pre_order(snap.tree):
            if visit.node.type is NodeType.FILE:
                _check_blobs(repo, visit.node.content, bad)
                for list_id, listed in walker.chunk_lists(visit.node):
                    if list_id not in bad:
                        _check_blobs(repo, listed, bad)
        progress.item_done(f"snapshot {snap.short_id}")


def _check_blobs(repo: Repository, blob_ids: list[Id], bad: dict[Id, Finding]) -> None:
    """Every one of a file's blobs is indexed: looked up all at once (a dump's file names
    thousands)."""
    if not blob_ids:
        return
    lengths = repo.index.plain_lengths_of_run(b"".join(blob_ids))
    for n in np.flatnonzero(lengths < 0).tolist():
        blob_id = blob_ids[n]
        if blob_id not in bad:
            bad[blob_id] = Finding(F.BLOB_MISSING, blob_id.hex(), "data blob is not in the index")


def _attribute(
    repo: Repository,
    snapshots: list[Snapshot],
    bad_packs: dict[Id, Finding],
    bad_blobs: dict[Id, Finding],
) -> None:
    """Second pass, only when damage was found: which snapshots use what is damaged.

    A blob stored as a delta is hurt by damage to its base's pack as well as its own. What hurts
    a tree is worked out bottom-up (post-order) and kept by tree id, and what hurts through a
    chunk list by list id, so each tree and list is read once however many snapshots share it;
    only the ones something hurts are kept. Unreadable trees and lists were reported by the
    first pass: here they are empty, hurt only by their own damage. Trees share their sets
    (most of them hurt by the same pack or two), so a badly damaged repository of a million
    trees does not hold a million sets.
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

    below_tree: dict[bytes, frozenset[bytes]] = {}
    through_list: dict[bytes, frozenset[bytes]] = {}
    shared: dict[frozenset[bytes], frozenset[bytes]] = {}  # one copy of each distinct set

    def keep(hurt: set[bytes]) -> frozenset[bytes]:
        frozen = frozenset(hurt)
        return shared.setdefault(frozen, frozen)

    walker = Walker(repo, on_error=lambda problem: None)
    for snap in snapshots:
        for tree in walker.post_order(snap.tree):
            hurt = hurts(tree.tree_id)
            for node in tree.nodes:
                if node.type is NodeType.DIR and node.subtree is not None:
                    hurt |= below_tree.get(bytes(node.subtree), frozenset())
                elif node.type is NodeType.FILE:
                    for blob_id in node.content:
                        hurt |= hurts(blob_id)
                    for list_id, listed in walker.chunk_lists(node):
                        through = hurts(list_id)
                        for blob_id in listed:
                            through |= hurts(blob_id)
                        if through:
                            through_list[bytes(list_id)] = keep(through)
                    for list_id in node.content_lists:
                        hurt |= through_list.get(bytes(list_id), frozenset())
            if hurt:
                below_tree[bytes(tree.tree_id)] = keep(hurt)
        for key in below_tree.get(bytes(snap.tree), frozenset()):
            finding = bad_packs.get(Id(key)) or bad_blobs.get(Id(key))
            if finding is not None:
                finding.snapshots.append(snap.short_id)
