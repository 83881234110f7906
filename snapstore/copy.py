"""Copying snapshots to another repository with its own keys: the off-site half of 3-2-1.

Blob ids are keyed with each repository's id key (SPEC.md section 5), so the same content has
different ids in the source and in the destination. A copy therefore reads every blob of a
snapshot from the source, saves it in the destination, which hashes it with its own key and
stores it only if its index lacks it, and rewrites the trees bottom-up with the new ids. The
snapshot goes last, after the packs and the index file naming them (SPEC.md section 11), with
the source's time, host, user, tags, source, paths and summary, and with
`metadata["copied_from"]` set to the source snapshot's id.

- **Re-running copies nothing new**: a snapshot whose id a destination snapshot records in
  `copied_from` is skipped without reading anything.
- **Shared data is read once per run**: source tree id -> destination tree id and source blob
  id -> destination blob id are remembered for the whole run, so a subtree or a file shared
  by several snapshots is copied once. The blob map also remembers the delta bases found in
  the destination (at most one entry per source blob, as for the blobs copied).
- **Chunks are kept as they are**, not cut again: a copied snapshot's data chunks were cut with
  the source's chunker seed and parameters (recorded in the snapshot's `chunker`), so later
  backups into the destination, cut with its own seed, do not deduplicate against them.
- **Deltas stay deltas where the destination has their base**: blobs move as plaintext (no
  raw envelope is ever copied: the keys differ), but a blob the source stores as a delta
  against base B is offered to the destination's packer with B's destination id as its
  candidate base, the id B's plaintext has under the destination's key (from the run's map,
  else hashed from B's plaintext, which the source's reader keeps cached from rebuilding the
  delta). The packer keeps a delta only against a base the destination's index holds whole
  and only when it pays, as for a backup, so a copy to a repository holding the parent's
  chunks grows about as much as the source did. A destination without "delta-v1" gets every
  blob whole; so does one lacking B, or holding it only in the snapshot being copied (B's
  pack is not stored yet). Chunk-list blobs are new in the destination and saved whole.
- **Chunk lists are built again**: a file's chunk ids are read through its chunk-list blobs
  a batch at a time, and the destination ids are listed inline when there are at most
  `INLINE_CHUNK_LIMIT` of them, else cut into chunk-list blobs of the destination (which
  depend on its ids, so they differ from the source's). A destination without the "delta-v1"
  feature, whose readers may predate chunk lists, gets every file's ids inline.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

from snapstore.ids import ID_SIZE, Id
from snapstore.index.deltas import Offer
from snapstore.pack import BlobType
from snapstore.progress import NoProgress, Progress
from snapstore.repository.packer import SavedBlob
from snapstore.repository.repository import Repository
from snapstore.snapshot.content import INLINE_CHUNK_LIMIT, iter_chunk_ids, split_chunk_list
from snapstore.snapshot.manifest import Snapshot
from snapstore.snapshot.store import list_snapshots, save_snapshot
from snapstore.snapshot.tree import Node, NodeType, encode_tree
from snapstore.snapshot.walk import Walker, display_path

COPIED_FROM = "copied_from"
"""The snapshot metadata key naming the snapshot a copy was made from (hex id)."""
#: Chunk ids of one file copied at a time (a big file's ids are never all held at once).
COPY_BATCH = 4096


@dataclass
class CopyResult:
    copied: list[tuple[Snapshot, Snapshot]] = field(default_factory=list)  # (source, copy)
    skipped: list[Snapshot] = field(default_factory=list)  # copied by an earlier run
    blobs_read: int = 0
    bytes_read: int = 0  # plaintext read from the source
    blobs_added: int = 0  # blobs the destination did not have
    deltas_added: int = 0  # of those, stored as deltas against a whole blob of the destination
    bytes_added: int = 0  # as stored in the destination (compressed and encrypted)


def copy_snapshots(
    src: Repository,
    dst: Repository,
    snapshots: Sequence[Snapshot] | None = None,
    progress: Progress | None = None,
) -> CopyResult:
    """Copies `snapshots` (default: all) of `src` that `dst` does not have yet, oldest first.

    Both repositories must be open with their index loaded; the caller holds their locks.
    """
    chosen = list_snapshots(src) if snapshots is None else list(snapshots)
    chosen = sorted({bytes(s.id or b""): s for s in chosen}.values(), key=lambda s: s.time)
    copies = {
        str(snap.metadata[COPIED_FROM]): snap
        for snap in list_snapshots(dst)
        if isinstance(snap.metadata.get(COPIED_FROM), str)
    }
    result = CopyResult()
    progress = progress or NoProgress()
    copier = _Copier(src, dst, progress, result)
    progress.phase("copy", "snapshots")
    progress.totals(sum(1 for s in chosen if s.id is not None and s.id.hex() not in copies), None)
    for snap in chosen:
        if snap.id is None:
            raise ValueError("only stored snapshots can be copied")
        if snap.id.hex() in copies:
            result.skipped.append(snap)
            continue
        tree = copier.copy_tree(snap.tree, snap.short_id)
        dst.flush()  # packs, then the index naming them, then the snapshot
        parent = copies.get(snap.parent.hex()) if snap.parent else None
        copy = dataclasses.replace(
            snap,
            tree=tree,
            parent=parent.id if parent is not None else None,
            metadata={**snap.metadata, COPIED_FROM: snap.id.hex()},
            id=None,
        )
        save_snapshot(dst, copy)
        copies[snap.id.hex()] = copy
        result.copied.append((snap, copy))
        progress.item_done(f"snapshot {snap.short_id}")
    return result


class _Copier:
    """Copies trees and their content, remembering what it did for the whole run."""

    def __init__(self, src: Repository, dst: Repository, progress: Progress, result: CopyResult):
        self._src = src
        self._dst = dst
        self._progress = progress
        self._result = result
        self._walker = Walker(src)  # one for the run: each source tree is read once
        self._trees: dict[bytes, Id] = {}  # source tree id -> destination tree id
        self._blobs: dict[bytes, Id] = {}  # source blob id -> its id in the destination
        self._deltas = dst.config.deltas  # whether the destination may store deltas
        # a file's source chunk-list ids -> its destination (content, content_lists)
        self._files: dict[bytes, tuple[list[Id], list[Id]]] = {}

    def copy_tree(self, tree_id: Id, display: str) -> Id:
        """The destination id of a source tree, copied with everything below it if new.

        Trees come bottom-up from the walker (never by recursion: a snapshot may be 10,000
        levels deep), so each tree's subtrees have their destination ids when it is rewritten;
        the walker skips the trees this run copied before.
        """
        for tree in self._walker.post_order(tree_id):
            for node in tree.nodes:
                if node.type is NodeType.DIR and node.subtree is not None:
                    node.subtree = self._trees[bytes(node.subtree)]
                elif node.type is NodeType.FILE and (node.content or node.content_lists):
                    self._progress.item(f"{display}/{display_path((*tree.path, node.name))}")
                    node.content, node.content_lists = self._copy_file(node)
            saved = self._dst.save_blob(BlobType.TREE, encode_tree(tree.nodes))
            self._count(saved)
            self._trees[bytes(tree.tree_id)] = saved.id
        return self._trees[bytes(tree_id)]

    def _copy_file(self, node: Node) -> tuple[list[Id], list[Id]]:
        """A file's chunks copied; its destination ids, inline or in new chunk-list blobs."""
        key = b"".join(node.content_lists)
        known = self._files.get(key) if key else None
        if known is not None:
            return list(known[0]), list(known[1])
        lists = _ChunkLists(self._save_list, listing_allowed=self._dst.config.deltas)
        ids = iter_chunk_ids(self._src, node)
        while batch := list(itertools.islice(ids, COPY_BATCH)):
            lists.extend(self._copy_content(batch))
        content, content_lists = lists.finish()
        if key:
            self._files[key] = (content, content_lists)
        return list(content), list(content_lists)

    def _save_list(self, plaintext: bytes) -> Id:
        saved = self._dst.save_blob(BlobType.DATA, plaintext)
        self._count(saved)
        return saved.id

    def _copy_content(self, blob_ids: Sequence[Id]) -> list[Id]:
        todo = list(dict.fromkeys(bytes(b) for b in blob_ids if bytes(b) not in self._blobs))
        pending: list[tuple[bytes, Future[SavedBlob]]] = []
        for blob_id, data in self._read(todo):
            self._result.blobs_read += 1
            self._result.bytes_read += len(data)
            bases = self._base_in_destination(blob_id)
            pending.append((blob_id, self._dst.submit_blob(BlobType.DATA, data, bases=bases)))
        for blob_id, future in pending:
            saved = future.result()
            self._count(saved)
            self._progress.advance(saved.plain_length, saved.stored_length)
            self._blobs[blob_id] = saved.id
        return [self._blobs[bytes(b)] for b in blob_ids]

    def _base_in_destination(self, blob_id: bytes) -> list[Offer]:
        """The base offered for a blob the source stores as a delta: its base's id in the
        destination, when the destination holds that blob and the rules allow a delta on it."""
        base = self._src.delta_base_of(blob_id) if self._deltas else None
        if base is None:
            return []
        known = self._blobs.get(bytes(base))
        if known is None:
            plaintext = self._src.reader.base_plaintext(base)  # cached since the delta was rebuilt
            if plaintext is None:
                return []
            known = self._dst.hash_blob(plaintext)
            if not self._dst.has_blob(known):
                return []
            self._blobs[bytes(base)] = known  # it is in the destination: never copied again
        offer = self._dst.offer_against(known)
        return [] if offer is None else [offer]

    def _read(self, blob_ids: list[bytes]) -> Iterator[tuple[bytes, bytes]]:
        """(id, plaintext) in order, read through the source's blob reader (planned by pack,
        fetched in parallel); a blob that cannot be read stops the copy, naming it."""
        for read in self._src.read_blobs((BlobType.DATA, Id(b)) for b in blob_ids):
            if read.error is not None:
                raise read.error
            assert read.data is not None
            yield bytes(read.id), read.data

    def _count(self, saved: SavedBlob) -> None:
        if saved.added:
            self._result.blobs_added += 1
            self._result.bytes_added += saved.stored_length
            self._result.deltas_added += saved.delta


class _ChunkLists:
    """A file's destination chunk ids: inline while there are few, else chunk-list blobs.

    Ids come in batches; once past `INLINE_CHUNK_LIMIT` they are cut as `split_chunk_list`
    cuts them, saving each finished list at once. The last piece of a split may not end at a
    cut, so it is held back and split again with the next batch: the cuts are the same as if
    the whole run of ids had been split in one go.
    """

    def __init__(self, save: Callable[[bytes], Id], *, listing_allowed: bool) -> None:
        self._save = save
        self._allowed = listing_allowed
        self._pending: list[Id] = []  # ids after the last cut
        self._lists: list[Id] = []
        self._listing = False

    def extend(self, ids: Iterable[Id]) -> None:
        self._pending.extend(ids)
        if not self._allowed or (not self._listing and len(self._pending) <= INLINE_CHUNK_LIMIT):
            return
        self._listing = True
        *done, _ = split_chunk_list(self._pending)
        for plaintext in done:
            self._lists.append(self._save(plaintext))
        del self._pending[: sum(len(p) for p in done) // ID_SIZE]

    def finish(self) -> tuple[list[Id], list[Id]]:
        """(content, content_lists): one of them empty."""
        if not self._listing:
            return self._pending, []
        for plaintext in split_chunk_list(self._pending):
            self._lists.append(self._save(plaintext))
        self._pending = []
        return [], self._lists
