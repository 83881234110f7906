"""Opening a repository hands each index file's stored records to the in-memory index at
once (`BlobIndex.add_records`): what it loads matches what the writer's index held, blob for
blob, across many index files, duplicates and later loads."""

from __future__ import annotations

import os

from snapstore.backend.base import FileType
from snapstore.index.codec import IndexFile
from snapstore.pack import BlobType
from snapstore.repository.repository import Repository
from tests.conftest import assert_repository_ok, reopen


def save_some(repo: Repository, count: int, tree_every: int = 5) -> list[bytes]:
    ids = []
    for n in range(count):
        blob_type = BlobType.TREE if n % tree_every == 0 else BlobType.DATA
        ids.append(bytes(repo.save_blob(blob_type, os.urandom(200 + n)).id))
    repo.flush()  # one index file per flush
    return ids


def test_an_opened_index_matches_the_writers(repo: Repository) -> None:
    ids = [blob_id for _ in range(5) for blob_id in save_some(repo, 60)]
    assert len(list(repo.backend.list(FileType.INDEX))) == 5
    again = reopen(repo)
    assert len(again.index) == len(repo.index) == 300
    assert dict(again.index.entries()) == dict(repo.index.entries())
    unknown = os.urandom(32)
    assert again.index.lookup_run(b"".join(ids) + unknown) == [
        repo.index.lookup(i) for i in ids
    ] + [None]
    assert [again.index.lookup(i) for i in ids] == [repo.index.lookup(i) for i in ids]
    assert again.index.lookup(ids[0]).type is BlobType.TREE  # type: ignore[union-attr]
    assert_repository_ok(repo)


def test_a_later_load_adds_the_new_files_only(repo: Repository) -> None:
    first = save_some(repo, 40)
    again = reopen(repo)
    assert len(again.index) == 40
    second = save_some(repo, 30)  # another writer, meanwhile
    again.load_index()
    assert len(again.index) == 70
    assert len(again.index._runs) == 1  # compacted
    assert [again.index.lookup(i) for i in first + second] == [
        repo.index.lookup(i) for i in first + second
    ]
    again.load_index()  # nothing new
    assert len(again.index) == 70
    assert_repository_ok(repo)


def test_a_blob_named_by_two_index_files(repo: Repository) -> None:
    """An index file naming a pack another one names too (a repair, a resumed backup): both
    copies are listed, as add_pack would list them."""
    save_some(repo, 20)
    again = reopen(repo)
    pack_id, entries = next(iter(again.read_index_files()[0][1].packs.items()))
    repo.write_index(IndexFile(packs={pack_id: entries[:3]}))
    third = reopen(repo)
    assert len(third.index) == 23
    for entry in entries[:3]:
        locations = third.index.lookup_all(entry.id)
        assert len(locations) == 2 and locations[0] == locations[1]
        assert locations[0].pack_id == pack_id and locations[0].offset == entry.offset
    assert_repository_ok(repo)
