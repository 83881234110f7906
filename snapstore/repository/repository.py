"""The repository facade: keys, config, index, blobs and encrypted objects on a backend.

Everything above this layer sees blob ids and object ids, never paths. Only this package and
`prune.py` write to the backend.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Self

from snapstore import compression, pack
from snapstore.backend.base import Backend, FileInfo, FileType, Handle
from snapstore.chunker import PROFILES
from snapstore.crypto.aead import Kind, Opener, Sealer
from snapstore.crypto.idhash import blob_id, object_id
from snapstore.crypto.kdf import DEFAULT_KDF, KdfParams
from snapstore.crypto.keys import KeyRing, MasterKey
from snapstore.errors import (
    AuthenticationFailed,
    BackendError,
    IntegrityError,
    ObjectNotFound,
    RepositoryExists,
    RepositoryNotFound,
    SnapstoreError,
    UnsupportedVersion,
    UsageError,
)
from snapstore.ids import Id
from snapstore.index import deltas
from snapstore.index.codec import IndexFile, decode_index, encode_index
from snapstore.index.deltas import Offer
from snapstore.pack import BlobType, PackBlob, PackEntry
from snapstore.repository.blob_reader import WINDOW_BYTES, BlobRead, BlobReader
from snapstore.repository.config import DEFAULT_PACK_SIZE, RepositoryConfig
from snapstore.repository.keyring import new_key_file
from snapstore.repository.lock import RepositoryLock
from snapstore.repository.packer import BLOB_KIND, Packer, SavedBlob, store_pack

if TYPE_CHECKING:  # numpy (under the index) is imported when an index is first needed
    import numpy as np

    from snapstore.index.index import BlobIndex, BlobLocation

OBJECT_KIND = {
    FileType.INDEX: Kind.INDEX,
    FileType.SNAPSHOT: Kind.SNAPSHOT,
    FileType.LOCK: Kind.LOCK,
}
#: Write an index file after this many new packs, so an interrupted backup can resume.
PACKS_PER_INDEX_FILE = 64
#: Index files written whole (prune, repair) hold at most this many blob entries (46 bytes
#: each before compression).
INDEX_FILE_MAX_BLOBS = 100_000
#: Seconds a new lock holder waits for the listing of locks/ to show its lock (see
#: `Repository.lock`) before it gives up.
LISTING_WAIT = 120.0
#: The first pause between listings while waiting; it doubles up to `_MAX_LISTING_POLL`.
LISTING_POLL = 0.05
_MAX_LISTING_POLL = 2.0
_PACK_TAIL_GUESS = 64 * 1024


def _new_index() -> BlobIndex:
    from snapstore.index.index import BlobIndex

    return BlobIndex()


def _now() -> str:
    return datetime.now(UTC).isoformat()


@dataclass(frozen=True)
class DamagedObject:
    """An index file or snapshot that cannot be read, which a reader left out and went on."""

    file_type: FileType  # FileType.INDEX or FileType.SNAPSHOT
    name: str
    error: SnapstoreError

    @property
    def kind(self) -> str:
        """"index" or "snapshot"."""
        return "index" if self.file_type is FileType.INDEX else "snapshot"


OnDamaged = Callable[[DamagedObject], None]


class Repository:
    """An open repository. Create with `Repository.init` or `Repository.open`."""

    def __init__(self, backend: Backend, master_key: MasterKey, config: RepositoryConfig) -> None:
        self.backend = backend
        self.config = config
        self._master = master_key
        #: The key file that opened this session (None when opened with the master key alone,
        #: from a paper key); key management refuses to remove it without being forced.
        self.key_name: str | None = None
        self._sealer = Sealer(master_key.encryption)
        self._opener = Opener(master_key.encryption)
        self._index: BlobIndex | None = None
        self._index_files: set[str] = set()  # index files in self.index (read or written)
        self._superseded: set[str] = set()  # index files another one replaces: never read
        #: the index was checked against the backend's pack listing (writers need that)
        self._packs_listed = False
        self._packer: Packer | None = None
        self._packer_lock = threading.Lock()
        self._unindexed: dict[Id, list[PackEntry]] = {}
        self._unindexed_lock = threading.Lock()
        self._lock: RepositoryLock | None = None
        #: Whether readers skip a damaged index file or snapshot (see `skip_damaged`): None
        #: makes them raise; open_repository sets it.
        self.on_damaged: OnDamaged | None = None
        self._damaged: dict[tuple[FileType, str], DamagedObject] = {}
        #: Packs in self.index read from their own headers that no stored index file names.
        self._unnamed: dict[Id, list[PackEntry]] = {}
        self.bytes_uploaded = 0
        #: Packs uploaded at once (and so connections used); set before the first save.
        #: Memory for packs stays within (connections + 2) x pack size.
        self.connections = 2
        #: How long `lock` waits for a lagging listing to show the new lock, and the first
        #: pause between its listings.
        self.listing_wait = LISTING_WAIT
        self.listing_poll = LISTING_POLL
        self.reader = BlobReader(
            lambda: self.backend,
            lambda: self.index,
            self._opener,
            master_key.id_key,
            lambda: self.connections,
            lambda: deltas.max_depth(self.config.delta_chains),
        )

    # -- creating and opening -------------------------------------------------------------
    @classmethod
    def init(
        cls,
        backend: Backend,
        password: bytes,
        *,
        kdf: KdfParams = DEFAULT_KDF,
        pack_size: int = DEFAULT_PACK_SIZE,
        chunker: dict[str, tuple[int, int, int, int]] | None = None,
    ) -> Repository:
        """Creates a new repository; refuses if anything repository-like is there already."""
        master = MasterKey.generate()
        # First: an empty password is refused before anything is written.
        key_name, key_blob = new_key_file(master, password, kdf)
        backend.create()
        if _exists(backend, Handle(FileType.CONFIG)) or any(backend.list(FileType.KEY)):
            raise RepositoryExists(f"a repository already exists at {backend.location}")
        profiles = chunker or {
            name: (p.min_size, p.avg_size, p.max_size, p.normalization)
            for name, p in PROFILES.items()
        }
        config = RepositoryConfig.new(_now(), profiles, pack_size)
        backend.save(Handle(FileType.KEY, key_name), key_blob)
        repo = cls(backend, master, config)
        repo.key_name = key_name
        backend.save(
            Handle(FileType.CONFIG), repo._sealer.seal(Kind.CONFIG, compression.compress(config.encode()))
        )
        return repo

    @classmethod
    def open(cls, backend: Backend, password: bytes) -> Repository:
        sealed_config = _load_config(backend)
        keyring = KeyRing()  # bounded KDF parameters, cheapest first: SPEC.md section 4
        for info in backend.list(FileType.KEY):
            keyring.add(info.handle.name, info.size, partial(backend.load, info.handle))
        name, master = keyring.open(password)
        repo = cls._with_master(backend, master, sealed_config, "the password opens a key file, but")
        repo.key_name = name
        return repo

    @classmethod
    def open_with_master_key(cls, backend: Backend, master: MasterKey) -> Repository:
        """Opens the repository with its master key itself (from a paper key), no key file."""
        return cls._with_master(backend, master, _load_config(backend), "this master key does not open it:")

    @classmethod
    def _with_master(cls, backend: Backend, master: MasterKey, sealed_config: bytes, how: str) -> Repository:
        try:
            plaintext = compression.decompress(Opener(master.encryption).open(Kind.CONFIG, sealed_config))
        except AuthenticationFailed:
            raise AuthenticationFailed(
                f"config: ciphertext failed authentication: {how} the config is damaged or "
                "belongs to another repository"
            ) from None
        except IntegrityError as exc:
            raise type(exc)(f"config: {exc}") from None
        return cls(backend, master, RepositoryConfig.decode(plaintext))

    # -- the in-memory index ---------------------------------------------------------------
    @property
    def index(self) -> BlobIndex:
        """Which pack holds each blob; built (and numpy imported) on first use, so commands
        that only list snapshots start without it."""
        if self._index is None:
            self._index = _new_index()
        return self._index

    @index.setter
    def index(self, index: BlobIndex) -> None:
        self._index = index

    # -- secrets the upper layers need ----------------------------------------------------
    @property
    def master_key(self) -> MasterKey:
        """For key management only (repository/keyring.py): new key files, the paper key."""
        return self._master

    @property
    def chunker_seed(self) -> bytes:
        return self._master.chunker_seed

    @property
    def repository_id(self) -> str:
        return self.config.repository_id.hex()

    def hash_blob(self, data: bytes) -> Id:
        return blob_id(self._master.id_key, data)

    # -- locks ----------------------------------------------------------------------------
    def lock(self, *, exclusive: bool, retry: float = 0.0) -> RepositoryLock:
        """Takes a shared or exclusive lock (SPEC.md section 10), held until `unlock` or `close`.

        It is held once a listing of `locks/` shows it. On a store whose listings lag behind
        writes and deletes (eventually consistent), what the holder lists afterwards then shows
        everything stored before the lock was taken and nothing deleted before: prune sees the
        snapshot a backup finished just before it, and check the index file prune wrote just
        before it. On a consistent store the lock's own second listing shows it, and no request
        is added; otherwise the listing is repeated for up to `listing_wait` seconds.
        """
        if self._lock is not None:
            raise UsageError("this repository handle already holds a lock")
        listings = _LockListings(self)
        lock = RepositoryLock(listings, exclusive)
        lock.acquire(retry)
        self._lock = lock
        try:
            self._await_listed(lock, listings)
        except BaseException:
            self.unlock()
            raise
        return lock

    def _await_listed(self, lock: RepositoryLock, listings: _LockListings) -> None:
        """Lists `locks/` until it shows `lock` (see `lock`)."""
        started = time.monotonic()
        pause = self.listing_poll
        while lock.name not in listings.seen:
            waited = time.monotonic() - started
            if waited >= self.listing_wait:
                raise BackendError(
                    f"{self.backend.location}: the listing of locks/ still lacks the lock stored "
                    f"{waited:.0f} s ago; this store's listings lag behind its writes, and nothing "
                    "is read from so stale a view"
                )
            time.sleep(min(pause, max(0.0, self.listing_wait - waited)))
            pause = min(pause * 2, _MAX_LISTING_POLL)
            listings.list_objects(FileType.LOCK)

    @property
    def held_lock(self) -> RepositoryLock | None:
        return self._lock

    def _check_lock(self) -> None:
        """A holder whose lock others may have found stale must not commit anything: a prune
        may have deleted packs its index files or snapshot would name."""
        if self._lock is not None:
            self._lock.check()

    def unlock(self) -> None:
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.release()

    # -- damaged index files and snapshots ------------------------------------------------
    def skip_damaged(self, file_type: FileType, name: str, error: SnapstoreError) -> None:
        """A reader could not read this index file or snapshot. With `on_damaged` unset it
        raises `error`. Set, a damaged object (an IntegrityError) is recorded in `damaged`,
        reported once per handle and left out by the reader; one that vanished since it was
        listed (a concurrent forget or prune) is left out silently; any other error (the
        backend failing) is raised: an object is never taken for damaged because the storage
        could not be reached."""
        if self.on_damaged is None or not isinstance(error, (IntegrityError, ObjectNotFound)):
            raise error
        if isinstance(error, ObjectNotFound):
            return
        key = (file_type, name)
        if key not in self._damaged:
            self._damaged[key] = DamagedObject(file_type, name, error)
            self.on_damaged(self._damaged[key])

    @property
    def damaged(self) -> list[DamagedObject]:
        """The damaged index files and snapshots this handle met and left out, in order."""
        return list(self._damaged.values())

    # -- index ----------------------------------------------------------------------------
    def load_index(self, on_damaged: Callable[[str, SnapstoreError], None] | None = None) -> None:
        """Reads every index file not read yet into memory (in parallel: they are independent).

        An index file that another one lists in `supersedes` is skipped (SPEC.md section 8):
        prune deleted it, and if it reappears (a bucket restored from versioning, an rsync of
        an old copy) it names packs that are gone. Calling this again picks up the index files
        other writers stored meanwhile. A damaged index file raises, unless `on_damaged` is
        given (or the handle's `on_damaged` is set: see `skip_damaged`): then it is reported
        and left out.
        """
        if on_damaged is None and self.on_damaged is not None:
            on_damaged = partial(self.skip_damaged, FileType.INDEX)
        infos = [
            i
            for i in self.backend.list(FileType.INDEX)
            if i.handle.name not in self._index_files and i.handle.name not in self._superseded
        ]

        report = (lambda info, exc: on_damaged(info.handle.name, exc)) if on_damaged else None
        files = self._read_index_files(infos, report)
        newly = {bytes(old).hex() for _, index_file in files for old in index_file.supersedes}
        if newly & self._index_files:
            # A prune replaced files already merged: start again from what is stored now.
            self._superseded |= newly
            self.index.clear()
            self._index_files = set()
            self.load_index(on_damaged)
            return
        self._superseded |= newly
        names = [info.handle.name for info, _ in files if info.handle.name not in self._superseded]
        kept = [f for info, f in reversed(files) if info.handle.name not in self._superseded]
        files.clear()

        def records() -> Iterator[tuple[Id, tuple[bytes, bytes]]]:
            while kept:  # each file goes once its records are copied out
                yield from kept.pop().pack_records().items()

        # All at once, as the files store their records: no Python object per blob.
        self.index.add_records(records())
        self._index_files.update(names)
        self.index.compact()
        if self._packs_listed:
            self._forget_unlisted_packs(self.list_packs())

    def _forget_unlisted_packs(self, listed: Mapping[Id, int]) -> None:
        """A writer never deduplicates against a pack the backend does not list (SPEC.md
        section 11, rule 10): an index file may name packs that are gone (one replayed from an
        old copy of the repository), and a new snapshot using their blobs could not be
        restored. Their entries leave the in-memory index, so those blobs are stored again."""
        gone = self.index.pack_ids() - listed.keys()
        if gone:
            self.index.drop_packs(gone)
        self._packs_listed = True

    def load_index_file(self, name: str) -> IndexFile:
        return decode_index(self.load_object(FileType.INDEX, name))

    def write_index(self, index_file: IndexFile) -> Id:
        return self.write_index_file(index_file)[0]

    def write_index_file(self, index_file: IndexFile) -> tuple[Id, int]:
        """Stores an index file; returns its name and its size as stored."""
        self._check_lock()
        sealed = self._sealer.seal(Kind.INDEX, compression.compress(encode_index(index_file)))
        name = object_id(sealed)
        self._index_files.add(name.hex())  # its packs are in self.index already
        self.backend.save(Handle(FileType.INDEX, name.hex()), sealed)
        return name, len(sealed)

    def read_index_files(
        self, on_damaged: Callable[[FileInfo, SnapstoreError], None] | None = None
    ) -> list[tuple[FileInfo, IndexFile]]:
        """Every index file, superseded ones too; a damaged one raises (callers that delete
        need to know them all), unless `on_damaged` is given: then it is handed there and
        left out (repair index, which rewrites the index whole)."""
        infos = list(self.backend.list(FileType.INDEX))

        return self._read_index_files(infos, on_damaged)

    def _read_index_files(
        self, infos: list[FileInfo], on_damaged: Callable[[FileInfo, SnapstoreError], None] | None
    ) -> list[tuple[FileInfo, IndexFile]]:
        """Reads index files in parallel (they are independent). Damage (an integrity error)
        goes to `on_damaged` when given; anything else, such as a store that keeps failing,
        is raised: it says nothing about the file."""

        def read(info: FileInfo) -> IndexFile | SnapstoreError:
            try:
                return self.load_index_file(info.handle.name)
            except (IntegrityError, UnsupportedVersion) as exc:
                if on_damaged is None:
                    raise
                return exc

        read_files = []
        with ThreadPoolExecutor(8) as pool:
            for info, result in zip(infos, pool.map(read, infos), strict=True):
                if isinstance(result, SnapstoreError):
                    assert on_damaged is not None
                    on_damaged(info, result)
                else:
                    read_files.append((info, result))
        return read_files

    def write_index_files(
        self, packs: Mapping[Id, list[PackEntry]], supersedes: Sequence[str]
    ) -> list[tuple[Id, int]]:
        """Writes an index naming exactly `packs`, in files of at most INDEX_FILE_MAX_BLOBS
        entries, replacing the index files `supersedes` names (prune, repair index: SPEC.md
        section 11). Only the last file lists them in `supersedes`, so a reader that honours
        it never sees part of the new index alone; the caller deletes them afterwards.
        Returns (name, size as stored) per file written; none when `packs` is empty."""
        files: list[IndexFile] = []
        current, count = IndexFile(), 0
        for pack_id, entries in packs.items():
            if current.packs and count + len(entries) > INDEX_FILE_MAX_BLOBS:
                files.append(current)
                current, count = IndexFile(), 0
            current.packs[pack_id] = entries
            count += len(entries)
        if current.packs:
            files.append(current)
        if files:
            files[-1].supersedes = [Id.from_hex(name) for name in supersedes]
        return [self.write_index_file(index_file) for index_file in files]

    def replace_index(self, packs: Mapping[Id, list[PackEntry]]) -> None:
        """Makes the in-memory index exactly these packs, standing for every index file now
        stored (prune, which has read them all, or has just rewritten them)."""
        index = _new_index()
        for pack_id, entries in packs.items():
            index.add_pack(pack_id, entries)
        index.compact()
        self.index = index
        self._index_files = {info.handle.name for info in self.backend.list(FileType.INDEX)}

    def read_unindexed_packs(
        self, sizes: Mapping[Id, int], known: set[Id]
    ) -> tuple[dict[Id, list[PackEntry]], dict[Id, str]]:
        """Reads the headers of the packs in `sizes` that are not in `known` (see
        `read_pack_headers`)."""
        return self.read_pack_headers({p: n for p, n in sizes.items() if p not in known})

    def read_pack_headers(
        self, sizes: Mapping[Id, int]
    ) -> tuple[dict[Id, list[PackEntry]], dict[Id, str]]:
        """Reads the headers of these packs (pack id -> size on the backend), in parallel.

        Returns the entries of those whose header is whole, and the reason for each one that is
        not (a pack cut short by a store without atomic writes, extended, or damaged).
        """
        todo = sorted(sizes)

        def read(pack_id: Id) -> list[PackEntry] | str:
            try:
                return self.read_pack_header(pack_id, sizes[pack_id])
            except IntegrityError as exc:
                return str(exc)

        found: dict[Id, list[PackEntry]] = {}
        damaged: dict[Id, str] = {}
        with ThreadPoolExecutor(8) as pool:
            for pack_id, result in zip(todo, pool.map(read, todo), strict=True):
                if isinstance(result, str):
                    damaged[pack_id] = result
                else:
                    found[pack_id] = result
        return found, damaged

    def recover_unindexed_packs(self) -> int:
        """Indexes whole packs that no index file names, so a backup run after an interrupted
        one reuses everything the interrupted one uploaded. Returns how many were indexed.

        Such packs are left by a writer killed between storing packs and writing the index
        file naming them; storing packs is atomic, so their headers are trustworthy. Packs whose
        header cannot be read are left alone (prune deletes them).
        """
        self.load_index()  # index files written by others meanwhile name packs that look unindexed
        self.index_unindexed_packs()
        return self._name_unnamed_packs()

    def index_unindexed_packs(self) -> int:
        """Adds to the in-memory index every whole pack the backend lists that no index file
        read names, from the pack's own header; returns how many. Readers call it when an
        index file was damaged (`skip_damaged`): what it described is found again. Until an
        index file names them (the first blob this handle saves writes one, as does
        `recover_unindexed_packs`), a writer does not store a snapshot using them.

        A delta whose base is stored whole neither in the index nor in these packs is left
        out (`servable_entries`): a prune killed while it deleted packs may have deleted its
        base's pack first, and a backup deduplicating against it would save a snapshot that
        cannot be restored."""
        listed = self.list_packs()
        self._forget_unlisted_packs(listed)
        found, _ = self.read_unindexed_packs(listed, self.index.pack_ids())
        found, _ = servable_entries(found, self.index, deltas.max_depth(self.config.delta_chains))
        for pack_id, entries in found.items():
            self.index.add_pack(pack_id, entries)
        self._unnamed.update(found)
        return len(found)

    def _name_unnamed_packs(self) -> int:
        """Writes one index file naming the packs read from their headers (SPEC.md section
        11, rules 2 and 7); returns how many."""
        found, self._unnamed = self._unnamed, {}
        listed = self.index.pack_ids()
        found = {p: entries for p, entries in found.items() if p in listed}
        if found:
            self.write_index(IndexFile(packs=found))
        return len(found)

    # -- blobs ----------------------------------------------------------------------------
    def _writer(self) -> Packer:
        with self._packer_lock:
            if self._packer is None:
                if not self._packs_listed:
                    self._forget_unlisted_packs(self.list_packs())
                self._name_unnamed_packs()  # it may deduplicate against them
                self._packer = Packer(
                    self.backend,
                    self._sealer,
                    self._master.id_key,
                    self.index,
                    pack_size=self.config.pack_size,
                    compression_level=self.config.compression_level,
                    on_pack_stored=self._pack_stored,
                    uploads=self.connections,
                    load_base=self.reader.offered_base if self.config.deltas else None,
                )
            return self._packer

    def _pack_stored(self, pack_id: Id, entries: list[PackEntry], size: int) -> None:
        batch = None
        with self._unindexed_lock:
            self.bytes_uploaded += size
            self._unindexed[pack_id] = entries
            if len(self._unindexed) >= PACKS_PER_INDEX_FILE:
                batch, self._unindexed = self._unindexed, {}
        if batch:
            self.write_index(IndexFile(packs=batch))

    def save_blob(
        self, blob_type: BlobType, data: bytes, *, blob_id: Id | None = None, bases: Sequence[Offer | Id] = ()
    ) -> SavedBlob:
        """Stores a blob unless the repository has it. `bases` are the delta bases offered
        (`delta_offer`; a plain id is offered as itself when the rules allow a delta on it);
        `blob_id` saves hashing again when the caller did."""
        return self._writer().save(blob_type, data, blob_id=blob_id, bases=self._offers(bases))

    def submit_blob(
        self, blob_type: BlobType, data: bytes, *, blob_id: Id | None = None, bases: Sequence[Offer | Id] = ()
    ) -> Future[SavedBlob]:
        return self._writer().submit(blob_type, data, blob_id=blob_id, bases=self._offers(bases))

    def _offers(self, bases: Sequence[Offer | Id]) -> list[Offer]:
        offers = (b if isinstance(b, Offer) else self.offer_against(b) for b in bases)
        return [o for o in offers if o is not None]

    def delta_base_of(self, blob_id: bytes) -> Id | None:
        """The base of a blob stored as a delta (None for a whole blob or an unknown one)."""
        location = self.index.lookup(blob_id)
        if location is None or not location.is_delta:
            return None
        candidates = deltas.base_candidates(self.index, location)
        return candidates[0] if len(candidates) == 1 else None

    def delta_offer(self, candidate: bytes) -> Offer | None:
        """The base a new version of the data blob `candidate` may be stored against, by the
        repository's delta rules (SPEC.md section 6); None when it offers none."""
        if not self.config.deltas:
            return None
        return self.delta_offers([candidate])[0]

    def delta_offers(self, candidates: Sequence[bytes]) -> list[Offer | None]:
        """`delta_offer` for many candidates at once (a parent file's chunks, a block at a
        time)."""
        if not self.config.deltas:
            return [None] * len(candidates)
        return deltas.offers(self.index, candidates, self.config.delta_chains)

    def offer_against(self, base: bytes) -> Offer | None:
        """`base` itself as a delta base, when the rules allow one more delta on it."""
        if not self.config.deltas:
            return None
        return deltas.offer_against(self.index, base, self.config.delta_chains)

    def flush(self) -> None:
        """Stores every pending pack, then an index file naming them (packs before index)."""
        if self._packer is not None:
            self._packer.flush()
        with self._unindexed_lock:
            batch, self._unindexed = self._unindexed, {}
        if batch:
            self.write_index(IndexFile(packs=batch))

    def has_blob(self, blob_id: bytes) -> bool:
        return self.index.lookup(blob_id) is not None

    def load_blob(self, blob_type: BlobType, wanted: bytes) -> bytes:
        """Reads, decrypts and verifies one blob; tries every pack that holds it."""
        return self.reader.load(blob_type, wanted)

    def read_blobs(
        self, requests: Iterable[tuple[BlobType, Id]], *, window_bytes: int = WINDOW_BYTES
    ) -> Iterator[BlobRead]:
        """Many blobs, planned by pack and fetched in parallel (`BlobReader.read`): one result
        per request, in order, damage reported as a value. Two windows of `window_bytes`
        stored bytes are in memory at most, as plaintext."""
        return self.reader.read(requests, window_bytes=window_bytes)

    def prefetch_trees(self, tree_ids: Iterable[Id]) -> None:
        """Warms the tree cache with these trees in one planned read (`BlobReader.prefetch_trees`)."""
        self.reader.prefetch_trees(tree_ids)

    def read_each_blob(
        self, requests: Iterable[tuple[BlobType, Id]], consume: Callable[[BlobRead], None]
    ) -> None:
        """Many blobs, each handed to `consume` on a worker thread as it comes in
        (`BlobReader.read_each`)."""
        self.reader.read_each(requests, consume)

    def decode_blob(
        self,
        blob_type: BlobType,
        wanted: bytes,
        envelope: bytes | memoryview,
        plain_length: int | None,
        *,
        base_key: int | None = None,
        allow_delta: bool = True,
        base: bytes | None = None,
    ) -> bytes:
        """Decrypts and decompresses a blob read from a pack, and checks it against its id; a
        delta is rebuilt on `base` when given (the plaintext of the blob it names, already
        checked), else on its base read through the index."""
        return self.reader.decode(
            blob_type, Id(bytes(wanted)), envelope, plain_length, base_key=base_key, allow_delta=allow_delta, base=base
        )

    def read_pack_header(self, pack_id: Id, size: int | None = None) -> list[PackEntry]:
        handle = Handle(FileType.PACK, pack_id.hex())
        if size is None:
            size = self.backend.stat(handle).size
        tail_len = min(size, _PACK_TAIL_GUESS)
        tail = self.backend.load(handle, size - tail_len, tail_len)
        start, header = pack.split_tail(tail, size)
        if header is None:
            header = self.backend.load(handle, start, size - pack.TRAILER_SIZE - start)
        return self.parse_pack_header(header, start)

    def parse_pack_header(self, header_envelope: bytes, header_offset: int) -> list[PackEntry]:
        plaintext = compression.decompress(self._opener.open(Kind.PACK_HEADER, header_envelope))
        entries = pack.decode_header(plaintext)
        pack.check_entries_fit(entries, header_offset)
        return entries

    def plain_lengths(self, ids: bytes) -> np.ndarray:
        """Plaintext lengths of a run of 32-byte blob ids (-1 where not indexed), vectorised."""
        return self.index.plain_lengths_of_run(ids)

    def lookup(self, blob_id: bytes) -> BlobLocation | None:
        return self.index.lookup(blob_id)

    def stored_blob_bytes(self) -> int:
        """What the blobs of the loaded index take in their packs (pack headers, index,
        snapshots and keys left out): the repository's size without a listing."""
        return self.index.stored_bytes()

    # -- whole packs (prune) --------------------------------------------------------------
    def list_packs(self) -> dict[Id, int]:
        """Every pack on the backend with its size (names that are not ids are ignored)."""
        packs = {}
        for info in self.backend.list(FileType.PACK):
            try:
                packs[Id.from_hex(info.handle.name)] = info.size
            except ValueError:
                continue
        return packs

    def load_pack(self, pack_id: Id) -> bytes:
        return self.backend.load(Handle(FileType.PACK, pack_id.hex()))

    def write_pack(self, blobs: list[PackBlob]) -> tuple[Id, list[PackEntry], int]:
        """Stores a pack of existing blob envelopes (deltas stay deltas), unindexed."""
        return store_pack(self.backend, self._sealer, self.config.compression_level, blobs)

    def whole_blob(self, blob_type: BlobType, blob_id: Id, plaintext: bytes) -> PackBlob:
        """A blob's envelope stored whole, as the packer frames a blob with no delta (compressed
        at the repository's level, sealed as its kind), ready for `write_pack`: prune re-bases
        a delta this way (SPEC.md section 11)."""
        framed = compression.compress(plaintext, self.config.compression_level)
        return PackBlob(blob_type, blob_id, self._sealer.seal(BLOB_KIND[blob_type], framed), len(plaintext))

    # -- whole objects: snapshots, index files, locks -------------------------------------
    def save_config(self, config: RepositoryConfig) -> None:
        """Replaces the repository's config (a migration adding a feature, SPEC.md section 3);
        the caller holds the exclusive lock."""
        self.backend.save(Handle(FileType.CONFIG), self._sealer.seal(Kind.CONFIG, compression.compress(config.encode())))
        self.config = config

    def save_object(self, file_type: FileType, plaintext: bytes) -> Id:
        if file_type is FileType.SNAPSHOT:
            self._check_lock()
        sealed = self._sealer.seal(OBJECT_KIND[file_type], compression.compress(plaintext))
        name = object_id(sealed)
        self.backend.save(Handle(file_type, name.hex()), sealed)
        return name

    def load_object(self, file_type: FileType, name: str) -> bytes:
        """The plaintext of a snapshot, index file or lock; an IntegrityError names the object
        (an object that is whole but was sealed with another repository's key passes the name
        check and fails authentication)."""
        sealed = self.backend.load(Handle(file_type, name))
        if file_type is not FileType.LOCK and object_id(sealed).hex() != name:
            raise IntegrityError(f"{file_type.value}/{name} does not match its name: damaged")
        where = f"{file_type.value}/{name[:16]}"
        try:
            return compression.decompress(self._opener.open(OBJECT_KIND[file_type], sealed))
        except AuthenticationFailed:
            raise AuthenticationFailed(
                f"{where}: ciphertext failed authentication (damaged, or written by another "
                "repository)"
            ) from None
        except IntegrityError as exc:
            raise type(exc)(f"{where}: {exc}") from None

    def list_objects(self, file_type: FileType) -> Iterator[FileInfo]:
        return self.backend.list(file_type)

    def remove_object(self, file_type: FileType, name: str) -> None:
        self.backend.remove(Handle(file_type, name))

    def close(self) -> None:
        """Waits for uploads under way, indexes every stored pack, releases the lock.

        After an interruption (Ctrl-C, SIGTERM) this keeps what was uploaded: the packs stored
        so far get an index file, so the next backup reuses them.
        """
        try:
            if self._packer is not None:
                self._packer.close()
                self._packer = None
                with self._unindexed_lock:
                    batch, self._unindexed = self._unindexed, {}
                if batch:
                    try:
                        self.write_index(IndexFile(packs=batch))
                    except SnapstoreError:
                        pass  # the packs stay unindexed; the next backup recovers them
        finally:
            try:
                self.unlock()
            finally:
                self.backend.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def servable_entries(
    packs: Mapping[Id, list[PackEntry]], index: BlobIndex, max_depth: int = deltas.MAX_DEPTH
) -> tuple[dict[Id, list[PackEntry]], int]:
    """These packs' entries without the deltas whose chain reaches no whole copy, in `index` or
    among them, within `max_depth` deltas (a pack left with no entry is left out), and how
    many deltas went. Packs read from their own headers are indexed through this (resume,
    repair index)."""
    depths = deltas.entry_depths(
        (e for entries in packs.values() for e in entries),
        max_depth,
        outside=lambda base: deltas.depth(index, base, limit=max_depth - 1),
    )
    kept: dict[Id, list[PackEntry]] = {}
    dropped = 0
    for pack_id, entries in packs.items():
        serving = [e for e in entries if deltas.entry_depth(e, depths, max_depth) is not None]
        dropped += len(entries) - len(serving)
        if serving:
            kept[pack_id] = serving
    return kept, dropped


class _LockListings:
    """The repository as its lock reaches it, noting the names each listing of locks/ showed."""

    def __init__(self, repo: Repository) -> None:
        self._repo = repo
        self.seen: set[str] = set()

    def save_object(self, file_type: FileType, plaintext: bytes) -> Id:
        return self._repo.save_object(file_type, plaintext)

    def load_object(self, file_type: FileType, name: str) -> bytes:
        return self._repo.load_object(file_type, name)

    def remove_object(self, file_type: FileType, name: str) -> None:
        self._repo.remove_object(file_type, name)

    def list_objects(self, file_type: FileType) -> Iterator[FileInfo]:
        found = list(self._repo.list_objects(file_type))
        if file_type is FileType.LOCK:
            self.seen = {info.handle.name for info in found}
        return iter(found)


def _load_config(backend: Backend) -> bytes:
    try:
        return backend.load(Handle(FileType.CONFIG))
    except ObjectNotFound:
        raise RepositoryNotFound(f"no repository at {backend.location}") from None


def _exists(backend: Backend, handle: Handle) -> bool:
    try:
        backend.stat(handle)
        return True
    except ObjectNotFound:
        return False
