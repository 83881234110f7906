"""Snapshots whose files use delta blobs and chunk lists, built with the library directly.

Two snapshots of one source:

- "old": `old.bin` (three whole chunks A, B, C) and `old-listed.bin` (many small chunks,
  listed in chunk-list blobs of 200 ids each);
- "new": `new.bin` (A', B, C': A' and C' stored as deltas against A and C), `listed.bin` (a
  few dozen chunks, some repeated, in chunk lists cut by `split_chunk_list(modulus=4)`), and
  `both.bin` (old-listed's chunks with A', C' and a new chunk put in, listed in chunk-list
  blobs that are themselves deltas against old-listed's).

`Built.files` maps each snapshot to its files' expected bytes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime

from snapstore.ids import ID_SIZE, Id
from snapstore.pack import BlobType
from snapstore.repository.repository import Repository
from snapstore.snapshot.content import split_chunk_list
from snapstore.snapshot.manifest import Snapshot
from snapstore.snapshot.store import save_snapshot
from snapstore.snapshot.tree import Node, NodeType, encode_tree

#: Files of this many chunks get chunk-list blobs in a copy too (> INLINE_CHUNK_LIMIT).
MANY = 1500
LIST_IDS = 200


def varied_text(rng: random.Random, size: int) -> bytes:
    """Compressible but not repetitive: random words from a small vocabulary."""
    words = [
        bytes(rng.choices(b"abcdefghijklmnopqrstuvwxyz", k=rng.randint(2, 9))) for _ in range(400)
    ]
    out = bytearray()
    while len(out) < size:
        out += rng.choice(words) + b" "
    return bytes(out[:size])


def edited(data: bytes, rng: random.Random) -> bytes:
    """`data` with a few bytes changed: a delta against it pays."""
    out = bytearray(data)
    for _ in range(4):
        out[rng.randrange(len(out))] = ord("#")
    return bytes(out)


@dataclass
class Built:
    old: Snapshot
    new: Snapshot
    files: dict[str, dict[str, bytes]]  # "old" or "new" -> file name -> bytes
    chunks: dict[bytes, bytes]  # every data chunk: id -> plaintext
    lists: dict[bytes, bytes]  # every chunk-list blob: id -> plaintext
    deltas: set[bytes]  # ids stored as deltas


@dataclass
class _Store:
    files: dict[str, dict[str, bytes]] = field(default_factory=dict)
    chunks: dict[bytes, bytes] = field(default_factory=dict)
    lists: dict[bytes, bytes] = field(default_factory=dict)
    deltas: set[bytes] = field(default_factory=set)


class _Builder:
    def __init__(self, repo: Repository) -> None:
        self.repo = repo
        self.built = _Store()

    def chunk(self, data: bytes, base: Id | None = None) -> Id:
        saved = self.repo.save_blob(BlobType.DATA, data, bases=[base] if base else ())
        assert saved.delta == (base is not None and saved.added), (
            "fixture data must make deltas pay"
        )
        if saved.delta:
            self.built.deltas.add(bytes(saved.id))
        self.built.chunks[bytes(saved.id)] = data
        return saved.id

    def list_blob(self, plaintext: bytes, base: Id | None = None) -> Id:
        saved = self.repo.save_blob(BlobType.DATA, plaintext, bases=[base] if base else ())
        assert saved.delta == (base is not None and saved.added), "changed lists must be deltas"
        if saved.delta:
            self.built.deltas.add(bytes(saved.id))
        self.built.lists[bytes(saved.id)] = plaintext
        return saved.id

    def node(self, name: str, ids: list[Id], lists: list[Id] | None = None) -> Node:
        size = sum(len(self.built.chunks[bytes(i)]) for i in ids)
        if lists is None:
            return Node(name.encode(), NodeType.FILE, size=size, content=list(ids))
        return Node(name.encode(), NodeType.FILE, size=size, content_lists=list(lists))

    def snapshot(self, nodes: list[Node], tag: str, when: datetime) -> Snapshot:
        tree = self.repo.save_blob(BlobType.TREE, encode_tree(nodes)).id
        self.repo.flush()
        snap = Snapshot(when, "db1", "root", [tag], "files", ["/"], tree)
        save_snapshot(self.repo, snap)
        files = {
            n.name.decode(): b"".join(self.built.chunks[bytes(i)] for i in self._ids(n))
            for n in nodes
        }
        self.built.files[tag] = files
        return snap

    def _ids(self, node: Node) -> list[bytes]:
        if not node.content_lists:
            return [bytes(i) for i in node.content]
        run = b"".join(self.built.lists[bytes(i)] for i in node.content_lists)
        return [run[i : i + ID_SIZE] for i in range(0, len(run), ID_SIZE)]


def build(repo: Repository, seed: int = 7) -> Built:
    """Stores the two snapshots described in the module docstring in `repo`."""
    rng = random.Random(seed)
    b = _Builder(repo)

    a, bb, c = (varied_text(rng, 60_000) for _ in range(3))
    a_id, b_id, c_id = b.chunk(a), b.chunk(bb), b.chunk(c)
    small = [b.chunk(rng.randbytes(rng.randint(40, 160))) for _ in range(MANY)]
    old_lists = [b.list_blob(b"".join(small[i : i + LIST_IDS])) for i in range(0, MANY, LIST_IDS)]
    repo.flush()  # the bases are indexed before anything names them as a base
    old = b.snapshot(
        [b.node("old.bin", [a_id, b_id, c_id]), b.node("old-listed.bin", small, old_lists)],
        "old",
        datetime(2026, 5, 1, tzinfo=UTC),
    )

    a2_id, c2_id = b.chunk(edited(a, rng), a_id), b.chunk(edited(c, rng), c_id)
    fresh = b.chunk(rng.randbytes(100))
    # (b) a few dozen chunks, repeats included, cut wherever the ids say (about one in four)
    # and after 16 ids at most: with the repository's random key alone, about one build in
    # 2,000 had all 38 ids in one or two lists
    listed_ids = small[:30] + [b_id, a_id] + small[:5] + [fresh]
    listed_lists = [b.list_blob(p) for p in split_chunk_list(listed_ids, modulus=4, max_ids=16)]
    # (c) old-listed with A', C' and a new chunk in place of three of its chunks
    both_ids = list(small)
    both_ids[10], both_ids[700], both_ids[1400] = a2_id, c2_id, fresh
    both_lists = [
        b.list_blob(b"".join(both_ids[i : i + LIST_IDS]), old_lists[i // LIST_IDS])
        for i in range(0, MANY, LIST_IDS)
    ]
    new = b.snapshot(
        [
            b.node("new.bin", [a2_id, b_id, c2_id]),
            b.node("listed.bin", listed_ids, listed_lists),
            b.node("both.bin", both_ids, both_lists),
        ],
        "new",
        datetime(2026, 5, 2, tzinfo=UTC),
    )
    assert len(listed_lists) > 2, "listed.bin must span several chunk-list blobs"
    assert len(set(both_lists) - set(old_lists)) == 3, "both.bin shares unchanged lists with old"
    s = b.built
    return Built(old, new, s.files, s.chunks, s.lists, s.deltas)
