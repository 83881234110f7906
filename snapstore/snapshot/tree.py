"""Tree codec (SPEC.md section 9): a msgpack map with a fixed key order.

    {"v": 1, 2 or 3, "nodes": [node, ...]}    nodes sorted by name bytes, names unique

    node = {"name": bin, "type": "file" | "dir" | "symlink"       (any version)
                             | "fifo" | "socket" | "chardev" | "blockdev"   (version 3 only),
            "mode": int (permission bits),
            "uid": int, "gid": int, "user": str, "group": str, "mtime_ns": int, "size": int,
            then by type:  file    "content": [bin(32), ...]   data blob ids in order
                                   or, in a version 2 tree,
                                   "content_lists": [bin(32), ...]  chunk-list blob ids
                                   (snapshot/content.py; for files of many chunks)
                           dir     "subtree": bin(32)          tree blob id
                           symlink "target": bin
                           chardev, blockdev  "rdev_major": int, "rdev_minor": int
                           fifo, socket       nothing}
            optionally "extra": map (source-specific facts; readers ignore unknown keys)

The version is the lowest that can hold the nodes: 3 when some node is a FIFO, socket or
device node, else 2 when some file lists its chunks in chunk lists, else 1; so a tree without
special nodes is byte for byte what it was before version 3, and older readers still read it.
`NodeType.type_bits` and `NodeType.from_mode` are the one mapping between node types and the
file-type bits of `st_mode` (the files source, restore, mount and archives use it).

Decoding refuses names that could escape a restore target ("", ".", "..", or containing "/"
or NUL) and duplicate names, so no later layer ever sees one. It also refuses, as an
IntegrityError naming the node, what no filesystem can hold and a restore would trip over: a
uid or gid outside 0..2^32-1 (chown's range) and a symlink target containing NUL (readlink
never returns one).
"""

from __future__ import annotations

import enum
import gc
import io
import itertools
import operator
import stat
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import msgpack

from snapstore.errors import IntegrityError, UnsafePath, UnsupportedVersion
from snapstore.ids import Id

TREE_VERSION = 1
#: Written when a node lists its chunks through chunk-list blobs; readers accept both.
TREE_VERSION_CHUNK_LISTS = 2
#: Written when a node is a FIFO, socket or device node (a superset of version 2).
TREE_VERSION_SPECIAL = 3
_VERSIONS = (TREE_VERSION, TREE_VERSION_CHUNK_LISTS, TREE_VERSION_SPECIAL)


class NodeType(enum.Enum):
    FILE = "file"
    DIR = "dir"
    SYMLINK = "symlink"
    FIFO = "fifo"
    SOCKET = "socket"
    CHARDEV = "chardev"
    BLOCKDEV = "blockdev"

    @property
    def type_bits(self) -> int:
        """The file-type bits of `st_mode` (stat.S_IFMT) for this type."""
        return _TYPE_BITS[self]

    @property
    def special(self) -> bool:
        """A FIFO, socket or device node: no content, only in version 3 trees."""
        return self in SPECIAL_TYPES

    @property
    def is_device(self) -> bool:
        return self in (NodeType.CHARDEV, NodeType.BLOCKDEV)

    @property
    def description(self) -> str:
        """How messages name the type: "file", "FIFO", "character device"."""
        return _DESCRIPTIONS[self]

    @classmethod
    def from_mode(cls, st_mode: int) -> NodeType | None:
        """The node type of an `lstat` mode; None for what no node can hold."""
        return _TYPES_BY_BITS.get(stat.S_IFMT(st_mode))


_TYPE_BITS = {
    NodeType.FILE: stat.S_IFREG,
    NodeType.DIR: stat.S_IFDIR,
    NodeType.SYMLINK: stat.S_IFLNK,
    NodeType.FIFO: stat.S_IFIFO,
    NodeType.SOCKET: stat.S_IFSOCK,
    NodeType.CHARDEV: stat.S_IFCHR,
    NodeType.BLOCKDEV: stat.S_IFBLK,
}
_TYPES_BY_BITS = {bits: node_type for node_type, bits in _TYPE_BITS.items()}
_DESCRIPTIONS = {
    NodeType.FILE: "file",
    NodeType.DIR: "directory",
    NodeType.SYMLINK: "symlink",
    NodeType.FIFO: "FIFO",
    NodeType.SOCKET: "socket",
    NodeType.CHARDEV: "character device",
    NodeType.BLOCKDEV: "block device",
}
SPECIAL_TYPES = frozenset({NodeType.FIFO, NodeType.SOCKET, NodeType.CHARDEV, NodeType.BLOCKDEV})


@dataclass(slots=True)  # no per-node __dict__: a directory of 200,000 files holds 200,000 nodes
class Node:
    name: bytes
    type: NodeType
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    user: str = ""
    group: str = ""
    mtime_ns: int = 0
    size: int = 0
    content: list[Id] = field(default_factory=list)
    #: For a file of many chunks, instead of `content`: blobs listing its chunk ids
    content_lists: list[Id] = field(default_factory=list)
    subtree: Id | None = None
    target: bytes = b""
    #: Character and block devices only: the device number (`st_rdev`) as major and minor
    rdev_major: int = 0
    rdev_minor: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def display_name(self) -> str:
        return self.name.decode("utf-8", "surrogateescape")

    @property
    def st_mode(self) -> int:
        """The node's type bits and permission bits together, as `lstat` gives them."""
        return self.type.type_bits | self.mode


#: uid and gid are 32-bit on every system snapstore restores to (chown takes uid_t); so are
#: a device number's major and minor (glibc's makedev takes two unsigned ints).
MAX_ID = 2**32 - 1


def check_name(name: bytes) -> None:
    if not name or name in (b".", b"..") or b"/" in name or b"\0" in name:
        raise UnsafePath(f"unsafe name in snapshot: {name!r}")


def _node_problem(node: Node) -> str | None:
    """What makes a node impossible to restore as recorded, or None."""
    for field_name in ("uid", "gid"):
        value = getattr(node, field_name)
        if not 0 <= value <= MAX_ID:
            return f"{field_name} {value} is out of range (0 to {MAX_ID})"
    if node.type is NodeType.SYMLINK and b"\0" in node.target:
        return f"symlink target {node.target!r} contains NUL"
    if node.type.is_device:
        for field_name in ("rdev_major", "rdev_minor"):
            value = getattr(node, field_name)
            if not 0 <= value <= MAX_ID:
                return f"{field_name} {value} is out of range (0 to {MAX_ID})"
    return None


# Once per node, a type is looked up by its name (a str hashes once), never by the member:
# enum members hash in Python, and `.value` is a property.
_TYPES_BY_NAME = {node_type.value: node_type for node_type in NodeType}
_SPECIAL_NAMES = frozenset(node_type.value for node_type in SPECIAL_TYPES)
_FILE = NodeType.FILE
_intern = sys.intern
_by_name = operator.attrgetter("name")


def _encode_node(node: Node) -> dict[str, Any]:
    node_type = node.type
    out: dict[str, Any] = {
        "name": node.name,
        "type": node_type._value_,
        "mode": node.mode,
        "uid": node.uid,
        "gid": node.gid,
        "user": node.user,
        "group": node.group,
        "mtime_ns": node.mtime_ns,
        "size": node.size,
    }
    if node_type is NodeType.FILE:
        if node.content_lists:
            if node.content:
                raise ValueError("a file node lists its chunks either inline or in chunk lists")
            out["content_lists"] = [bytes(i) for i in node.content_lists]
        else:
            out["content"] = [bytes(i) for i in node.content] if node.content else []
    elif node_type is NodeType.DIR:
        if node.subtree is None:
            raise ValueError("a directory node needs a subtree")
        out["subtree"] = bytes(node.subtree)
    elif node_type is NodeType.SYMLINK:
        out["target"] = node.target
    elif node_type.is_device:
        out["rdev_major"] = node.rdev_major
        out["rdev_minor"] = node.rdev_minor
    if node.extra:
        out["extra"] = node.extra
    return out


def encode_tree(nodes: Sequence[Node]) -> bytes:
    """The tree's bytes, packed a node at a time: a directory of 200,000 files never holds
    200,000 maps at once (the bytes are those of packing the whole document)."""
    ordered = sorted(nodes, key=_by_name)
    for a, b in itertools.pairwise(ordered):
        if a.name == b.name:
            raise ValueError(f"duplicate name {a.name!r} in one directory")
    if not _SPECIAL_NAMES.isdisjoint({n.type._value_ for n in ordered}):
        version = TREE_VERSION_SPECIAL
    elif any(n.content_lists for n in ordered):
        version = TREE_VERSION_CHUNK_LISTS
    else:
        version = TREE_VERSION
    packer = msgpack.Packer(use_bin_type=True, autoreset=False)
    packer.pack_map_header(2)
    for item in ("v", version, "nodes"):
        packer.pack(item)
    packer.pack_array_header(len(ordered))
    pack = packer.pack
    for node in ordered:
        pack(_encode_node(node))
    return packer.bytes()


def _decode_node(raw: dict[str, Any], version: int) -> Node:
    type_name = raw["type"]
    node_type = _TYPES_BY_NAME.get(type_name) if type(type_name) is str else None
    if node_type is None:
        raise ValueError(f"{type_name!r} is not a valid NodeType")
    if version < TREE_VERSION_SPECIAL and type_name in _SPECIAL_NAMES:
        raise ValueError(f"a {type_name} node in a version {version} tree")
    name = raw["name"]
    if not isinstance(name, bytes):
        raise IntegrityError("node name is not binary")
    check_name(name)
    content: list[Id] = []
    content_lists: list[Id] = []
    if node_type is _FILE:
        if version >= TREE_VERSION_CHUNK_LISTS and "content_lists" in raw:
            if "content" in raw:
                raise ValueError("file node has both content and content_lists")
            content_lists = [Id(i) for i in raw["content_lists"]]
            if not content_lists:
                raise ValueError("content_lists is empty (an empty file has empty content)")
        else:
            listed = raw["content"]
            if type(listed) is not list or listed:
                content = [Id(i) for i in listed]
    extra = raw.get("extra")
    node = Node(
        name,
        node_type,
        int(raw["mode"]),
        int(raw["uid"]),
        int(raw["gid"]),
        _intern(str(raw["user"])),  # one string per owner, not two per node
        _intern(str(raw["group"])),
        int(raw["mtime_ns"]),
        int(raw["size"]),
        content,
        content_lists,
        None,
        b"",
        0,
        0,
        extra if type(extra) is dict else dict(extra or {}),  # a fresh map of this node's
    )
    if node_type is _FILE:
        if 0 <= node.uid <= MAX_ID and 0 <= node.gid <= MAX_ID:
            return node
    elif node_type is NodeType.DIR:
        node.subtree = Id(raw["subtree"])
    elif node_type is NodeType.SYMLINK:
        target = raw["target"]
        if not isinstance(target, bytes):
            raise IntegrityError("symlink target is not binary")
        node.target = target
    elif node_type.is_device:
        node.rdev_major = _int(raw["rdev_major"], "rdev_major")
        node.rdev_minor = _int(raw["rdev_minor"], "rdev_minor")
    problem = _node_problem(node)
    if problem:
        raise IntegrityError(f"tree is malformed: node {name!r}: {problem}")
    return node


def _int(value: object, what: str) -> int:
    """A msgpack integer, refusing what int() would quietly turn into one (a float, a bool)."""
    if type(value) is not int:
        raise ValueError(f"{what} is not an integer")
    return value


def _check_version(version: object) -> int:
    if type(version) is not int or version not in _VERSIONS:
        raise UnsupportedVersion(f"tree version {version!r} is not supported")
    return version


def _decode_nodes(plaintext: bytes) -> list[Node]:
    """The document read a node at a time, so a directory of 200,000 files never holds
    200,000 raw maps besides its nodes. snapstore writes "v" before "nodes"; a document with
    the keys the other way round has its nodes read whole, then decoded."""
    unpacker = msgpack.Unpacker(  # reads from the bytes as it goes: no copy of them
        io.BytesIO(plaintext), raw=False, strict_map_key=False,
        max_buffer_size=max(len(plaintext), 1),
    )  # fmt: skip
    try:
        keys = unpacker.read_map_header()
    except ValueError:
        raise ValueError("tree is not a map") from None
    version: int | None = None
    nodes: list[Node] | None = None
    raw_nodes: list[Any] | None = None
    seen: set[str] = set()
    for _ in range(keys):
        key = unpacker.unpack()
        if key in ("v", "nodes"):
            if key in seen:
                raise ValueError(f"key {key!r} twice in the tree")
            seen.add(key)
        if key == "v":
            version = _check_version(unpacker.unpack())
        elif key == "nodes" and version is not None:
            unpack = unpacker.unpack
            nodes = [_decode_node(unpack(), version) for _ in range(unpacker.read_array_header())]
        elif key == "nodes":
            raw_nodes = unpacker.unpack()
        else:
            unpacker.skip()
    if unpacker.tell() != len(plaintext):
        raise ValueError("extra data after the tree")
    version = _check_version(version)
    if nodes is None:
        if raw_nodes is None:
            raise KeyError("nodes")
        nodes = [_decode_node(n, version) for n in raw_nodes]
    return nodes


#: Trees from this size on are decoded with the cyclic garbage collector paused.
_PAUSE_GC_FROM = 256 * 1024


def decode_tree(plaintext: bytes) -> list[Node]:
    # A large tree is decoded with the cyclic garbage collector paused, as msgpack's
    # documentation advises for large messages: each node (and its lists) is a new object
    # the collector would otherwise go through again and again while the list of them
    # grows, about 0.6 s of CPU for a directory of 200,000 files. Nothing decoded here is
    # garbage in a cycle.
    pause = len(plaintext) >= _PAUSE_GC_FROM and gc.isenabled()
    if pause:
        gc.disable()
    try:
        nodes = _decode_nodes(plaintext)
    except (UnsupportedVersion, UnsafePath):
        raise
    except (ValueError, KeyError, TypeError, OverflowError, msgpack.UnpackException) as exc:
        # OverflowError: int() of an infinite float
        raise IntegrityError(f"tree is malformed: {exc}") from None
    finally:
        if pause:
            gc.enable()
    if len({n.name for n in nodes}) != len(nodes):
        raise UnsafePath("duplicate names in one directory of the snapshot")
    return nodes
