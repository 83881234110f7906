"""Saving blobs: id, dedup, compress, encrypt in worker threads; packs upload in parallel.

The pipeline is bounded at every stage so memory stays constant whatever is backed up:
`submit` blocks while too many blobs are in flight, and a full pack waits for an upload
slot. The native libraries (BLAKE3, zstd, AES-GCM) release the GIL, so the workers overlap.

A blob given candidate bases is also tried as a delta against each (SPEC.md section 6) and
stored as the smallest delta when that is clearly smaller than its plain compressed form.

Ordering (SPEC.md section 11): a blob enters the in-memory index only after the pack holding
it has been stored, and the index files naming packs are written only after those packs.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from snapstore import compression, pack
from snapstore.backend.base import Backend, FileType, Handle
from snapstore.crypto.aead import Kind, Sealer
from snapstore.crypto.idhash import blob_id as _hash
from snapstore.crypto.idhash import object_id
from snapstore.ids import Id
from snapstore.index import deltas
from snapstore.index.deltas import Offer
from snapstore.pack import BlobType, PackBlob, PackEntry

if TYPE_CHECKING:
    from snapstore.index.index import BlobIndex


@dataclass(frozen=True)
class SavedBlob:
    id: Id
    plain_length: int
    stored_length: int  # 0 when the blob was already in the repository
    base: Id | None = None  # stored as a delta against this base blob

    @property
    def delta(self) -> bool:
        return self.base is not None

    @property
    def added(self) -> bool:
        return self.stored_length > 0


BLOB_KIND = {BlobType.DATA: Kind.DATA_BLOB, BlobType.TREE: Kind.TREE_BLOB}
PackCallback = Callable[[Id, list[PackEntry], int], None]
#: Returns an offered base's plaintext, or None when it cannot serve as a base.
BaseLoader = Callable[[Offer], bytes | None]
#: A delta is kept only below this fraction of the plain compressed blob (SPEC.md section 6).
DELTA_KEEP_RATIO = 0.8
#: A delta this small is good enough: the remaining candidates are not tried.
DELTA_GOOD_ENOUGH = 0.25
#: A first delta this small a share of the chunk's length is kept without the plain frame:
#: zstd alone would need a ratio over 12.8 to beat it by the keep rule, which dump data
#: rarely has (when it has, a slightly larger delta is kept: bytes, never correctness).
#: At 1/40, 18% of a month-old dump's deltas still paid for a plain compression (~300 us).
DELTA_TINY = 1 / 16


def store_pack(
    backend: Backend, sealer: Sealer, level: int, blobs: Sequence[PackBlob]
) -> tuple[Id, list[PackEntry], int]:
    """Assembles blobs into a pack and stores it whole.

    Returns the pack's id, its entries and its size. Nothing is indexed here: the caller decides
    when an index file names the pack (always after this returns).
    """
    data, entries = pack.assemble(
        blobs, lambda header: sealer.seal(Kind.PACK_HEADER, compression.compress(header, level))
    )
    pack_id = object_id(data)
    # a pack of trees is metadata: a cache may keep it whole, a cold storage class is not for it
    trees_only = all(b.type is BlobType.TREE for b in blobs)
    backend.save(Handle(FileType.PACK, pack_id.hex(), metadata=trees_only), data)
    return pack_id, entries, len(data)


class Packer:
    """Turns blobs into uploaded packs. One per repository writer session."""

    def __init__(
        self,
        backend: Backend,
        sealer: Sealer,
        id_key: bytes,
        index: BlobIndex,
        *,
        pack_size: int,
        compression_level: int,
        on_pack_stored: PackCallback,
        workers: int | None = None,
        uploads: int = 2,
        load_base: BaseLoader | None = None,
    ) -> None:
        self._backend = backend
        self._sealer = sealer
        self._id_key = id_key
        self._index = index
        self._pack_size = pack_size
        self._level = compression_level
        self._on_pack_stored = on_pack_stored
        self._load_base = load_base
        workers = workers or max(2, (os.cpu_count() or 2) + 1)
        self._workers = ThreadPoolExecutor(workers, thread_name_prefix="snapstore-blob")
        self._uploads = ThreadPoolExecutor(uploads, thread_name_prefix="snapstore-upload")
        self._slot_count = workers * 3
        self._in_flight_slots = threading.BoundedSemaphore(self._slot_count)
        self._upload_slots = threading.BoundedSemaphore(uploads + 1)
        self._dedup_lock = threading.Lock()
        self._unstored: set[bytes] = set()
        self._pack_lock = threading.Lock()
        # Trees and data go into packs of their own (SPEC.md section 7): listing a snapshot
        # reads only tree packs, which a cache can keep whole.
        self._open_blobs: dict[BlobType, list[PackBlob]] = {t: [] for t in BlobType}
        self._open_size: dict[BlobType, int] = {t: 0 for t in BlobType}
        self._pending_uploads: list[Future[None]] = []
        self._error: BaseException | None = None

    # -- saving ---------------------------------------------------------------------------
    def submit(
        self,
        blob_type: BlobType,
        data: bytes,
        *,
        blob_id: Id | None = None,
        bases: Sequence[Offer] = (),
    ) -> Future[SavedBlob]:
        """Saves in the background; blocks while the pipeline is full."""
        self._raise_pending_error()
        self._in_flight_slots.acquire()
        try:
            future = self._workers.submit(self.save, blob_type, data, blob_id=blob_id, bases=bases)
        except BaseException:
            self._in_flight_slots.release()
            raise
        future.add_done_callback(lambda _: self._in_flight_slots.release())
        return future

    def save(
        self,
        blob_type: BlobType,
        data: bytes,
        *,
        blob_id: Id | None = None,
        bases: Sequence[Offer] = (),
    ) -> SavedBlob:
        """Stores `data` unless the repository has it. `blob_id`, when given, must be its id
        (a caller that hashed already); `bases` are the bases a delta may be taken against
        (`deltas.offer`: their chains leave room for one more delta)."""
        new_id = blob_id if blob_id is not None else _hash(self._id_key, data)
        with self._dedup_lock:
            if new_id in self._unstored or self._index.lookup(new_id) is not None:
                return SavedBlob(new_id, len(data), 0)
            self._unstored.add(bytes(new_id))
        chosen = None
        if bases and deltas.may_be_delta(blob_type) and self._load_base is not None and data:
            framed, chosen = self._smallest_delta(data, bases)
        else:
            framed = compression.compress(data, self._level)
        base_used = None if chosen is None else chosen.base
        generation = 0 if chosen is None else chosen.generation
        envelope = self._sealer.seal(BLOB_KIND[blob_type], framed)
        full: list[PackBlob] | None = None
        with self._pack_lock:
            self._open_blobs[blob_type].append(
                PackBlob(blob_type, new_id, envelope, len(data), base_used, generation)
            )
            self._open_size[blob_type] += len(envelope)
            if self._open_size[blob_type] >= self._pack_size:
                full, self._open_blobs[blob_type] = self._open_blobs[blob_type], []
                self._open_size[blob_type] = 0
        if full:
            self._queue_upload(full)
        return SavedBlob(new_id, len(data), len(envelope), base_used)

    def _smallest_delta(self, data: bytes, bases: Sequence[Offer]) -> tuple[bytes, Offer | None]:
        """The frame to store: the smallest delta that pays, else the plain frame. A delta
        under `DELTA_TINY` of the chunk's length is kept at once, without compressing the
        chunk on its own (most changed chunks of a nightly dump: one zstd pass instead of two)."""
        assert self._load_base is not None
        tried: list[tuple[bytes, Offer]] = []
        plain: bytes | None = None
        for offer in dict.fromkeys(bases):  # in order, without repeats
            base = self._load_base(offer)
            if not base:
                continue
            framed = compression.compress_delta(data, offer.base, base, self._level)
            if not tried and len(framed) <= DELTA_TINY * len(data):
                return framed, offer
            tried.append((framed, offer))
            if plain is None:
                plain = compression.compress(data, self._level)
            if len(framed) < DELTA_GOOD_ENOUGH * len(plain):
                break
        if plain is None:
            plain = compression.compress(data, self._level)
        best, best_offer = min(tried, key=lambda t: len(t[0]), default=(plain, None))
        if len(best) < DELTA_KEEP_RATIO * len(plain):
            return best, best_offer
        return plain, None

    # -- packs ----------------------------------------------------------------------------
    def _queue_upload(self, blobs: list[PackBlob]) -> None:
        self._upload_slots.acquire()
        try:
            future = self._uploads.submit(self._store_pack, blobs)
        except BaseException:
            self._upload_slots.release()
            raise
        future.add_done_callback(self._upload_done)
        with self._pack_lock:
            self._pending_uploads.append(future)

    def _upload_done(self, future: Future[None]) -> None:
        self._upload_slots.release()
        exc = future.exception()
        if exc is not None and self._error is None:
            self._error = exc

    def _store_pack(self, blobs: list[PackBlob]) -> None:
        pack_id, entries, size = store_pack(self._backend, self._sealer, self._level, blobs)
        with self._dedup_lock:
            self._index.add_pack(pack_id, entries)
            for entry in entries:
                self._unstored.discard(bytes(entry.id))
        self._on_pack_stored(pack_id, entries, size)

    def _raise_pending_error(self) -> None:
        if self._error is not None:
            raise self._error

    def flush(self) -> None:
        """Waits for every submitted blob, stores the last partial pack, waits for uploads."""
        # Blob jobs may still be running: wait for all in-flight slots to drain.
        slots = self._in_flight_slots
        held = 0
        try:
            for _ in range(self._slot_count):
                slots.acquire()
                held += 1
        finally:
            for _ in range(held):
                slots.release()
        with self._pack_lock:
            rests = [blobs for blobs in self._open_blobs.values() if blobs]
            self._open_blobs = {t: [] for t in BlobType}
            self._open_size = {t: 0 for t in BlobType}
        for rest in rests:
            self._queue_upload(rest)
        with self._pack_lock:
            uploads, self._pending_uploads = self._pending_uploads, []
        for future in uploads:
            future.exception()
        self._raise_pending_error()

    def close(self) -> None:
        self._workers.shutdown(wait=True)
        self._uploads.shutdown(wait=True)
