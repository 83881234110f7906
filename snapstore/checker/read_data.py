"""`check --read-data`: read packs whole, verify their names, headers and every blob.

A delta blob is rebuilt from its base, read through the index. When that fails because the
base cannot serve (missing, damaged, or its chain too deep), the fault is the base's: its own pack
is reported damaged when read, and the delta gets a blob finding of its own instead of making
its intact pack look damaged.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

from snapstore import pack
from snapstore.checker import findings as F
from snapstore.checker.findings import Finding
from snapstore.crypto.idhash import object_id
from snapstore.errors import BackendError, ObjectNotFound, SnapstoreError
from snapstore.ids import Id
from snapstore.index import deltas
from snapstore.pack import BlobType, PackEntry
from snapstore.repository.repository import Repository


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


def verify_pack(
    repo: Repository,
    pack_id: Id,
    indexed: set[tuple[bytes, int, int]],
    bases: BaseVerdicts | None = None,
) -> tuple[Finding | None, list[Finding]]:
    """Reads one pack and checks it end to end.

    Returns the pack's finding (None when it is whole) and findings for delta blobs in it that
    cannot be rebuilt because their base cannot serve.
    """
    bases = bases or BaseVerdicts(repo)
    try:
        data = repo.load_pack(pack_id)
    except BackendError as exc:
        if not isinstance(exc, ObjectNotFound):
            raise  # the store failed, not the pack: the check cannot go on
        return Finding(F.PACK_DAMAGED, pack_id.hex(), f"cannot be read: {exc}"), []
    if object_id(data) != pack_id:
        problem = "content does not match its name (bytes changed or truncated)"
    else:
        problem = ""
    try:
        start, header = pack.split_tail(data, len(data))
        assert header is not None
        entries = repo.parse_pack_header(header, start)
    except SnapstoreError as exc:
        return Finding(F.PACK_DAMAGED, pack_id.hex(), f"{problem + '; ' if problem else ''}header unreadable: {exc}"), []
    bad_blobs = 0
    first_error = ""
    deltas: list[Finding] = []
    view = memoryview(data)
    base_of: dict[bytes, bytes] = {}
    for n, entry in enumerate(entries):
        if (bytes(entry.id), entry.offset, entry.length) not in indexed:
            first_error = first_error or f"blob {entry.id.hex()[:16]} in the pack is not indexed there"
        if entry.base is not None and bytes(entry.base) not in base_of:
            base_of = _bases_ahead(repo, entries[n : n + _BASES_AT_ONCE])
        try:
            repo.reader.decode(
                entry.type,
                entry.id,
                view[entry.offset : entry.offset + entry.length],
                entry.plain_length,
                base=base_of.get(bytes(entry.base)) if entry.base is not None else None,
            )
        except SnapstoreError as exc:
            fault = None if entry.base is None else bases.problem(entry.base)
            if fault is not None:
                assert entry.base is not None
                if (bytes(entry.id), entry.offset, entry.length) not in indexed:
                    # no index names it here: a leftover nothing reads, prune's to drop
                    deltas.append(
                        Finding(
                            F.BLOB_DAMAGED,
                            entry.id.hex(),
                            f"delta blob in pack {pack_id.hex()[:16]}, where no index names it, "
                            f"whose base {entry.base.hex()} cannot serve ({fault}): a leftover "
                            "of an interrupted prune or backup that no backup will use; "
                            "`snapstore prune` removes it",
                            error=False,
                        )
                    )
                    continue
                deltas.append(
                    Finding(
                        F.BLOB_DAMAGED,
                        entry.id.hex(),
                        f"delta blob in pack {pack_id.hex()[:16]} whose base {entry.base.hex()} "
                        f"cannot serve: {fault}",
                    )
                )
                continue
            bad_blobs += 1
            first_error = first_error or f"blob {entry.id.hex()[:16]}: {exc}"
    if bad_blobs:
        problem = (problem + "; " if problem else "") + f"{bad_blobs} of {len(entries)} blobs damaged ({first_error})"
    elif first_error and not problem:
        return Finding(F.PACK_DAMAGED, pack_id.hex(), first_error, error=False), deltas
    return (Finding(F.PACK_DAMAGED, pack_id.hex(), problem) if problem else None), deltas


#: Delta bases read ahead at once while checking a pack (a pack of deltas holds thousands).
_BASES_AT_ONCE = 256


def _bases_ahead(repo: Repository, entries: list[PackEntry]) -> dict[bytes, bytes]:
    """The bases of these entries' deltas, read in one planned read (by pack, in parallel)
    rather than one request each; a base that cannot be read is left out (the delta then
    reads it on its own, and the failure is judged by `BaseVerdicts`)."""
    wanted = dict.fromkeys(bytes(e.base) for e in entries if e.base is not None)
    found = {}
    for read in repo.read_blobs((BlobType.DATA, Id(b)) for b in wanted):
        if read.data is not None:
            found[bytes(read.id)] = read.data
    return found


def read_packs(
    repo: Repository,
    packs: list[Id],
    indexed: dict[Id, set[tuple[bytes, int, int]]],
    time_up: Callable[[], bool] | None = None,
) -> Iterator[tuple[Id, Finding | None, list[Finding]]]:
    """Verifies `packs` in the order given; yields each pack's finding and its delta blobs'
    findings, in that order. When `time_up` says so, no further pack is started (the first
    always is): the packs already being read are finished and yielded, and the walk ends."""
    bases = BaseVerdicts(repo)

    def verify(pack_id: Id) -> tuple[Finding | None, list[Finding]]:
        return verify_pack(repo, pack_id, indexed.get(pack_id, set()), bases)

    todo = iter(packs)
    pending: deque[tuple[Id, Future[tuple[Finding | None, list[Finding]]]]] = deque()
    started = False
    with ThreadPoolExecutor(_WORKERS) as pool:
        while True:
            while len(pending) < 2 * _WORKERS and not (started and time_up is not None and time_up()):
                pack_id = next(todo, None)
                if pack_id is None:
                    break
                pending.append((pack_id, pool.submit(verify, pack_id)))
                started = True
            if not pending:
                return
            pack_id, future = pending.popleft()
            finding, deltas = future.result()
            yield pack_id, finding, deltas


_WORKERS = 4
