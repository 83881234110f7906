"""Valid encodings of every object a decoder reads from the backend: what the fuzz tests
mutate. Taken from the format vectors (tests/vectors/*.json) and made with the encoders, so a
mutation starts from bytes that pass every check and goes wrong in one place.

All keys are fixed (the vectors' keys), so a sealed seed opens with `OPENER`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from snapstore import pack
from snapstore.compression import compress, compress_delta
from snapstore.crypto.aead import Kind, Opener, Sealer
from snapstore.crypto.idhash import blob_id
from snapstore.crypto.kdf import TEST_KDF
from snapstore.crypto.keys import KeyFileInfo, MasterKey, wrap_master_key
from snapstore.ids import Id
from snapstore.index.codec import IndexFile, encode_index
from snapstore.pack import FLAG_DELTA, BlobType, PackBlob, PackEntry
from snapstore.repository.config import RepositoryConfig
from snapstore.repository.lock import LockInfo
from snapstore.snapshot.content import split_chunk_list
from snapstore.snapshot.manifest import Snapshot, Summary, encode_snapshot
from snapstore.snapshot.tree import Node, NodeType, encode_tree
from tests.fuzz.fuzzing import Seeds

VECTORS = Path(__file__).resolve().parents[1] / "vectors"


def _vector(name: str) -> dict[str, Any]:
    with open(VECTORS / f"{name}.json") as f:
        doc: dict[str, Any] = json.load(f)
        return doc


ENVELOPE = _vector("envelope")
PACK = _vector("pack")
SNAPSHOT = _vector("snapshot")
DELTAS = _vector("deltas")
CHUNK_LISTS = _vector("chunk_lists")
SPECIAL_NODES = _vector("special_nodes")
KEYFILE = _vector("keyfile")

ENCRYPTION_KEY = bytes.fromhex(PACK["encryption_key_hex"])
ID_KEY = bytes.fromhex(PACK["id_key_hex"])
OPENER = Opener(ENCRYPTION_KEY)
SEALER = Sealer(ENCRYPTION_KEY, session_id=bytes(range(16)))


def seal(kind: Kind, plaintext: bytes) -> bytes:
    """The same envelope every time for the same plaintext (counter 0 of a fixed session), so
    hypothesis replays a failing case byte for byte."""
    return Sealer(ENCRYPTION_KEY, session_id=bytes(16)).seal(kind, plaintext)
PASSWORD = KEYFILE["password"].encode()

ID_A, ID_B, ID_C = Id(bytes(range(32))), Id(bytes(range(32, 64))), Id(bytes(range(64, 96)))


def _hex(value: str) -> bytes:
    return bytes.fromhex(value)


# -- compression frames ------------------------------------------------------------------------

TEXT = b"snapstore fuzz seed " * 20
BASE = b"the base blob's plaintext, which a delta names by id " * 8
DELTA_PLAIN = BASE[:200] + b" changed " + BASE[200:]
FRAMES = Seeds("frames", [
    *(_hex(c["framed_hex"]) for c in ENVELOPE["compression"]),
    _hex(DELTAS["delta"]["framed_hex"]),
    compress(TEXT),
    compress(b""),
    compress(b"x"),
    compress(TEXT, level=0),
    compress(bytes(70_000)),  # a 4-byte content size field
    compress_delta(DELTA_PLAIN, blob_id(ID_KEY, BASE), BASE),
])
#: Each frame's plaintext (a delta's with BASE as its base), for the expected sizes.
FRAME_SIZES = sorted({0, 1, len(TEXT), len(DELTA_PLAIN), len(BASE), 70_000})

# -- envelopes ---------------------------------------------------------------------------------

ENVELOPES = Seeds("envelopes", [
    *(_hex(e["envelope_hex"]) for e in ENVELOPE["envelopes"]),
    _hex(DELTAS["base"]["envelope"]["envelope_hex"]),
    _hex(DELTAS["delta"]["envelope"]["envelope_hex"]),
    _hex(PACK["header"]["envelope_hex"]),
    SEALER.seal(Kind.DATA_BLOB, compress(TEXT)),
    SEALER.seal(Kind.SNAPSHOT, b""),
])

# -- packs -------------------------------------------------------------------------------------


def _seal_header(header: bytes) -> bytes:
    return SEALER.seal(Kind.PACK_HEADER, compress(header))


def _made_pack(blobs: list[PackBlob]) -> bytes:
    data, _ = pack.assemble(blobs, _seal_header)
    return data


PACKS = Seeds("packs", [
    _hex(PACK["pack_hex"]),
    _hex(DELTAS["pack"]["pack_hex"]),
    _made_pack([]),
    _made_pack(
        [
            PackBlob(BlobType.TREE, ID_A, SEALER.seal(Kind.TREE_BLOB, compress(b"t")), 1),
            PackBlob(BlobType.DATA, ID_B, SEALER.seal(Kind.DATA_BLOB, compress(TEXT)), len(TEXT)),
            PackBlob(BlobType.DATA, ID_C, b"\x00" * 60, 5, base=ID_B),
        ]
    ),
])
PACK_HEADERS = Seeds("pack_headers", [
    _hex(PACK["header"]["header_plaintext_hex"]),
    _hex(DELTAS["pack"]["header"]["header_plaintext_hex"]),
    pack.encode_header([]),
    pack.encode_header(
        [
            PackEntry(BlobType.DATA, ID_A, 0, 50, 8),
            PackEntry(BlobType.DATA, ID_B, 50, 60, 9, FLAG_DELTA, ID_A),
            PackEntry(BlobType.TREE, ID_C, 110, 70, 30, 0x80),
        ]
    ),
])

# -- index files -------------------------------------------------------------------------------

INDEX_FILES = Seeds("index_files", [
    _hex(PACK["index_plaintext_hex"]),
    _hex(DELTAS["index_plaintext_hex"]),
    encode_index(IndexFile()),
    encode_index(
        IndexFile(
            packs={
                ID_A: [PackEntry(BlobType.DATA, ID_B, 0, 50, 8)],
                ID_C: [
                    PackEntry(BlobType.TREE, ID_A, 0, 60, 9),
                    PackEntry(BlobType.DATA, ID_C, 60, 50, 8, FLAG_DELTA, ID_B),
                ],
            },
            supersedes=[ID_A, ID_B],
        )
    ),
])

# -- trees, chunk lists, snapshots -------------------------------------------------------------

TREES = Seeds("trees", [
    *(_hex(t["encoded_hex"]) for t in SNAPSHOT["trees"]),
    _hex(CHUNK_LISTS["tree"]["encoded_hex"]),
    encode_tree([]),
    encode_tree(
        [
            Node(b"big", NodeType.FILE, size=10**9, content_lists=[ID_A, ID_B]),
            Node(b"dir", NodeType.DIR, mode=0o755, uid=1000, gid=1000, subtree=ID_C),
            Node(b"file", NodeType.FILE, mode=0o4755, user="alice", content=[ID_A, ID_A]),
            Node(b"link", NodeType.SYMLINK, mode=0o777, target=b"../x", extra={"n": 3}),
        ]
    ),
    _hex(SPECIAL_NODES["tree"]["encoded_hex"]),
    encode_tree(
        [
            Node(b"big", NodeType.FILE, size=10**9, content_lists=[ID_A, ID_B]),
            Node(b"disk", NodeType.BLOCKDEV, mode=0o660, gid=6, rdev_major=8, rdev_minor=2**20),
            Node(b"pipe", NodeType.FIFO, mode=0o600, extra={"inode": 7}),
            Node(b"sock", NodeType.SOCKET, mode=0o755),
            Node(b"tty", NodeType.CHARDEV, mode=0o620, rdev_major=4, rdev_minor=1),
        ]
    ),
])

CHUNK_LIST_SEEDS = Seeds("chunk_lists", [
    b"".join(_hex(i["blob_id_hex"]) for i in CHUNK_LISTS["ids"][:4]),
    *split_chunk_list([ID_A, ID_B, ID_C]),
])

SNAPSHOTS = Seeds("snapshots", [
    _hex(SNAPSHOT["snapshot"]["encoded_hex"]),
    _hex(SNAPSHOT["older_encoding"]["encoded_hex"]),
    encode_snapshot(
        Snapshot(
            time=datetime(2026, 12, 7, 3, 0, 1, 5, tzinfo=timezone(timedelta(hours=-5))),
            host="db1",
            user="postgres",
            tags=["daily", "mastodon"],
            source="mastodon",
            paths=["mastodon_production"],
            tree=ID_A,
            parent=ID_B,
            summary=Summary(1, 2, 3, 4, 5, 1, 0, 1.5),
            chunker={"database": [16384, 65536, 262144, 2]},
            program_version="snapstore 0.1.0",
            metadata={"postgres": {"row_counts": {"statuses": 12}}, "copied_from": ID_C.hex()},
        )
    ),
])

# -- config, locks, key files -------------------------------------------------------------------

CONFIGS = Seeds("configs", [
    RepositoryConfig(
        bytes(range(16)),
        "2026-12-07T10:00:00+00:00",
        1 << 24,
        {"files": (524288, 1048576, 8388608, 2), "database": (16384, 65536, 262144, 2)},
        features=("delta-v1",),
    ).encode(),
    RepositoryConfig(bytes(16), "2026-11-22T00:00:00+00:00", 1 << 20, {}).encode(),
])

_NOW = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
LOCKS = Seeds("locks", [
    LockInfo(True, "host", 4242, "alice", _NOW, _NOW, bytes(16)).encode(),
    LockInfo(False, "other", 1, "", _NOW - timedelta(hours=1), _NOW, bytes(range(16))).encode(),
])

MASTER = MasterKey(
    _hex(KEYFILE["master_key"]["encryption_hex"]),
    _hex(KEYFILE["master_key"]["id_hex"]),
    _hex(KEYFILE["master_key"]["chunker_seed_hex"]),
)
KEY_FILES = Seeds("key_files", [
    _hex(KEYFILE["key_file_hex"]),
    wrap_master_key(MASTER, PASSWORD, TEST_KDF, KeyFileInfo("2026-12-07", "host", "alice")),
])
