"""Writes the format test vectors SPEC.md cites (section 13) into this directory.

Everything is derived from fixed inputs, so running this twice writes the same bytes:

    python tests/vectors/make_vectors.py

Regenerate only for a deliberate format change, in the same commit as the SPEC.md edit;
`test_format_vectors.py` fails if these files and this script disagree. The files:

    ids.json       keyed BLAKE3 blob ids and unkeyed object names
    envelope.json  session key derivation, sealed envelopes, the compression framing
    keyfile.json   a key file with fixed salt and nonce, and what it unwraps to
    paperkey.json  the master key of keyfile.json as a paper key, computed here from RFC 4648
                   base32 and BLAKE3 rather than by snapstore's encoder
    pack.json      a pack of three blobs byte by byte, its header and its index entry
    snapshot.json  two trees and a snapshot, as msgpack and as a stored object
    deltas.json    a delta blob (compression flag 0x02) against a whole base, sealed; a
                   version 2 pack holding both; the version 2 index file naming it; and
                   (delta-chains) a delta of that delta, generation 2, in a pack of its own
    chunk_lists.json  the chunk-list cut rule on fixed ids, the list blobs' ids, and a
                   version 2 tree whose file node names them in "content_lists"
    special_nodes.json  a version 3 tree holding a FIFO, a socket, a character and a block
                   device (with "rdev_major"/"rdev_minor"), a file and a directory

Compression: zstd's output depends on the zstd version, so every vector that must be
byte-exact uses the stored flag (0x00). That is always a valid choice for a writer; the
zstd vector in envelope.json is checked in the decoding direction only. A delta has no
stored form, so its zstd frame is a constant like ZSTD_FRAMED: every zstd must decode it, and
everything around it (the base id in front, the envelope, the pack) is byte-exact.
"""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import blake3
import msgpack
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

HERE = Path(__file__).resolve().parent
if __name__ == "__main__":  # run as a script: make snapstore importable
    sys.path.insert(0, str(HERE.parents[1]))

from snapstore import pack
from snapstore.compression import decompress
from snapstore.crypto.aead import HEADER_SIZE, SESSION_KEY_CONTEXT, Kind, Sealer, session_key
from snapstore.crypto.idhash import blob_id, object_id
from snapstore.crypto.kdf import TEST_KDF, derive_wrapping_key
from snapstore.crypto.keys import KEY_FILE_AAD
from snapstore.ids import Id
from snapstore.index.codec import IndexFile, encode_index
from snapstore.pack import BlobType, PackBlob, PackEntry
from snapstore.snapshot.content import LIST_CUT_MODULUS, LIST_MAX_IDS, split_chunk_list
from snapstore.snapshot.manifest import Snapshot, Summary, encode_snapshot
from snapstore.snapshot.tree import Node, NodeType, encode_tree

ENCRYPTION_KEY = bytes(range(32))
ID_KEY = bytes(range(32, 64))
CHUNKER_SEED = bytes(range(64, 96))
SESSION_ID = bytes(16)

KEYS = {
    "encryption_key_hex": ENCRYPTION_KEY.hex(),
    "id_key_hex": ID_KEY.hex(),
    "session_id_hex": SESSION_ID.hex(),
}


def stored(plaintext: bytes) -> bytes:
    """The compression framing with the stored flag."""
    return b"\x00" + plaintext


def _envelope_entry(sealer: Sealer, kind: Kind, framed: bytes, counter: int) -> dict[str, Any]:
    envelope = sealer.seal(kind, framed)
    header = envelope[:HEADER_SIZE]
    assert int.from_bytes(header[18:26], "big") == counter
    return {
        "kind": kind.name,
        "kind_byte": int(kind),
        "counter": counter,
        "plaintext_hex": framed.hex(),  # the compression framing, as sealed
        "nonce_hex": (b"\0\0\0\0" + header[18:26]).hex(),
        "associated_data_hex": (header + bytes((kind,))).hex(),
        "envelope_hex": envelope.hex(),
    }


# -- ids.json ---------------------------------------------------------------------------------

ID_PLAINTEXTS = [
    ("empty", b""),
    ("ascii", b"snapstore"),
    ("bytes 0..255", bytes(range(256))),
    ("1025 x 'a' (crosses a BLAKE3 chunk boundary)", b"a" * 1025),
]


def ids_vectors() -> dict[str, Any]:
    return {
        "about": (
            "Blob ids (SPEC.md section 5): blob_id = BLAKE3-256 in keyed mode, key = id_key, "
            "input = the blob's plaintext (before compression and encryption). Object names: "
            "object_id = unkeyed BLAKE3-256 of the bytes as stored on the backend."
        ),
        "id_key_hex": ID_KEY.hex(),
        "blob_ids": [
            {"note": note, "plaintext_hex": data.hex(), "blob_id_hex": blob_id(ID_KEY, data).hex()}
            for note, data in ID_PLAINTEXTS
        ],
        "object_ids": [
            {"note": note, "stored_hex": data.hex(), "object_id_hex": object_id(data).hex()}
            for note, data in ID_PLAINTEXTS[:3]
        ],
    }


# -- envelope.json ----------------------------------------------------------------------------

ZSTD_PLAINTEXT = b"snapstore " * 20
# The framing of ZSTD_PLAINTEXT as compress() wrote it at level 3 with libzstd 1.5.7 (one frame,
# with its content size). A constant rather than recomputed: other zstd versions may encode
# the same input differently, and every zstd must still decode this.
ZSTD_FRAMED = bytes.fromhex("0128b52ffd20c88d000050736e617073746f7265200100bb520509")


def envelope_vectors() -> dict[str, Any]:
    sealer = Sealer(ENCRYPTION_KEY, session_id=SESSION_ID)
    envelopes = [
        _envelope_entry(sealer, Kind.SNAPSHOT, stored(b'{"hello": "snapshot"}'), 0),
        _envelope_entry(sealer, Kind.DATA_BLOB, stored(b"a data blob"), 1),
        _envelope_entry(sealer, Kind.TREE_BLOB, stored(b""), 2),
    ]
    return {
        "about": (
            "The envelope (SPEC.md section 6). session_key = BLAKE3 derive_key(context, "
            "key_material = encryption_key || session_id), 32 bytes. Each envelope is sealed "
            "in order by one writer whose session starts at counter 0: header = version 0x01 || "
            "suite 0x01 || session_id (16) || counter (u64 big-endian); nonce = 4 zero bytes || "
            "counter; associated data = header || kind byte; envelope = header || "
            "AES-256-GCM(session_key, nonce, plaintext, associated data) (ciphertext || 16-byte "
            "tag). The plaintext is the compression framing: flag byte 0x00 (stored) or 0x01 "
            "(one zstd frame), then the payload."
        ),
        **KEYS,
        "session_key": {
            "context": SESSION_KEY_CONTEXT,
            "key_material_hex": (ENCRYPTION_KEY + SESSION_ID).hex(),
            "session_key_hex": session_key(ENCRYPTION_KEY, SESSION_ID).hex(),
        },
        "envelopes": envelopes,
        "compression": [
            {
                "note": "stored: flag 0x00 then the plaintext as is",
                "plaintext_hex": b"incompressible?".hex(),
                "framed_hex": stored(b"incompressible?").hex(),
            },
            {
                "note": "zstd: flag 0x01 then one zstd frame; check by decompressing only",
                "plaintext_hex": ZSTD_PLAINTEXT.hex(),
                "framed_hex": ZSTD_FRAMED.hex(),
            },
        ],
    }


# -- keyfile.json -----------------------------------------------------------------------------

KEY_FILE_PASSWORD = b"correct horse battery staple"
KEY_FILE_SALT = bytes(range(16))
KEY_FILE_NONCE = bytes(range(100, 112))


def keyfile_vectors() -> dict[str, Any]:
    params = TEST_KDF
    wrapping_key = derive_wrapping_key(KEY_FILE_PASSWORD, KEY_FILE_SALT, params)
    secret = msgpack.packb(
        {"encryption": ENCRYPTION_KEY, "id": ID_KEY, "chunker_seed": CHUNKER_SEED}
    )
    wrapped = AESGCM(wrapping_key).encrypt(KEY_FILE_NONCE, secret, KEY_FILE_AAD)
    key_file = msgpack.packb(
        {
            "v": 1,
            "kdf": "argon2id",
            "time_cost": params.time_cost,
            "memory_kib": params.memory_kib,
            "lanes": params.lanes,
            "salt": KEY_FILE_SALT,
            "created": "2026-11-22T00:00:00+00:00",
            "host": "vector-host",
            "user": "vector-user",
            "nonce": KEY_FILE_NONCE,
            "wrapped": wrapped,
        }
    )
    return {
        "about": (
            "A key file (SPEC.md section 4) with a fixed salt and nonce (real ones are random). "
            "wrapping_key = Argon2id(password, salt, time_cost, memory_kib, lanes), 32 bytes "
            "(version 0x13); wrapped = AES-256-GCM(wrapping_key, nonce, secret, associated "
            "data = aad) where secret is the msgpack map {encryption, id, chunker_seed}. The "
            "KDF cost here is the cheap test setting, never used for real repositories."
        ),
        "password": KEY_FILE_PASSWORD.decode(),
        "kdf": {
            "time_cost": params.time_cost,
            "memory_kib": params.memory_kib,
            "lanes": params.lanes,
        },
        "salt_hex": KEY_FILE_SALT.hex(),
        "nonce_hex": KEY_FILE_NONCE.hex(),
        "aad": KEY_FILE_AAD.decode(),
        "wrapping_key_hex": wrapping_key.hex(),
        "secret_hex": secret.hex(),
        "key_file_hex": key_file.hex(),
        "master_key": {
            "encryption_hex": ENCRYPTION_KEY.hex(),
            "id_hex": ID_KEY.hex(),
            "chunker_seed_hex": CHUNKER_SEED.hex(),
        },
    }


# -- paperkey.json ----------------------------------------------------------------------------

PAPER_REPOSITORY_ID = bytes(range(96, 112))
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def paperkey_vectors() -> dict[str, Any]:
    payload = b"\x01" + PAPER_REPOSITORY_ID + ENCRYPTION_KEY + ID_KEY + CHUNKER_SEED
    checksum = blake3.blake3(payload).digest()[:7]
    rfc4648 = base64.b32encode(payload + checksum).decode()  # 120 bytes: no padding
    chars = rfc4648.translate(str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", CROCKFORD))
    lines = [f"snapstore paper key v1, repository {PAPER_REPOSITORY_ID.hex()[:8]}"]
    for n in range(1, 9):
        part = chars[(n - 1) * 24 : n * 24]
        values = [CROCKFORD.index(c) for c in part]
        check = CROCKFORD[(n + sum(values)) % 32]
        check += CROCKFORD[(n + sum(i * v for i, v in enumerate(values, start=1))) % 32]
        lines.append(f"{n}: " + " ".join(part[i : i + 4] for i in range(0, 24, 4)) + "  " + check)
    return {
        "about": (
            "The master key of keyfile.json on paper (SPEC.md section 4, 'Paper key'). payload = "
            "0x01 || repository id || encryption || id || chunker_seed (113 bytes); data = "
            "payload || BLAKE3-256(payload)[:7] (120 bytes), in base32 with Crockford's alphabet "
            "(RFC 4648 bit order, no padding): 8 lines of 24 characters in groups of 4, each "
            "followed by two check characters, (n + sum v) mod 32 and (n + sum i*v) mod 32."
        ),
        "repository_id_hex": PAPER_REPOSITORY_ID.hex(),
        "master_key": {
            "encryption_hex": ENCRYPTION_KEY.hex(),
            "id_hex": ID_KEY.hex(),
            "chunker_seed_hex": CHUNKER_SEED.hex(),
        },
        "payload_hex": payload.hex(),
        "checksum_hex": checksum.hex(),
        "characters": chars,
        "text": "\n".join(lines) + "\n",
        # One character typed wrong (the 2nd of line 5, one value up): its line's check fails.
        "typo": {"line": 5, "typed": lines[5][:4] + CROCKFORD[(CROCKFORD.index(lines[5][4]) + 1) % 32] + lines[5][5:]},
    }


# -- pack.json --------------------------------------------------------------------------------

PACK_BLOBS = [
    (BlobType.DATA, b"hello, snapstore\n"),
    (BlobType.DATA, b"a second blob"),
    (BlobType.TREE, b"a tree blob's plaintext is msgpack; any bytes do here"),
]


def pack_vectors() -> dict[str, Any]:
    sealer = Sealer(ENCRYPTION_KEY, session_id=SESSION_ID)
    blobs = []
    described = []
    for counter, (blob_type, plaintext) in enumerate(PACK_BLOBS):
        kind = Kind.DATA_BLOB if blob_type is BlobType.DATA else Kind.TREE_BLOB
        entry = _envelope_entry(sealer, kind, stored(plaintext), counter)
        the_id = blob_id(ID_KEY, plaintext)
        blobs.append((blob_type, the_id, bytes.fromhex(entry["envelope_hex"]), len(plaintext)))
        described.append(
            {
                "type": blob_type.name,
                "type_byte": int(blob_type),
                "blob_plaintext_hex": plaintext.hex(),
                "blob_id_hex": the_id.hex(),
                **entry,
            }
        )
    header_seal: dict[str, Any] = {}

    def seal_header(header: bytes) -> bytes:
        header_seal.update(
            _envelope_entry(sealer, Kind.PACK_HEADER, stored(header), len(PACK_BLOBS))
        )
        header_seal["header_plaintext_hex"] = header.hex()
        return bytes.fromhex(header_seal["envelope_hex"])

    data, entries = pack.assemble(blobs, seal_header)
    pack_id = object_id(data)
    trailer = data[-pack.TRAILER_SIZE :]
    return {
        "about": (
            "A pack (SPEC.md section 7) of three blobs, each sealed as in envelope.json by one "
            "writer (counters 0-2), then the header sealed with kind PACK_HEADER (counter 3). "
            "pack = blob envelopes back to back || header envelope || trailer; trailer = header "
            "envelope length (u32 LE) || 'SNP' || pack version 0x01. Header plaintext = version "
            "0x01 || count (u32 LE) || per blob: type u8, flags u8, stored length u32 LE, plain "
            "length u32 LE, blob id (32). pack_id = unkeyed BLAKE3 of the pack. index_plaintext "
            "is the index file (SPEC.md section 8) naming just this pack, before compression and "
            "sealing."
        ),
        **KEYS,
        "blobs": described,
        "header": header_seal,
        "entries": [
            {
                "type_byte": int(e.type),
                "flags": e.flags,
                "offset": e.offset,
                "length": e.length,
                "plain_length": e.plain_length,
                "blob_id_hex": e.id.hex(),
            }
            for e in entries
        ],
        "trailer_hex": trailer.hex(),
        "pack_hex": data.hex(),
        "pack_id_hex": pack_id.hex(),
        "index_plaintext_hex": encode_index(IndexFile(packs={pack_id: entries})).hex(),
    }


# -- snapshot.json ----------------------------------------------------------------------------


def node_json(node: Node) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name_hex": node.name.hex(),
        "type": node.type.value,
        "mode": node.mode,
        "uid": node.uid,
        "gid": node.gid,
        "user": node.user,
        "group": node.group,
        "mtime_ns": node.mtime_ns,
        "size": node.size,
    }
    if node.type is NodeType.FILE and node.content_lists:
        out["content_lists_hex"] = [i.hex() for i in node.content_lists]
    elif node.type is NodeType.FILE:
        out["content_hex"] = [i.hex() for i in node.content]
    elif node.type is NodeType.DIR:
        out["subtree_hex"] = node.subtree.hex() if node.subtree else None
    elif node.type is NodeType.SYMLINK:
        out["target_hex"] = node.target.hex()
    elif node.type.is_device:
        out["rdev_major"], out["rdev_minor"] = node.rdev_major, node.rdev_minor
    if node.extra:
        out["extra"] = node.extra
    return out


def by_name(nodes: list[Node]) -> list[Node]:
    """The order a tree stores its nodes in: by name bytes."""
    return sorted(nodes, key=lambda n: n.name)


SNAPSHOT_TIME = datetime(2026, 11, 22, 3, 4, 5, 678901, tzinfo=timezone(timedelta(hours=1)))


# The snapshot above as encoded before the summary gained "deltas_added" (a constant: the
# current encoder writes the key). Readers must still accept it.
LEGACY_SNAPSHOT = bytes.fromhex(
    "8da17601a474696d65d920323032362d31312d32325430333a30343a30352e3637383930312b30313a3030a4"
    "686f7374b06d6173746f646f6e2e6578616d706c65a475736572a66261636b7570a47461677391a56461696c"
    "79a6736f75726365a566696c6573a5706174687391b32f686f6d652f6d6173746f646f6e2f6c697665a47472"
    "6565c420de7a0e6bd9feb28153f898231a5d27c0f1497a80e1af8888a984fde2c1b82491a6706172656e74c0"
    "a773756d6d61727987a566696c657303a46469727301aa62797465735f726561642fab62797465735f616464"
    "6564cd04d2ab626c6f62735f616464656404a66572726f727300aa6475726174696f6e5f73cb3fe000000000"
    "0000a76368756e6b657281a566696c657394ce00080000ce00100000ce0080000002af70726f6772616d5f76"
    "657273696f6eaf736e617073746f726520302e312e30a86d6574616461746181a46e6f7465ab746573742076"
    "6563746f72"
)


# The snapshot above as encoded before the summary gained "files_unchanged" (a constant: the
# current encoder writes the key). Readers must still accept it.
SNAPSHOT_BEFORE_FILES_UNCHANGED = bytes.fromhex(
    "8da17601a474696d65d920323032362d31312d32325430333a30343a30352e3637383930312b30313a3030a4"
    "686f7374b06d6173746f646f6e2e6578616d706c65a475736572a66261636b7570a47461677391a56461696c"
    "79a6736f75726365a566696c6573a5706174687391b32f686f6d652f6d6173746f646f6e2f6c697665a47472"
    "6565c420de7a0e6bd9feb28153f898231a5d27c0f1497a80e1af8888a984fde2c1b82491a6706172656e74c0"
    "a773756d6d61727988a566696c657303a46469727301aa62797465735f726561642fab62797465735f616464"
    "6564cd04d2ab626c6f62735f616464656404ac64656c7461735f616464656400a66572726f727300aa647572"
    "6174696f6e5f73cb3fe0000000000000a76368756e6b657281a566696c657394ce00080000ce00100000ce00"
    "80000002af70726f6772616d5f76657273696f6eaf736e617073746f726520302e312e30a86d657461646174"
    "6181a46e6f7465ab7465737420766563746f72"
)


def snapshot_vectors() -> dict[str, Any]:
    hello = blob_id(ID_KEY, b"hello, snapstore\n")
    second = blob_id(ID_KEY, b"a second blob")
    subtree_nodes = [
        Node(
            b"hello.txt",
            NodeType.FILE,
            mode=0o644,
            uid=991,
            gid=991,
            user="mastodon",
            group="mastodon",
            mtime_ns=1_763_780_645_123_456_789,
            size=17,
            content=[hello],
        ),
        Node(
            b"two-chunks.bin",
            NodeType.FILE,
            mode=0o600,
            mtime_ns=1,
            size=30,
            content=[hello, second],
        ),
        Node(b"latest", NodeType.SYMLINK, mode=0o777, target=b"hello.txt"),
    ]
    subtree_plain = encode_tree(subtree_nodes)
    subtree_id = blob_id(ID_KEY, subtree_plain)
    root_nodes = [
        Node(
            b"live",
            NodeType.DIR,
            mode=0o755,
            uid=991,
            gid=991,
            user="mastodon",
            group="mastodon",
            mtime_ns=1_763_780_000_000_000_000,
            subtree=subtree_id,
        ),
        Node("caf\u00e9.txt".encode(), NodeType.FILE, extra={"source": "vector"}),
    ]
    root_plain = encode_tree(root_nodes)
    root_id = blob_id(ID_KEY, root_plain)
    snapshot = Snapshot(
        time=SNAPSHOT_TIME,
        host="mastodon.example",
        user="backup",
        tags=["daily"],
        source="files",
        paths=["/home/mastodon/live"],
        tree=root_id,
        parent=None,
        summary=Summary(
            files=3,
            dirs=1,
            bytes_read=47,
            bytes_added=1234,
            blobs_added=4,
            errors=0,
            duration_s=0.5,
        ),
        chunker={"files": [524288, 1048576, 8388608, 2]},
        program_version="snapstore 0.1.0",
        metadata={"note": "test vector"},
    )
    snapshot_plain = encode_snapshot(snapshot)
    sealer = Sealer(ENCRYPTION_KEY, session_id=SESSION_ID)
    stored_object = _envelope_entry(sealer, Kind.SNAPSHOT, stored(snapshot_plain), 0)
    return {
        "about": (
            "Trees and a snapshot (SPEC.md section 9), msgpack with str keys in the order "
            "shown and bin for names, ids and targets. Nodes are sorted by name bytes; "
            "tree_id = blob_id (ids.json) of the encoded tree. The subtree's id is the root "
            "tree's 'live' subtree. The snapshot is stored as an envelope of kind SNAPSHOT "
            "(counter 0, stored framing) under snapshots/<snapshot_id>, snapshot_id = unkeyed "
            "BLAKE3 of the envelope."
        ),
        **KEYS,
        "trees": [  # nodes listed in stored order
            {
                "name": "subtree",
                "nodes": [node_json(n) for n in by_name(subtree_nodes)],
                "encoded_hex": subtree_plain.hex(),
                "tree_id_hex": subtree_id.hex(),
            },
            {
                "name": "root",
                "nodes": [node_json(n) for n in by_name(root_nodes)],
                "encoded_hex": root_plain.hex(),
                "tree_id_hex": root_id.hex(),
            },
        ],
        "snapshot": {
            "fields": {
                "time": snapshot.time.isoformat(),
                "host": snapshot.host,
                "user": snapshot.user,
                "tags": snapshot.tags,
                "source": snapshot.source,
                "paths": snapshot.paths,
                "tree_hex": root_id.hex(),
                "parent_hex": None,
                "summary": snapshot.summary.to_dict(),
                "chunker": snapshot.chunker,
                "program_version": snapshot.program_version,
                "metadata": snapshot.metadata,
            },
            "encoded_hex": snapshot_plain.hex(),
            "stored_object": stored_object,
            "snapshot_id_hex": object_id(bytes.fromhex(stored_object["envelope_hex"])).hex(),
        },
        "older_encoding": {
            "note": (
                "the same snapshot as written before the summary had deltas_added: still "
                "valid, and decodes to the same fields (deltas_added 0)"
            ),
            "encoded_hex": LEGACY_SNAPSHOT.hex(),
        },
        "encoding_before_files_unchanged": {
            "note": (
                "the same snapshot as written before the summary had files_unchanged: still "
                "valid, and decodes to the same fields (files_unchanged 0)"
            ),
            "encoded_hex": SNAPSHOT_BEFORE_FILES_UNCHANGED.hex(),
        },
    }


# -- deltas.json ------------------------------------------------------------------------------

DELTA_BASE = b"".join(
    b"%03d|@alice@example.social|boosted status %d|2026-11-2%d\n" % (i, i * 37, i % 10)
    for i in range(24)
)
DELTA_DATA = DELTA_BASE.replace(b"|boosted status 259|", b"|deleted status 259|")
# The zstd frame of DELTA_DATA compressed at level 3 with DELTA_BASE as a raw-content
# dictionary, as compress_delta() wrote it with libzstd 1.5.7. A constant for the same reason
# as ZSTD_FRAMED: other zstd versions may encode it differently, and every zstd must decode it.
DELTA_ZSTD_FRAME = bytes.fromhex(
    "28b52ffd603c04c500003830303064656c650400974145673fa58218c3d7c4526001"
)


# A second version on top of DELTA_DATA (feature delta-chains): a delta of a delta, generation 2.
CHAIN_DATA = DELTA_DATA.replace(b"|boosted status 444|", b"|deleted status 444|")
CHAIN_GENERATION = 2
# Its zstd frame against DELTA_DATA as a raw-content dictionary (libzstd 1.5.7, level 3).
CHAIN_ZSTD_FRAME = bytes.fromhex("28b52ffd603c04bd000018303030050074400557e60efefc941562bc5d134b8105")


def entry_json(e: PackEntry) -> dict[str, Any]:
    return {
        "type_byte": int(e.type),
        "flags": e.flags,
        "offset": e.offset,
        "length": e.length,
        "plain_length": e.plain_length,
        "blob_id_hex": e.id.hex(),
        "base_hex": e.base.hex() if e.base is not None else None,
    }


def pack_and_index_json(
    header_seal: dict[str, Any], entries: list[PackEntry], data: bytes, pack_id: Id
) -> dict[str, Any]:
    """A pack of delta vectors as its document shows it, and the index file naming it."""
    return {
        "pack": {
            "header": header_seal,
            "entries": [entry_json(e) for e in entries],
            "pack_hex": data.hex(),
            "pack_id_hex": pack_id.hex(),
        },
        "index_plaintext_hex": encode_index(IndexFile(packs={pack_id: entries})).hex(),
    }


def header_sealer(sealer: Sealer, counter: int, record: dict[str, Any]) -> Callable[[bytes], bytes]:
    """Seals a pack header as `pack.assemble` asks, recording the envelope and its plaintext."""

    def seal_header(header: bytes) -> bytes:
        record.update(_envelope_entry(sealer, Kind.PACK_HEADER, stored(header), counter))
        record["header_plaintext_hex"] = header.hex()
        return bytes.fromhex(record["envelope_hex"])

    return seal_header


def delta_vectors() -> dict[str, Any]:
    base_id = blob_id(ID_KEY, DELTA_BASE)
    data_id = blob_id(ID_KEY, DELTA_DATA)
    framed = b"\x02" + base_id + DELTA_ZSTD_FRAME
    assert decompress(framed, len(DELTA_DATA), DELTA_BASE) == DELTA_DATA
    sealer = Sealer(ENCRYPTION_KEY, session_id=SESSION_ID)
    base_entry = _envelope_entry(sealer, Kind.DATA_BLOB, stored(DELTA_BASE), 0)
    delta_entry = _envelope_entry(sealer, Kind.DATA_BLOB, framed, 1)
    header_seal: dict[str, Any] = {}
    seal_header = header_sealer(sealer, 2, header_seal)

    data, entries = pack.assemble(
        [
            PackBlob(
                BlobType.DATA, base_id, bytes.fromhex(base_entry["envelope_hex"]), len(DELTA_BASE)
            ),
            PackBlob(
                BlobType.DATA,
                data_id,
                bytes.fromhex(delta_entry["envelope_hex"]),
                len(DELTA_DATA),
                base_id,
            ),
        ],
        seal_header,
    )
    pack_id = object_id(data)
    return {
        "about": (
            "A delta blob (SPEC.md section 6): compression flag 0x02, the base blob's id (32 "
            "bytes), then one zstd frame of the data compressed with the base's plaintext as a "
            "raw-content dictionary. The zstd frame may differ between zstd versions (check it "
            "by decoding); the rest is byte-exact. One writer seals the base (stored framing, "
            "counter 0), the delta (counter 1) and the pack header (counter 2). The pack's "
            "header is version 2: the delta's 42-byte entry has flags 0x01 and is followed by "
            "its base id. index_plaintext is the version 2 index file naming the pack: each "
            "pack row is [pack id, entries, bases]."
        ),
        **KEYS,
        "base": {
            "plaintext_hex": DELTA_BASE.hex(),
            "blob_id_hex": base_id.hex(),
            "envelope": base_entry,
        },
        "delta": {
            "plaintext_hex": DELTA_DATA.hex(),
            "blob_id_hex": data_id.hex(),
            "framed_hex": framed.hex(),
            "envelope": delta_entry,
        },
        **pack_and_index_json(header_seal, entries, data, pack_id),
        "chain": chain_vectors(sealer, data_id),
    }


def chain_vectors(sealer: Sealer, base_id: Id) -> dict[str, Any]:
    """The delta-chains part of deltas.json: a delta whose base is the delta above, alone in
    a second pack, its entry carrying generation 2; sealed by the same writer after the first
    pack (counters 3 and 4)."""
    chain_id = blob_id(ID_KEY, CHAIN_DATA)
    framed = b"\x02" + base_id + CHAIN_ZSTD_FRAME
    assert decompress(framed, len(CHAIN_DATA), DELTA_DATA) == CHAIN_DATA
    entry = _envelope_entry(sealer, Kind.DATA_BLOB, framed, 3)
    header_seal: dict[str, Any] = {}
    seal_header = header_sealer(sealer, 4, header_seal)

    blob = PackBlob(
        BlobType.DATA, chain_id, bytes.fromhex(entry["envelope_hex"]), len(CHAIN_DATA), base_id, CHAIN_GENERATION
    )
    data, entries = pack.assemble([blob], seal_header)
    pack_id = object_id(data)
    return {
        "about": (
            "Feature delta-chains (SPEC.md sections 6 to 8): a delta whose base is the delta "
            "above, so reading it rebuilds the first delta from its whole base, then this one "
            "from that. Its entry's flags are 0x05: the delta bit and generation 2 in bits "
            "1-7. The zstd frame may differ between zstd versions (check it by decoding)."
        ),
        "generation": CHAIN_GENERATION,
        "delta": {
            "plaintext_hex": CHAIN_DATA.hex(),
            "blob_id_hex": chain_id.hex(),
            "framed_hex": framed.hex(),
            "envelope": entry,
        },
        **pack_and_index_json(header_seal, entries, data, pack_id),
    }


# -- chunk_lists.json -------------------------------------------------------------------------


def chunk_id(n: int) -> Id:
    return blob_id(ID_KEY, b"chunk %d" % n)


def is_list_cut(the_id: bytes) -> bool:
    return int.from_bytes(the_id[-2:], "little") % LIST_CUT_MODULUS == 0


def chunk_list_numbers() -> list[int]:
    """The N of 'chunk N' for the vector's ids: the first two cut ids, with ordinary ids
    around them."""
    cuts: list[int] = []
    n = 0
    while len(cuts) < 2:
        if is_list_cut(chunk_id(n)):
            cuts.append(n)
        n += 1
    plain = [n for n in range(10) if n not in cuts]
    return [*plain[:3], cuts[0], *plain[3:5], cuts[1], *plain[5:7]]


def split_case(the_ids: list[Id], max_ids: int) -> dict[str, Any]:
    lists = split_chunk_list(the_ids, LIST_CUT_MODULUS, max_ids)
    return {
        "modulus": LIST_CUT_MODULUS,
        "max_ids": max_ids,
        "list_lengths": [len(x) // 32 for x in lists],
        "list_blob_ids_hex": [blob_id(ID_KEY, x).hex() for x in lists],
    }


def chunk_list_vectors() -> dict[str, Any]:
    numbers = chunk_list_numbers()
    the_ids = [chunk_id(n) for n in numbers]
    lists = split_chunk_list(the_ids)
    list_ids = [blob_id(ID_KEY, x) for x in lists]
    nodes = [
        Node(
            b"mastodon.dump",
            NodeType.FILE,
            mode=0o600,
            mtime_ns=1_763_780_645_000_000_000,
            size=1 << 40,
            content_lists=list_ids,
        ),
        Node(b"globals.sql", NodeType.FILE, mode=0o600, size=40, content=the_ids[:2]),
    ]
    encoded = encode_tree(nodes)
    return {
        "about": (
            "Chunk lists (SPEC.md section 9). A file's chunk ids are cut into lists: a list "
            "ends after an id whose last two bytes, as a u16 little-endian, are divisible by "
            "modulus, or when it holds max_ids ids. Each list's plaintext is its ids "
            "concatenated and is stored as a data blob (list_blob_id = blob_id of that "
            "plaintext). The ids here are the blob ids (ids.json key) of the ASCII strings "
            "'chunk N' for the N given; ids_cut says which are cut ids. The tree is version 2: "
            "its big file's node has content_lists (the list blob ids of the default case) "
            "instead of content, in the same place among the keys."
        ),
        "id_key_hex": ID_KEY.hex(),
        "ids": [
            {"n": n, "blob_id_hex": chunk_id(n).hex(), "cut": is_list_cut(chunk_id(n))}
            for n in numbers
        ],
        "cases": [split_case(the_ids, LIST_MAX_IDS), split_case(the_ids, 3)],
        "tree": {
            "nodes": [node_json(n) for n in by_name(nodes)],
            "encoded_hex": encoded.hex(),
            "tree_id_hex": blob_id(ID_KEY, encoded).hex(),
        },
    }


# -- special_nodes.json -----------------------------------------------------------------------


def special_node_vectors() -> dict[str, Any]:
    mtime = 1_765_080_000_123_456_789
    facts = {"inode": 4242, "device": 2049, "ctime_ns": mtime}
    nodes = [
        Node(b"initctl", NodeType.FIFO, mode=0o600, mtime_ns=mtime, extra=dict(facts)),
        Node(b"mastodon.sock", NodeType.SOCKET, mode=0o777, uid=991, gid=991,
             user="mastodon", group="mastodon", mtime_ns=mtime),
        Node(b"null", NodeType.CHARDEV, mode=0o666, mtime_ns=mtime, rdev_major=1, rdev_minor=3),
        Node(b"sda1", NodeType.BLOCKDEV, mode=0o660, gid=6, group="disk", mtime_ns=mtime,
             rdev_major=8, rdev_minor=1),
        Node(b"huge-minor", NodeType.CHARDEV, mode=0o600, mtime_ns=mtime,
             rdev_major=4095, rdev_minor=2**20 - 1),
        Node(b"motd", NodeType.FILE, mode=0o644, mtime_ns=mtime, size=0, content=[]),
        Node(b"pts", NodeType.DIR, mode=0o755, mtime_ns=mtime,
             subtree=Id(blob_id(ID_KEY, encode_tree([])))),
    ]  # fmt: skip
    encoded = encode_tree(nodes)
    return {
        "about": (
            "Special nodes (SPEC.md section 9). A tree holding a FIFO, a socket, a character or "
            "a block device is version 3; a device node has rdev_major and rdev_minor after "
            "size, a FIFO or socket nothing there. Modes hold permission bits only. The "
            "directory's subtree is the empty tree (a version 1 tree), whose id is given."
        ),
        "id_key_hex": ID_KEY.hex(),
        "empty_tree": {
            "encoded_hex": encode_tree([]).hex(),
            "tree_id_hex": blob_id(ID_KEY, encode_tree([])).hex(),
        },
        "tree": {
            "nodes": [node_json(n) for n in by_name(nodes)],
            "encoded_hex": encoded.hex(),
            "tree_id_hex": blob_id(ID_KEY, encoded).hex(),
        },
    }


BUILDERS: dict[str, Callable[[], dict[str, Any]]] = {
    "ids.json": ids_vectors,
    "envelope.json": envelope_vectors,
    "keyfile.json": keyfile_vectors,
    "paperkey.json": paperkey_vectors,
    "pack.json": pack_vectors,
    "snapshot.json": snapshot_vectors,
    "deltas.json": delta_vectors,
    "chunk_lists.json": chunk_list_vectors,
    "special_nodes.json": special_node_vectors,
}


def render(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=1, ensure_ascii=False) + "\n"


def main() -> None:
    for name, build in BUILDERS.items():
        (HERE / name).write_text(render(build()), encoding="utf-8")
        print(f"wrote {HERE / name}")


if __name__ == "__main__":
    main()
