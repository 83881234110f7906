"""Data that makes good deltas, and a snapshot of hand-built file nodes, for delta tests."""

from __future__ import annotations

import dataclasses
import random
from datetime import UTC, datetime

from snapstore import compression
from snapstore.backend.base import Backend, FileType, Handle
from snapstore.crypto.aead import Kind, Sealer
from snapstore.crypto.kdf import TEST_KDF
from snapstore.crypto.keys import unwrap_master_key
from snapstore.pack import BlobType
from snapstore.repository.repository import Repository
from snapstore.snapshot.manifest import Snapshot
from snapstore.snapshot.store import save_snapshot
from snapstore.snapshot.tree import Node, encode_tree

WHEN = datetime(2026, 5, 1, tzinfo=UTC)


def repository_with_features(backend: Backend, features: tuple[str, ...], password: bytes) -> Repository:
    """A new repository whose stored config lists only these features, as an older snapstore
    wrote it (("delta-v1",): before `delta-chains`; (): before deltas)."""
    repo = Repository.init(backend, password, kdf=TEST_KDF, pack_size=1 << 20)
    (info,) = backend.list(FileType.KEY)
    key = unwrap_master_key(backend.load(info.handle), password)
    config = dataclasses.replace(repo.config, features=features)
    backend.save(Handle(FileType.CONFIG), Sealer(key.encryption).seal(Kind.CONFIG, compression.compress(config.encode())))
    repo.close()
    return Repository.open(backend, password)


def varied(size: int, seed: int) -> bytes:
    """Compressible but not repetitive: words from a small vocabulary in random order."""
    rng = random.Random(seed)
    words = [rng.randbytes(rng.randint(3, 9)) for _ in range(400)]
    out = bytearray()
    while len(out) < size:
        out += rng.choice(words) + b" "
    return bytes(out[:size])


def edited(data: bytes, seed: int) -> bytes:
    """`data` with a few bytes changed: a good delta against it."""
    rng = random.Random(seed)
    out = bytearray(data)
    for _ in range(5):
        out[rng.randrange(len(out))] ^= 0xFF
    return bytes(out)


def dump_rows(count: int, edited_rows: frozenset[int] = frozenset(), seed: int = 3) -> bytes:
    """Text like a dump's COPY data, the same rows every night; `edited_rows` change a little
    (and grow), as a night of scattered updates does."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        line = f"{i}\t{rng.randrange(10**6)}\tuser{rng.randrange(10**4)} wrote {rng.randrange(10**9)}"
        out.append(line + (" (edited, longer)" if i in edited_rows else "") + "\n")
    return "".join(out).encode()


def snapshot_of(repo: Repository, files: dict[str, Node]) -> Snapshot:
    """Stores one tree of these file nodes (named by the keys) and a snapshot of it."""
    nodes = []
    for name, node in sorted(files.items()):
        node.name = name.encode()
        nodes.append(node)
    tree = repo.save_blob(BlobType.TREE, encode_tree(nodes))
    repo.flush()
    snap = Snapshot(WHEN, "h", "u", [], "test", [], tree.id)
    save_snapshot(repo, snap)
    return snap
