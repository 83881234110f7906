"""A file's content as a stream of blobs, in order, for dump and restore into a program.

The blob ids come from `snapshot.content.iter_chunk_ids`, which reads a big file's chunk-list
blobs one at a time, and go to the blob reader a window at a time: each window is planned by
pack (one read per stretch of a pack) and the next window is fetched while this one is written,
so a file of 1.6 million chunks streams in constant memory with its reads in parallel.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from snapstore.ids import Id
from snapstore.pack import BlobType
from snapstore.repository.repository import Repository
from snapstore.snapshot.content import iter_chunk_ids
from snapstore.snapshot.tree import Node


def stream_content(repo: Repository, blob_ids: Iterable[Id]) -> Iterator[bytes]:
    """The plaintext of each blob in order; the first damaged one raises (naming it)."""
    for result in repo.read_blobs((BlobType.DATA, blob_id) for blob_id in blob_ids):
        if result.error is not None:
            raise result.error
        assert result.data is not None
        yield result.data


def stream_file(repo: Repository, node: Node) -> Iterator[bytes]:
    """A file node's content, blob by blob, whether its chunks are inline or in chunk lists."""
    return stream_content(repo, iter_chunk_ids(repo, node))
