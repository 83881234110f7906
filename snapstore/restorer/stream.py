"""A file's content as a stream of blobs, read ahead in parallel with a bounded window.

The blob ids come as any iterable, typically `snapshot.content.iter_chunk_ids`, which reads
a big file's chunk-list blobs one at a time: a file of 1.6 million chunks is streamed without
its id list ever being held whole. Delta blobs are rebuilt by `Repository.load_blob`.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

from snapstore.ids import Id
from snapstore.pack import BlobType
from snapstore.repository.repository import Repository
from snapstore.snapshot.content import iter_chunk_ids
from snapstore.snapshot.tree import Node

READ_AHEAD = 8


def iter_content(
    repo: Repository, blob_ids: Iterable[Id], pool: ThreadPoolExecutor | None = None
) -> Iterator[bytes]:
    """Yields the plaintext of each blob in order, keeping at most READ_AHEAD in flight.

    The ids are consumed lazily, at most READ_AHEAD ahead of the blob last yielded.
    """
    ids = iter(blob_ids)
    head = list(itertools.islice(ids, 2))
    if len(head) <= 1 or pool is None:  # one blob, or no threads: read in this thread
        for blob_id in itertools.chain(head, ids):
            yield repo.load_blob(BlobType.DATA, blob_id)
        return
    window: deque[Future[bytes]] = deque()
    try:
        for blob_id in itertools.chain(head, ids):
            window.append(pool.submit(repo.load_blob, BlobType.DATA, blob_id))
            if len(window) >= READ_AHEAD:
                yield window.popleft().result()
        while window:
            yield window.popleft().result()
    finally:
        for future in window:
            future.cancel()


def stream_content(repo: Repository, blob_ids: Iterable[Id]) -> Iterator[bytes]:
    """Like `iter_content`, with its own read-ahead threads (for dump and restore-to-pipe)."""
    with ThreadPoolExecutor(READ_AHEAD, thread_name_prefix="snapstore-read") as pool:
        yield from iter_content(repo, blob_ids, pool)


def file_content(
    repo: Repository, node: Node, pool: ThreadPoolExecutor | None = None
) -> Iterator[bytes]:
    """A file node's content, blob by blob, whether its chunks are inline or in chunk lists."""
    return iter_content(repo, iter_chunk_ids(repo, node), pool)


def stream_file(repo: Repository, node: Node) -> Iterator[bytes]:
    """Like `file_content`, with its own read-ahead threads."""
    return stream_content(repo, iter_chunk_ids(repo, node))
