"""Prune: give back the space of blobs no snapshot uses, following SPEC.md section 11.

Two halves. `plan_prune` is pure: given every pack's size and entries and the set of blobs the
snapshots use, it decides which packs to delete whole, which to repack (copy their used blobs
into new packs, then delete them) and which to keep. `prune` gathers those facts from the
repository and carries the plan out in the only safe order:

1. under an exclusive lock, read every index file, list every pack, read the headers of packs
   no index names, and walk every snapshot's trees and chunk lists; any snapshot, tree or
   chunk list that cannot be read, any used blob that is nowhere to be found and any used
   delta whose chain of bases ends in no whole copy stops prune before it changes anything
   (a delta keeps its base, and that base its own: bases count as used);
2. copy the used blobs out of the packs to repack into new packs (envelopes are copied as they
   are, after checking each one decrypts to its id); a delta the plan re-bases, so that
   bases no snapshot uses can go, is read through the blob reader and stored whole instead
   (a used one, or a dead base where several live chains meet, which then stays as their base);
3. write the new index files, the last of them listing the old ones in `supersedes`;
4. delete the old index files, then the packs nothing names any more.

A crash at any point leaves every snapshot readable: until step 3 ends the old index is
complete and nothing was deleted; after it, the new index names only packs that stay.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field

from snapstore.backend.base import FileType
from snapstore.errors import IntegrityError, ObjectNotFound, SnapstoreError, UsageError
from snapstore.ids import Id
from snapstore.index import deltas
from snapstore.pack import BlobType, PackBlob, PackEntry, blob_key
from snapstore.progress import NoProgress, Progress
from snapstore.repository.lock import RepositoryLock
from snapstore.repository.repository import Repository
from snapstore.snapshot.store import load_snapshot
from snapstore.snapshot.walk import BlobRole, Unreadable, Walker

DEFAULT_MAX_UNUSED = 0.05


# -- the plan (pure) --------------------------------------------------------------------------
@dataclass(frozen=True)
class PackContents:
    """A pack as prune sees it: its size on the backend and the blobs it holds."""

    size: int
    entries: tuple[PackEntry, ...]


@dataclass
class PrunePlan:
    delete: set[Id] = field(default_factory=set)  # no copy to keep inside: delete as is
    repack: dict[Id, list[PackEntry]] = field(default_factory=dict)  # copy these out, then delete
    keep: set[Id] = field(default_factory=set)
    missing: set[bytes] = field(default_factory=set)  # keys of used blobs found in no pack
    #: keys of used blobs stored only as deltas whose base is stored whole nowhere -> that base
    missing_bases: dict[bytes, bytes] = field(default_factory=dict)
    used_bytes: int = 0  # stored bytes of one copy of every used blob
    unused_before: int = 0  # stored bytes of blob copies nothing needs
    unused_after: int = 0
    blobs_used: int = 0
    blobs_unused: int = 0  # distinct blobs nothing uses
    #: keys of deltas to store whole (re-based), so that bases only they needed can go: used
    #: blobs, or dead bases where live chains meet, which then stay whole as their base
    rebase: set[bytes] = field(default_factory=set)
    rebase_bytes: int = 0  # the estimated stored length of those whole copies
    bases_freed: int = 0  # blobs kept only as bases that re-basing lets go
    bases_freed_bytes: int = 0  # their stored length

    @property
    def copy_bytes(self) -> int:
        return sum(e.length for entries in self.repack.values() for e in entries)


def unused_allowed(max_unused: float, used_bytes: int) -> float:
    """Unused bytes that may stay so that unused / (used + unused) <= max_unused."""
    if max_unused >= 1:
        return float("inf")
    return max_unused / (1 - max_unused) * used_bytes


def plan_prune(
    packs: Mapping[Id, PackContents],
    used: AbstractSet[bytes],
    max_unused: float,
    max_depth: int = deltas.MAX_DEPTH,
    *,
    rebase: bool = True,
) -> PrunePlan:
    """Decides what to delete and what to repack so that at most `max_unused` stays unused.

    `used` holds `blob_key`s. One copy of each used blob is kept: the one in the pack whose
    blobs are most used, so the fewest packs need rewriting. A copy stored as a delta keeps its
    base as if it were used, and a base kept as a delta its own, down to a whole copy; only
    copies on a blob's shallowest chains serve, so no chain grows deeper than it was, and a
    delta whose chain ends in no whole copy within `max_depth` deltas (the repository's,
    `deltas.max_depth`) cannot serve. Packs holding no copy to keep are deleted. Partly used packs are repacked,
    largest unused share first, until the unused bytes left are within `max_unused` of what
    stays; a pack that would stay with a delta whose chain breaks is repacked as well, so the
    new index never names a delta nobody can read. The result does not depend on input order.

    With `rebase`, kept deltas (used ones, or dead bases that live chains rest on) are chosen
    to be stored whole (`PrunePlan.rebase`, see `_choose_rebase`) where that lets bases no
    snapshot uses go and frees more stored bytes than it writes; the packs holding their old
    delta copies are then repacked or deleted whatever `max_unused` says, and the bases freed
    count as unused.
    """
    if not 0 <= max_unused <= 1:
        raise UsageError(f"max unused share {max_unused} is not between 0 and 1")
    order = sorted(packs)
    every_key: set[bytes] = set()
    copies: dict[bytes, list[tuple[Id, PackEntry]]] = {}  # of the used blobs and their bases
    for pack_id in order:
        for entry in packs[pack_id].entries:
            key = blob_key(entry.type, entry.id)
            every_key.add(key)
            if key in used:
                copies.setdefault(key, []).append((pack_id, entry))
    # Every copy of every blob a copy gathered so far is a delta against, chain by chain.
    wanted = {_base_key(e) for found in copies.values() for _, e in found if e.base is not None}
    for _ in range(max_depth):
        wanted -= copies.keys()
        if not wanted:
            break
        for pack_id in order:
            for entry in packs[pack_id].entries:
                key = blob_key(entry.type, entry.id)
                if key in wanted:
                    copies.setdefault(key, []).append((pack_id, entry))
        wanted = {_base_key(e) for key in wanted for _, e in copies.get(key, ()) if e.base is not None}

    # The copies that can serve each blob: those on its shallowest chains to a whole copy.
    depth = deltas.entry_depths((e for found in copies.values() for _, e in found), max_depth)
    candidates: dict[bytes, list[tuple[Id, PackEntry]]] = {}
    missing_bases: dict[bytes, bytes] = {}
    for key, found in copies.items():
        if key not in depth:
            if key in used:
                missing_bases[key] = _base_key(found[0][1])
            continue
        candidates[key] = [(p, e) for p, e in found if deltas.entry_depth(e, depth, max_depth) == depth[key]]

    naive_used: dict[Id, int] = {}
    for found in candidates.values():
        seen: set[Id] = set()
        for pack_id, entry in found:
            if pack_id not in seen:
                seen.add(pack_id)
                naive_used[pack_id] = naive_used.get(pack_id, 0) + entry.length

    def preference(pack_id: Id) -> tuple[float, bytes]:
        return (naive_used.get(pack_id, 0) / max(packs[pack_id].size, 1), bytes(pack_id))

    keeper: dict[bytes, tuple[Id, PackEntry]] = {}
    for key, found in candidates.items():
        pack_id = max({p for p, _ in found}, key=preference)
        keeper[key] = next((p, e) for p, e in found if p == pack_id)
    # The used blobs and the chains of the copies kept: a base only some copy not chosen
    # needed is not needed after all.
    live = {key for key in used if key in keeper}
    needed = _chains(live, keeper, set())
    keeper = {key: chosen for key, chosen in keeper.items() if key in needed}
    plan = PrunePlan(missing=set(used) - copies.keys(), missing_bases=missing_bases)
    if rebase:
        plan.rebase, estimates = _choose_rebase(keeper, live, depth)
        if plan.rebase:
            still = _chains(live, keeper, plan.rebase)
            freed = needed - still
            plan.rebase_bytes = sum(estimates[key] for key in plan.rebase)
            plan.bases_freed = len(freed)
            plan.bases_freed_bytes = sum(keeper[key][1].length for key in freed)
            keeper = {key: chosen for key, chosen in keeper.items() if key in still}
    plan.blobs_used = len(keeper)

    kept: dict[Id, list[PackEntry]] = {}
    unused: dict[Id, int] = {}
    for pack_id in order:
        for entry in packs[pack_id].entries:
            key = blob_key(entry.type, entry.id)
            chosen = keeper.get(key)
            if (
                chosen is not None
                and chosen[0] == pack_id
                and chosen[1].offset == entry.offset
                and key not in plan.rebase  # its old copy goes; a whole one is written
            ):
                kept.setdefault(pack_id, []).append(entry)
            else:
                unused[pack_id] = unused.get(pack_id, 0) + entry.length
    plan.blobs_unused = len(every_key) - plan.blobs_used
    plan.used_bytes = sum(e.length for entries in kept.values() for e in entries) + plan.rebase_bytes
    plan.unused_before = sum(unused.values())
    # The packs holding the old copies of the deltas re-based go, however little is unused.
    must_go = {keeper[key][0] for key in plan.rebase}

    partial = []
    for pack_id in order:
        if pack_id not in kept:
            plan.delete.add(pack_id)
        elif unused.get(pack_id, 0):
            partial.append(pack_id)
        else:
            plan.keep.add(pack_id)
    left = sum(unused[p] for p in partial)
    allowed = unused_allowed(max_unused, plan.used_bytes)
    partial.sort(key=lambda p: (-unused[p] / max(packs[p].size, 1), bytes(p)))
    for pack_id in partial:
        if left > allowed or pack_id in must_go:
            plan.repack[pack_id] = kept[pack_id]
            left -= unused[pack_id]
        else:
            plan.keep.add(pack_id)

    # Every entry of a kept pack stays indexed, unused ones too: an unused delta there whose
    # base goes would be a blob nobody can read that a later backup deduplicates against.
    while stale := _stale_deltas(packs, plan, max_depth):
        for pack_id in stale:
            plan.keep.discard(pack_id)
            plan.repack[pack_id] = kept[pack_id]

    # A blob to copy out may also sit in a pack that stays: that copy serves instead, if it is
    # whole or a delta against the same base.
    to_copy = {blob_key(e.type, e.id) for entries in plan.repack.values() for e in entries}
    in_kept: dict[bytes, set[bytes | None]] = {}  # how the blobs to copy are stored in kept packs
    kept_lengths: dict[bytes, int] = {}
    for pack_id in sorted(plan.keep):
        for entry in packs[pack_id].entries:
            key = blob_key(entry.type, entry.id)
            if key in to_copy:
                in_kept.setdefault(key, set()).add(_form(entry))
            if key in keeper and key not in plan.rebase:
                kept_lengths[key] = entry.length
    for pack_id in list(plan.repack):
        plan.repack[pack_id] = [
            e
            for e in plan.repack[pack_id]
            if not in_kept.get(blob_key(e.type, e.id), set()) & {None, _form(e)}
        ]
        if not plan.repack[pack_id]:
            del plan.repack[pack_id]
            plan.delete.add(pack_id)
    kept_blob_bytes = sum(e.length for p in plan.keep for e in packs[p].entries)
    plan.unused_after = kept_blob_bytes - sum(kept_lengths.values())
    return plan


def _chains(live: AbstractSet[bytes], keeper: Mapping[bytes, tuple[Id, PackEntry]], whole: AbstractSet[bytes]) -> set[bytes]:
    """The live blobs and every base their kept copies rest on, down each chain; a blob in
    `whole` (to be stored whole) needs no base."""
    needed = set(live)
    frontier = list(needed)
    while frontier:
        key = frontier.pop()
        entry = keeper[key][1]
        if key not in whole and entry.base is not None and (base := _base_key(entry)) not in needed:
            needed.add(base)
            frontier.append(base)
    return needed


def _choose_rebase(
    keeper: Mapping[bytes, tuple[Id, PackEntry]], live: AbstractSet[bytes], depth: Mapping[bytes, int]
) -> tuple[set[bytes], dict[bytes, int]]:
    """The deltas worth storing whole, and the estimated stored length of each whole copy.

    The kept copies form a forest: each delta points at its base, each tree ends in a whole
    copy (its root). A base no snapshot uses (a *dead* base) stays only while some live blob
    above it still rests on it, through deltas none of which is stored whole. Storing a delta
    whole writes its whole copy, frees its old delta copy and cuts its chain there: a dead
    base with no live blob resting on it any more is freed. A base shared by several live
    blobs (a skip-delta chain's whole version is the base of versions 1, 2, 4, 8, 16...) goes
    only once none of them rests on it.

    The delta stored whole may be live, or a dead base itself where several live branches meet
    (under `--keep-weekly`, the weeklies of a chunk hang on different dead intermediate
    versions, each shared by a few of them): it then stays, whole, as the base of the deltas
    above it, and the dead chain below it goes, for one whole copy instead of one per branch.
    A dead blob is stored whole only when something above it rests on it.

    The plan knows stored lengths, not the length a blob would have whole: that is estimated
    from the whole copy at the root of its chain (a version of the same chunk), its stored
    length scaled by the two plaintext lengths. A choice is made where it frees more stored
    bytes (dead bases and the old delta copies) than the whole copies written by that
    estimate; the bytes the repacking copies move are not counted, they are stored before and
    after.

    One pass over the forest bottom-up (deepest first) finds, for every blob, the most it can
    free below it if it still rests on its base and if it does not (a delta stored whole, or
    a dead base freed with everything above it cut off); a pass top-down then picks,
    preferring to rewrite nothing where that frees as much, and to free a dead blob rather
    than store it whole. Work is O(n log n) in the kept blobs, and the result depends only on
    the copies kept, never on the order of the input.
    """
    parent = {key: _base_key(entry) for key, (_, entry) in keeper.items() if entry.base is not None}
    if not parent:
        return set(), {}
    order = sorted(keeper, key=lambda key: (depth[key], key))  # every base before its deltas
    root: dict[bytes, bytes] = {}
    estimates: dict[bytes, int] = {}
    for key in order:
        base = parent.get(key)
        root[key] = key if base is None else root[base]
        if base is not None:
            whole, entry = keeper[root[key]][1], keeper[key][1]
            if whole.plain_length:
                estimates[key] = -(-whole.length * entry.plain_length // whole.plain_length)
            else:
                estimates[key] = whole.length
    # rests[k]: most freed in k's subtree (net of whole copies written) while k rests on its
    # base; cut[k]: most freed when it does not: stored whole (whole_gain[k]) or, when dead, freed
    # (gone[k]) with every delta above it cut too. open_sum / cut_sum: over k's deltas, of the
    # best each can do, and of what each frees when it does not rest on k. A root rests on
    # nothing: only a dead root's cut means a thing (it is freed).
    open_sum = dict.fromkeys(keeper, 0)
    cut_sum = dict.fromkeys(keeper, 0)
    rests: dict[bytes, int] = {}
    cut: dict[bytes, int] = {}
    whole_gain: dict[bytes, int] = {}
    gone: dict[bytes, int] = {}
    for key in reversed(order):
        rests[key] = open_sum[key]
        length = keeper[key][1].length
        base = parent.get(key)
        if base is not None:
            whole_gain[key] = open_sum[key] + length - estimates[key]
        if key not in live:
            gone[key] = cut_sum[key] + length  # no live blob above rests on it: it goes
        cut[key] = max((v for v in (whole_gain.get(key), gone.get(key)) if v is not None), default=0)
        if base is not None:
            open_sum[base] += max(rests[key], cut[key])
            cut_sum[base] += cut[key]
    chosen: set[bytes] = set()
    freed: set[bytes] = set()  # dead blobs freed: nothing above may rest on them
    for key in order:
        base = parent.get(key)
        if base is None:
            if key not in live and cut[key] > rests[key]:
                freed.add(key)
            continue
        if base in freed or cut[key] > rests[key]:
            if key in live or whole_gain[key] > gone[key]:
                chosen.add(key)
            else:
                freed.add(key)
    return chosen, {key: estimates[key] for key in chosen}


def _base_key(entry: PackEntry) -> bytes:
    """The key of a delta entry's base (a data blob)."""
    assert entry.base is not None
    return blob_key(BlobType.DATA, entry.base)


def _form(entry: PackEntry) -> bytes | None:
    """How a copy is stored: None when whole, else its base's key."""
    return None if entry.base is None else _base_key(entry)


def _stale_deltas(packs: Mapping[Id, PackContents], plan: PrunePlan, max_depth: int) -> list[Id]:
    """Kept packs holding a delta whose chain no kept pack and no copy to make (a blob re-based
    included) completes."""
    if not any(e.base is not None for p in plan.keep for e in packs[p].entries):
        return []
    stays = [e for p in plan.keep for e in packs[p].entries]
    stays.extend(e for entries in plan.repack.values() for e in entries)
    stays.extend(PackEntry(BlobType(key[0]), Id(key[1:]), 0, 0, 0) for key in plan.rebase)  # whole
    depth = deltas.entry_depths(stays, max_depth)
    return sorted(
        p
        for p in plan.keep
        if any(e.base is not None and deltas.entry_depth(e, depth, max_depth) is None for e in packs[p].entries)
    )


# -- carrying it out --------------------------------------------------------------------------
@dataclass
class PruneOptions:
    max_unused: float = DEFAULT_MAX_UNUSED  # a fraction: 0.05 is 5%
    dry_run: bool = False
    rebase: bool = True  # store used deltas whole where that lets dead bases go


@dataclass
class PruneReport:
    dry_run: bool = False
    snapshots: int = 0
    packs_before: int = 0
    bytes_before: int = 0  # packs and index files
    blobs_used: int = 0
    blobs_unused: int = 0
    unused_before: int = 0
    unused_after: int = 0
    packs_deleted: int = 0  # nothing used inside (including leftovers no index named)
    packs_repacked: int = 0
    packs_written: int = 0
    unindexed_packs: int = 0  # found on the backend with no index naming them
    damaged_unindexed_packs: int = 0
    index_files_deleted: int = 0
    index_files_written: int = 0
    bytes_deleted: int = 0
    bytes_read: int = 0
    bytes_written: int = 0
    blobs_rebased: int = 0  # deltas stored whole so that bases only they needed go
    rebase_bytes_written: int = 0  # the whole copies' length (estimated in a dry run)
    bases_freed: int = 0  # blobs kept only as bases that this lets go
    bases_freed_bytes: int = 0

    @property
    def bytes_freed(self) -> int:
        return self.bytes_deleted - self.bytes_written

    @property
    def bytes_after(self) -> int:
        return self.bytes_before - self.bytes_freed


@dataclass
class _State:
    """What prune learnt from the repository before deciding anything."""

    index_files: dict[str, int]  # name -> size
    indexed: dict[Id, list[PackEntry]]  # packs an index names that are on the backend
    recovered: dict[Id, list[PackEntry]]  # packs no index names, with a whole header
    damaged: dict[Id, str]  # packs no index names whose header cannot be read
    vanished: set[Id]  # packs an index names that are not on the backend
    sizes: dict[Id, int]
    used: set[bytes]
    snapshots: int


def prune(
    repo: Repository, options: PruneOptions | None = None, progress: Progress | None = None
) -> PruneReport:
    """Deletes what no snapshot uses. Needs an exclusive lock, which it takes if the repository
    holds none (a dry run is content with a shared one)."""
    options = options or PruneOptions()
    progress = progress or NoProgress()
    held = repo.held_lock
    if held is None:
        lock = repo.lock(exclusive=not options.dry_run)
        try:
            return _prune(repo, lock, options, progress)
        finally:
            repo.unlock()
    if not held.exclusive and not options.dry_run:
        raise UsageError("prune needs an exclusive lock, but this repository holds a shared one")
    return _prune(repo, held, options, progress)


def _prune(
    repo: Repository, lock: RepositoryLock, options: PruneOptions, progress: Progress
) -> PruneReport:
    state = _gather(repo, progress)
    contents = {
        pack_id: PackContents(state.sizes[pack_id], tuple(entries))
        for pack_id, entries in {**state.indexed, **state.recovered}.items()
    }
    plan = plan_prune(
        contents,
        state.used,
        options.max_unused,
        deltas.max_depth(repo.config.delta_chains),
        rebase=options.rebase,
    )
    if plan.missing:
        sample = ", ".join(sorted(key[1:].hex()[:16] for key in plan.missing)[:3])
        raise IntegrityError(
            f"prune stopped, nothing was deleted: {len(plan.missing)} blobs the snapshots use are "
            f"in no pack ({sample}); run `snapstore check`"
        )
    if plan.missing_bases:
        delta, base = min(plan.missing_bases.items())
        raise IntegrityError(
            f"prune stopped, nothing was deleted: {len(plan.missing_bases)} blobs the snapshots "
            f"use are deltas whose chain of bases ends in no whole copy (blob {delta[1:].hex()[:16]}, "
            f"base {base[1:].hex()[:16]}); run `snapstore check`"
        )
    doomed = plan.delete | set(plan.repack) | set(state.damaged)
    rewrite_index = bool(
        plan.repack  # the new packs need an index
        or plan.rebase
        or doomed & state.indexed.keys()
        or state.vanished
        or plan.keep & state.recovered.keys()
    )
    report = PruneReport(
        dry_run=options.dry_run,
        snapshots=state.snapshots,
        packs_before=len(state.sizes),
        bytes_before=sum(state.sizes.values()) + sum(state.index_files.values()),
        blobs_used=plan.blobs_used,
        blobs_unused=plan.blobs_unused,
        unused_before=plan.unused_before,
        unused_after=plan.unused_after,
        packs_deleted=len(plan.delete) + len(state.damaged),
        packs_repacked=len(plan.repack),
        unindexed_packs=len(state.recovered) + len(state.damaged),
        damaged_unindexed_packs=len(state.damaged),
        bytes_deleted=sum(state.sizes[p] for p in doomed),
        blobs_rebased=len(plan.rebase),
        rebase_bytes_written=plan.rebase_bytes,
        bases_freed=plan.bases_freed,
        bases_freed_bytes=plan.bases_freed_bytes,
    )
    if rewrite_index:
        report.index_files_deleted = len(state.index_files)
        report.bytes_deleted += sum(state.index_files.values())
    if options.dry_run:
        repo.replace_index(state.indexed)
        report.bytes_read = sum(state.sizes[p] for p in plan.repack)
        report.bytes_written = plan.copy_bytes + plan.rebase_bytes
        return report

    final = {p: state.indexed.get(p) or state.recovered[p] for p in sorted(plan.keep)}
    progress.phase("repack", "packs")
    progress.totals(len(plan.repack) + bool(plan.rebase), sum(state.sizes[p] for p in plan.repack))
    final.update(_repack(repo, plan, report, progress))
    if rewrite_index:
        lock.check()
        for _, size in repo.write_index_files(final, sorted(state.index_files)):
            report.index_files_written += 1
            report.bytes_written += size
        lock.check()
        for name in sorted(state.index_files):
            progress.item(f"deleting index/{name[:16]}")
            _remove(repo, FileType.INDEX, name)
    repo.replace_index(final)
    progress.phase("delete", "packs")
    progress.totals(len(doomed), None)
    for number, pack_id in enumerate(sorted(doomed)):
        if number % 100 == 0:
            lock.check()
        progress.item(f"deleting data/{pack_id.hex()[:16]}")
        _remove(repo, FileType.PACK, pack_id.hex())
        progress.item_done(f"data/{pack_id.hex()[:16]}")
    return report


def _gather(repo: Repository, progress: Progress) -> _State:
    progress.phase("find unused data")
    progress.item("reading the index")
    try:
        files = repo.read_index_files()
    except (IntegrityError, ObjectNotFound) as exc:
        raise IntegrityError(
            f"prune stopped, nothing was deleted: an index file cannot be read ({exc}); "
            "`snapstore repair index` rebuilds the index from the packs"
        ) from exc
    sizes = repo.list_packs()
    indexed: dict[Id, list[PackEntry]] = {}
    vanished: set[Id] = set()
    for _, index_file in sorted(files, key=lambda f: f[0].handle.name):
        for pack_id, entries in index_file.packs.items():
            if pack_id not in sizes:
                vanished.add(pack_id)
            elif pack_id in indexed:
                indexed[pack_id] = _merge_entries(indexed[pack_id], entries)
            else:
                indexed[pack_id] = list(entries)
    progress.item("reading the headers of packs no index names")
    recovered, damaged = repo.read_unindexed_packs(sizes, set(indexed))
    repo.replace_index({**indexed, **recovered})
    used, snapshots = _used_blobs(repo, progress)
    return _State(
        index_files={info.handle.name: info.size for info, _ in files},
        indexed=indexed,
        recovered=recovered,
        damaged=damaged,
        vanished=vanished,
        sizes=sizes,
        used=used,
        snapshots=snapshots,
    )


def _merge_entries(first: list[PackEntry], second: list[PackEntry]) -> list[PackEntry]:
    """One pack named by two index files: the union of what they say, in pack order."""
    by_place = {(e.offset, bytes(e.id)): e for e in first}
    for entry in second:
        by_place.setdefault((entry.offset, bytes(entry.id)), entry)
    return [by_place[k] for k in sorted(by_place)]


def _used_blobs(repo: Repository, progress: Progress) -> tuple[set[bytes], int]:
    """Keys of every blob some snapshot reaches; stops at any snapshot, tree or chunk list it
    cannot read (each tree and each chunk list is read once, however many snapshots share it).
    A snapshot listed but gone when read was removed meanwhile, as a lagging listing shows a
    snapshot forget just removed: it needs nothing kept."""
    used: set[bytes] = set()
    names = sorted(info.handle.name for info in repo.list_objects(FileType.SNAPSHOT))
    name = ""  # the snapshot being walked, for `stop`

    def stop(problem: Unreadable) -> None:
        error = problem.error
        if problem.role is BlobRole.TREE and not isinstance(error, (IntegrityError, ObjectNotFound)):
            raise error  # not damage: a backend failing, say; prune stops with it as it is
        raise IntegrityError(
            f"prune stopped, nothing was deleted: {problem.role.value} "
            f"{problem.blob_id.hex()[:16]} of snapshot {name[:8]} cannot be read ({error}); "
            "run `snapstore check`, then `snapstore repair snapshots`"
        ) from error

    walker = Walker(repo, on_error=stop)
    walked = 0
    for name in names:
        progress.item(f"finding the blobs snapshot {name[:8]} uses")
        try:
            snapshot = load_snapshot(repo, name)
        except ObjectNotFound:
            continue  # removed since the listing (forget --prune): nothing of it is needed
        except IntegrityError as exc:
            raise IntegrityError(
                f"prune stopped, nothing was deleted: snapshot {name[:8]} cannot be read ({exc}); "
                "`snapstore repair snapshots --forget` removes it"
            ) from exc
        walked += 1
        used.add(blob_key(BlobType.TREE, snapshot.tree))
        for visit in walker.pre_order(snapshot.tree):
            used.update(blob_key(t, blob_id) for t, blob_id in walker.blobs(visit.node))
    return used, walked


def _repack(
    repo: Repository, plan: PrunePlan, report: PruneReport, progress: Progress
) -> dict[Id, list[PackEntry]]:
    """Copies the blobs to keep out of the packs to repack into new, as yet unindexed, packs;
    trees and data go into packs of their own (SPEC.md section 7)."""
    written: dict[Id, list[PackEntry]] = {}
    batches: dict[BlobType, list[PackBlob]] = {t: [] for t in BlobType}
    sizes: dict[BlobType, int] = {t: 0 for t in BlobType}

    def store(blob_type: BlobType) -> None:
        pack_id, entries, size = repo.write_pack(batches[blob_type])
        written[pack_id] = entries
        report.packs_written += 1
        report.bytes_written += size
        progress.advance(0, size)
        batches[blob_type], sizes[blob_type] = [], 0

    for pack_id in sorted(plan.repack):
        progress.item(f"repacking data/{pack_id.hex()[:16]}")
        data = repo.load_pack(pack_id)
        report.bytes_read += len(data)
        progress.advance(len(data), 0)
        for entry in plan.repack[pack_id]:
            envelope = data[entry.offset : entry.offset + entry.length]
            try:
                repo.decode_blob(
                    entry.type,
                    entry.id,
                    envelope,
                    entry.plain_length,
                    base_key=None if entry.base is None else deltas.base_key(entry.base),
                )
            except SnapstoreError as exc:
                raise IntegrityError(
                    f"prune stopped, nothing was deleted: blob {entry.id.hex()[:16]} in pack "
                    f"{pack_id.hex()[:16]} is damaged ({exc}); run `snapstore check --read-data`"
                ) from exc
            batches[entry.type].append(
                PackBlob(entry.type, entry.id, envelope, entry.plain_length, entry.base, entry.generation)
            )
            sizes[entry.type] += len(envelope)
            if sizes[entry.type] >= repo.config.pack_size:
                store(entry.type)
        progress.item_done(f"data/{pack_id.hex()[:16]}")
    if plan.rebase:
        progress.item(f"storing {len(plan.rebase)} deltas whole")
        report.rebase_bytes_written = 0
        for blob in _whole_copies(repo, plan.rebase):
            batches[blob.type].append(blob)
            sizes[blob.type] += len(blob.envelope)
            report.rebase_bytes_written += len(blob.envelope)
            if sizes[blob.type] >= repo.config.pack_size:
                store(blob.type)
        progress.item_done(f"{len(plan.rebase)} deltas stored whole")
    for blob_type in BlobType:
        if batches[blob_type]:
            store(blob_type)
    return written


def _whole_copies(repo: Repository, keys: AbstractSet[bytes]) -> Iterator[PackBlob]:
    """The blobs to re-base, each read through the repository's blob reader (a delta rebuilt
    from its chain, which is all still there, and checked against its id) and framed whole.
    A dead base among them is read like any indexed blob: no snapshot need use it."""
    requests = [(BlobType(key[0]), Id(key[1:])) for key in sorted(keys)]
    for read in repo.read_blobs(requests):
        if read.data is None:
            raise IntegrityError(
                f"prune stopped, nothing was deleted: blob {read.id.hex()[:16]} cannot be read "
                f"({read.error}); run `snapstore check --read-data`"
            ) from read.error
        yield repo.whole_blob(read.type, read.id, read.data)


def _remove(repo: Repository, file_type: FileType, name: str) -> None:
    try:
        repo.remove_object(file_type, name)
    except ObjectNotFound:
        pass  # already gone
