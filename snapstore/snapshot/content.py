"""A file's chunk ids: inline in its tree node, or in chunk-list blobs for big files.

A 100 GB dump cut at 64 KiB has 1.6 million chunks; listing all of them in the tree node
would store 51 MB of ids anew every day. Instead, the ids of a file with more than
`INLINE_CHUNK_LIMIT` chunks go into chunk-list blobs (SPEC.md section 9): data blobs whose
plaintext is a run of 32-byte chunk ids. The list is cut after every id whose last two bytes
(u16 little-endian) are divisible by `LIST_CUT_MODULUS`, or after `LIST_MAX_IDS` ids: the
cuts depend only on the ids themselves, so an unchanged stretch of a dump yields the same
list blobs day after day, and a changed one can be stored as a delta against yesterday's.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from snapstore.errors import IntegrityError
from snapstore.ids import ID_SIZE, Id
from snapstore.pack import BlobType
from snapstore.repository.repository import Repository
from snapstore.snapshot.tree import Node

#: Files with more chunks than this list them in chunk-list blobs.
INLINE_CHUNK_LIMIT = 1024
#: A chunk list is cut after an id whose last two bytes (u16 LE) are divisible by this...
LIST_CUT_MODULUS = 2048
#: ...or after this many ids, whichever comes first.
LIST_MAX_IDS = 8192


def split_chunk_list(
    ids: Sequence[bytes], modulus: int = LIST_CUT_MODULUS, max_ids: int = LIST_MAX_IDS
) -> list[bytes]:
    """Cuts a file's chunk ids into chunk-list plaintexts (see the module docstring)."""
    return split_id_run(b"".join(bytes(b) for b in ids), modulus, max_ids)


def split_id_run(
    run: bytes, modulus: int = LIST_CUT_MODULUS, max_ids: int = LIST_MAX_IDS
) -> list[bytes]:
    """`split_chunk_list` for ids already laid end to end: a million ids, no million objects."""
    count = len(run) // ID_SIZE
    if count * ID_SIZE != len(run):
        raise ValueError("a run of ids must be a multiple of 32 bytes")
    import numpy as np  # here: reading snapshots needs no numpy

    ids = np.frombuffer(run, dtype=np.uint8).reshape(count, ID_SIZE)
    tails = ids[:, -2].astype(np.uint32) | (ids[:, -1].astype(np.uint32) << 8)
    content_cuts = np.flatnonzero(tails % modulus == 0).tolist()
    lists: list[bytes] = []
    start = 0
    for last in [*content_cuts, count - 1]:  # cut after `last`; the end is a cut too
        while last + 1 - start > max_ids:  # forced cuts inside a long run
            lists.append(run[start * ID_SIZE : (start + max_ids) * ID_SIZE])
            start += max_ids
        if last >= start:
            lists.append(run[start * ID_SIZE : (last + 1) * ID_SIZE])
            start = last + 1
    return lists


def parse_chunk_list(plaintext: bytes) -> list[Id]:
    if not plaintext or len(plaintext) % ID_SIZE:
        raise IntegrityError(f"chunk list of {len(plaintext)} bytes is not a run of ids")
    return [Id(plaintext[i : i + ID_SIZE]) for i in range(0, len(plaintext), ID_SIZE)]


def read_chunk_list(repo: Repository, list_id: Id) -> list[Id]:
    """The chunk ids one chunk-list blob names, in order (the one place lists are read)."""
    return parse_chunk_list(repo.load_blob(BlobType.DATA, list_id))


def iter_chunk_ids(repo: Repository, node: Node) -> Iterator[Id]:
    """The file's data blob ids in order, reading one chunk-list blob at a time."""
    if not node.content_lists:
        yield from node.content
        return
    for list_id in node.content_lists:
        yield from read_chunk_list(repo, list_id)


def chunk_ids(repo: Repository, node: Node) -> list[Id]:
    return list(iter_chunk_ids(repo, node))
