"""The one blob reader: the only code that turns blob ids into plaintext.

Reading a blob is: find its copies in the index, read its bytes from a pack, decrypt,
decompress, rebuild a delta from its base, check the plaintext against the id, and try another
copy when one is damaged. Everything that reads blobs (restore, dump, check, copy, prune's
repacking, the tree loader) comes here, so each of those steps exists once.

Two ways in:

- `load` reads one blob and raises on damage (trees, chunk lists, single reads).
- `read` reads many: it plans each window of requests by pack, merges ranges that lie close
  together in one pack into one backend read, fetches the ranges in parallel
  (`connections` at once), decrypts and decompresses on the same worker threads (the native
  libraries release the GIL), rebuilds deltas once their bases are in (a base in the same
  window is fetched with it; others come from a bounded cache or are read on their own; a
  chain of deltas no other request needs is rebuilt in one call into zstd), and
  reports damage as values (`BlobRead.error`), so a restore can go on with every other file.
  The next window is planned and fetched while the current one is consumed.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from snapstore import compression
from snapstore.backend.base import Backend, FileType, Handle
from snapstore.crypto.aead import Kind, Opener
from snapstore.crypto.idhash import blob_id as keyed_hash
from snapstore.errors import IdMismatch, IntegrityError, ObjectNotFound, SnapstoreError
from snapstore.ids import Id
from snapstore.index import deltas
from snapstore.index.deltas import Offer
from snapstore.lru import WeightedLru
from snapstore.pack import BlobType
from snapstore.repository.read_plan import (
    BaseCache,
    LoneChain,
    PendingDelta,
    Range,
    Request,
    cost,
    delta_levels,
    lone_chains,
    only_trees,
    plan_ranges,
    stretches,
)

if TYPE_CHECKING:
    from snapstore.index.index import BlobIndex, BlobLocation

BLOB_KIND = {BlobType.DATA: Kind.DATA_BLOB, BlobType.TREE: Kind.TREE_BLOB}
#: Stored bytes planned in one window; two windows are in memory at most. A window takes the
#: rest of a pack it has begun, up to twice this: a pack's blobs are read together.
WINDOW_BYTES = 32 * 1024 * 1024
#: Requests in one window, whatever their size.
WINDOW_BLOBS = 4096
#: Distinct requests `read_each` looks up before it cuts them into windows, pack by pack: a
#: pack's blobs among them are read in one window (as many as a restore batch holds).
PLAN_BLOBS = 16384
#: Windows `read_each` reads at once: one's last ranges and deltas overlap the next's reads.
_WINDOWS_AHEAD = 2
_TREE_CACHE_ENTRIES = 4096
#: Requests looked up in the index at once.
_LOOKUP_GROUP = 256
#: Blobs one worker decodes in a row (a range's blobs are spread over the workers).
_DECODE_GROUP = 16
#: Plaintext of recently read delta bases: consecutive deltas often share one.
_BASE_CACHE_BYTES = 64 * 1024 * 1024

_T = TypeVar("_T")


@dataclass(frozen=True)
class BlobRead:
    """One blob's plaintext, or why it could not be read (every copy was tried)."""

    type: BlobType
    id: Id
    data: bytes | None = None
    error: SnapstoreError | None = None


@dataclass
class _Window:
    """Requests read together: in order (repeats included), and each distinct one's location."""

    requests: list[Request] = field(default_factory=list)
    where: dict[tuple[BlobType, bytes], BlobLocation | None] = field(default_factory=dict)


class _Pending:
    """The requests not planned yet, with room to put back those a window did not take."""

    def __init__(self, requests: Iterable[Request]) -> None:
        self._rest = iter(requests)
        self._back: deque[Request] = deque()

    def take(self, count: int) -> list[Request]:
        taken = [self._back.popleft() for _ in range(min(count, len(self._back)))]
        taken.extend(itertools.islice(self._rest, count - len(taken)))
        return taken

    def put_back(self, requests: list[Request]) -> None:
        self._back.extendleft(reversed(requests))


class BlobReader:
    """Reads blobs for one repository. `backend` and `index` are getters: the repository may
    put a cache in front of its backend, and prune replaces the index."""

    def __init__(
        self,
        backend: Callable[[], Backend],
        index: Callable[[], BlobIndex],
        opener: Opener,
        id_key: bytes,
        connections: Callable[[], int],
        max_depth: Callable[[], int] = lambda: deltas.MAX_DEPTH,
    ) -> None:
        self._backend = backend
        self._max_depth = max_depth
        self._index = index
        self._opener = opener
        self._id_key = id_key
        self._connections = connections
        self._trees: WeightedLru[bytes, bytes] = WeightedLru(_TREE_CACHE_ENTRIES, lambda _: 1)  # by entries
        self._bases = BaseCache(_BASE_CACHE_BYTES)
        self._pools_lock = threading.Lock()
        self._pools: tuple[ThreadPoolExecutor, ThreadPoolExecutor, ThreadPoolExecutor] | None = None

    # -- one blob -------------------------------------------------------------------------
    def load(self, blob_type: BlobType, blob_id: bytes, *, allow_delta: bool = True) -> bytes:
        """One blob's plaintext; tries every copy; raises the first copy's error if none reads."""
        return self._load(blob_type, blob_id, self._max_depth() if allow_delta else 0)[0]

    def _load(self, blob_type: BlobType, blob_id: bytes, levels: int, one_call: bool = True) -> tuple[bytes, int]:
        """`load`, where a copy may be a chain of at most `levels` deltas; and how deep the
        chain read was. `one_call`: a delta is first tried as a whole chain in one call into
        zstd; once that failed (a damaged chain), the level-by-level read below goes on
        without trying again at every level."""
        key = bytes(blob_id)
        if blob_type is BlobType.TREE:
            cached = self._trees.get(key)
            if cached is not None:
                return cached, 0
        locations = self._index().lookup_all(blob_id)
        if not locations:
            raise ObjectNotFound(f"blob {key.hex()} is not in the index")
        if one_call and levels and blob_type is BlobType.DATA and locations[0].is_delta:
            chained = self._load_chain(Id(key), levels)
            if chained is not None:
                return chained
        error: SnapstoreError | None = None
        for location in locations:
            try:
                raw = self._backend().load(self._handle(location), location.offset, location.length)
                data, depth = self._decode(
                    blob_type, Id(key), raw, location.plain_length, location.base_key or None, True, None, levels
                )
                break
            except SnapstoreError as exc:
                error = error or _in_pack(exc, key, location)
        else:
            assert error is not None
            raise error
        if blob_type is BlobType.TREE:
            self._trees.put(key, data)
        return data, depth

    def _load_chain(self, blob_id: Id, levels: int) -> tuple[bytes, int] | None:
        """A delta rebuilt in one call into zstd along the chain the index gives
        (`_rebuild_chain`); None when that does not work out."""
        found = deltas.chain(self._index(), blob_id, levels)
        return self._rebuild_chain(found, levels) if found is not None and len(found) > 1 else None

    def _rebuild_chain(self, chain: Sequence[tuple[Id, BlobLocation]], levels: int) -> tuple[bytes, int] | None:
        """The plaintext of `chain[0]`, a blob resting on the rest of `chain` down to a whole
        blob (`deltas.chain`), and how deep it was rebuilt from: in one call into zstd
        (`compression.rebuild_chain`) from the nearest base the cache holds, or the whole
        blob at the bottom. The blobs below are neither kept nor checked on their own: each
        envelope is authenticated and names the next as its base, and the result is checked
        against its id. None when anything is amiss: the level-by-level read then finds out
        which blob is to blame and says so."""
        cut, bottom = len(chain) - 1, None
        for place in range(1, len(chain)):
            bottom = self._bases.get(bytes(chain[place][0]), levels - place)
            if bottom is not None:
                cut = place
                break
        below = bottom[1] if bottom is not None else 0
        if cut + below > levels:
            return None
        try:
            fetched = [(bytes(blob), self._fetch(location), location) for blob, location in chain[:cut]]
            frames = self._delta_frames(fetched, bytes(chain[cut][0]))
            if bottom is not None:
                data = compression.rebuild_on(bottom[0], frames)
            else:
                root = chain[-1][1]
                data = compression.rebuild_chain(
                    self._opener.open(BLOB_KIND[BlobType.DATA], self._fetch(root)), root.plain_length, frames
                )
        except SnapstoreError:
            return None
        if keyed_hash(self._id_key, data) != chain[0][0]:
            return None
        return data, below + cut

    def _delta_frames(self, members: Sequence[tuple[bytes, bytes, BlobLocation]], bottom: bytes) -> list[tuple[bytes, int]]:
        """The frames of a chain's deltas, given top first as (id, envelope, location), from
        the one resting on `bottom` upwards: each envelope opened, and seen to name the blob
        under it as its base (the whole id, not the index's key of it)."""
        frames = []
        below = bottom
        for blob, envelope, location in reversed(members):
            framed = self._opener.open(BLOB_KIND[BlobType.DATA], envelope)
            if compression.delta_base(framed) != below:
                raise IntegrityError(f"delta blob {blob.hex()} names another base than its chain")
            frames.append((framed, location.plain_length))
            below = blob
        return frames

    def _fetch(self, location: BlobLocation) -> bytes:
        return self._backend().load(self._handle(location), location.offset, location.length)

    def decode(
        self,
        blob_type: BlobType,
        wanted: Id,
        envelope: bytes | memoryview,
        plain_length: int | None,
        *,
        base_key: int | None = None,
        allow_delta: bool = True,
        base: bytes | None = None,
        levels: int | None = None,
    ) -> bytes:
        """Decrypts and decompresses a blob's envelope and checks it against its id.

        A delta is rebuilt from its base (given, cached or read, itself rebuilt when it is a
        delta, at most `levels` deltas deep, by default as deep as the repository allows:
        SPEC.md section 6). `base_key`, when the index
        gave one, must agree with the base id inside the authenticated envelope.
        """
        return self._decode(blob_type, wanted, envelope, plain_length, base_key, allow_delta, base, levels)[0]

    def _decode(
        self,
        blob_type: BlobType,
        wanted: Id,
        envelope: bytes | memoryview,
        plain_length: int | None,
        base_key: int | None,
        allow_delta: bool,
        base: bytes | None,
        levels: int | None,
    ) -> tuple[bytes, int]:
        """`decode`, and how many deltas deep the chain was (a given base counts as whole)."""
        depth = 0
        framed = self._opener.open(BLOB_KIND[blob_type], envelope)
        base_id = compression.delta_base(framed)
        if base_id is not None:
            if not allow_delta or not deltas.may_be_delta(blob_type):
                raise IntegrityError(f"blob {wanted.hex()} is a delta where only a whole blob may be")
            levels = self._max_depth() if levels is None else levels
            if levels < 1:
                raise IntegrityError(
                    f"delta blob {wanted.hex()} is deeper in a chain than the {self._max_depth()} "
                    "deltas this repository allows"
                )
            if base_key is not None and deltas.base_key(base_id) != base_key:
                raise IntegrityError(f"delta blob {wanted.hex()} names another base than its index entry")
            below = 0
            if base is None:
                base, below = self._base(Id(base_id), wanted, levels - 1)
            depth = below + 1
        data = compression.decompress(framed, plain_length, base)
        if keyed_hash(self._id_key, data) != wanted:
            raise IdMismatch(f"blob {wanted.hex()} does not match its id")
        return data, depth

    def base(self, base_id: Id, for_delta: Id, levels: int | None = None) -> bytes:
        """A delta base's plaintext, rebuilt from at most `levels` deltas (by default one fewer
        than the repository allows), cached: bases are read again and again."""
        levels = self._max_depth() - 1 if levels is None else levels
        return self._base(base_id, for_delta, levels)[0]

    def _base(self, base_id: Id, for_delta: Id, levels: int) -> tuple[bytes, int]:
        key = bytes(base_id)
        cached = self._bases.get(key, levels)
        if cached is not None:
            return cached
        try:
            data, depth = self._load(BlobType.DATA, base_id, levels, one_call=False)
        except ObjectNotFound as exc:
            where = "is not in the index" if not self._index().lookup_all(base_id) else f"cannot be read: {exc}"
            raise ObjectNotFound(f"base blob {key.hex()} of delta blob {for_delta.hex()} {where}") from None
        except SnapstoreError as exc:
            raise type(exc)(f"base blob {key.hex()} of delta blob {for_delta.hex()}: {exc}") from None
        self._bases.put(key, data, depth)
        return data, depth

    def offered_base(self, offer: Offer) -> bytes | None:
        """`base_plaintext` of an offered base, read along the chain the offer found (no
        index look-up), else as any base is read."""
        levels = self._max_depth() - 1
        cached = self._bases.get(bytes(offer.base), levels)
        if cached is not None:
            return cached[0]
        if offer.chain and offer.chain[0][0] == offer.base and offer.chain[0][1].type is BlobType.DATA:
            found = self._rebuild_chain(offer.chain, levels)
            if found is not None:
                self._bases.put(bytes(offer.base), *found)
                return found[0]
        return self.base_plaintext(offer.base)

    def base_plaintext(self, blob_id: Id) -> bytes | None:
        """A data blob's plaintext for a new delta to be taken against, else None (unknown, a
        tree, or damaged: check reports the damage)."""
        location = self._index().lookup(blob_id)
        if location is None or location.type is not BlobType.DATA:
            return None
        try:
            return self.base(blob_id, blob_id)
        except SnapstoreError:
            return None

    def prefetch_trees(self, tree_ids: Iterable[Id]) -> None:
        """Reads these trees into the tree cache in one planned read (a directory's
        subdirectories sit side by side in a tree pack), so walking them costs no request
        each. Damaged ones are left for `load` to report."""
        todo = [(BlobType.TREE, t) for t in dict.fromkeys(tree_ids) if self._trees.get(bytes(t)) is None]
        if len(todo) > 1:
            for _ in self.read(todo[: _TREE_CACHE_ENTRIES // 2]):
                pass

    # -- many blobs -----------------------------------------------------------------------
    def read(
        self,
        requests: Iterable[Request],
        *,
        window_bytes: int = WINDOW_BYTES,
        window_blobs: int = WINDOW_BLOBS,
    ) -> Iterator[BlobRead]:
        """One `BlobRead` per request, in request order (a blob asked for twice in one window
        is fetched once).

        Requests are consumed lazily, a window at a time, with the next window fetched while
        the current one is yielded: memory stays within about two windows whatever is read.
        A window that has begun a pack takes the requests of that pack that follow it (up to
        twice `window_bytes`), so reading in order reads each stretch of a pack once.
        """
        pending = _Pending(requests)
        fetchers, planner, _ = self._threads()
        window = self._next_window(pending, window_bytes, window_blobs)
        rest = pending.take(1)
        if not rest:  # one window (a directory's subtrees): read here, no planner
            if window.requests:
                yield from self._read_window(window, fetchers)
            return
        pending.put_back(rest)
        # The next window is read while the current one is yielded: as fast as more, and
        # lighter (`read`'s planner is one thread: one window is read at a time).
        ahead: deque[Future[list[BlobRead]]] = deque([planner.submit(self._read_window, window, fetchers)])
        try:
            while True:
                while len(ahead) < 2:
                    window = self._next_window(pending, window_bytes, window_blobs)
                    if not window.requests:
                        break
                    ahead.append(planner.submit(self._read_window, window, fetchers))
                if not ahead:
                    return
                yield from ahead.popleft().result()
        finally:
            for future in ahead:
                future.cancel()
            wait_for(ahead)  # none of this read's windows is left running

    def _threads(self) -> tuple[ThreadPoolExecutor, ThreadPoolExecutor, ThreadPoolExecutor]:
        """The reader's threads, started at its first read and kept: those that fetch and
        decode, `read`'s planner and `read_each`'s two. A walk reads each directory's
        subtrees at once; starting seven threads for each such read cost a restore of 1,500
        directories 0.9 s. A window's task waits only for fetches and decodes, which wait
        for nothing, so reads from several threads at once share them without deadlock."""
        with self._pools_lock:
            if self._pools is None:
                self._pools = (
                    ThreadPoolExecutor(self._workers(), thread_name_prefix="snapstore-read"),
                    ThreadPoolExecutor(1, thread_name_prefix="snapstore-plan"),
                    ThreadPoolExecutor(_WINDOWS_AHEAD, thread_name_prefix="snapstore-plan"),
                )
            return self._pools

    def _workers(self) -> int:
        """Threads that fetch and decode: the connections, and at least one per core."""
        return max(self._connections(), os.cpu_count() or 1, 2)

    def read_each(
        self,
        requests: Iterable[Request],
        consume: Callable[[BlobRead], None],
        *,
        window_bytes: int = WINDOW_BYTES,
        window_blobs: int = WINDOW_BLOBS,
    ) -> None:
        """Hands each distinct requested blob to `consume` once, on a worker thread, as soon as
        it is in, in no particular order; returns when all were consumed. For restore: writing
        overlaps fetching and decrypting, and no plaintext waits for its turn in memory.
        `consume` must be thread-safe; an exception it raises ends the read.

        Up to `PLAN_BLOBS` requests are looked up at once and read pack by pack, the packs in
        the order the requests first name them: each window holds whole packs (a pack of more
        than twice `window_bytes` or `window_blobs` is cut in stretches), so a pack is read in
        one request, not once per window it would otherwise straddle."""
        pending = _Pending(requests)
        fetchers, _, planner = self._threads()
        # Two windows at once: one's last ranges and deltas overlap the next one's reads.
        running: deque[Future[list[BlobRead]]] = deque()
        try:
            for window in self._pack_windows(pending, window_bytes, window_blobs):
                running.append(planner.submit(self._read_window, window, fetchers, consume))
                if len(running) == _WINDOWS_AHEAD:
                    running.popleft().result()
            while running:
                running.popleft().result()
        finally:
            wait_for(running)  # `consume` is never called once this returns or raises

    def _pack_windows(self, pending: _Pending, max_bytes: int, max_blobs: int) -> Iterator[_Window]:
        """`read_each`'s windows: a plan of up to `PLAN_BLOBS` distinct requests at a time,
        grouped by pack, cut between packs once a window holds `max_bytes` or `max_blobs`.
        Requests the index does not know go in the plan's first window (to be reported)."""
        while True:
            plan = self._next_window(pending, 1 << 62, PLAN_BLOBS)
            if not plan.where:
                return
            by_pack: dict[Id | None, list[tuple[tuple[BlobType, bytes], BlobLocation | None]]] = {}
            for key, location in plan.where.items():
                by_pack.setdefault(location.pack_id if location is not None else None, []).append((key, location))
            window, size = _Window(), 0
            for stretch in stretches(by_pack, 2 * max_bytes, max_blobs):
                weight = sum(cost(location) for _, location in stretch)
                if window.where and (size + weight > max_bytes or len(window.where) + len(stretch) > max_blobs):
                    yield window
                    window, size = _Window(), 0
                for key, location in stretch:
                    window.where[key] = location
                    window.requests.append((key[0], Id(key[1])))
                size += weight
            if window.where:
                yield window

    def _next_window(self, pending: _Pending, max_bytes: int, max_blobs: int) -> _Window:
        """The next requests, up to about `max_bytes` (see `_cost`) or `max_blobs` distinct
        blobs, each with where the index has it; looked up a group at a time. Once full, the
        window still takes the requests that follow in packs it has begun (up to twice
        `max_bytes`); the others are put back for the next window."""
        window = _Window()
        size = 0
        packs: set[Id] = set()
        index = self._index()
        while len(window.where) < max_blobs:
            group = pending.take(min(_LOOKUP_GROUP, max_blobs - len(window.where)))
            if not group:
                break
            fresh = list(dict.fromkeys((t, bytes(i)) for t, i in group if (t, bytes(i)) not in window.where))
            found = dict(zip(fresh, index.lookup_run(b"".join(k[1] for k in fresh)), strict=True))
            for n, request in enumerate(group):
                key = (request[0], bytes(request[1]))
                if key not in window.where:
                    location = found[key]
                    if size >= max_bytes and (
                        size >= 2 * max_bytes or location is None or location.pack_id not in packs
                    ):
                        pending.put_back(group[n:])
                        return window
                    window.where[key] = location
                    if location is not None:
                        size += cost(location)
                        packs.add(location.pack_id)
                window.requests.append(request)
        return window

    def _read_window(
        self,
        window: _Window,
        pool: ThreadPoolExecutor,
        consume: Callable[[BlobRead], None] | None = None,
    ) -> list[BlobRead]:
        """Reads one window. Without `consume`, returns one result per request, in order; with
        it, hands each distinct blob to `consume` on a worker thread as soon as it is in (its
        plaintext is then not kept) and returns nothing."""
        index = self._index()
        requested = window.where
        results: dict[tuple[BlobType, bytes], BlobRead] = {}
        lock = threading.Lock()

        def emit(key: tuple[BlobType, bytes], read: BlobRead) -> None:
            if read.data is not None and key[0] is BlobType.TREE:
                self._trees.put(key[1], read.data)
            if consume is None:
                with lock:
                    results[key] = read
                return
            with lock:
                if key in results:
                    return
                results[key] = _CONSUMED
            consume(read)

        located: list[tuple[Request, BlobLocation]] = []
        max_depth = self._max_depth()
        for key, location in requested.items():
            blob_type, blob_id = key[0], Id(key[1])
            if blob_type is BlobType.TREE:
                cached = self._trees.get(key[1])
            else:  # read as a base of an earlier window's delta: any depth is the same bytes
                base = self._bases.get(key[1], max_depth)
                cached = base[0] if base is not None else None
            if cached is not None:
                emit(key, BlobRead(blob_type, blob_id, cached))
            elif location is None:
                unknown = ObjectNotFound(f"blob {blob_id.hex()} is not in the index")
                emit(key, BlobRead(blob_type, blob_id, error=unknown))
            else:
                located.append(((blob_type, blob_id), location))
        # Bases the deltas need that are not cached, and theirs in turn down to whole blobs:
        # fetched in the same plan.
        wanted = {(t, bytes(i)) for (t, i), _ in located}
        candidates: dict[int, list[Id]] = {}
        bases: set[bytes] = set()
        level = [loc for _, loc in located]
        for _ in range(max_depth):
            found = deltas.bases_of(index, level)
            candidates.update(found)
            fresh = {bytes(b) for ids in found.values() for b in ids} - bases
            bases |= fresh
            to_fetch = sorted(
                b for b in fresh if (BlobType.DATA, b) not in wanted and self._bases.get(b, max_depth - 1) is None
            )
            level = []
            for base_id, first in zip(to_fetch, index.lookup_run(b"".join(to_fetch)), strict=True):
                if first is None or first.type is not BlobType.DATA:
                    continue
                whole = first  # should this copy fail, the blob is read on its own below
                located.append(((BlobType.DATA, Id(base_id)), whole))
                wanted.add((BlobType.DATA, base_id))
                if whole.is_delta:
                    level.append(whole)
            if not level:
                break
        fetched: dict[bytes, tuple[bytes, int]] = {}  # this window's bases, and their depths
        envelopes: dict[tuple[BlobType, bytes], tuple[bytes, BlobLocation]] = {}  # deltas
        unopened: dict[bytes, tuple[bytes, BlobLocation]] = {}  # whole bases nobody asked for

        def decode_some(view: memoryview, start: int, blobs: list[tuple[Request, BlobLocation]]) -> None:
            for (blob_type, blob_id), loc in blobs:
                key = (blob_type, bytes(blob_id))
                envelope = view[loc.offset - start : loc.offset + loc.length - start]
                if loc.is_delta:
                    with lock:
                        envelopes[key] = (bytes(envelope), loc)
                    continue
                if key not in requested and blob_type is BlobType.DATA and key[1] in bases:
                    with lock:  # a chain's root, maybe rebuilt with it in one call
                        unopened[key[1]] = (bytes(envelope), loc)
                    continue
                try:
                    data = self.decode(blob_type, blob_id, envelope, loc.plain_length, allow_delta=False)
                except SnapstoreError:
                    continue
                if key[1] in bases and blob_type is BlobType.DATA:
                    with lock:
                        fetched[key[1]] = (data, 0)
                if key in requested:
                    emit(key, BlobRead(blob_type, blob_id, data))

        def fetch(piece: Range, alone: bool = False) -> list[Future[None]]:
            """Reads one range; its blobs are decoded by several workers (a range may hold
            hundreds), which this does not wait for; or, `alone` (the window's only range)
            and no more than one group, right here."""
            try:
                raw = self._backend().load(
                    Handle(FileType.PACK, piece.pack_id.hex(), metadata=only_trees(piece)),
                    piece.start,
                    piece.end - piece.start,
                )
            except SnapstoreError:
                return []  # each blob of the range is tried again on its own below
            view = memoryview(raw)
            if alone and len(piece.blobs) <= _DECODE_GROUP:
                decode_some(view, piece.start, piece.blobs)
                return []
            return [
                pool.submit(decode_some, view, piece.start, piece.blobs[i : i + _DECODE_GROUP])
                for i in range(0, len(piece.blobs), _DECODE_GROUP)
            ]

        pieces = plan_ranges(located)
        if len(pieces) == 1:  # a few trees, a small file: no hand-over between threads
            decoding = [fetch(pieces[0], alone=True)]
        else:
            decoding = _settle([pool.submit(fetch, piece) for piece in pieces])
        _settle([future for futures in decoding for future in futures])

        def rebuild(items: list[PendingDelta]) -> None:
            """Rebuilds deltas whose bases are in (an earlier level's); one that fails is
            read again on its own below, which says why."""
            for key, (envelope, loc) in items:
                ids = candidates.get(loc.base_key, ())
                found = (fetched.get(bytes(b)) or self._bases.get(bytes(b), max_depth - 1) for b in ids)
                base = next((b for b in found if b is not None), None)
                if base is None or base[1] >= max_depth:
                    continue
                try:
                    data = self.decode(key[0], Id(key[1]), envelope, loc.plain_length, base_key=loc.base_key, base=base[0])
                except SnapstoreError:
                    continue
                if key[1] in bases and key[0] is BlobType.DATA:
                    with lock:
                        fetched[key[1]] = (data, base[1] + 1)
                    self._bases.put(key[1], data, base[1] + 1)
                if key in requested:
                    emit(key, BlobRead(key[0], Id(key[1]), data))

        # Level by level: the deltas resting on whole or cached bases, then those resting on
        # them, and so on; each level spread over the workers a group at a time.
        def base_in(blob: bytes) -> bool:
            return blob in fetched or self._bases.get(blob, max_depth - 1) is not None

        def rebuild_lone_chains(items: list[LoneChain]) -> None:
            """Rebuilds requested deltas whose chains nothing else here needs, each in one
            call into zstd; one that fails is read again on its own below."""
            for members, bottom in items:
                key = members[0][0]
                try:
                    frames = self._delta_frames([(k[1], envelope, loc) for k, envelope, loc in members], bottom.blob_id)
                    if bottom.envelope is not None and bottom.location is not None:
                        root = self._opener.open(BLOB_KIND[BlobType.DATA], bottom.envelope)
                        data = compression.rebuild_chain(root, bottom.location.plain_length, frames)
                    else:
                        opened = fetched.get(bottom.blob_id)
                        base = bottom.plaintext if bottom.plaintext is not None else opened[0] if opened else None
                        if base is None:
                            continue  # its root did not open: read again on its own below
                        data = compression.rebuild_on(base, frames)
                except SnapstoreError:
                    continue
                if keyed_hash(self._id_key, data) == key[1]:
                    emit(key, BlobRead(key[0], Id(key[1]), data))

        def open_bases(items: list[tuple[bytes, tuple[bytes, BlobLocation]]]) -> None:
            for blob_id, (envelope, loc) in items:
                try:
                    data = self.decode(BlobType.DATA, Id(blob_id), envelope, loc.plain_length, allow_delta=False)
                except SnapstoreError:
                    continue
                with lock:
                    fetched[blob_id] = (data, 0)

        chains, by_level, roots = lone_chains(
            envelopes, candidates, requested, fetched, self._bases, max_depth, unopened
        )
        now = [chain for chain in chains if not chain[1].opened_first]
        later = [chain for chain in chains if chain[1].opened_first]
        chained = [pool.submit(rebuild_lone_chains, now[i : i + _DECODE_GROUP]) for i in range(0, len(now), _DECODE_GROUP)]
        others = [(blob_id, item) for blob_id, item in unopened.items() if blob_id not in roots]
        _settle([pool.submit(open_bases, others[i : i + _DECODE_GROUP]) for i in range(0, len(others), _DECODE_GROUP)])
        chained += [pool.submit(rebuild_lone_chains, later[i : i + _DECODE_GROUP]) for i in range(0, len(later), _DECODE_GROUP)]
        for base_key, (base_data, _) in fetched.items():  # later windows' deltas often share them
            self._bases.put(base_key, base_data, 0)
        for deltas_now in delta_levels(by_level, candidates, base_in, max_depth):
            groups = [deltas_now[i : i + _DECODE_GROUP] for i in range(0, len(deltas_now), _DECODE_GROUP)]
            _settle([pool.submit(rebuild, group) for group in groups])
        _settle(chained)

        for key in requested:
            if key not in results:  # the planned copy failed: try every copy on its own
                try:  # the chain was tried in one call here already
                    data = self._load(key[0], key[1], max_depth, one_call=False)[0]
                    emit(key, BlobRead(key[0], Id(key[1]), data))
                except SnapstoreError as exc:
                    emit(key, BlobRead(key[0], Id(key[1]), error=exc))
        if consume is not None:
            return []
        return [results[(t, bytes(i))] for t, i in window.requests]

    @staticmethod
    def _handle(location: BlobLocation) -> Handle:
        # trees are marked as metadata: a caching backend keeps them (backend/cache.py)
        return Handle(FileType.PACK, location.pack_id.hex(), metadata=location.type is BlobType.TREE)


_CONSUMED = BlobRead(BlobType.DATA, Id(bytes(32)))  # marks a blob handed to `consume`
def _settle(futures: list[Future[_T]]) -> list[_T]:
    """Every future's result, in order, once all are done; the first failure is raised only
    then, so no task of a failed window is left running (writing into closed files)."""
    wait_for(futures)
    return [future.result() for future in futures]


def _in_pack(exc: SnapstoreError, blob_id: bytes, location: BlobLocation) -> SnapstoreError:
    """The same error, naming the blob and the pack its damaged copy is in."""
    text = str(exc)
    pack_name = location.pack_id.hex()[:16]
    if pack_name not in text:
        text = f"{text} (in pack {pack_name})"
    if bytes(blob_id).hex() not in text:
        text = f"blob {bytes(blob_id).hex()}: {text}"
    if isinstance(exc, ObjectNotFound) and "base blob" in str(exc):
        return exc  # already names the delta and its base
    return type(exc)(text)
