"""A compact in-memory blob index: a few runs of numpy columns, each sorted by blob id.

Per blob it keeps the id (32 bytes, split into a sortable 8-byte key and 24 more bytes), the
pack number, offset, stored and plain lengths, type and flags: 50 bytes, and no Python object.
A delta also keeps the first 8 bytes of its base's id (`BlobLocation.base_key`), in a column
of the deltas alone, found by counting the deltas before its row (a count per 64 rows, then
the flags): one blob in ten a delta makes 51 bytes per blob, every blob a delta 58. The full
base id is inside the delta's own envelope and in the index files; the key is enough to find
the base's candidates here. Lookups binary-search the key column of each run.

Opening a repository adds the records of every index file as one run (`add_records`: numpy
reads the 46-byte records as the files store them and sorts them whole); a backup adds a
small run per pack (`add_pack`). A run is merged into the one before it while that one holds
at most `_MIN_MERGE` entries or `_RATIO` times as many, so each run is more than `_RATIO`
times the next: a handful of runs, each blob copied a few times as they grow, and `compact`
leaves one. A merge builds one column at a time and drops the old one, so it needs the
merged columns and at most 24 bytes per blob more.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from snapstore.ids import ID_SIZE, Id
from snapstore.index.codec import RECORD_SIZE, PackRecords, check_records, encode_entries
from snapstore.pack import FLAG_DELTA, BlobType, PackEntry

#: A run is merged into the one before it while that one holds at most this many entries...
_MIN_MERGE = 1 << 14
#: ... or at most this many times as many as it.
_RATIO = 8
_COLUMNS = ("keys", "rest", "pack", "offset", "length", "plain", "type", "flags")
#: Rows per count of the deltas before them (`_Run.ranks`).
_BLOCK = 64
#: A stored index record (codec.py) as numpy reads it: the id split into its sort key
#: (big-endian) and the 24 bytes after it.
_RECORD = np.dtype(
    [("type", "u1"), ("flags", "u1"), ("offset", "<u4"), ("length", "<u4"), ("plain", "<u4"),
     ("key", ">u8"), ("rest", "u1", (24,))]
)  # fmt: skip
_BASE_ID = np.dtype([("key", ">u8"), ("rest", "u1", (24,))])
assert _RECORD.itemsize == RECORD_SIZE and _BASE_ID.itemsize == ID_SIZE


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


def _split_run(ids: bytes) -> tuple[np.ndarray, np.ndarray]:
    """The keys (uint64) and the rests (n x 24 bytes) of a run of 32-byte ids."""
    raw = np.frombuffer(ids, dtype=_BASE_ID, count=len(ids) // ID_SIZE)
    return raw["key"].astype(np.uint64), raw["rest"]


class _Run:
    """Index entries sorted by key (stably: in the order added among equal keys), one numpy
    column per field (`rest`: n x 24 bytes); `bases` holds the base key of each delta row in
    row order, `ranks` the number of delta rows before each block of `_BLOCK` rows."""

    __slots__ = (*_COLUMNS, "bases", "ranks")
    keys: np.ndarray
    rest: np.ndarray
    pack: np.ndarray
    offset: np.ndarray
    length: np.ndarray
    plain: np.ndarray
    type: np.ndarray
    flags: np.ndarray
    bases: np.ndarray
    ranks: np.ndarray

    def __init__(self, columns: dict[str, np.ndarray], bases: np.ndarray) -> None:
        for name in _COLUMNS:
            setattr(self, name, columns[name])
        self.bases = bases
        deltas = ((self.flags & FLAG_DELTA) != 0).view(np.uint8)
        per_block = np.add.reduceat(deltas, np.arange(0, len(deltas), _BLOCK), dtype=np.uint32)
        self.ranks = np.cumsum(per_block, dtype=np.uint32) - per_block
        assert len(bases) == int(per_block.sum()), "one base key per delta row"

    @classmethod
    def of_rows(cls, rows: np.ndarray, pack: np.ndarray, bases: np.ndarray) -> _Run:
        """A run of sorted stored records (`_RECORD`), their pack numbers and the base keys
        of the deltas among them."""
        columns = {
            "keys": rows["key"].astype(np.uint64),
            "rest": np.ascontiguousarray(rows["rest"]),
        }
        columns["pack"] = pack
        for name in ("offset", "length", "plain"):
            columns[name] = rows[name].astype(np.uint32)
        columns["type"] = rows["type"].copy()
        columns["flags"] = rows["flags"].copy()
        return cls(columns, bases)

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def nbytes(self) -> int:
        return (
            sum(getattr(self, name).nbytes for name in _COLUMNS)
            + self.bases.nbytes
            + self.ranks.nbytes
        )

    def rows_of(self, key: int, rest: bytes) -> Iterator[int]:
        keys = self.keys
        i = int(keys.searchsorted(np.uint64(key)))
        while i < len(keys) and int(keys[i]) == key:
            if self.rest[i].tobytes() == rest:
                yield i
            i += 1

    def key_range(self, key: int) -> range:
        return range(
            int(self.keys.searchsorted(np.uint64(key), side="left")),
            int(self.keys.searchsorted(np.uint64(key), side="right")),
        )

    def find(self, keys: np.ndarray, rests: np.ndarray) -> np.ndarray:
        """The first row of each id (given split), -1 where this run has none."""
        n = len(self.keys)
        rows = np.full(len(keys), -1, dtype=np.int64)
        if not n or not len(keys):
            return rows
        pos = self.keys.searchsorted(keys, side="left")
        at = np.minimum(pos, n - 1)
        same_key = (pos < n) & (self.keys[at] == keys)
        hit = same_key & (self.rest[at] == rests).all(axis=1)
        rows[hit] = at[hit]
        for j in np.flatnonzero(same_key & ~hit).tolist():  # the id may sit further along
            rows[j] = next(self.rows_of(int(keys[j]), rests[j].tobytes()), -1)
        return rows

    def base_key(self, i: int) -> int:
        if not self.flags[i] & FLAG_DELTA:
            return 0
        start = i - i % _BLOCK
        before = np.count_nonzero(self.flags[start:i] & FLAG_DELTA)
        return int(self.bases[int(self.ranks[i // _BLOCK]) + before])

    def base_keys(self, rows: np.ndarray) -> np.ndarray:
        """`base_key` of each row (0 for a whole blob)."""
        out = np.zeros(len(rows), dtype=np.uint64)
        deltas = (self.flags[rows] & FLAG_DELTA) != 0
        if deltas.any():
            rows = rows[deltas]
            starts = rows - rows % _BLOCK
            steps = np.arange(_BLOCK)
            window = self.flags[np.minimum(starts[:, None] + steps, len(self.flags) - 1)]
            before = ((window & FLAG_DELTA) != 0) & (steps < (rows - starts)[:, None])
            out[deltas] = self.bases[self.ranks[rows // _BLOCK] + before.sum(axis=1)]
        return out

    def location(self, i: int, pack_ids: list[Id]) -> BlobLocation:
        return BlobLocation(
            pack_ids[int(self.pack[i])],
            BlobType(int(self.type[i])),
            int(self.offset[i]),
            int(self.length[i]),
            int(self.plain[i]),
            int(self.flags[i]),
            self.base_key(i),
        )

    def locations(self, rows: np.ndarray, pack_ids: list[Id]) -> Iterator[BlobLocation]:
        columns = zip(
            self.pack[rows].tolist(),
            self.type[rows].tolist(),
            self.offset[rows].tolist(),
            self.length[rows].tolist(),
            self.plain[rows].tolist(),
            self.flags[rows].tolist(),
            self.base_keys(rows).tolist(),
            strict=True,
        )
        for pack, type_, offset, length, plain, flags, base in columns:
            yield BlobLocation(pack_ids[pack], BlobType(type_), offset, length, plain, flags, base)

    def kept(self, keep: np.ndarray) -> _Run:
        """The run of the rows `keep` (a mask) selects."""
        delta_rows = np.flatnonzero(self.flags & FLAG_DELTA)
        return _Run(
            {name: getattr(self, name)[keep] for name in _COLUMNS}, self.bases[keep[delta_rows]]
        )


def _sorted_run(
    buffer: list[bytes | bytearray], numbers: np.ndarray, base_keys: np.ndarray
) -> _Run:
    """A run of the stored records (`_RECORD`) in the one buffer `buffer` holds, given the
    pack number of each and the base key of each delta among them, in their order. The rows
    are sorted whole (one pass of random reads, not one per column); the buffer is taken out
    of the list, so that it goes as soon as they are."""
    records = np.frombuffer(buffer.pop(), dtype=_RECORD)
    order = np.argsort(records["key"].astype(np.uint64), kind="stable")
    delta_records = np.flatnonzero(records["flags"] & FLAG_DELTA)
    rows = np.take(records, order)
    del records
    bases = base_keys[np.searchsorted(delta_records, order[(rows["flags"] & FLAG_DELTA) != 0])]
    return _Run.of_rows(rows, numbers[order], bases)


def _merged(older: _Run, newer: _Run) -> _Run:
    """One run of both (an id in both lists older's rows first); takes the columns of both
    away one at a time as the merged ones are built."""
    n = len(older) + len(newer)
    at = older.keys.searchsorted(newer.keys, side="right") + np.arange(len(newer))
    from_older = np.ones(n, dtype=bool)
    from_older[at] = False
    columns: dict[str, np.ndarray] = {}
    for name in _COLUMNS:
        old, new = getattr(older, name), getattr(newer, name)
        merged = np.empty((n, *old.shape[1:]), dtype=old.dtype)
        merged[at] = new
        merged[from_older] = old
        delattr(older, name)
        delattr(newer, name)
        del old, new
        columns[name] = merged
    # The deltas keep their order within each run, so their base keys merge as their rows did.
    from_older_delta = from_older[np.flatnonzero(columns["flags"] & FLAG_DELTA)]
    bases = np.empty(len(from_older_delta), dtype=np.uint64)
    bases[from_older_delta] = older.bases
    bases[~from_older_delta] = newer.bases
    return _Run(columns, bases)


@dataclass(frozen=True)
class IndexColumns:
    """The index's entries as one run of columns, sorted by id (`BlobIndex.columns`). The
    arrays are the index's own: read them, never write them."""

    _run: _Run
    pack_ids: list[Id]  # by pack number

    def __len__(self) -> int:
        return len(self._run)

    @property
    def keys(self) -> np.ndarray:
        """The first 8 bytes of each id, big-endian, as uint64."""
        return self._run.keys

    @property
    def rests(self) -> np.ndarray:
        """The 24 bytes after each key (n x 24)."""
        return self._run.rest

    @property
    def pack(self) -> np.ndarray:
        """Each entry's pack number (an index into `pack_ids`)."""
        return self._run.pack

    @property
    def type(self) -> np.ndarray:
        return self._run.type

    @property
    def ends(self) -> np.ndarray:
        """Where each entry ends in its pack (offset plus stored length), as int64."""
        return self._run.offset.astype(np.int64) + self._run.length

    @property
    def is_delta(self) -> np.ndarray:
        return (self._run.flags & FLAG_DELTA) != 0

    @property
    def delta_bases(self) -> np.ndarray:
        """The base key of each delta, in the order of the delta entries."""
        return self._run.bases

    def id(self, row: int) -> Id:
        return Id(int(self._run.keys[row]).to_bytes(8, "big") + self._run.rest[row].tobytes())

    def location(self, row: int) -> BlobLocation:
        return self._run.location(row, self.pack_ids)

    def places(self, rows: np.ndarray) -> Iterator[tuple[bytes, int, int, int]]:
        """(id, pack number, offset, stored length) of these entries."""
        keys, rests = self._run.keys[rows].astype(">u8").tobytes(), self._run.rest[rows].tobytes()
        columns = zip(self._run.pack[rows].tolist(), self._run.offset[rows].tolist(), self._run.length[rows].tolist(), strict=True)
        for n, (pack, offset, length) in enumerate(columns):
            yield keys[8 * n : 8 * n + 8] + rests[24 * n : 24 * n + 24], pack, offset, length


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
            self._runs: list[_Run] = []  # oldest first

    # -- building -------------------------------------------------------------------------
    def _number(self, pack_id: Id) -> int:
        number = self._pack_numbers.get(pack_id)
        if number is None:
            number = len(self._pack_ids)
            self._pack_ids.append(pack_id)
            self._pack_numbers[pack_id] = number
        return number

    def _add_run(self, run: _Run) -> None:
        runs = self._runs
        if len(run):
            runs.append(run)
        while len(runs) > 1 and len(runs[-2]) <= max(_MIN_MERGE, _RATIO * len(runs[-1])):
            newer, older = runs.pop(), runs.pop()
            runs.append(_merged(older, newer))

    def add_pack(self, pack_id: Id, entries: list[PackEntry]) -> None:
        base_keys = np.array(
            [
                int.from_bytes(e.base[:8], "big") if e.base else 0
                for e in entries
                if e.flags & FLAG_DELTA
            ],
            dtype=np.uint64,
        )
        with self._lock:
            numbers = np.full(len(entries), self._number(pack_id), dtype=np.uint32)
            self._add_run(_sorted_run([encode_entries(entries)], numbers, base_keys))

    def add_records(self, packs: Iterable[tuple[Id, PackRecords]]) -> None:
        """Adds many packs at once as index files store them (`IndexFile.pack_records`):
        each pack's 46-byte records and the base ids of its deltas. numpy reads the records
        as they are, with no Python object per blob: how opening a repository loads its
        index. The records are checked as `decode_index` checks them.

        `packs` is read once, its records copied out as it goes, so a caller that hands
        over index files one by one lets each go before the next (see `load_index`)."""
        raws, bases = bytearray(), bytearray()
        pack_ids: list[Id] = []
        counts: list[int] = []
        for pack_id, (raw, base_ids) in packs:
            check_records(raw, base_ids)
            raws += raw
            bases += base_ids
            pack_ids.append(pack_id)
            counts.append(len(raw) // RECORD_SIZE)
        base_keys = np.frombuffer(bases, dtype=_BASE_ID)["key"].astype(np.uint64)
        del bases
        buffer: list[bytes | bytearray] = [raws]
        del raws
        with self._lock:
            numbers = np.array([self._number(p) for p in pack_ids], dtype=np.uint32)
            self._add_run(_sorted_run(buffer, np.repeat(numbers, counts), base_keys))

    def _compact(self) -> _Run | None:
        runs = self._runs
        while len(runs) > 1:
            newer, older = runs.pop(), runs.pop()
            runs.append(_merged(older, newer))
        return runs[0] if runs else None

    def compact(self) -> None:
        """Merges the runs into one (call after bulk loading)."""
        with self._lock:
            self._compact()

    # -- queries --------------------------------------------------------------------------
    def lookup_all(self, blob_id: bytes) -> list[BlobLocation]:
        key, rest = _split(blob_id)
        with self._lock:
            return [
                run.location(i, self._pack_ids)
                for run in self._runs
                for i in run.rows_of(key, rest)
            ]

    def lookup_all_run(self, ids: bytes) -> list[list[BlobLocation]]:
        """`lookup_all` for a run of 32-byte ids at once, each id's copies in the same order:
        how the chains of a whole parent file are followed a level at a time (deltas.chains_of)
        without a search per id and level."""
        keys, rests = _split_run(ids)
        found: list[list[BlobLocation]] = [[] for _ in range(len(keys))]
        if not len(keys):
            return found
        with self._lock:
            for run in self._runs:
                left = run.keys.searchsorted(keys, side="left")
                counts = run.keys.searchsorted(keys, side="right") - left
                total = int(counts.sum())
                if not total:
                    continue
                # every row of each id's key range, then only those whose rest matches
                owner = np.repeat(np.arange(len(keys)), counts)
                rows = np.arange(total) - np.repeat(np.cumsum(counts) - counts - left, counts)
                same = (run.rest[rows] == rests[owner]).all(axis=1)
                owner, rows = owner[same], rows[same]
                for j, location in zip(owner.tolist(), run.locations(rows, self._pack_ids), strict=True):
                    found[j].append(location)
        return found

    def lookup(self, blob_id: bytes) -> BlobLocation | None:
        key, rest = _split(blob_id)
        with self._lock:
            for run in self._runs:
                for i in run.rows_of(key, rest):
                    return run.location(i, self._pack_ids)
            return None

    def _find_run(self, ids: bytes) -> Iterator[tuple[_Run, np.ndarray, np.ndarray]]:
        """For a run of 32-byte ids: per index run, where those it holds first sit in `ids`
        and their rows there (each id from the oldest run holding it, as `lookup` finds it).
        Call with the lock held."""
        keys, rests = _split_run(ids)
        todo = np.arange(len(keys))
        for run in self._runs:
            if not len(todo):
                return
            rows = run.find(keys[todo], rests[todo])
            hit = rows >= 0
            yield run, todo[hit], rows[hit]
            todo = todo[~hit]

    def ids_with_key(self, key: int) -> list[Id]:
        """Every id whose first 8 bytes (big-endian) are `key`: how a delta's base is found
        from `BlobLocation.base_key` (almost always exactly one)."""
        prefix = key.to_bytes(8, "big")
        with self._lock:
            found = {
                Id(prefix + run.rest[i].tobytes()) for run in self._runs for i in run.key_range(key)
            }
            return sorted(found)

    def ids_with_keys(self, keys: Sequence[int]) -> dict[int, list[Id]]:
        """`ids_with_key` for many keys at once (the bases of a window's deltas)."""
        wanted = np.array(sorted(set(keys)), dtype=np.uint64)
        found: dict[int, set[Id]] = {key: set() for key in wanted.tolist()}
        with self._lock:
            for run in self._runs:
                if not len(wanted):
                    break
                left = run.keys.searchsorted(wanted, side="left")
                counts = run.keys.searchsorted(wanted, side="right") - left
                total = int(counts.sum())
                if not total:
                    continue
                # Row after row of each key's range, and the key each row is for.
                rows = np.arange(total) - np.repeat(np.cumsum(counts) - counts - left, counts)
                rests = run.rest[rows].tobytes()
                for n, key in enumerate(np.repeat(wanted, counts).tolist()):
                    found[key].add(Id(key.to_bytes(8, "big") + rests[n * 24 : n * 24 + 24]))
        return {key: sorted(ids) for key, ids in found.items()}

    def plain_lengths(self, blob_ids: Sequence[bytes]) -> list[int | None]:
        """Plaintext length of each blob (None when not indexed), vectorised for long lists."""
        if not blob_ids:
            return []
        lengths = self.plain_lengths_of_run(b"".join(bytes(b) for b in blob_ids))
        return [None if n < 0 else int(n) for n in lengths.tolist()]

    def plain_lengths_of_run(self, ids: bytes) -> np.ndarray:
        """Plaintext lengths of a run of 32-byte ids, as int64 (-1 where not indexed): for a
        file's million chunk ids without a million Python objects."""
        out = np.full(len(ids) // ID_SIZE, -1, dtype=np.int64)
        with self._lock:
            for run, where, rows in self._find_run(ids):
                out[where] = run.plain[rows]
        return out

    def lookup_run(self, ids: bytes) -> list[BlobLocation | None]:
        """`lookup` for a run of 32-byte ids at once: one vectorised search per index run
        instead of one per id (the blob reader plans thousands of blobs a second)."""
        found: list[BlobLocation | None] = [None] * (len(ids) // ID_SIZE)
        with self._lock:
            for run, where, rows in self._find_run(ids):
                for j, location in zip(
                    where.tolist(), run.locations(rows, self._pack_ids), strict=True
                ):
                    found[j] = location
        return found

    def __contains__(self, blob_id: object) -> bool:
        return isinstance(blob_id, bytes) and self.lookup(blob_id) is not None

    def __len__(self) -> int:
        with self._lock:
            return sum(len(run) for run in self._runs)

    def drop_packs(self, pack_ids: set[Id]) -> int:
        """Forgets every entry in these packs (packs the backend no longer lists); returns how
        many entries went. The pack numbers stay allocated, unused."""
        with self._lock:
            numbers = [self._pack_numbers[p] for p in pack_ids if p in self._pack_numbers]
            run = self._compact()
            if not numbers or run is None:
                return 0
            keep = ~np.isin(run.pack, np.array(numbers, dtype=np.uint32))
            dropped = int(len(keep) - np.count_nonzero(keep))
            if dropped:
                self._runs = [run.kept(keep)]
            return dropped

    def pack_ids(self) -> set[Id]:
        """Packs that have at least one blob in the index."""
        with self._lock:
            numbers = set[int]()
            for run in self._runs:
                numbers.update(np.unique(run.pack).tolist())
            return {self._pack_ids[n] for n in numbers}

    def columns(self) -> IndexColumns:
        """Every entry (copies in several packs included) as columns, by id: for passes over
        the whole index (the check) without a Python object per blob."""
        with self._lock:
            run = self._compact()
            if run is None:
                run = _Run.of_rows(np.zeros(0, dtype=_RECORD), np.zeros(0, np.uint32), np.zeros(0, np.uint64))
            return IndexColumns(run, list(self._pack_ids))

    def entries(self) -> Iterator[tuple[Id, BlobLocation]]:
        """Every (blob id, location) pair, including duplicates in several packs, by id: an
        object per blob (passes over a whole index use `columns`)."""
        columns = self.columns()
        for row in range(len(columns)):
            yield columns.id(row), columns.location(row)

    def stored_bytes(self) -> int:
        """The stored (compressed, encrypted) length of every entry, duplicates included:
        what the indexed blobs take in their packs, pack headers left out."""
        with self._lock:
            return sum(int(run.length.sum(dtype=np.uint64)) for run in self._runs)

    def memory_bytes(self) -> int:
        """What the index's columns hold."""
        with self._lock:
            return sum(run.nbytes for run in self._runs)
