"""A file's content as a stream of blobs, read ahead in parallel with a bounded window."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from snapstore.ids import Id
from snapstore.pack import BlobType
from snapstore.repository.repository import Repository

READ_AHEAD = 8


def iter_content(
    repo: Repository, blob_ids: Sequence[Id], pool: ThreadPoolExecutor | None = None
) -> Iterator[bytes]:
    """Yields the plaintext of each blob in order, keeping at most READ_AHEAD in flight."""
    if len(blob_ids) <= 1 or pool is None:
        for blob_id in blob_ids:
            yield repo.load_blob(BlobType.DATA, blob_id)
        return
    window: deque[Future[bytes]] = deque()
    ids = iter(blob_ids)
    try:
        for blob_id in ids:
            window.append(pool.submit(repo.load_blob, BlobType.DATA, blob_id))
            if len(window) >= READ_AHEAD:
                yield window.popleft().result()
        while window:
            yield window.popleft().result()
    finally:
        for future in window:
            future.cancel()


def stream_content(repo: Repository, blob_ids: Sequence[Id]) -> Iterator[bytes]:
    """Like `iter_content`, with its own read-ahead threads (for dump and restore-to-pipe)."""
    with ThreadPoolExecutor(READ_AHEAD, thread_name_prefix="snapstore-read") as pool:
        yield from iter_content(repo, blob_ids, pool)
