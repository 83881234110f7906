"""`check --read-data`: read packs whole, verify their names, headers and every blob.

Packs are read and their whole blobs verified on worker threads, pack by pack. A delta blob
needs its base's plaintext, and a base in a repository with chains is itself a delta resting on
deltas: rebuilding each delta's base on its own from the bottom of its chain would cost a
repository of a month's nights as many rebuilds as it has deltas times their depth. So a delta
is put aside with its envelope, and the deltas of many packs are verified together, chain by
chain (`_verify_deltas`): each base the batch does not hold is read once through the blob
reader, the deltas resting on it are rebuilt on its plaintext, those resting on them on
theirs, and so on up each chain, every level rebuilt and checked against its id once, with only
one path of plaintexts per chain in memory.

When a delta does not rebuild that way, it is read again on its own through the reader, and if
that fails because the base cannot serve (missing, damaged, or its chain too deep) the fault is
the base's: its own pack is reported damaged when read, and the delta gets a blob finding of its
own instead of making its intact pack look damaged.
"""

from __future__ import annotations

import threading
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from snapstore import pack
from snapstore.checker import findings as F
from snapstore.checker.findings import Finding
from snapstore.crypto.idhash import object_id
from snapstore.errors import BackendError, ObjectNotFound, SnapstoreError
from snapstore.ids import Id
from snapstore.index import deltas
from snapstore.pack import BlobType
from snapstore.repository.repository import Repository

#: Envelope bytes of deltas put aside before they are verified together: the more packs a
#: batch holds, the fewer of its deltas' bases are read from outside it.
_BATCH_BYTES = 48 * 1024 * 1024
#: Deltas put aside before they are verified together, whatever their size.
_BATCH_DELTAS = 100_000

#: Stored bytes of the bases outside a batch read at once: whole blobs, mostly, of a database
#: dump, whose plaintext is three times as large and waits for its chains in memory.
_ROOTS_WINDOW = 8 * 1024 * 1024

PackResult = tuple[Id, Finding | None, list[Finding]]


def selected(pack_id: Id, subset: tuple[int, int] | None) -> bool:
    if subset is None:
        return True
    n, m = subset
    return int.from_bytes(pack_id[:4], "big") % m == n - 1


class BaseVerdicts:
    """Whether each delta base can serve (a data blob that reads back to its id, rebuilt from
    a chain within the repository's depth), decided once per check however many deltas share
    the base."""

    def __init__(self, repo: Repository) -> None:
        self._repo = repo
        self._verdicts: dict[bytes, str | None] = {}
        self._lock = threading.Lock()

    def problem(self, base_id: Id) -> str | None:
        """Why the base cannot serve, or None when it can."""
        with self._lock:
            if bytes(base_id) in self._verdicts:
                return self._verdicts[bytes(base_id)]
        verdict = self._judge(base_id)
        with self._lock:
            self._verdicts[bytes(base_id)] = verdict
        return verdict

    def _judge(self, base_id: Id) -> str | None:
        locations = self._repo.index.lookup_all(base_id)
        if not locations:
            return "it is not in the index"
        levels = deltas.max_depth(self._repo.config.delta_chains) - 1
        if levels == 0 and not deltas.whole_copies(self._repo.index, base_id):
            return "it is itself stored as a delta (chains are one level deep)"
        try:
            self._repo.reader.base(base_id, base_id, levels)
        except SnapstoreError as exc:
            return str(exc)
        return None


@dataclass
class _PackVerdict:
    """What reading one pack found; complete once the deltas put aside from it are verified."""

    pack_id: Id
    blobs: int
    problem: str = ""  # the pack as a whole: its name or header
    bad_blobs: int = 0
    first_error: str = ""
    delta_findings: list[Finding] = field(default_factory=list)

    def blob_damaged(self, blob_id: Id, exc: SnapstoreError) -> None:
        self.bad_blobs += 1
        self.first_error = self.first_error or f"blob {blob_id.hex()[:16]}: {exc}"

    def result(self) -> PackResult:
        problem = self.problem
        if self.bad_blobs:
            damaged = f"{self.bad_blobs} of {self.blobs} blobs damaged ({self.first_error})"
            problem = (problem + "; " if problem else "") + damaged
        elif self.first_error and not problem:
            return self.pack_id, Finding(F.PACK_DAMAGED, self.pack_id.hex(), self.first_error, error=False), self.delta_findings
        finding = Finding(F.PACK_DAMAGED, self.pack_id.hex(), problem) if problem else None
        return self.pack_id, finding, self.delta_findings


@dataclass
class _Delta:
    """A delta blob read from a pack, put aside until its base's plaintext is at hand."""

    verdict: _PackVerdict
    type: BlobType
    id: Id
    base: Id
    envelope: bytes
    plain_length: int
    indexed: bool  # an index names this copy (else a leftover nothing reads)


def verify_pack(repo: Repository, pack_id: Id, indexed: set[tuple[bytes, int, int]]) -> tuple[_PackVerdict, list[_Delta]]:
    """Reads one pack and checks its name, its header and every whole blob in it; returns what
    it found and the pack's deltas, put aside for `_verify_deltas`."""
    try:
        data = repo.load_pack(pack_id)
    except BackendError as exc:
        if not isinstance(exc, ObjectNotFound):
            raise  # the store failed, not the pack: the check cannot go on
        return _PackVerdict(pack_id, 0, f"cannot be read: {exc}"), []
    verdict = _PackVerdict(pack_id, 0)
    if object_id(data) != pack_id:
        verdict.problem = "content does not match its name (bytes changed or truncated)"
    try:
        start, header = pack.split_tail(data, len(data))
        assert header is not None
        entries = repo.parse_pack_header(header, start)
    except SnapstoreError as exc:
        problem = verdict.problem + "; " if verdict.problem else ""
        return _PackVerdict(pack_id, 0, f"{problem}header unreadable: {exc}"), []
    verdict.blobs = len(entries)
    put_aside: list[_Delta] = []
    view = memoryview(data)
    for entry in entries:
        is_indexed = (bytes(entry.id), entry.offset, entry.length) in indexed
        if not is_indexed:
            verdict.first_error = verdict.first_error or f"blob {entry.id.hex()[:16]} in the pack is not indexed there"
        envelope = view[entry.offset : entry.offset + entry.length]
        if entry.base is not None:
            put_aside.append(_Delta(verdict, entry.type, entry.id, entry.base, bytes(envelope), entry.plain_length, is_indexed))
            continue
        try:
            repo.decode_blob(entry.type, entry.id, envelope, entry.plain_length)
        except SnapstoreError as exc:
            verdict.blob_damaged(entry.id, exc)
    return verdict, put_aside


def _verify_deltas(repo: Repository, batch: list[_Delta], bases: BaseVerdicts) -> None:
    """Verifies the deltas put aside, chain by chain, and records what is wrong in their
    packs' verdicts. Each base outside the batch is read once (by pack, on the reader's
    threads); the deltas resting on it are rebuilt on its plaintext, then those resting on
    them, up each chain: every delta is rebuilt once, from a base already checked against its
    id, and a chain never holds more than its path's plaintexts. The rebuilding is done here,
    on one thread: each delta's native steps are short, and two threads passing the GIL
    around them were slower than one (13.3-14.0 s against 10.8-10.9 s for a 20-night
    repository on a 2-core VM). A delta that does not rebuild so (a chain deeper than the
    repository allows, a damaged base, a bad envelope) is then read on its own
    (`_verify_alone`), which says whose fault it is."""
    resting_on: dict[bytes, list[_Delta]] = defaultdict(list)
    for item in batch:
        resting_on[bytes(item.base)].append(item)
    in_batch = {bytes(item.id) for item in batch}
    outside = [Id(base) for base in resting_on if base not in in_batch]
    max_depth = deltas.max_depth(repo.config.delta_chains)
    depths = deltas.ChainDepths(repo.index)
    verified: set[int] = set()  # id() of the items rebuilt on a checked base
    climbed: set[bytes] = set()
    for read in repo.read_blobs(((BlobType.DATA, base) for base in outside), window_bytes=_ROOTS_WINDOW):
        depth = depths(read.id, max_depth)
        if read.data is None or depth is None:
            continue
        path: list[tuple[bytes, int, Iterator[_Delta]]] = [(read.data, depth, iter(resting_on[bytes(read.id)]))]
        while path:
            base, depth, above = path[-1]
            upper = next(above, None)
            if upper is None:
                path.pop()
                continue
            if depth >= max_depth:
                continue
            try:
                data = repo.decode_blob(upper.type, upper.id, upper.envelope, upper.plain_length, base=base)
            except SnapstoreError:
                continue
            verified.add(id(upper))
            key = bytes(upper.id)
            if key not in climbed:
                climbed.add(key)
                path.append((data, depth + 1, iter(resting_on.get(key, ()))))
    for item in batch:
        if id(item) not in verified:
            _verify_alone(repo, item, bases)


def _verify_alone(repo: Repository, item: _Delta, bases: BaseVerdicts) -> None:
    """Verifies a delta with its base read through the reader, and says whose fault it is when
    it does not rebuild: the delta's own pack's, or, when the base cannot serve, the base's."""
    try:
        repo.decode_blob(item.type, item.id, item.envelope, item.plain_length)
        return
    except SnapstoreError as exc:
        fault = bases.problem(item.base)
        if fault is None:
            item.verdict.blob_damaged(item.id, exc)
            return
    pack_name = item.verdict.pack_id.hex()[:16]
    if not item.indexed:  # no index names it here: a leftover nothing reads, prune's to drop
        item.verdict.delta_findings.append(
            Finding(
                F.BLOB_DAMAGED,
                item.id.hex(),
                f"delta blob in pack {pack_name}, where no index names it, whose base "
                f"{item.base.hex()} cannot serve ({fault}): a leftover of an interrupted prune "
                "or backup that no backup will use; `snapstore prune` removes it",
                error=False,
            )
        )
        return
    item.verdict.delta_findings.append(
        Finding(
            F.BLOB_DAMAGED,
            item.id.hex(),
            f"delta blob in pack {pack_name} whose base {item.base.hex()} cannot serve: {fault}",
        )
    )


def read_packs(
    repo: Repository,
    packs: list[Id],
    indexed: dict[Id, set[tuple[bytes, int, int]]],
    time_up: Callable[[], bool] | None = None,
) -> Iterator[PackResult]:
    """Verifies `packs`, read in the order given; yields each pack's finding and its delta
    blobs' findings. A pack without deltas is yielded once read, one with deltas once they are
    verified with a batch of others (so not in the order given). When `time_up` says so, no
    further pack is started (the first always is): the packs already being read are finished
    and yielded, and the walk ends."""
    bases = BaseVerdicts(repo)
    workers = max(repo.connections, 1)  # packs read at once: each is in memory whole
    todo = iter(packs)
    reading: deque[Future[tuple[_PackVerdict, list[_Delta]]]] = deque()
    waiting: list[_PackVerdict] = []
    batch: list[_Delta] = []
    batch_bytes = 0
    started = False
    with ThreadPoolExecutor(workers) as pool:
        while True:
            while len(reading) < 2 * workers and not (started and time_up is not None and time_up()):
                pack_id = next(todo, None)
                if pack_id is None:
                    break
                reading.append(pool.submit(verify_pack, repo, pack_id, indexed.get(pack_id, set())))
                started = True
            if not reading:
                break
            verdict, put_aside = reading.popleft().result()
            if not put_aside:
                yield verdict.result()
                continue
            waiting.append(verdict)
            batch += put_aside
            batch_bytes += sum(len(item.envelope) for item in put_aside)
            if batch_bytes >= _BATCH_BYTES or len(batch) >= _BATCH_DELTAS:
                _verify_deltas(repo, batch, bases)
                yield from (done.result() for done in waiting)
                waiting, batch, batch_bytes = [], [], 0
    if batch:
        _verify_deltas(repo, batch, bases)
        yield from (done.result() for done in waiting)
