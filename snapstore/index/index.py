"""A compact in-memory blob index: sorted numpy columns plus a small dict of recent additions.

Per blob it keeps the id (32 bytes, split into a sortable 8-byte key and 24 more bytes), the
pack number, offset, stored and plain lengths, type and flags, and for a delta the first 8
bytes of its base's id (0 otherwise): 58 bytes. The full base id is inside the delta's own
envelope and in the index files; the key is enough to find the base's candidates here. Lookups binary-search
the key column. New entries go to a dict and are merged into the arrays in batches, so adding
stays amortised O(1) per blob while memory stays compact.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from snapstore.ids import Id
from snapstore.pack import FLAG_DELTA, BlobType, PackEntry

_MIN_MERGE = 1 << 16


@dataclass(frozen=True)
class BlobLocation:
    pack_id: Id
    type: BlobType
    offset: int
    length: int
    plain_length: int
    flags: int = 0
    base_key: int = 0  # first 8 bytes of a delta's base id, big-endian; 0 for a full blob

    @property
    def is_delta(self) -> bool:
        return bool(self.flags & FLAG_DELTA)


def _split(blob_id: bytes) -> tuple[int, bytes]:
    return int.from_bytes(blob_id[:8], "big"), blob_id[8:]


class BlobIndex:
    """Maps blob id to its location(s). Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self.clear()

    def clear(self) -> None:
        """Forgets everything (the object stays: a packer may hold it)."""
        with self._lock:
            self._pack_ids: list[Id] = []
            self._pack_numbers: dict[Id, int] = {}
            self._keys = np.empty(0, dtype=np.uint64)
            self._rest = np.empty((0, 24), dtype=np.uint8)
            self._pack = np.empty(0, dtype=np.uint32)
            self._offset = np.empty(0, dtype=np.uint32)
            self._length = np.empty(0, dtype=np.uint32)
            self._plain = np.empty(0, dtype=np.uint32)
            self._type = np.empty(0, dtype=np.uint8)
            self._flags = np.empty(0, dtype=np.uint8)
            self._base = np.empty(0, dtype=np.uint64)
            self._pending: dict[bytes, list[tuple[int, int, int, int, int, int]]] = {}
            self._pending_count = 0

    # -- building -------------------------------------------------------------------------
    def add_pack(self, pack_id: Id, entries: list[PackEntry]) -> None:
        with self._lock:
            number = self._pack_numbers.get(pack_id)
            if number is None:
                number = len(self._pack_ids)
                self._pack_ids.append(pack_id)
                self._pack_numbers[pack_id] = number
            pending = self._pending
            for e in entries:
                base = int.from_bytes(e.base[:8], "big") if e.base is not None else 0
                row = (number, int(e.type) | (e.flags << 8), e.offset, e.length, e.plain_length, base)
                rows = pending.get(key := bytes(e.id))
                if rows is None:
                    pending[key] = [row]
                else:
                    rows.append(row)
            self._pending_count += len(entries)
            if self._pending_count > max(_MIN_MERGE, len(self._keys) // 8):
                self._merge()

    def _merge(self) -> None:
        if not self._pending:
            return
        # Columns built by numpy from flat lists: no per-entry numpy scalar assignments.
        ids: list[bytes] = []
        rows: list[tuple[int, int, int, int, int, int]] = []
        for blob_id, locations in self._pending.items():
            for location in locations:
                ids.append(blob_id)
                rows.append(location)
        n = len(rows)
        raw = np.frombuffer(b"".join(ids), dtype=np.uint8).reshape(n, 32)
        keys = raw[:, :8].copy().view(">u8").ravel().astype(np.uint64)
        rest = raw[:, 8:].copy()
        numbers, type_flags, offsets, lengths, plains, base_keys = zip(*rows, strict=True)
        pack = np.array(numbers, dtype=np.uint32)
        both = np.array(type_flags, dtype=np.uint16)
        types = (both & 0xFF).astype(np.uint8)
        flags = (both >> 8).astype(np.uint8)
        offset = np.array(offsets, dtype=np.uint32)
        length = np.array(lengths, dtype=np.uint32)
        plain = np.array(plains, dtype=np.uint32)
        bases = np.array(base_keys, dtype=np.uint64)
        all_keys = np.concatenate([self._keys, keys])
        order = np.argsort(all_keys, kind="stable")
        self._keys = all_keys[order]
        self._rest = np.concatenate([self._rest, rest])[order]
        self._pack = np.concatenate([self._pack, pack])[order]
        self._offset = np.concatenate([self._offset, offset])[order]
        self._length = np.concatenate([self._length, length])[order]
        self._plain = np.concatenate([self._plain, plain])[order]
        self._type = np.concatenate([self._type, types])[order]
        self._flags = np.concatenate([self._flags, flags])[order]
        self._base = np.concatenate([self._base, bases])[order]
        self._pending.clear()
        self._pending_count = 0

    def compact(self) -> None:
        """Moves pending additions into the sorted arrays (call after bulk loading)."""
        with self._lock:
            self._merge()

    # -- queries --------------------------------------------------------------------------
    def _array_positions(self, blob_id: bytes) -> Iterator[int]:
        key, rest = _split(blob_id)
        keys = self._keys
        i = int(np.searchsorted(keys, np.uint64(key), side="left"))
        while i < len(keys) and int(keys[i]) == key:
            if self._rest[i].tobytes() == rest:
                yield i
            i += 1

    def _location(self, i: int) -> BlobLocation:
        return BlobLocation(
            self._pack_ids[int(self._pack[i])],
            BlobType(int(self._type[i])),
            int(self._offset[i]),
            int(self._length[i]),
            int(self._plain[i]),
            int(self._flags[i]),
            int(self._base[i]),
        )

    def lookup_all(self, blob_id: bytes) -> list[BlobLocation]:
        with self._lock:
            found = [self._location(i) for i in self._array_positions(blob_id)]
            for number, type_flags, off, ln, pl, base in self._pending.get(bytes(blob_id), ()):
                found.append(
                    BlobLocation(
                        self._pack_ids[number], BlobType(type_flags & 0xFF), off, ln, pl, type_flags >> 8, base
                    )
                )
            return found

    def lookup(self, blob_id: bytes) -> BlobLocation | None:
        with self._lock:
            pending = self._pending.get(bytes(blob_id))
            if pending:
                number, type_flags, off, ln, pl, base = pending[0]
                return BlobLocation(
                    self._pack_ids[number], BlobType(type_flags & 0xFF), off, ln, pl, type_flags >> 8, base
                )
            for i in self._array_positions(blob_id):
                return self._location(i)
            return None

    def ids_with_key(self, key: int) -> list[Id]:
        """Every id whose first 8 bytes (big-endian) are `key`: how a delta's base is found
        from `BlobLocation.base_key` (almost always exactly one)."""
        prefix = key.to_bytes(8, "big")
        with self._lock:
            found = {
                Id(prefix + self._rest[i].tobytes())
                for i in range(
                    int(np.searchsorted(self._keys, np.uint64(key), side="left")),
                    int(np.searchsorted(self._keys, np.uint64(key), side="right")),
                )
            }
            found.update(Id(b) for b in self._pending if b[:8] == prefix)
            return sorted(found)

    def ids_with_keys(self, keys: Sequence[int]) -> dict[int, list[Id]]:
        """`ids_with_key` for many keys at once (the bases of a window's deltas)."""
        with self._lock:
            wanted = np.array(sorted(set(keys)), dtype=np.uint64)
            found: dict[int, list[Id]] = {}
            if len(self._keys) and len(wanted):
                left = np.searchsorted(self._keys, wanted, side="left")
                right = np.searchsorted(self._keys, wanted, side="right")
                single = (right - left) == 1
                rests = self._rest[left[single]].tobytes()
                for n, key in enumerate(wanted[single].tolist()):
                    found[key] = [Id(key.to_bytes(8, "big") + rests[n * 24 : n * 24 + 24])]
            for key in set(keys):
                if key not in found or self._pending:
                    found[key] = self.ids_with_key(key)  # several ids share it, or pending ones
            return found

    def plain_lengths(self, blob_ids: Sequence[bytes]) -> list[int | None]:
        """Plaintext length of each blob (None when not indexed), vectorised for long lists."""
        if not blob_ids:
            return []
        lengths = self.plain_lengths_of_run(b"".join(bytes(b) for b in blob_ids))
        return [None if n < 0 else int(n) for n in lengths.tolist()]

    def plain_lengths_of_run(self, ids: bytes) -> np.ndarray:
        """Plaintext lengths of a run of 32-byte ids, as int64 (-1 where not indexed): for a
        file's million chunk ids without a million Python objects."""
        with self._lock:
            self._merge()
            raw = np.frombuffer(ids, dtype=np.uint8, count=len(ids) // 32 * 32).reshape(-1, 32)
            keys = raw[:, :8].copy().view(">u8").ravel().astype(np.uint64)
            n = len(self._keys)
            out = np.full(len(keys), -1, dtype=np.int64)
            if n:
                pos = np.searchsorted(self._keys, keys, side="left")
                at = np.minimum(pos, n - 1)
                hit = (pos < n) & (self._keys[at] == keys) & (self._rest[at] == raw[:, 8:]).all(axis=1)
                out[hit] = self._plain[at[hit]]
            else:
                hit = np.zeros(len(keys), dtype=bool)
            for j in np.flatnonzero(~hit).tolist():  # pending, a shared key, or not indexed
                location = self.lookup(raw[j].tobytes())
                if location is not None:
                    out[j] = location.plain_length
            return out

    def lookup_run(self, ids: bytes) -> list[BlobLocation | None]:
        """`lookup` for a run of 32-byte ids at once: one vectorised search instead of one
        per id (the blob reader plans thousands of blobs a second)."""
        with self._lock:
            raw = np.frombuffer(ids, dtype=np.uint8, count=len(ids) // 32 * 32).reshape(-1, 32)
            keys = raw[:, :8].copy().view(">u8").ravel().astype(np.uint64)
            n = len(self._keys)
            found: list[BlobLocation | None] = [None] * len(keys)
            shared: list[int] = []  # same first 8 bytes as an indexed id, another id there
            if n:
                pos = np.searchsorted(self._keys, keys, side="left")
                at = np.minimum(pos, n - 1)
                same_key = (pos < n) & (self._keys[at] == keys)
                hit = same_key & (self._rest[at] == raw[:, 8:]).all(axis=1)
                shared = np.flatnonzero(same_key & ~hit).tolist()
                rows = at[hit]
                columns = zip(
                    np.flatnonzero(hit).tolist(),
                    self._pack[rows].tolist(),
                    self._type[rows].tolist(),
                    self._offset[rows].tolist(),
                    self._length[rows].tolist(),
                    self._plain[rows].tolist(),
                    self._flags[rows].tolist(),
                    self._base[rows].tolist(),
                    strict=True,
                )
                for j, pack, type_, offset, length, plain, flags, base in columns:
                    found[j] = BlobLocation(
                        self._pack_ids[pack], BlobType(type_), offset, length, plain, flags, base
                    )
            for j in shared:  # the id may sit further along among the same key
                found[j] = self.lookup(raw[j].tobytes())
            if self._pending:  # not merged yet (a miss not pending and not shared is absent)
                for j, location in enumerate(found):
                    if location is None and (blob_id := raw[j].tobytes()) in self._pending:
                        found[j] = self.lookup(blob_id)
            return found

    def __contains__(self, blob_id: object) -> bool:
        return isinstance(blob_id, bytes) and self.lookup(blob_id) is not None

    def __len__(self) -> int:
        with self._lock:
            return len(self._keys) + self._pending_count

    def drop_packs(self, pack_ids: set[Id]) -> int:
        """Forgets every entry in these packs (packs the backend no longer lists); returns how
        many entries went. The pack numbers stay allocated, unused."""
        with self._lock:
            self._merge()
            numbers = [self._pack_numbers[p] for p in pack_ids if p in self._pack_numbers]
            if not numbers:
                return 0
            keep = ~np.isin(self._pack, np.array(numbers, dtype=np.uint32))
            dropped = int(len(keep) - np.count_nonzero(keep))
            for name in ("_keys", "_rest", "_pack", "_offset", "_length", "_plain", "_type", "_flags", "_base"):
                setattr(self, name, getattr(self, name)[keep])
            return dropped

    def pack_ids(self) -> set[Id]:
        """Packs that have at least one blob in the index."""
        with self._lock:
            self._merge()
            return {self._pack_ids[int(n)] for n in np.unique(self._pack)}

    def entries(self) -> Iterator[tuple[Id, BlobLocation]]:
        """Every (blob id, location) pair, including duplicates in several packs."""
        with self._lock:
            self._merge()
            for i in range(len(self._keys)):
                blob_id = Id(int(self._keys[i]).to_bytes(8, "big") + self._rest[i].tobytes())
                yield blob_id, self._location(i)

    def stored_bytes(self) -> int:
        """The stored (compressed, encrypted) length of every entry, duplicates included:
        what the indexed blobs take in their packs, pack headers left out."""
        with self._lock:
            self._merge()
            return int(self._length.sum(dtype=np.uint64))

    def memory_bytes(self) -> int:
        with self._lock:
            arrays = (
                self._keys, self._rest, self._pack, self._offset, self._length, self._plain,
                self._type, self._flags, self._base,
            )
            return sum(a.nbytes for a in arrays)
