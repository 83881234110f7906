"""An index file that reappears after prune deleted it must not make new backups unrestorable.

Prune writes a new index that `supersedes` the old files, then deletes them and the packs no
snapshot uses. If an old index file comes back (bucket versioning, an rsync of an old copy), it
names packs that are gone; a backup that deduplicated against them would save a snapshot that
cannot be restored. Readers skip superseded files, and writers never deduplicate against a pack
the backend does not list.
"""

from __future__ import annotations

from datetime import UTC, datetime

from snapstore.archiver.archiver import Archiver, SnapshotOptions
from snapstore.backend.base import Backend, FileType, Handle
from snapstore.prune import prune
from snapstore.repository.repository import Repository
from snapstore.restorer.stream import stream_file
from snapstore.snapshot.manifest import Snapshot
from snapstore.snapshot.store import find_node
from tests.conftest import assert_repository_ok, reopen
from tests.support.memory_source import MemorySource

WHEN = datetime(2026, 5, 1, tzinfo=UTC)
OLD = b"old content that prune deletes " * 2000
KEPT = b"content of the snapshot that stays " * 2000


def backup(repo: Repository, name: str, data: bytes) -> Snapshot:
    return Archiver(repo).run(MemorySource({name: data}), SnapshotOptions(time=WHEN)).snapshot


def index_files(backend: Backend) -> dict[str, bytes]:
    return {i.handle.name: backend.load(i.handle) for i in backend.list(FileType.INDEX)}


def forget(repo: Repository, snap: Snapshot) -> None:
    assert snap.id is not None
    repo.remove_object(FileType.SNAPSHOT, snap.id.hex())


def restored(repo: Repository, snap: Snapshot, name: str) -> bytes:
    node = find_node(repo, snap.tree, name)
    assert node is not None
    return b"".join(stream_file(repo, node))


def replay(backend: Backend, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        handle = Handle(FileType.INDEX, name)
        if name not in {i.handle.name for i in backend.list(FileType.INDEX)}:
            backend.save(handle, data)


def test_a_superseded_index_file_that_reappears_is_ignored(repo: Repository) -> None:
    doomed = backup(repo, "a", OLD)
    backup(repo, "b", KEPT)
    before = index_files(repo.backend)
    forget(repo, doomed)
    prune(reopen(repo))
    replay(repo.backend, before)  # the old index files come back; the pack they name does not

    again = reopen(repo)
    snap = backup(again, "a", OLD)
    again.close()
    assert restored(reopen(repo), snap, "a") == OLD
    assert_repository_ok(repo)  # check, too, skips the superseded file


def test_a_writer_never_deduplicates_against_a_pack_the_backend_lacks(repo: Repository) -> None:
    """Two prunes: the index file that superseded the replayed one is itself gone, so only
    the pack listing can tell that the replayed file names a deleted pack."""
    doomed = backup(repo, "a", OLD)
    kept = backup(repo, "b", KEPT)
    before = index_files(repo.backend)
    forget(repo, doomed)
    prune(reopen(repo))
    backup(reopen(repo), "c", b"a third file " * 3000)
    forget(repo, kept)
    prune(reopen(repo))  # supersedes the first prune's index file, which named nothing old
    replay(repo.backend, before)

    again = reopen(repo)
    snap = backup(again, "a", OLD)
    again.close()
    assert restored(reopen(repo), snap, "a") == OLD
