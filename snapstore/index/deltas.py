"""The delta rules (SPEC.md sections 6 and 11), in one place.

- Only data blobs may be stored as deltas; trees are always whole.
- A delta names its base by id inside its envelope; the index keeps the first 8 bytes of that
  id (`base_key`), enough to find the base's candidates among the indexed ids.
- In a repository with `delta-chains` a base may itself be a delta, and chains are at most
  `MAX_DEPTH` deltas deep: reading any blob costs at most `MAX_DEPTH + 1` blob reads. Without
  it, a base is stored whole (chains one level deep).
- Bases follow the data by skip-deltas: a chunk's versions are numbered (the generation, kept
  in the delta's entry flags; a whole blob's is drawn from its id, so chains start staggered)
  and version g is stored against the newest earlier version of the same chain whose
  generation is at most g & (g - 1). Most nights' deltas are then taken against yesterday's
  version, chains stay about log2(g) deep, and the long spans fall on different nights for
  different chunks. A version past `pack.MAX_GENERATION` is stored whole and starts anew.
- A live delta keeps its base alive, transitively: prune counts the base of every delta it
  keeps as used.

The packer, the blob reader, the checker, prune, repair, copy and the archiver ask these
functions instead of spelling the rules out again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from snapstore.ids import Id
from snapstore.pack import MAX_GENERATION, BlobType, PackEntry, blob_key, delta_generation

if TYPE_CHECKING:
    import numpy as np

    from snapstore.index.index import BlobIndex, BlobLocation, IndexColumns

#: How many deltas deep a chain may go (feature `delta-chains`); 1 without it.
MAX_DEPTH = 8
#: Whole blobs start their chain at a generation 0..STAGGER-1 drawn from their id.
STAGGER = 8


@dataclass(frozen=True)
class Offer:
    """A base a new chunk may be stored against, and the generation the delta then has; and
    where the base and the bases under it are (`chain`, the base first), as the offer found
    them, so the packer reads the base without looking its chain up again."""

    base: Id
    generation: int = 0
    chain: tuple[tuple[Id, BlobLocation], ...] = field(default=(), compare=False, repr=False)


def may_be_delta(blob_type: BlobType) -> bool:
    """Whether a blob of this type may be stored as a delta."""
    return blob_type is BlobType.DATA


def serves_as_base(blob_type: BlobType, is_delta: bool) -> bool:
    """Whether a stored copy can end a chain: a data blob stored whole."""
    return blob_type is BlobType.DATA and not is_delta


def base_key(base_id: bytes) -> int:
    """The index's short name for a base: the first 8 bytes of its id, big-endian."""
    return int.from_bytes(base_id[:8], "big")


def max_depth(chains: bool) -> int:
    """How many deltas deep a chain may be in a repository with or without `delta-chains`."""
    return MAX_DEPTH if chains else 1


def generation(blob_id: bytes, location: BlobLocation) -> int:
    """A stored version's number in its chain: a whole blob's is drawn from its id; a delta
    written before `delta-chains` counts as the first after its base."""
    if not location.is_delta:
        return blob_id[0] % STAGGER
    return max(delta_generation(location.flags), 1)


def whole_copies(index: BlobIndex, blob_id: bytes) -> list[BlobLocation]:
    """The indexed copies of a blob that can end a chain."""
    return [c for c in index.lookup_all(blob_id) if serves_as_base(c.type, c.is_delta)]


def base_candidates(index: BlobIndex, delta: BlobLocation) -> list[Id]:
    """The indexed ids a delta's base key can stand for (almost always exactly one)."""
    return index.ids_with_key(delta.base_key)


def bases_of(index: BlobIndex, locations: list[BlobLocation]) -> dict[int, list[Id]]:
    """The candidate base ids of many deltas at once, by base key."""
    return index.ids_with_keys([loc.base_key for loc in locations if loc.is_delta])


def depth(
    index: BlobIndex,
    blob_id: bytes,
    usable: Callable[[BlobLocation], bool] = lambda _: True,
    limit: int = MAX_DEPTH,
) -> int | None:
    """How many deltas deep the shallowest readable chain of this data blob is (0 when a
    whole copy is indexed), looking only at `usable` copies; None when no chain reaches a
    whole copy within `limit` deltas (a base missing, or a chain too deep or circular)."""
    return ChainDepths(index, usable)(blob_id, limit)


def entry_depths(
    entries: Iterable[PackEntry],
    max_depth: int,
    outside: Callable[[Id], int | None] | None = None,
) -> dict[bytes, int]:
    """`depth` for copies not (or not all) in an index: how many deltas deep the shallowest
    chain of each of these blobs is, by `pack.blob_key`, using these copies and, for a base
    none of them holds whole, what `outside` says of it (an index). Blobs with no chain to a
    whole copy within `max_depth` deltas are left out."""
    found: dict[bytes, int] = {}
    waiting: list[PackEntry] = []
    for entry in entries:
        if entry.base is None:
            found[blob_key(entry.type, entry.id)] = 0
        else:
            waiting.append(entry)
    asked: set[bytes] = set()
    for _ in range(max_depth + 1):  # a chain settles a level a round
        changed = False
        for entry in waiting:
            assert entry.base is not None
            base = blob_key(BlobType.DATA, entry.base)
            if outside is not None and base not in asked:
                asked.add(base)
                there = outside(entry.base)
                if there is not None and there < found.get(base, max_depth + 1):
                    found[base] = there
            below = found.get(base)
            if below is None or below >= max_depth:
                continue
            key = blob_key(entry.type, entry.id)
            if below + 1 < found.get(key, max_depth + 1):
                found[key] = below + 1
                changed = True
        if not changed:
            break
    return found


def entry_depth(entry: PackEntry, depths: Mapping[bytes, int], max_depth: int) -> int | None:
    """How many deltas deep this copy's shallowest chain is, by `entry_depths` (None: it
    cannot be read within `max_depth`)."""
    if entry.base is None:
        return 0
    below = depths.get(blob_key(BlobType.DATA, entry.base))
    return None if below is None or below >= max_depth else below + 1


def chain(index: BlobIndex, blob_id: bytes, limit: int = MAX_DEPTH) -> list[tuple[Id, BlobLocation]] | None:
    """The blob and the bases its first indexed copy rests on, down to a whole blob: the chain
    a reader follows. None when it is broken, ambiguous (two ids share a base key) or deeper
    than `limit`; that costs a delta, never correctness."""
    return chains_of(index, [blob_id], limit)[0]


def chains_of(
    index: BlobIndex, blob_ids: Sequence[bytes], limit: int = MAX_DEPTH
) -> list[list[tuple[Id, BlobLocation]] | None]:
    """`chain` of each of many blobs, followed a level at a time for all of them: one
    vectorised index search per level instead of two per blob and level (a parent file's
    thousands of chunks are offered as bases in one go)."""
    out: list[list[tuple[Id, BlobLocation]] | None] = [[] for _ in blob_ids]
    walking = {n: Id(bytes(b)) for n, b in enumerate(blob_ids)}  # open chains: where they are
    for _ in range(limit + 1):
        if not walking:
            break
        order = list(walking)
        base_of: dict[int, int] = {}
        for n, copies in zip(order, index.lookup_all_run(b"".join(walking[n] for n in order)), strict=True):
            path = out[n]
            assert path is not None
            whole = next((c for c in copies if serves_as_base(c.type, c.is_delta)), None)
            location = whole or next((c for c in copies if c.type is BlobType.DATA), None)
            if location is None:
                out[n] = None
                del walking[n]
                continue
            path.append((walking[n], location))
            if whole is not None:
                del walking[n]
            else:
                base_of[n] = location.base_key
        bases = index.ids_with_keys(list(base_of.values())) if base_of else {}
        for n, key in base_of.items():
            found, path = bases.get(key, []), out[n]
            assert path is not None
            if len(found) != 1 or any(bytes(found[0]) == bytes(b) for b, _ in path):
                out[n] = None  # ambiguous, broken or a circle
                del walking[n]
            else:
                walking[n] = found[0]
    for n in walking:  # deeper than `limit`
        out[n] = None
    return out


def offer(index: BlobIndex, candidate: bytes, chains: bool) -> Offer | None:
    """What a new version of `candidate` (the parent snapshot's chunk at the same place) is
    offered as a base: with `delta-chains` the skip-delta base of its chain, else the chain's
    whole root. None when the candidate cannot lead to a base (unknown, a tree, a broken
    chain, or a chain that has run out of generations and starts anew whole)."""
    return offers(index, [candidate], chains)[0]


def offers(index: BlobIndex, candidates: Sequence[bytes], chains: bool) -> list[Offer | None]:
    """`offer` for each of many candidates at once (`chains_of`)."""
    return [_offer_on(found, chains) for found in chains_of(index, candidates, max_depth(chains))]


def _offer_on(found: list[tuple[Id, BlobLocation]] | None, chains: bool) -> Offer | None:
    """The offer a candidate makes, given its chain (of data blobs only)."""
    if found is None:
        return None
    if not chains:
        return Offer(found[-1][0], chain=tuple(found[-1:])) if len(found) <= 2 else None
    new = generation(*found[0]) + 1
    if new > MAX_GENERATION:
        return None
    target = new & (new - 1)
    for place, (blob, location) in enumerate(found):
        below = len(found) - 1 - place  # deltas under this version
        if below + 1 <= MAX_DEPTH and (below == 0 or generation(blob, location) <= target):
            return Offer(blob, new, tuple(found[place:]))
    return None


def offer_against(index: BlobIndex, base: bytes, chains: bool) -> Offer | None:
    """`base` itself offered as a base (copy keeps a delta against the same base it had),
    when a delta against it stays within the repository's chain depth."""
    found = chain(index, base, max_depth(chains) - 1)
    if found is None or found[0][1].type is not BlobType.DATA:
        return None
    new = min(generation(*found[0]) + 1, MAX_GENERATION) if chains else 0
    return Offer(Id(bytes(base)), new, tuple(found))


def sound_bases(columns: IndexColumns, usable_packs: set[Id], limit: int) -> np.ndarray:
    """For each delta of the index (`columns.delta_bases` order), whether its base reaches a
    whole data copy in `usable_packs` within `limit` more deltas: `depth` for every delta at
    once, a level of every chain per numpy pass. A base is found by its key alone; where a key
    stands for several ids this says False, and `ChainDepths` decides blob by blob."""
    import numpy as np  # with the index: not for commands that never load one

    keys = columns.keys
    if not len(keys):
        return np.zeros(0, dtype=bool)
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])  # each key's first entry
    group = np.cumsum(np.r_[False, keys[1:] != keys[:-1]])  # each entry's key, numbered
    several = np.zeros(len(starts), dtype=bool)  # keys that stand for more than one id
    same_key = np.flatnonzero(keys[1:] == keys[:-1]) + 1
    differs = (columns.rests[same_key] != columns.rests[same_key - 1]).any(axis=1)
    several[group[same_key[differs]]] = True
    numbers = [n for n, pack in enumerate(columns.pack_ids) if pack in usable_packs]
    usable = np.isin(columns.pack, np.array(numbers, dtype=np.uint32)) & (columns.type == int(BlobType.DATA))
    is_delta = columns.is_delta
    far = np.int64(MAX_DEPTH + 2)
    depth = np.where(usable & ~is_delta, 0, far)
    deltas_rows = np.flatnonzero(is_delta)
    base_keys = columns.delta_bases
    base_group = np.minimum(np.searchsorted(keys[starts], base_keys), len(starts) - 1)
    known = (keys[starts][base_group] == base_keys) & ~several[base_group]
    climbing = usable[deltas_rows] & known
    for _ in range(MAX_DEPTH):
        best = np.minimum.reduceat(depth, starts)
        depth[deltas_rows[climbing]] = best[base_group[climbing]] + 1
    best = np.minimum.reduceat(depth, starts)
    return known & (best[base_group] <= limit)


class ChainDepths:
    """`depth` for many blobs, each blob's chain walked once (check and repair ask about every
    delta of a repository)."""

    def __init__(self, index: BlobIndex, usable: Callable[[BlobLocation], bool] = lambda _: True) -> None:
        self._index = index
        self._usable = usable
        self._known: dict[bytes, int | None] = {}
        self._walking: set[bytes] = set()

    def __call__(self, blob_id: bytes, limit: int = MAX_DEPTH) -> int | None:
        """How many deltas deep the shallowest usable chain of this data blob is, if at most
        `limit`; else None."""
        found = self._depth(bytes(blob_id), MAX_DEPTH)
        return found if found is not None and found <= limit else None

    def _depth(self, blob: bytes, budget: int) -> int | None:
        if blob in self._known:
            known = self._known[blob]
            return known if known is not None and known <= budget else None
        if blob in self._walking:
            return None  # a circle never gives a shorter chain
        self._walking.add(blob)
        try:
            best: int | None = None
            for copy in self._index.lookup_all(blob):
                if copy.type is not BlobType.DATA or not self._usable(copy):
                    continue
                if not copy.is_delta:
                    best = 0
                    break
                if budget < 1:
                    continue
                for base in base_candidates(self._index, copy):
                    below = self._depth(bytes(base), budget - 1)
                    if below is not None and (best is None or below + 1 < best):
                        best = below + 1
        finally:
            self._walking.discard(blob)
        if best is not None or budget == MAX_DEPTH:
            self._known[blob] = best
        return best
