"""How the blob reader plans a window: which pack ranges to read (near ones merged), how
much each blob weighs, and in what order a window's deltas are rebuilt (chains nobody else
needs in one call, the rest level by level); and the cache of delta bases it keeps. Pure
functions and one small cache, apart from the reading itself (blob_reader.py)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from snapstore.ids import Id
from snapstore.pack import BlobType

if TYPE_CHECKING:
    from snapstore.index.index import BlobLocation

#: Two ranges of one pack closer than this are read as one (the gap is read and dropped).
COALESCE_GAP = 256 * 1024
#: One backend read covers at most this many bytes: twice the default pack size, so that a
#: pack of it (which may pass 16 MiB by its last blob) is one read, not two.
MAX_READ = 32 * 1024 * 1024

Request = tuple[BlobType, Id]


def cost(location: BlobLocation | None) -> int:
    """What a blob weighs in a window: its stored bytes and its plaintext, twice for a delta
    (a lone chain is rebuilt in one call into zstd from envelopes, its levels' plaintexts only
    inside zstd, but a base other deltas share is opened and kept). Weighed four times, as
    when every level was opened, the windows of a month's dump were twice as many and 7%
    slower, for 25 MB less peak memory."""
    if location is None:
        return 0
    return location.length + location.plain_length * (2 if location.is_delta else 1)


@dataclass
class Range:
    """One backend read: a stretch of one pack covering several blobs."""

    pack_id: Id
    start: int
    end: int
    blobs: list[tuple[Request, BlobLocation]] = field(default_factory=list)


class BaseCache:
    """Plaintexts of recently read delta bases, each with how many deltas deep it was rebuilt
    from (a cached base serves only a delta that may rest on a chain that deep), bounded by
    bytes; thread-safe. Not the plain LRU of snapstore/lru.py: a copy rebuilt from a shorter
    chain replaces a deeper one, never the other way round."""

    def __init__(self, max_bytes: int) -> None:
        self._items: OrderedDict[bytes, tuple[bytes, int]] = OrderedDict()
        self._bytes = 0
        self._max_bytes = max_bytes
        self._lock = threading.Lock()

    def get(self, blob_id: bytes, levels: int) -> tuple[bytes, int] | None:
        with self._lock:
            found = self._items.get(blob_id)
            if found is None or found[1] > levels:
                return None
            self._items.move_to_end(blob_id)
            return found

    def put(self, blob_id: bytes, data: bytes, depth: int) -> None:
        with self._lock:
            known = self._items.get(blob_id)
            if known is not None:
                if known[1] <= depth:
                    return
                self._bytes -= len(known[0])
            self._items[blob_id] = (data, depth)
            self._bytes += len(data)
            while self._items and self._bytes > self._max_bytes:
                _, (dropped, _) = self._items.popitem(last=False)
                self._bytes -= len(dropped)


def plan_ranges(
    blobs: Iterable[tuple[Request, BlobLocation]],
    gap: int = COALESCE_GAP,
    max_read: int = MAX_READ,
) -> list[Range]:
    """Groups blob locations by pack and merges those within `gap` of each other into reads
    of at most `max_read` bytes (a single blob longer than that is one read of its own)."""
    by_pack: dict[Id, list[tuple[Request, BlobLocation]]] = {}
    for request, location in blobs:
        by_pack.setdefault(location.pack_id, []).append((request, location))
    ranges: list[Range] = []
    for pack_id in sorted(by_pack):
        current: Range | None = None
        for request, loc in sorted(by_pack[pack_id], key=lambda b: b[1].offset):
            end = loc.offset + loc.length
            if (
                current is not None
                and loc.offset - current.end <= gap
                and max(end, current.end) - current.start <= max_read
            ):
                current.end = max(current.end, end)
            else:
                current = Range(pack_id, loc.offset, end)
                ranges.append(current)
            current.blobs.append((request, loc))
    return ranges


#: A delta's key and its envelope and location, waiting for its base.
PendingDelta = tuple[tuple[BlobType, bytes], tuple[bytes, "BlobLocation"]]


@dataclass(frozen=True)
class Bottom:
    """What the lowest delta of a lone chain rests on: a plaintext in hand; the envelope of a
    whole blob read for this chain alone, then decompressed in the chain's one call into zstd
    (neither kept, hashed on its own nor copied into a frame of raw blocks); or, with neither,
    a whole blob the window opens first because several chains rest on it."""

    blob_id: bytes
    plaintext: bytes | None = None
    envelope: bytes | None = None
    location: BlobLocation | None = None

    @property
    def opened_first(self) -> bool:
        """Neither in hand nor the chain's own: the window opens it before the chain."""
        return self.plaintext is None and self.envelope is None


#: A requested delta and the deltas below it, from the top down, and what the lowest rests on.
LoneChain = tuple[list[tuple[tuple[BlobType, bytes], bytes, "BlobLocation"]], Bottom]


def lone_chains(
    envelopes: dict[tuple[BlobType, bytes], tuple[bytes, BlobLocation]],
    candidates: dict[int, list[Id]],
    requested: Mapping[tuple[BlobType, bytes], object],
    fetched: Mapping[bytes, tuple[bytes, int]],
    cache: BaseCache,
    max_depth: int,
    unopened: Mapping[bytes, tuple[bytes, BlobLocation]] | None = None,
) -> tuple[list[LoneChain], dict[tuple[BlobType, bytes], tuple[bytes, BlobLocation]], set[bytes]]:
    """The requested deltas of a window that can be rebuilt each in one call: those whose
    chain, down to a plaintext in hand or a whole blob in `unopened` (read, not yet opened)
    that no other delta rests on, passes only through deltas that are neither requested nor
    needed by another delta (a restore's chunks rest on old versions nobody asks for).
    Returns them, the envelopes left for the level-by-level rebuild (the other requested
    deltas and what they rest on: a blob a window asks for that is also a base of another is
    rebuilt once, level by level), and the ids of the `unopened` blobs a chain takes as its
    own (the others are to be opened before the chains resting on them are rebuilt)."""
    unopened = unopened or {}
    uses: dict[bytes, int] = {}  # how many deltas of the window rest on each blob
    for (blob_type, _), (_, loc) in envelopes.items():
        if blob_type is BlobType.DATA:
            for base in candidates.get(loc.base_key, ()):
                uses[bytes(base)] = uses.get(bytes(base), 0) + 1
    chains: list[LoneChain] = []
    taken: set[tuple[BlobType, bytes]] = set()
    roots: set[bytes] = set()
    for key, (envelope, loc) in envelopes.items():
        if key[0] is not BlobType.DATA or key not in requested or uses.get(key[1]):
            continue
        members = [(key, envelope, loc)]
        while len(members) <= max_depth:
            ids = candidates.get(loc.base_key, ())
            if len(ids) != 1:
                break
            base_id = bytes(ids[0])
            whole = unopened.get(base_id)
            if whole is not None:
                if uses.get(base_id) == 1:
                    chains.append((members, Bottom(base_id, envelope=whole[0], location=whole[1])))
                    roots.add(base_id)
                else:
                    chains.append((members, Bottom(base_id)))
                taken.update(m[0] for m in members)
                break
            root = fetched.get(base_id) or cache.get(base_id, max_depth - len(members))
            if root is not None:
                if root[1] + len(members) <= max_depth:
                    chains.append((members, Bottom(base_id, plaintext=root[0])))
                    taken.update(m[0] for m in members)
                break
            below = envelopes.get((BlobType.DATA, base_id))
            if below is None or (BlobType.DATA, base_id) in requested or uses.get(base_id, 0) > 1:
                break
            members.append(((BlobType.DATA, base_id), *below))
            loc = below[1]
    return chains, {key: item for key, item in envelopes.items() if key not in taken}, roots


def delta_levels(
    envelopes: dict[tuple[BlobType, bytes], tuple[bytes, BlobLocation]],
    candidates: dict[int, list[Id]],
    base_in: Callable[[bytes], bool],
    max_depth: int,
) -> list[list[PendingDelta]]:
    """These deltas in the order they can be rebuilt: first those whose base is in (`base_in`),
    then those whose base is a delta of the level before, and so on, `max_depth` levels at
    most; deltas whose base is neither (missing, damaged, too deep, a circle) are left out."""
    data_deltas = {blob: item for item in envelopes.items() if (blob := item[0][1]) and item[0][0] is BlobType.DATA}
    level_of: dict[bytes, int | None] = {}

    def level(blob: bytes, item: PendingDelta, budget: int) -> int | None:
        if blob in level_of:
            return level_of[blob]
        level_of[blob] = None  # a circle gives no level
        found: int | None = None
        for base_id in candidates.get(item[1][1].base_key, ()):
            base = bytes(base_id)
            if base_in(base):
                found = 1
                break
            below = data_deltas.get(base)
            if below is not None and budget > 1:
                under = level(base, below, budget - 1)
                if under is not None and (found is None or under + 1 < found):
                    found = under + 1
        if found is None and budget < max_depth:
            del level_of[blob]  # a shorter budget's no: it may yet have a level of its own
        else:
            level_of[blob] = found
        return found

    levels: list[list[PendingDelta]] = [[] for _ in range(max_depth)]
    for item in envelopes.items():
        found = level(item[0][1], item, max_depth)
        if found is not None and found <= max_depth:
            levels[found - 1].append(item)
    return [items for items in levels if items]


def stretches(
    by_pack: dict[Id | None, list[tuple[tuple[BlobType, bytes], BlobLocation | None]]],
    max_bytes: int,
    max_blobs: int,
) -> Iterator[list[tuple[tuple[BlobType, bytes], BlobLocation | None]]]:
    """Each pack's blobs in offset order, whole, or in stretches of at most `max_bytes` (see
    `_cost`) and `max_blobs` when the pack's are more."""
    for pack_id, blobs in by_pack.items():
        if pack_id is not None:
            blobs.sort(key=lambda blob: blob[1].offset if blob[1] is not None else 0)
        stretch: list[tuple[tuple[BlobType, bytes], BlobLocation | None]] = []
        weight = 0
        for blob in blobs:
            if stretch and (weight + cost(blob[1]) > max_bytes or len(stretch) >= max_blobs):
                yield stretch
                stretch, weight = [], 0
            stretch.append(blob)
            weight += cost(blob[1])
        if stretch:
            yield stretch


def only_trees(piece: Range) -> bool:
    return all(loc.type is BlobType.TREE for _, loc in piece.blobs)
