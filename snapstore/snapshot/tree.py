"""Tree codec (SPEC.md section 9): a msgpack map with a fixed key order.

    {"v": 1 or 2, "nodes": [node, ...]}       nodes sorted by name bytes, names unique

    node = {"name": bin, "type": "file" | "dir" | "symlink", "mode": int (permission bits),
            "uid": int, "gid": int, "user": str, "group": str, "mtime_ns": int, "size": int,
            then by type:  file    "content": [bin(32), ...]   data blob ids in order
                                   or, in a version 2 tree,
                                   "content_lists": [bin(32), ...]  chunk-list blob ids
                                   (snapshot/content.py; for files of many chunks)
                           dir     "subtree": bin(32)          tree blob id
                           symlink "target": bin}
            optionally "extra": map (source-specific facts; readers ignore unknown keys)

Decoding refuses names that could escape a restore target ("", ".", "..", or containing "/"
or NUL) and duplicate names, so no later layer ever sees one. It also refuses, as an
IntegrityError naming the node, what no filesystem can hold and a restore would trip over: a
uid or gid outside 0..2^32-1 (chown's range) and a symlink target containing NUL (readlink
never returns one).
"""

from __future__ import annotations

import enum
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import msgpack

from snapstore.errors import IntegrityError, UnsafePath, UnsupportedVersion
from snapstore.ids import Id

TREE_VERSION = 1
#: Written when a node lists its chunks through chunk-list blobs; readers accept both.
TREE_VERSION_CHUNK_LISTS = 2


class NodeType(enum.Enum):
    FILE = "file"
    DIR = "dir"
    SYMLINK = "symlink"


@dataclass
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
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def display_name(self) -> str:
        return self.name.decode("utf-8", "surrogateescape")


#: uid and gid are 32-bit on every system snapstore restores to (chown takes uid_t).
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
    return None


def _encode_node(node: Node) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": node.name,
        "type": node.type.value,
        "mode": node.mode,
        "uid": node.uid,
        "gid": node.gid,
        "user": node.user,
        "group": node.group,
        "mtime_ns": node.mtime_ns,
        "size": node.size,
    }
    if node.type is NodeType.FILE:
        if node.content_lists:
            if node.content:
                raise ValueError("a file node lists its chunks either inline or in chunk lists")
            out["content_lists"] = [bytes(i) for i in node.content_lists]
        else:
            out["content"] = [bytes(i) for i in node.content]
    elif node.type is NodeType.DIR:
        if node.subtree is None:
            raise ValueError("a directory node needs a subtree")
        out["subtree"] = bytes(node.subtree)
    else:
        out["target"] = node.target
    if node.extra:
        out["extra"] = node.extra
    return out


def encode_tree(nodes: Sequence[Node]) -> bytes:
    ordered = sorted(nodes, key=lambda n: n.name)
    for a, b in itertools.pairwise(ordered):
        if a.name == b.name:
            raise ValueError(f"duplicate name {a.name!r} in one directory")
    version = TREE_VERSION_CHUNK_LISTS if any(n.content_lists for n in ordered) else TREE_VERSION
    return msgpack.packb(
        {"v": version, "nodes": [_encode_node(n) for n in ordered]}, use_bin_type=True
    )


def _decode_node(raw: dict[str, Any], version: int) -> Node:
    node_type = NodeType(raw["type"])
    name = raw["name"]
    if not isinstance(name, bytes):
        raise IntegrityError("node name is not binary")
    check_name(name)
    node = Node(
        name=name,
        type=node_type,
        mode=int(raw["mode"]),
        uid=int(raw["uid"]),
        gid=int(raw["gid"]),
        user=str(raw["user"]),
        group=str(raw["group"]),
        mtime_ns=int(raw["mtime_ns"]),
        size=int(raw["size"]),
        extra=dict(raw.get("extra") or {}),
    )
    if node_type is NodeType.FILE:
        if version >= TREE_VERSION_CHUNK_LISTS and "content_lists" in raw:
            if "content" in raw:
                raise ValueError("file node has both content and content_lists")
            node.content_lists = [Id(i) for i in raw["content_lists"]]
            if not node.content_lists:
                raise ValueError("content_lists is empty (an empty file has empty content)")
        else:
            node.content = [Id(i) for i in raw["content"]]
    elif node_type is NodeType.DIR:
        node.subtree = Id(raw["subtree"])
    else:
        target = raw["target"]
        if not isinstance(target, bytes):
            raise IntegrityError("symlink target is not binary")
        node.target = target
    problem = _node_problem(node)
    if problem:
        raise IntegrityError(f"tree is malformed: node {name!r}: {problem}")
    return node


def decode_tree(plaintext: bytes) -> list[Node]:
    try:
        doc = msgpack.unpackb(plaintext, raw=False, strict_map_key=False)
        if not isinstance(doc, dict):
            raise ValueError("tree is not a map")
        version = doc.get("v")
        if type(version) is not int or version not in (TREE_VERSION, TREE_VERSION_CHUNK_LISTS):
            raise UnsupportedVersion(f"tree version {version!r} is not supported")
        nodes = [_decode_node(n, version) for n in doc["nodes"]]
    except (UnsupportedVersion, UnsafePath):
        raise
    except (ValueError, KeyError, TypeError, OverflowError, msgpack.UnpackException) as exc:
        # OverflowError: int() of an infinite float
        raise IntegrityError(f"tree is malformed: {exc}") from None
    names = [n.name for n in nodes]
    if len(set(names)) != len(names):
        raise UnsafePath("duplicate names in one directory of the snapshot")
    return nodes
