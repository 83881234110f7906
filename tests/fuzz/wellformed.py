"""What a decoded value must look like for the code that uses it: the fuzz tests check every
value a decoder returns with these, so a decoder that lets a wrong type through (a host that
is an int, an id of 31 bytes) fails here instead of in a listing or a restore later."""

from __future__ import annotations

import stat
from datetime import UTC, datetime

from snapstore.crypto.keys import MasterKey
from snapstore.ids import Id
from snapstore.index.codec import IndexFile
from snapstore.pack import MAX_PACK_SIZE, BlobType, PackEntry
from snapstore.repository.config import KNOWN_FEATURES, RepositoryConfig
from snapstore.repository.lock import LockInfo, pid_alive
from snapstore.snapshot.manifest import Snapshot
from snapstore.snapshot.tree import Node, NodeType, check_name

U32 = range(2**32)
NOW = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)


def check_entries(entries: list[PackEntry], *, in_pack: bool = True) -> None:
    """Entries of one pack (header or index row); `in_pack`: they also fit in a pack."""
    for entry in entries:
        assert isinstance(entry.type, BlobType) and type(entry.id) is Id
        assert entry.length in U32 and entry.plain_length in U32 and entry.offset >= 0
        assert entry.flags in range(256)
        assert entry.is_delta == (entry.base is not None)
        assert entry.base is None or type(entry.base) is Id
        if in_pack:
            assert entry.offset + entry.length <= MAX_PACK_SIZE


def check_index(index: IndexFile) -> None:
    assert isinstance(index, IndexFile)
    assert all(type(i) is Id for i in index.supersedes)
    for pack_id, entries in index.packs.items():
        assert type(pack_id) is Id
        check_entries(entries)


def check_pack_entries(entries: list[PackEntry], *, in_pack: bool = True) -> None:
    """A pack header's entries: blobs back to back from offset 0."""
    check_entries(entries, in_pack=in_pack)
    offset = 0
    for entry in entries:
        assert entry.offset == offset
        offset += entry.length


def check_node(node: Node) -> None:
    assert type(node.name) is bytes
    check_name(node.name)
    assert isinstance(node.type, NodeType)
    for name in ("mode", "uid", "gid", "mtime_ns", "size"):
        assert type(getattr(node, name)) is int, name
    assert type(node.user) is str and type(node.group) is str
    assert isinstance(node.extra, dict)
    assert all(type(i) is Id for i in node.content + node.content_lists)
    assert not (node.content and node.content_lists)
    if node.type is NodeType.DIR:
        assert type(node.subtree) is Id
    if node.type is NodeType.SYMLINK:
        assert type(node.target) is bytes
    for name in ("rdev_major", "rdev_minor"):
        assert type(getattr(node, name)) is int and 0 <= getattr(node, name) <= 2**32 - 1, name
    if not node.type.is_device:
        assert node.rdev_major == node.rdev_minor == 0
    assert stat.S_IFMT(node.st_mode) == node.type.type_bits
    assert isinstance(node.display_name, str)


def check_tree(nodes: list[Node]) -> None:
    names = [n.name for n in nodes]
    assert len(set(names)) == len(names)
    for node in nodes:
        check_node(node)


def check_snapshot(snap: Snapshot) -> None:
    assert isinstance(snap.time, datetime)
    for name in ("host", "user", "source", "program_version"):
        assert type(getattr(snap, name)) is str, name
    assert type(snap.tags) is list and all(type(t) is str for t in snap.tags)
    assert type(snap.paths) is list and all(type(p) is str for p in snap.paths)
    assert type(snap.tree) is Id
    assert snap.parent is None or type(snap.parent) is Id
    for name, value in snap.summary.to_dict().items():
        assert type(value) is (float if name == "duration_s" else int), name
    assert type(snap.chunker) is dict and type(snap.metadata) is dict


def check_lock(info: LockInfo) -> None:
    """Types, and what taking a lock does with someone else's: stale or not, described."""
    assert type(info.exclusive) is bool and type(info.pid) is int
    assert type(info.host) is str and type(info.user) is str and type(info.nonce) is bytes
    assert info.time.tzinfo is not None and info.refreshed.tzinfo is not None
    info.is_stale(NOW, host="not this host")
    info.is_stale(NOW, host=info.host, alive=lambda pid: True)
    pid_alive(info.pid)  # what is_stale asks on the lock's own host
    assert isinstance(info.describe(), str)


def check_config(config: RepositoryConfig) -> None:
    """Settings of the types a writer uses (whether the chunker parameters obey SPEC.md
    section 5 is ChunkerParams' to say, when a writer uses them)."""
    assert type(config.repository_id) is bytes and len(config.repository_id) == 16
    assert type(config.created) is str
    assert type(config.pack_size) is int and config.pack_size > 0
    assert type(config.compression_level) is int
    assert all(type(f) is str for f in config.features) and set(config.features) <= KNOWN_FEATURES
    for profile, params in config.chunker.items():
        assert type(profile) is str and len(params) == 4 and all(type(p) is int for p in params)


def check_master(master: MasterKey) -> None:
    for value in (master.encryption, master.id_key, master.chunker_seed):
        assert type(value) is bytes and len(value) == 32
