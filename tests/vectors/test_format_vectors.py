"""Fixed format vectors (ids, envelope, keyfile, paperkey, pack, snapshot, deltas, chunk_lists,
special_nodes .json), cited by SPEC.md.

Each test reads the inputs from the JSON file and recomputes the outputs with snapstore (and,
where the spec names a primitive, with that primitive directly), then reads the stored bytes
back through the real decoders. The files are written by `make_vectors.py`; the last test
fails if the script and the files disagree.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import blake3
import msgpack
import pytest
import zstandard
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from snapstore import pack
from snapstore.backend.base import FileType, Handle
from snapstore.backend.memory import MemoryBackend
from snapstore.compression import DELTA, compress, compress_delta, decompress, delta_base
from snapstore.crypto.aead import Kind, Opener, Sealer, session_key
from snapstore.crypto.idhash import blob_id, object_id
from snapstore.crypto.kdf import KdfParams, derive_wrapping_key
from snapstore.crypto.keys import MasterKey, key_file_info, unwrap_master_key
from snapstore.crypto.paper import PaperKey, decode_paper_key, encode_paper_key
from snapstore.errors import DecompressionError, IntegrityError, PaperKeyError
from snapstore.ids import Id
from snapstore.index import deltas
from snapstore.index.codec import IndexFile, decode_index, encode_index
from snapstore.pack import BlobType, PackBlob, PackEntry
from snapstore.repository.config import RepositoryConfig
from snapstore.repository.repository import Repository
from snapstore.snapshot.content import chunk_ids, parse_chunk_list, split_chunk_list
from snapstore.snapshot.manifest import Snapshot, Summary, decode_snapshot, encode_snapshot
from snapstore.snapshot.store import load_snapshot, load_tree
from snapstore.snapshot.tree import Node, NodeType, decode_tree, encode_tree
from tests.vectors import make_vectors

HERE = Path(__file__).resolve().parent


def load(name: str) -> dict[str, Any]:
    return json.loads((HERE / name).read_text(encoding="utf-8"))


def h(text: str) -> bytes:
    return bytes.fromhex(text)


def vector_repository(doc: dict[str, Any]) -> Repository:
    """A repository handle over an empty memory backend, holding the vectors' keys."""
    master = MasterKey(h(doc["encryption_key_hex"]), h(doc["id_key_hex"]), bytes(32))
    config = RepositoryConfig(repository_id=bytes(16), created="")
    return Repository(MemoryBackend(), master, config)


def check_envelope(sealer: Sealer, entry: dict[str, Any], encryption_key: bytes) -> None:
    kind = Kind[entry["kind"]]
    assert int(kind) == entry["kind_byte"]
    plaintext, envelope = h(entry["plaintext_hex"]), h(entry["envelope_hex"])
    assert sealer.seal(kind, plaintext) == envelope
    # The same bytes from the primitives SPEC.md names.
    header = envelope[:26]
    assert header[:2] == b"\x01\x01"
    assert int.from_bytes(header[18:26], "big") == entry["counter"]
    nonce, aad = h(entry["nonce_hex"]), h(entry["associated_data_hex"])
    assert nonce == bytes(4) + header[18:26] and aad == header + bytes([entry["kind_byte"]])
    key = session_key(encryption_key, header[2:18])
    assert header + AESGCM(key).encrypt(nonce, plaintext, aad) == envelope
    assert Opener(encryption_key).open(kind, envelope) == plaintext


# -- ids.json ---------------------------------------------------------------------------------


def test_blob_and_object_ids() -> None:
    doc = load("ids.json")
    key = h(doc["id_key_hex"])
    assert doc["blob_ids"] and doc["object_ids"]
    for entry in doc["blob_ids"]:
        data = h(entry["plaintext_hex"])
        assert blob_id(key, data).hex() == entry["blob_id_hex"]
        assert blake3.blake3(data, key=key).hexdigest() == entry["blob_id_hex"]
    for entry in doc["object_ids"]:
        data = h(entry["stored_hex"])
        assert object_id(data).hex() == entry["object_id_hex"]
        assert blake3.blake3(data).hexdigest() == entry["object_id_hex"]


# -- envelope.json ----------------------------------------------------------------------------


def test_session_key_derivation() -> None:
    doc = load("envelope.json")
    entry = doc["session_key"]
    material = h(doc["encryption_key_hex"]) + h(doc["session_id_hex"])
    assert material == h(entry["key_material_hex"])
    derived = blake3.blake3(material, derive_key_context=entry["context"]).hexdigest()
    assert derived == entry["session_key_hex"]
    key = session_key(h(doc["encryption_key_hex"]), h(doc["session_id_hex"]))
    assert key.hex() == entry["session_key_hex"]


def test_sealed_envelopes() -> None:
    doc = load("envelope.json")
    encryption_key = h(doc["encryption_key_hex"])
    sealer = Sealer(encryption_key, session_id=h(doc["session_id_hex"]))
    assert [e["counter"] for e in doc["envelopes"]] == list(range(len(doc["envelopes"])))
    for entry in doc["envelopes"]:
        check_envelope(sealer, entry, encryption_key)


def test_compression_framing() -> None:
    stored, zstd = load("envelope.json")["compression"]
    assert h(stored["framed_hex"])[0] == 0
    assert decompress(h(stored["framed_hex"])) == h(stored["plaintext_hex"])
    assert compress(h(stored["plaintext_hex"])) == h(stored["framed_hex"])
    assert h(zstd["framed_hex"])[0] == 1
    plaintext = h(zstd["plaintext_hex"])
    assert decompress(h(zstd["framed_hex"]), len(plaintext)) == plaintext
    assert decompress(compress(plaintext)) == plaintext  # this zstd may frame it differently


# -- keyfile.json -----------------------------------------------------------------------------


def test_key_file() -> None:
    doc = load("keyfile.json")
    params = KdfParams(**doc["kdf"])
    password = doc["password"].encode()
    wrapping_key = derive_wrapping_key(password, h(doc["salt_hex"]), params)
    assert wrapping_key.hex() == doc["wrapping_key_hex"]
    key_file = h(doc["key_file_hex"])
    master = doc["master_key"]
    expected = MasterKey(
        h(master["encryption_hex"]), h(master["id_hex"]), h(master["chunker_seed_hex"])
    )
    assert unwrap_master_key(key_file, password) == expected
    assert key_file_info(key_file).host == "vector-host"
    wrapped = msgpack.unpackb(key_file)["wrapped"]
    secret = AESGCM(wrapping_key).decrypt(h(doc["nonce_hex"]), wrapped, doc["aad"].encode())
    assert secret == h(doc["secret_hex"])


# -- paperkey.json ----------------------------------------------------------------------------


def test_paper_key() -> None:
    doc = load("paperkey.json")
    master = doc["master_key"]
    paper = PaperKey(
        h(doc["repository_id_hex"]),
        MasterKey(h(master["encryption_hex"]), h(master["id_hex"]), h(master["chunker_seed_hex"])),
    )
    assert encode_paper_key(paper) == doc["text"]
    assert decode_paper_key(doc["text"]) == paper
    assert decode_paper_key(doc["text"].lower().replace(" ", "")) == paper
    typed = doc["text"].splitlines()
    typed[doc["typo"]["line"]] = doc["typo"]["typed"]
    with pytest.raises(PaperKeyError) as caught:
        decode_paper_key("\n".join(typed))
    assert caught.value.line == doc["typo"]["line"]
    spec = (Path(__file__).resolve().parents[2] / "SPEC.md").read_text()
    assert "".join(f"    {line}\n" for line in doc["text"].splitlines()) in spec  # the example there


# -- pack.json --------------------------------------------------------------------------------


def test_pack_bytes() -> None:
    doc = load("pack.json")
    encryption_key, id_key = h(doc["encryption_key_hex"]), h(doc["id_key_hex"])
    sealer = Sealer(encryption_key, session_id=h(doc["session_id_hex"]))
    blobs = []
    for entry in doc["blobs"]:
        plaintext = h(entry["blob_plaintext_hex"])
        assert blob_id(id_key, plaintext).hex() == entry["blob_id_hex"]
        assert h(entry["plaintext_hex"]) == b"\x00" + plaintext
        check_envelope(sealer, entry, encryption_key)
        blobs.append(
            (
                BlobType(entry["type_byte"]),
                Id.from_hex(entry["blob_id_hex"]),
                h(entry["envelope_hex"]),
                len(plaintext),
            )
        )
    header = doc["header"]

    def seal_header(plaintext: bytes) -> bytes:
        assert plaintext.hex() == header["header_plaintext_hex"]
        assert h(header["plaintext_hex"]) == b"\x00" + plaintext
        check_envelope(sealer, header, encryption_key)
        return h(header["envelope_hex"])

    data, entries = pack.assemble(blobs, seal_header)
    assert data.hex() == doc["pack_hex"]
    assert object_id(data).hex() == doc["pack_id_hex"]
    assert data[-8:].hex() == doc["trailer_hex"]
    assert int.from_bytes(data[-8:-4], "little") == len(h(header["envelope_hex"]))
    assert [
        {
            "type_byte": int(e.type),
            "flags": e.flags,
            "offset": e.offset,
            "length": e.length,
            "plain_length": e.plain_length,
            "blob_id_hex": e.id.hex(),
        }
        for e in entries
    ] == doc["entries"]


def test_pack_reads_back_through_the_repository() -> None:
    doc = load("pack.json")
    repo = vector_repository(doc)
    data, pack_id = h(doc["pack_hex"]), Id.from_hex(doc["pack_id_hex"])
    start, header = pack.split_tail(data, len(data))
    assert header is not None
    entries = repo.parse_pack_header(header, start)
    assert [e.id.hex() for e in entries] == [b["blob_id_hex"] for b in doc["blobs"]]
    repo.backend.save(Handle(FileType.PACK, pack_id.hex()), data)
    assert repo.read_pack_header(pack_id) == entries
    repo.index.add_pack(pack_id, entries)
    for entry, blob in zip(entries, doc["blobs"], strict=True):
        assert repo.load_blob(entry.type, entry.id) == h(blob["blob_plaintext_hex"])


def test_index_plaintext() -> None:
    doc = load("pack.json")
    entries = [
        PackEntry(
            BlobType(e["type_byte"]),
            Id.from_hex(e["blob_id_hex"]),
            e["offset"],
            e["length"],
            e["plain_length"],
            e["flags"],
        )
        for e in doc["entries"]
    ]
    index_file = IndexFile(packs={Id.from_hex(doc["pack_id_hex"]): entries})
    assert encode_index(index_file).hex() == doc["index_plaintext_hex"]
    assert decode_index(h(doc["index_plaintext_hex"])) == index_file


# -- snapshot.json ----------------------------------------------------------------------------


def node_from_json(doc: dict[str, Any]) -> Node:
    node = Node(
        name=h(doc["name_hex"]),
        type=NodeType(doc["type"]),
        mode=doc["mode"],
        uid=doc["uid"],
        gid=doc["gid"],
        user=doc["user"],
        group=doc["group"],
        mtime_ns=doc["mtime_ns"],
        size=doc["size"],
        extra=doc.get("extra", {}),
    )
    if "content_hex" in doc:
        node.content = [Id.from_hex(i) for i in doc["content_hex"]]
    if "subtree_hex" in doc:
        node.subtree = Id.from_hex(doc["subtree_hex"])
    if "target_hex" in doc:
        node.target = h(doc["target_hex"])
    if "content_lists_hex" in doc:
        node.content_lists = [Id.from_hex(i) for i in doc["content_lists_hex"]]
    if "rdev_major" in doc:
        node.rdev_major, node.rdev_minor = doc["rdev_major"], doc["rdev_minor"]
    return node


def test_trees() -> None:
    doc = load("snapshot.json")
    id_key = h(doc["id_key_hex"])
    subtree, root = doc["trees"]
    for tree in (subtree, root):
        nodes = [node_from_json(n) for n in tree["nodes"]]
        assert [n.name for n in nodes] == sorted(n.name for n in nodes)
        encoded = h(tree["encoded_hex"])
        assert encode_tree(nodes) == encoded
        assert decode_tree(encoded) == nodes
        assert blob_id(id_key, encoded).hex() == tree["tree_id_hex"]
    (live,) = [n for n in root["nodes"] if n["type"] == "dir"]
    assert live["subtree_hex"] == subtree["tree_id_hex"]


def test_snapshot() -> None:
    doc = load("snapshot.json")
    fields = doc["snapshot"]["fields"]
    snapshot = Snapshot(
        time=datetime.fromisoformat(fields["time"]),
        host=fields["host"],
        user=fields["user"],
        tags=fields["tags"],
        source=fields["source"],
        paths=fields["paths"],
        tree=Id.from_hex(fields["tree_hex"]),
        parent=Id.from_hex(fields["parent_hex"]) if fields["parent_hex"] else None,
        summary=Summary(**fields["summary"]),
        chunker=fields["chunker"],
        program_version=fields["program_version"],
        metadata=fields["metadata"],
    )
    assert snapshot.time.utcoffset() is not None
    encoded = h(doc["snapshot"]["encoded_hex"])
    assert encode_snapshot(snapshot) == encoded
    assert decode_snapshot(encoded) == snapshot
    assert fields["tree_hex"] == doc["trees"][1]["tree_id_hex"]

    stored = doc["snapshot"]["stored_object"]
    assert h(stored["plaintext_hex"]) == b"\x00" + encoded
    encryption_key = h(doc["encryption_key_hex"])
    check_envelope(
        Sealer(encryption_key, session_id=h(doc["session_id_hex"])), stored, encryption_key
    )
    assert object_id(h(stored["envelope_hex"])).hex() == doc["snapshot"]["snapshot_id_hex"]


def test_snapshot_written_before_deltas_added_still_decodes() -> None:
    doc = load("snapshot.json")
    current = decode_snapshot(h(doc["snapshot"]["encoded_hex"]))
    older = h(doc["older_encoding"]["encoded_hex"])
    assert b"deltas_added" not in older and b"deltas_added" in h(doc["snapshot"]["encoded_hex"])
    assert decode_snapshot(older) == current
    assert current.summary.deltas_added == 0


def test_snapshot_written_before_files_unchanged_still_decodes() -> None:
    doc = load("snapshot.json")
    current = decode_snapshot(h(doc["snapshot"]["encoded_hex"]))
    older = h(doc["encoding_before_files_unchanged"]["encoded_hex"])
    assert b"files_unchanged" not in older and b"files_unchanged" in h(doc["snapshot"]["encoded_hex"])
    assert decode_snapshot(older) == current
    assert current.summary.files_unchanged == 0


def test_snapshot_and_trees_read_back_through_the_repository() -> None:
    doc = load("snapshot.json")
    repo = vector_repository(doc)
    name = doc["snapshot"]["snapshot_id_hex"]
    repo.backend.save(
        Handle(FileType.SNAPSHOT, name), h(doc["snapshot"]["stored_object"]["envelope_hex"])
    )
    snap = load_snapshot(repo, name)
    assert snap.id is not None and snap.id.hex() == name and snap.host == "mastodon.example"
    # Store both trees in a pack, as a writer would, and walk them from the snapshot.
    for tree in doc["trees"]:
        repo.save_blob(BlobType.TREE, h(tree["encoded_hex"]))
    repo.flush()
    root = load_tree(repo, snap.tree)
    assert [n.name for n in root] == [h(n["name_hex"]) for n in doc["trees"][1]["nodes"]]
    (live,) = [n for n in root if n.type is NodeType.DIR]
    assert live.subtree is not None
    assert [n.name for n in load_tree(repo, live.subtree)] == [
        h(n["name_hex"]) for n in doc["trees"][0]["nodes"]
    ]
    repo.close()


# -- deltas.json ------------------------------------------------------------------------------


def delta_entries(doc: dict[str, Any]) -> list[PackEntry]:
    return [
        PackEntry(
            BlobType(e["type_byte"]),
            Id.from_hex(e["blob_id_hex"]),
            e["offset"],
            e["length"],
            e["plain_length"],
            e["flags"],
            Id.from_hex(e["base_hex"]) if e["base_hex"] else None,
        )
        for e in doc["pack"]["entries"]
    ]


def test_delta_frame() -> None:
    doc = load("deltas.json")
    id_key = h(doc["id_key_hex"])
    base, delta = doc["base"], doc["delta"]
    base_plain, data = h(base["plaintext_hex"]), h(delta["plaintext_hex"])
    assert blob_id(id_key, base_plain).hex() == base["blob_id_hex"]
    assert blob_id(id_key, data).hex() == delta["blob_id_hex"]
    framed = h(delta["framed_hex"])
    # flag 0x02 | base id | one zstd frame (magic 28 b5 2f fd) with the base as raw dictionary
    assert framed[0] == DELTA and framed[1:33] == h(base["blob_id_hex"])
    assert framed[33:37] == b"\x28\xb5\x2f\xfd"
    assert delta_base(framed) == h(base["blob_id_hex"])
    assert decompress(framed, len(data), base_plain) == data
    dictionary = zstandard.ZstdCompressionDict(base_plain, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
    assert zstandard.ZstdDecompressor(dict_data=dictionary).decompress(framed[33:]) == data
    with pytest.raises(DecompressionError):
        decompress(framed, len(data))  # no base, no data
    # This zstd may frame it differently, but the framing around the frame is fixed.
    again = compress_delta(data, h(base["blob_id_hex"]), base_plain)
    assert again[:33] == framed[:33]
    assert decompress(again, len(data), base_plain) == data
    assert len(framed) < len(compress(data))  # the reason deltas exist


def test_delta_envelopes() -> None:
    doc = load("deltas.json")
    encryption_key = h(doc["encryption_key_hex"])
    sealer = Sealer(encryption_key, session_id=h(doc["session_id_hex"]))
    base, delta = doc["base"], doc["delta"]
    assert h(base["envelope"]["plaintext_hex"]) == b"\x00" + h(base["plaintext_hex"])
    assert h(delta["envelope"]["plaintext_hex"]) == h(delta["framed_hex"])
    check_envelope(sealer, base["envelope"], encryption_key)
    check_envelope(sealer, delta["envelope"], encryption_key)
    assert delta["envelope"]["kind"] == "DATA_BLOB"


def test_version_2_pack() -> None:
    doc = load("deltas.json")
    encryption_key = h(doc["encryption_key_hex"])
    sealer = Sealer(encryption_key, session_id=h(doc["session_id_hex"]))
    entries = delta_entries(doc)
    whole, delta = entries
    assert not whole.is_delta and whole.base is None
    assert (
        delta.is_delta
        and delta.flags == pack.FLAG_DELTA
        and delta.base == Id.from_hex(doc["base"]["blob_id_hex"])
    )
    header = doc["pack"]["header"]
    plaintext = h(header["header_plaintext_hex"])
    # version 2 | count 2 | whole entry | delta entry | the delta's base id
    assert plaintext[:5] == b"\x02\x02\x00\x00\x00"
    assert len(plaintext) == 5 + 2 * pack.ENTRY_SIZE + 32
    assert plaintext[5 + pack.ENTRY_SIZE + 1] == pack.FLAG_DELTA
    assert plaintext[-32:] == delta.base
    assert pack.decode_header(plaintext) == entries
    # Encoding: one writer seals the two blobs (counters 0 and 1), then the header.
    blobs = []
    for entry, blob in zip(entries, (doc["base"], doc["delta"]), strict=True):
        check_envelope(sealer, blob["envelope"], encryption_key)
        blobs.append(
            PackBlob(
                entry.type,
                entry.id,
                h(blob["envelope"]["envelope_hex"]),
                entry.plain_length,
                entry.base,
            )
        )

    def seal_header(header_plaintext: bytes) -> bytes:
        assert header_plaintext == plaintext
        assert h(header["plaintext_hex"]) == b"\x00" + plaintext
        check_envelope(sealer, header, encryption_key)
        return h(header["envelope_hex"])

    data, assembled = pack.assemble(blobs, seal_header)
    assert assembled == entries
    assert data.hex() == doc["pack"]["pack_hex"]
    assert object_id(data).hex() == doc["pack"]["pack_id_hex"]
    assert data[-4:] == b"SNP\x01"  # the trailer's pack version stays 1


def test_version_2_pack_reads_back_through_the_repository() -> None:
    doc = load("deltas.json")
    repo = vector_repository(doc)
    data, pack_id = h(doc["pack"]["pack_hex"]), Id.from_hex(doc["pack"]["pack_id_hex"])
    repo.backend.save(Handle(FileType.PACK, pack_id.hex()), data)
    entries = repo.read_pack_header(pack_id)
    assert entries == delta_entries(doc)
    repo.index.add_pack(pack_id, entries)
    assert repo.load_blob(BlobType.DATA, entries[1].id) == h(doc["delta"]["plaintext_hex"])
    assert repo.load_blob(BlobType.DATA, entries[0].id) == h(doc["base"]["plaintext_hex"])
    assert repo.delta_base_of(entries[1].id) == entries[0].id


def test_version_2_index_file() -> None:
    doc = load("deltas.json")
    entries = delta_entries(doc)
    pack_id = Id.from_hex(doc["pack"]["pack_id_hex"])
    plaintext = h(doc["index_plaintext_hex"])
    index_file = IndexFile(packs={pack_id: entries})
    assert decode_index(plaintext) == index_file
    assert encode_index(index_file) == plaintext
    raw = msgpack.unpackb(plaintext)
    assert list(raw) == ["v", "supersedes", "packs"] and raw["v"] == 2
    ((row_pack, records, bases),) = raw["packs"]
    assert row_pack == pack_id and len(records) == 2 * 46 and bases == entries[1].base
    assert records[46 + 1] == pack.FLAG_DELTA


def test_delta_chain_pack_and_index() -> None:
    """Feature delta-chains: a delta of a delta, generation 2 in its entry's flags."""
    doc = load("deltas.json")
    chain = doc["chain"]
    encryption_key = h(doc["encryption_key_hex"])
    sealer = Sealer(encryption_key, session_id=h(doc["session_id_hex"]))
    for _ in range(3):  # the same writer sealed the first pack with counters 0 to 2
        sealer.seal(Kind.DATA_BLOB, b"")
    framed = h(chain["delta"]["framed_hex"])
    base_plain, data = h(doc["delta"]["plaintext_hex"]), h(chain["delta"]["plaintext_hex"])
    assert framed[0] == DELTA and framed[1:33] == h(doc["delta"]["blob_id_hex"])
    assert decompress(framed, len(data), base_plain) == data
    assert blob_id(h(doc["id_key_hex"]), data).hex() == chain["delta"]["blob_id_hex"]
    check_envelope(sealer, chain["delta"]["envelope"], encryption_key)
    (entry,) = [
        PackEntry(BlobType(e["type_byte"]), Id.from_hex(e["blob_id_hex"]), e["offset"], e["length"],
                  e["plain_length"], e["flags"], Id.from_hex(e["base_hex"]))
        for e in chain["pack"]["entries"]
    ]  # fmt: skip
    assert entry.flags == 0x05 == pack.FLAG_DELTA | chain["generation"] << 1 and entry.generation == 2
    header = chain["pack"]["header"]
    plaintext = h(header["header_plaintext_hex"])
    assert plaintext[:5] == b"\x02\x01\x00\x00\x00" and plaintext[5 + 1] == 0x05
    assert pack.decode_header(plaintext) == [entry]
    blob = PackBlob(entry.type, entry.id, h(chain["delta"]["envelope"]["envelope_hex"]), entry.plain_length,
                    entry.base, chain["generation"])  # fmt: skip

    def seal_header(header_plaintext: bytes) -> bytes:
        assert header_plaintext == plaintext
        check_envelope(sealer, header, encryption_key)
        return h(header["envelope_hex"])

    data_bytes, assembled = pack.assemble([blob], seal_header)
    assert assembled == [entry] and data_bytes.hex() == chain["pack"]["pack_hex"]
    pack_id = Id.from_hex(chain["pack"]["pack_id_hex"])
    index_plaintext = h(chain["index_plaintext_hex"])
    assert encode_index(IndexFile(packs={pack_id: [entry]})) == index_plaintext
    assert decode_index(index_plaintext) == IndexFile(packs={pack_id: [entry]})
    assert msgpack.unpackb(index_plaintext)["packs"][0][1][1] == 0x05  # the record's flags


def test_delta_chain_reads_back_through_the_repository() -> None:
    """Both packs stored: the chained delta is rebuilt from the first delta, itself rebuilt
    from the whole base, in a repository with delta-chains; without it, the chain is refused."""
    doc = load("deltas.json")
    for features, readable in ((("delta-v1", "delta-chains"), True), (("delta-v1",), False)):
        repo = vector_repository(doc)
        repo.config = RepositoryConfig(repository_id=bytes(16), created="", features=features)
        for part in (doc, doc["chain"]):
            pack_id = Id.from_hex(part["pack"]["pack_id_hex"])
            repo.backend.save(Handle(FileType.PACK, pack_id.hex()), h(part["pack"]["pack_hex"]))
            repo.index.add_pack(pack_id, repo.read_pack_header(pack_id))
        top = Id.from_hex(doc["chain"]["delta"]["blob_id_hex"])
        if readable:
            assert repo.load_blob(BlobType.DATA, top) == h(doc["chain"]["delta"]["plaintext_hex"])
            location = repo.index.lookup(top)
            assert location is not None and deltas.generation(top, location) == 2
        else:
            with pytest.raises(IntegrityError):
                repo.load_blob(BlobType.DATA, top)


# -- chunk_lists.json -------------------------------------------------------------------------


def test_chunk_list_cuts() -> None:
    doc = load("chunk_lists.json")
    id_key = h(doc["id_key_hex"])
    ids = []
    for entry in doc["ids"]:
        the_id = blob_id(id_key, b"chunk %d" % entry["n"])
        assert the_id.hex() == entry["blob_id_hex"]
        assert (int.from_bytes(the_id[-2:], "little") % 2048 == 0) == entry["cut"]
        ids.append(the_id)
    assert any(e["cut"] for e in doc["ids"]) and not all(e["cut"] for e in doc["ids"])
    for case in doc["cases"]:
        lists = split_chunk_list(ids, case["modulus"], case["max_ids"])
        assert [len(x) // 32 for x in lists] == case["list_lengths"]
        assert [blob_id(id_key, x).hex() for x in lists] == case["list_blob_ids_hex"]
        assert [i for x in lists for i in parse_chunk_list(x)] == ids
    assert doc["cases"][0]["max_ids"] == 8192  # the default case names the tree's lists


def test_version_2_tree() -> None:
    doc = load("chunk_lists.json")
    tree = doc["tree"]
    nodes = [node_from_json(n) for n in tree["nodes"]]
    encoded = h(tree["encoded_hex"])
    assert encode_tree(nodes) == encoded
    assert decode_tree(encoded) == nodes
    assert blob_id(h(doc["id_key_hex"]), encoded).hex() == tree["tree_id_hex"]
    raw = msgpack.unpackb(encoded, raw=False)
    assert raw["v"] == 2
    (big,) = [n for n in raw["nodes"] if "content_lists" in n]
    assert "content" not in big
    assert [i.hex() for i in big["content_lists"]] == doc["cases"][0]["list_blob_ids_hex"]
    assert list(big)[-1] == "content_lists"


def test_version_2_tree_reads_back_through_the_repository() -> None:
    """Store the chunks, the lists and the tree as a writer would, then read the file's ids."""
    doc = load("chunk_lists.json")
    repo = vector_repository({**load("deltas.json"), "id_key_hex": doc["id_key_hex"]})
    ids = [Id.from_hex(e["blob_id_hex"]) for e in doc["ids"]]
    for entry in doc["ids"]:
        assert repo.save_blob(BlobType.DATA, b"chunk %d" % entry["n"]).id == Id.from_hex(
            entry["blob_id_hex"]
        )
    for plaintext in split_chunk_list(ids):
        repo.save_blob(BlobType.DATA, plaintext)
    tree_id = repo.save_blob(BlobType.TREE, h(doc["tree"]["encoded_hex"])).id
    repo.flush()
    big = next(n for n in load_tree(repo, tree_id) if n.content_lists)
    assert chunk_ids(repo, big) == ids
    repo.close()


# -- special_nodes.json -----------------------------------------------------------------------


def test_version_3_tree() -> None:
    doc = load("special_nodes.json")
    tree = doc["tree"]
    nodes = [node_from_json(n) for n in tree["nodes"]]
    encoded = h(tree["encoded_hex"])
    assert encode_tree(nodes) == encoded
    assert decode_tree(encoded) == nodes
    assert blob_id(h(doc["id_key_hex"]), encoded).hex() == tree["tree_id_hex"]
    raw = msgpack.unpackb(encoded, raw=False)
    assert raw["v"] == 3
    by_type = {n["type"]: n for n in raw["nodes"]}
    assert set(by_type) == {"fifo", "socket", "chardev", "blockdev", "file", "dir"}
    assert list(by_type["blockdev"])[-2:] == ["rdev_major", "rdev_minor"]
    assert (by_type["blockdev"]["rdev_major"], by_type["blockdev"]["rdev_minor"]) == (8, 1)
    assert list(by_type["socket"])[-1] == "size"  # nothing after size
    assert list(by_type["fifo"])[-2:] == ["size", "extra"]
    empty = h(doc["empty_tree"]["encoded_hex"])
    assert msgpack.unpackb(empty)["v"] == 1  # no special node, no version 3
    assert by_type["dir"]["subtree"].hex() == doc["empty_tree"]["tree_id_hex"]


def test_special_nodes_only_in_version_3_trees() -> None:
    """A version 1 or 2 tree naming a device is malformed: an older writer never wrote one."""
    raw = msgpack.unpackb(h(load("special_nodes.json")["tree"]["encoded_hex"]), raw=False)
    for version in (1, 2):
        with pytest.raises(IntegrityError, match=f"chardev node in a version {version} tree"):
            decode_tree(msgpack.packb({**raw, "v": version}, use_bin_type=True))


def test_version_3_tree_reads_back_through_the_repository() -> None:
    doc = load("special_nodes.json")
    repo = vector_repository({**load("deltas.json"), "id_key_hex": doc["id_key_hex"]})
    empty = repo.save_blob(BlobType.TREE, h(doc["empty_tree"]["encoded_hex"])).id
    tree_id = repo.save_blob(BlobType.TREE, h(doc["tree"]["encoded_hex"])).id
    repo.flush()
    assert tree_id.hex() == doc["tree"]["tree_id_hex"] and empty.hex() == doc["empty_tree"]["tree_id_hex"]
    nodes = {n.name: n for n in load_tree(repo, tree_id)}
    assert nodes[b"null"].type is NodeType.CHARDEV and nodes[b"null"].st_mode == 0o20666
    assert nodes[b"initctl"].st_mode == 0o10600 and nodes[b"mastodon.sock"].st_mode == 0o140777
    assert (nodes[b"huge-minor"].rdev_major, nodes[b"huge-minor"].rdev_minor) == (4095, 2**20 - 1)
    assert load_tree(repo, empty) == []
    repo.close()


# -- the files match their generator ----------------------------------------------------------


@pytest.mark.parametrize("name", sorted(make_vectors.BUILDERS))
def test_vector_files_are_what_make_vectors_writes(name: str) -> None:
    expected = make_vectors.render(make_vectors.BUILDERS[name]())
    assert (HERE / name).read_text(encoding="utf-8") == expected, (
        f"{name} is stale or edited by hand: run python tests/vectors/make_vectors.py "
        "and update SPEC.md in the same commit"
    )
