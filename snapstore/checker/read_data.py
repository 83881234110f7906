"""`check --read-data`: read packs whole, verify their names, headers and every blob."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

from snapstore import pack
from snapstore.backend.base import FileType, Handle
from snapstore.checker import findings as F
from snapstore.checker.findings import Finding
from snapstore.crypto.idhash import object_id
from snapstore.errors import SnapstoreError
from snapstore.ids import Id
from snapstore.repository.repository import Repository


def selected(pack_id: Id, subset: tuple[int, int] | None) -> bool:
    if subset is None:
        return True
    n, m = subset
    return int.from_bytes(pack_id[:4], "big") % m == n - 1


def verify_pack(
    repo: Repository, pack_id: Id, indexed: set[tuple[bytes, int, int]]
) -> Finding | None:
    """Reads one pack and checks it end to end; None when it is whole."""
    try:
        data = repo.backend.load(Handle(FileType.PACK, pack_id.hex()))
    except SnapstoreError as exc:
        return Finding(F.PACK_DAMAGED, pack_id.hex(), f"cannot be read: {exc}")
    if object_id(data) != pack_id:
        problem = "content does not match its name (bytes changed or truncated)"
    else:
        problem = ""
    try:
        start, header = pack.split_tail(data, len(data))
        assert header is not None
        entries = repo.parse_pack_header(header, start)
    except SnapstoreError as exc:
        return Finding(F.PACK_DAMAGED, pack_id.hex(), f"{problem + '; ' if problem else ''}header unreadable: {exc}")
    bad_blobs = 0
    first_error = ""
    for entry in entries:
        if (bytes(entry.id), entry.offset, entry.length) not in indexed:
            first_error = first_error or f"blob {entry.id.hex()[:16]} in the pack is not indexed there"
        try:
            repo.decode_blob(
                entry.type, entry.id, data[entry.offset : entry.offset + entry.length], entry.plain_length
            )
        except SnapstoreError as exc:
            bad_blobs += 1
            first_error = first_error or f"blob {entry.id.hex()[:16]}: {exc}"
    if bad_blobs:
        problem = (problem + "; " if problem else "") + f"{bad_blobs} of {len(entries)} blobs damaged ({first_error})"
    elif first_error and not problem:
        return Finding(F.PACK_DAMAGED, pack_id.hex(), first_error, error=False)
    return Finding(F.PACK_DAMAGED, pack_id.hex(), problem) if problem else None


def read_packs(
    repo: Repository,
    on_backend: dict[Id, int],
    indexed: dict[Id, set[tuple[bytes, int, int]]],
    subset: tuple[int, int] | None,
    on_pack: Callable[[], None] | None = None,
) -> Iterator[tuple[Id, Finding | None]]:
    packs = sorted(p for p in on_backend if selected(p, subset))
    with ThreadPoolExecutor(4) as pool:
        for pack_id, finding in zip(packs, pool.map(lambda p: verify_pack(repo, p, indexed.get(p, set())), packs), strict=True):
            if on_pack is not None:
                on_pack()
            yield pack_id, finding
