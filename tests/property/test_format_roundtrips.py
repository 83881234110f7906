"""Round trips of every format codec, the BlobIndex against a dict, and backup then restore.

Example counts are modest so the whole file runs in a few seconds; the codecs are pure, so
hypothesis shrinks any failure to a small input.
"""

from __future__ import annotations

import os
import random
import tempfile
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from unittest import mock

import msgpack
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from snapstore import pack
from snapstore.archiver.archiver import Archiver, SnapshotOptions
from snapstore.archiver.source import ChunkingProfile, EntryKind
from snapstore.backend.memory import MemoryBackend
from snapstore.checker.checker import CheckOptions, check_repository
from snapstore.compression import compress, decompress
from snapstore.crypto.aead import Kind, Opener, Sealer
from snapstore.crypto.kdf import TEST_KDF
from snapstore.ids import Id
from snapstore.index import index as index_module
from snapstore.index.codec import IndexFile, decode_index, encode_index
from snapstore.index.index import BlobIndex, BlobLocation
from snapstore.pack import FLAG_DELTA, BlobType, PackBlob, PackEntry
from snapstore.repository.repository import Repository
from snapstore.restorer.restorer import Restorer
from snapstore.restorer.stream import stream_content
from snapstore.snapshot.manifest import Snapshot, Summary, decode_snapshot, encode_snapshot
from snapstore.snapshot.store import load_tree
from snapstore.snapshot.tree import Node, NodeType, decode_tree, encode_tree
from tests.support.memory_source import (
    Dir,
    File,
    Link,
    MemorySource,
    Special,
    expected_tree,
    read_tree,
)

PASSWORD = b"property"
# Tiny chunks, so small generated files still split into many blobs.
TINY_CHUNKS = {"files": (64, 256, 1024, 2), "database": (32, 128, 512, 1)}

ids = st.binary(min_size=32, max_size=32).map(Id)
u32 = st.integers(0, 2**32 - 1)
blob_types = st.sampled_from(BlobType)
safe_names = st.binary(min_size=1, max_size=40).filter(
    lambda n: n not in (b".", b"..") and b"/" not in n and b"\0" not in n
)
texts = st.text(max_size=20)


# -- pack -------------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(blob_types, ids, st.binary(max_size=300), u32), max_size=20))
def test_pack_round_trip(blobs: list[tuple[BlobType, Id, bytes, int]]) -> None:
    sealer, opener = Sealer(bytes(32)), Opener(bytes(32))
    data, entries = pack.assemble(
        blobs, lambda header: sealer.seal(Kind.PACK_HEADER, compress(header))
    )
    start, header = pack.split_tail(data, len(data))
    assert header is not None
    decoded = pack.decode_header(decompress(opener.open(Kind.PACK_HEADER, header)))
    pack.check_entries_fit(decoded, start)
    assert decoded == entries
    for (blob_type, blob_id, body, plain), entry in zip(blobs, decoded, strict=True):
        assert (entry.type, entry.id, entry.plain_length) == (blob_type, blob_id, plain)
        assert data[entry.offset : entry.offset + entry.length] == body


# Whole blobs and deltas mixed at random: a delta names its base and has a generation.
pack_blobs = st.builds(
    PackBlob, blob_types, ids, st.binary(max_size=300), u32, st.none() | ids, st.integers(0, pack.MAX_GENERATION)
)


@settings(max_examples=80, deadline=None)
@given(st.lists(pack_blobs, max_size=20))
def test_pack_round_trip_with_deltas(blobs: list[PackBlob]) -> None:
    sealer, opener = Sealer(bytes(32)), Opener(bytes(32))
    data, entries = pack.assemble(
        blobs, lambda header: sealer.seal(Kind.PACK_HEADER, compress(header))
    )
    start, header = pack.split_tail(data, len(data))
    assert header is not None
    plaintext = decompress(opener.open(Kind.PACK_HEADER, header))
    deltas = sum(b.base is not None for b in blobs)
    # Version 2 exactly when some blob is a delta; each base adds its 32 bytes.
    assert plaintext[0] == (pack.HEADER_VERSION_DELTAS if deltas else pack.HEADER_VERSION)
    assert len(plaintext) == 5 + pack.ENTRY_SIZE * len(blobs) + 32 * deltas
    decoded = pack.decode_header(plaintext)
    pack.check_entries_fit(decoded, start)
    assert decoded == entries
    for blob, entry in zip(blobs, decoded, strict=True):
        assert (entry.type, entry.id, entry.plain_length, entry.base) == (
            blob.type,
            blob.id,
            blob.plain_length,
            blob.base,
        )
        assert entry.is_delta == (blob.base is not None)
        assert entry.generation == (blob.generation if blob.base is not None else 0)
        assert data[entry.offset : entry.offset + entry.length] == blob.envelope


# -- index codec ------------------------------------------------------------------------------


@st.composite
def pack_entries(draw: st.DrawFn, deltas: bool = True) -> PackEntry:
    """An entry with any reserved flag bits; FLAG_DELTA set exactly when it names a base."""
    base = draw(st.none() | ids) if deltas else None
    reserved = draw(st.integers(0, 255)) & ~pack.FLAG_DELTA
    flags = reserved | (pack.FLAG_DELTA if base is not None else 0)
    return PackEntry(draw(blob_types), draw(ids), draw(u32), draw(u32), draw(u32), flags, base)


def index_files(deltas: bool = True) -> st.SearchStrategy[IndexFile]:
    return st.builds(
        IndexFile,
        packs=st.dictionaries(ids, st.lists(pack_entries(deltas), max_size=8), max_size=6),
        supersedes=st.lists(ids, max_size=4),
    )


@settings(max_examples=80, deadline=None)
@given(index_files(deltas=False))
def test_index_codec_round_trip(index_file: IndexFile) -> None:
    encoded = encode_index(index_file)
    assert msgpack.unpackb(encoded)["v"] == 1
    assert decode_index(encoded) == index_file


@settings(max_examples=120, deadline=None)
@given(index_files())
def test_index_codec_round_trip_with_deltas(index_file: IndexFile) -> None:
    encoded = encode_index(index_file)
    doc = msgpack.unpackb(encoded)
    has_deltas = any(e.is_delta for entries in index_file.packs.values() for e in entries)
    assert doc["v"] == (2 if has_deltas else 1)
    if has_deltas:
        for (_, _, bases), entries in zip(doc["packs"], index_file.packs.values(), strict=True):
            assert bases == b"".join(bytes(e.base) for e in entries if e.base is not None)
    decoded = decode_index(encoded)
    assert decoded == index_file
    assert encode_index(decoded) == encoded


# -- tree and snapshot codecs -----------------------------------------------------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | texts
    | st.binary(max_size=20)
    | st.floats(allow_nan=False)
)
json_like = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=10,
)
extras = st.dictionaries(texts, json_like, max_size=3)


@st.composite
def nodes(draw: st.DrawFn, name: bytes) -> Node:
    node_type = draw(st.sampled_from(NodeType))
    node = Node(
        name=name,
        type=node_type,
        mode=draw(st.integers(0, 0o7777)),
        uid=draw(u32),
        gid=draw(u32),
        user=draw(texts),
        group=draw(texts),
        mtime_ns=draw(st.integers(-(2**63), 2**63 - 1)),
        size=draw(st.integers(0, 2**63)),
        extra=draw(extras),
    )
    if node_type is NodeType.FILE and draw(st.booleans()):
        node.content_lists = draw(st.lists(ids, min_size=1, max_size=3))
    elif node_type is NodeType.FILE:
        node.content = draw(st.lists(ids, max_size=5))
    elif node_type is NodeType.DIR:
        node.subtree = draw(ids)
    elif node_type is NodeType.SYMLINK:
        node.target = draw(st.binary(max_size=60).filter(lambda t: b"\0" not in t))  # refused
    elif node_type.is_device:
        node.rdev_major, node.rdev_minor = draw(u32), draw(u32)
    return node


@st.composite
def trees(draw: st.DrawFn) -> list[Node]:
    names = draw(st.lists(safe_names, unique=True, max_size=12))
    return [draw(nodes(name)) for name in names]


@settings(max_examples=80, deadline=None)
@given(trees())
def test_tree_round_trip(tree: list[Node]) -> None:
    encoded = encode_tree(tree)
    decoded = decode_tree(encoded)
    assert decoded == sorted(tree, key=lambda n: n.name)
    assert encode_tree(decoded) == encoded  # canonical
    # the lowest version that holds the nodes: trees without special nodes are unchanged
    version = msgpack.unpackb(encoded)["v"]
    if any(n.type.special for n in tree):
        assert version == 3
    else:
        assert version == (2 if any(n.content_lists for n in tree) else 1)


timezones = st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
summaries = st.builds(
    Summary,
    files=st.integers(0, 2**40),
    dirs=st.integers(0, 2**40),
    bytes_read=st.integers(0, 2**62),
    bytes_added=st.integers(0, 2**62),
    blobs_added=st.integers(0, 2**40),
    errors=st.integers(0, 2**20),
    duration_s=st.floats(0, 1e6),
)
snapshots = st.builds(
    Snapshot,
    time=st.datetimes(  # a day inside datetime's range in UTC: manifest.EARLIEST/LATEST_TIME
        min_value=datetime(1, 1, 3), max_value=datetime(9999, 12, 28), timezones=timezones
    ),
    host=texts,
    user=texts,
    tags=st.lists(texts, max_size=4),
    source=texts,
    paths=st.lists(texts, max_size=4),
    tree=ids,
    parent=st.none() | ids,
    summary=summaries,
    chunker=st.dictionaries(texts, st.lists(st.integers(0, 2**32), min_size=4, max_size=4)),
    program_version=texts,
    metadata=extras,
)


@settings(max_examples=80, deadline=None)
@given(snapshots)
def test_snapshot_round_trip(snap: Snapshot) -> None:
    decoded = decode_snapshot(encode_snapshot(snap))
    assert decoded == snap
    assert decoded.time.utcoffset() == snap.time.utcoffset()


# -- BlobIndex against a dict model -----------------------------------------------------------

# A few ids, some sharing the 8-byte sort key, so duplicates and key collisions are common.
_rng = random.Random(7)
ID_POOL = [Id(_rng.randbytes(32)) for _ in range(12)] + [
    Id(b"\x42" * 8 + _rng.randbytes(24)) for _ in range(4)
]
PACK_POOL = [Id(bytes([n]) * 32) for n in range(1, 6)]

# Some entries are deltas whose base is another id of the pool (or one outside it).
BASE_POOL = ID_POOL[:3] + [Id(b"\x42" * 8 + bytes(24)), Id(bytes(32))]
index_entries = st.builds(
    lambda blob_type, blob_id, offset, length, plain, base: PackEntry(
        blob_type, blob_id, offset, length, plain, FLAG_DELTA if base is not None else 0, base
    ),
    blob_types,
    st.sampled_from(ID_POOL),
    u32,
    u32,
    u32,
    st.none() | st.sampled_from(BASE_POOL),
)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.sampled_from(PACK_POOL), st.lists(index_entries, max_size=6)),
        st.tuples(st.just("compact")),
    ),
    max_size=25,
)


@settings(max_examples=80, deadline=None)
@given(operations)
def test_blob_index_matches_a_dict(ops: list[tuple[Any, ...]]) -> None:
    model: dict[bytes, list[BlobLocation]] = {}
    index = BlobIndex()
    with mock.patch.object(index_module, "_MIN_MERGE", 3):  # merge often
        for op in ops:
            if op[0] == "compact":
                index.compact()
                continue
            _, pack_id, entries = op
            index.add_pack(pack_id, entries)
            for e in entries:
                base_key = int.from_bytes(e.base[:8], "big") if e.base is not None else 0
                model.setdefault(bytes(e.id), []).append(
                    BlobLocation(
                        pack_id, e.type, e.offset, e.length, e.plain_length, e.flags, base_key
                    )
                )

            def key(loc: BlobLocation) -> tuple[object, ...]:
                return (
                    loc.pack_id,
                    loc.offset,
                    loc.length,
                    loc.plain_length,
                    loc.type,
                    loc.flags,
                    loc.base_key,
                )

            for blob_id in ID_POOL:
                want = sorted(model.get(bytes(blob_id), []), key=key)
                assert sorted(index.lookup_all(blob_id), key=key) == want
                found = index.lookup(blob_id)
                assert (found is None) if not want else (found in want)
                assert (blob_id in index) == bool(want)
            for prefix_key in {int.from_bytes(b[:8], "big") for b in ID_POOL + BASE_POOL}:
                assert index.ids_with_key(prefix_key) == sorted(
                    Id(b) for b in model if int.from_bytes(b[:8], "big") == prefix_key
                )
    assert len(index) == sum(map(len, model.values()))
    pool: list[bytes] = list(ID_POOL)
    lengths = index.plain_lengths(pool)
    for blob_id, length in zip(ID_POOL, lengths, strict=True):
        locations = model.get(bytes(blob_id), [])
        assert (
            (length is None)
            if not locations
            else (length in {loc.plain_length for loc in locations})
        )
    assert index.pack_ids() == {loc.pack_id for locs in model.values() for loc in locs}
    listed = Counter((bytes(i), loc) for i, loc in index.entries())
    assert listed == Counter((i, loc) for i, locs in model.items() for loc in locs)


# -- archiver and restorer --------------------------------------------------------------------

small_data = st.binary(max_size=3000) | st.builds(
    lambda n, seed: random.Random(seed).randbytes(n), st.integers(0, 20_000), st.integers()
)
leaves = st.one_of(
    st.builds(
        File,
        small_data,
        mode=st.integers(0, 0o777),
        mtime_ns=st.integers(0, 2**62),
        profile=st.sampled_from(ChunkingProfile),
    ),
    st.builds(
        Link,
        st.binary(min_size=1, max_size=50).filter(lambda t: b"\0" not in t),
        mtime_ns=st.integers(0, 2**62),
    ),
    # FIFOs are made for anyone, sockets never; device nodes need root (mknod)
    st.builds(
        Special,
        st.sampled_from([EntryKind.FIFO, EntryKind.SOCKET]),
        mode=st.integers(0, 0o7777),
        mtime_ns=st.integers(0, 2**62),
    ),
    *([st.builds(
        Special,
        st.sampled_from([EntryKind.CHARDEV, EntryKind.BLOCKDEV]),
        mode=st.integers(0, 0o777),
        mtime_ns=st.integers(0, 2**62),
        rdev=st.tuples(st.integers(0, 4095), st.integers(0, 2**20 - 1)),
    )] if os.geteuid() == 0 else []),
)
# A directory is a dict of name -> leaf or directory; modes keep the owner's rwx so a
# non-root test run can still write into and read back from every restored directory.
dir_trees = st.recursive(
    st.dictionaries(safe_names, leaves, max_size=4),
    lambda inner: st.dictionaries(safe_names, leaves | inner, max_size=4),
    max_leaves=12,
)
dir_modes = st.integers(0, 0o777).map(lambda m: m | 0o700)


@st.composite
def specs(draw: st.DrawFn) -> dict[tuple[bytes, ...], File | Dir | Link | Special]:
    spec: dict[tuple[bytes, ...], File | Dir | Link | Special] = {}

    def flatten(tree: dict[bytes, Any], prefix: tuple[bytes, ...]) -> None:
        for name, value in tree.items():
            path = prefix + (name,)
            if isinstance(value, dict):
                spec[path] = Dir(draw(dir_modes), draw(st.integers(0, 2**62)))
                flatten(value, path)
            else:
                spec[path] = value

    flatten(draw(dir_trees), ())
    return spec


def new_repository() -> Repository:
    return Repository.init(
        MemoryBackend(), PASSWORD, kdf=TEST_KDF, pack_size=64 << 10, chunker=TINY_CHUNKS
    )


def reader(repo: Repository) -> Repository:
    again = Repository.open(repo.backend, PASSWORD)
    again.load_index()
    return again


def checked(repo: Repository) -> None:
    again = Repository.open(repo.backend, PASSWORD)
    report = check_repository(again, CheckOptions(read_data=True))
    assert report.ok, [str(f) for f in report.findings]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs())
def test_backup_then_restore_round_trip(spec: dict[tuple[bytes, ...], File | Dir | Link | Special]) -> None:
    repo = new_repository()
    result = Archiver(repo).run(MemorySource(spec), SnapshotOptions(time=datetime.now(UTC)))
    assert result.complete
    with tempfile.TemporaryDirectory() as target:
        Restorer(reader(repo), owners=False).restore(result.snapshot, target)
        # The restored tree has the snapshot's metadata, whatever the umask was.
        assert read_tree(target) == expected_tree(spec)
        for dirpath, _, _ in os.walk(target):
            os.chmod(dirpath, 0o700)  # let TemporaryDirectory clean up without root
    checked(repo)


@settings(max_examples=25, deadline=None)
@given(
    st.lists(small_data, min_size=1, max_size=4),
    st.sampled_from(ChunkingProfile),
)
def test_streams_round_trip_and_dedup(streams: list[bytes], profile: ChunkingProfile) -> None:
    repo = new_repository()
    spec = {f"s{n}": File(data, profile=profile) for n, data in enumerate(streams)}
    first = Archiver(repo).run(MemorySource(spec))
    again = reader(repo)
    by_name = {n.name: n for n in load_tree(again, first.snapshot.tree)}
    for n, data in enumerate(streams):
        node = by_name[f"s{n}".encode()]
        assert node.size == len(data)
        assert b"".join(stream_content(again, node.content)) == data
    second = Archiver(repo).run(MemorySource(spec))
    assert second.snapshot.summary.bytes_added == 0
    assert second.snapshot.tree == first.snapshot.tree
    checked(repo)
