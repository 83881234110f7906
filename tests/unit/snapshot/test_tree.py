"""The tree codec: canonical msgpack, and names that could escape a restore never decode."""

from __future__ import annotations

import gc
import os
import stat
from typing import Any

import msgpack
import pytest

from snapstore.errors import IntegrityError, UnsafePath, UnsupportedVersion
from snapstore.ids import Id
from snapstore.snapshot.tree import Node, NodeType, check_name, decode_tree, encode_tree
from tests.support.raw_trees import raw_node as common_node

BLOB = Id(bytes(range(32)))
SUBTREE = Id(bytes(range(32, 64)))


def sample_nodes() -> list[Node]:
    return [
        Node(
            b"zeta.txt",
            NodeType.FILE,
            mode=0o600,
            uid=1000,
            gid=100,
            user="alice",
            group="users",
            mtime_ns=1_700_000_000_000_000_001,
            size=12,
            content=[BLOB, BLOB],
        ),
        Node(b"alpha", NodeType.DIR, mode=0o755, subtree=SUBTREE, mtime_ns=5),
        Node(b"link", NodeType.SYMLINK, mode=0o777, target=b"../some/where\xff"),
        Node(b"empty", NodeType.FILE, size=0, content=[]),
        Node("caf\u00e9 \U0001f418".encode(), NodeType.FILE, extra={"sha": "x", "n": 3}),
        Node(b"\xff\xfe not utf-8", NodeType.FILE, mode=0o4755),
    ]


def test_round_trip() -> None:
    nodes = sample_nodes()
    decoded = decode_tree(encode_tree(nodes))
    assert decoded == sorted(nodes, key=lambda n: n.name)
    assert all(isinstance(i, Id) for n in decoded for i in n.content)
    assert isinstance(decoded[0].subtree, Id)


def test_empty_tree() -> None:
    assert decode_tree(encode_tree([])) == []


def test_encoding_is_canonical() -> None:
    nodes = sample_nodes()
    assert encode_tree(nodes) == encode_tree(list(reversed(nodes)))


def test_document_layout() -> None:
    doc = msgpack.unpackb(encode_tree(sample_nodes()), raw=False)
    assert list(doc) == ["v", "nodes"] and doc["v"] == 1
    names = [n["name"] for n in doc["nodes"]]
    assert names == sorted(names) and all(isinstance(n, bytes) for n in names)
    file_node = next(n for n in doc["nodes"] if n["name"] == b"zeta.txt")
    assert list(file_node) == [
        "name",
        "type",
        "mode",
        "uid",
        "gid",
        "user",
        "group",
        "mtime_ns",
        "size",
        "content",
    ]
    assert file_node["type"] == "file" and file_node["content"] == [bytes(BLOB)] * 2
    dir_node = next(n for n in doc["nodes"] if n["name"] == b"alpha")
    assert dir_node["subtree"] == bytes(SUBTREE) and "content" not in dir_node
    link = next(n for n in doc["nodes"] if n["name"] == b"link")
    assert link["target"] == b"../some/where\xff"
    assert "extra" not in link


def test_encode_refuses_duplicates_and_dirs_without_subtree() -> None:
    with pytest.raises(ValueError):
        encode_tree([Node(b"a", NodeType.FILE), Node(b"a", NodeType.DIR, subtree=SUBTREE)])
    with pytest.raises(ValueError):
        encode_tree([Node(b"d", NodeType.DIR)])


@pytest.mark.parametrize(
    "name", [b"", b".", b"..", b"a/b", b"/", b"/etc", b"../x", b"x/..", b"a\0b", b"\0"]
)
def test_check_name_refuses(name: bytes) -> None:
    with pytest.raises(UnsafePath):
        check_name(name)


@pytest.mark.parametrize("name", [b"...", b".hidden", b"a..b", b"-", b" ", b"\\", b"\xff"])
def test_check_name_accepts(name: bytes) -> None:
    check_name(name)


# -- hostile trees, built by hand so the encoder's own checks are bypassed ---------------------


def raw_node(name: Any, node_type: str = "file", **fields: Any) -> dict[str, Any]:
    """A raw node with the field its type needs (a file's content, a dir's subtree...)."""
    node = common_node(name, node_type)
    if node_type == "file":
        node["content"] = []
    elif node_type == "dir":
        node["subtree"] = bytes(SUBTREE)
    else:
        node["target"] = b"/etc/passwd"
    node.update(fields)
    return node


def raw_tree(*nodes: dict[str, Any], version: Any = 1) -> bytes:
    return msgpack.packb({"v": version, "nodes": list(nodes)}, use_bin_type=True)


@pytest.mark.parametrize("name", [b"", b".", b"..", b"a/b", b"../../etc", b"/abs", b"nul\0"])
@pytest.mark.parametrize("node_type", ["file", "dir", "symlink"])
def test_hostile_names_are_refused(name: bytes, node_type: str) -> None:
    hostile = raw_tree(raw_node(b"fine"), raw_node(name, node_type))
    with pytest.raises(UnsafePath):
        decode_tree(hostile)


def test_duplicate_names_are_refused() -> None:
    with pytest.raises(UnsafePath):
        decode_tree(raw_tree(raw_node(b"x", "symlink"), raw_node(b"x", "dir")))
    with pytest.raises(UnsafePath):
        decode_tree(raw_tree(raw_node(b"x"), raw_node(b"y"), raw_node(b"x")))


def test_names_must_be_binary() -> None:
    with pytest.raises(IntegrityError):
        decode_tree(raw_tree(raw_node("text-name")))


@pytest.mark.parametrize("version", [0, 4, None, "1", "2", "3", True])
def test_unknown_version(version: Any) -> None:
    with pytest.raises(UnsupportedVersion):
        decode_tree(raw_tree(raw_node(b"a"), version=version))


@pytest.mark.parametrize(
    "plaintext",
    [
        b"",
        b"\xc1",
        msgpack.packb([1, 2]),
        msgpack.packb({"v": 1}),
        raw_tree(raw_node(b"a", "socket")),
        raw_tree(raw_node(b"a", content=[b"short"])),
        raw_tree(raw_node(b"a", content=None)),
        raw_tree(raw_node(b"d", "dir", subtree=b"short")),
        raw_tree(raw_node(b"a", mode="rw")),
        raw_tree({"name": b"a", "type": "file"}),
        raw_tree([b"a", "file"]),  # type: ignore[arg-type]
        raw_tree(raw_node(b"l", "symlink", target="text")),
        raw_tree(raw_node(b"a")) + b"\x00",
    ],
)
def test_malformed_trees(plaintext: bytes) -> None:
    with pytest.raises(IntegrityError):
        decode_tree(plaintext)


def test_symlink_target_must_be_binary() -> None:
    with pytest.raises(IntegrityError):
        decode_tree(raw_tree(raw_node(b"l", "symlink", target=3)))


def test_unknown_node_keys_are_ignored() -> None:
    tree = raw_tree(raw_node(b"a", future_field=[1, 2, 3]))
    (node,) = decode_tree(tree)
    assert node.name == b"a"


def test_every_truncation_is_refused() -> None:
    encoded = encode_tree(sample_nodes())
    for length in range(len(encoded)):
        with pytest.raises(IntegrityError):
            decode_tree(encoded[:length])


def many_nodes(count: int) -> list[Node]:
    """Files, directories and symlinks, with and without file facts, as a big directory."""
    nodes = []
    for n in range(count):
        name = f"f{n:06d}".encode()
        if n % 7 == 3:
            nodes.append(Node(name, NodeType.DIR, mode=0o755, subtree=SUBTREE, mtime_ns=n))
        elif n % 7 == 5:
            nodes.append(Node(name, NodeType.SYMLINK, target=b"../" + name, user="u"))
        else:
            facts = {"inode": n, "device": 2049, "ctime_ns": 1_765_000_000_000_000_000 + n}
            nodes.append(Node(name, NodeType.FILE, uid=n, user=f"user{n % 3}", mtime_ns=n,
                              size=n % 5, content=[BLOB] * (n % 3), extra=facts if n % 2 else {}))  # fmt: skip
    return nodes


@pytest.mark.parametrize("count", [15, 16, 70_000])  # array headers: fix, 16 and 32 bits
def test_a_tree_packed_node_by_node_is_the_whole_document_packed(count: int) -> None:
    nodes = many_nodes(count)
    encoded = encode_tree(nodes)
    assert msgpack.packb(msgpack.unpackb(encoded, raw=False), use_bin_type=True) == encoded
    assert decode_tree(encoded) == nodes


def test_decoding_a_large_tree_leaves_the_garbage_collector_as_it_was() -> None:
    encoded = encode_tree(many_nodes(5_000))
    assert len(encoded) > 256 * 1024  # large enough to pause the collector
    assert gc.isenabled()
    decode_tree(encoded)
    assert gc.isenabled()
    gc.disable()
    try:
        decode_tree(encoded)
        assert not gc.isenabled()
    finally:
        gc.enable()
    with pytest.raises(UnsafePath):  # ...also when decoding fails
        decode_tree(encoded.replace(b"f000001", b"f000000"))
    assert gc.isenabled()


def test_document_keys_in_another_order_or_unknown_are_read() -> None:
    nodes = [raw_node(b"a"), raw_node(b"b", "dir")]
    for doc in ({"nodes": nodes, "v": 1}, {"v": 1, "later": [1], "nodes": nodes},
                {"first": {"x": 1}, "nodes": nodes, "v": 1}):  # fmt: skip
        decoded = decode_tree(msgpack.packb(doc, use_bin_type=True))
        assert [n.name for n in decoded] == [b"a", b"b"]
    with pytest.raises(UnsupportedVersion):  # the version is checked before any node is used
        decode_tree(msgpack.packb({"nodes": [raw_node(b"..")], "v": 9}, use_bin_type=True))


@pytest.mark.parametrize("key", [b"\xa1v", b"\xa5nodes"])
def test_a_document_key_given_twice_is_refused(key: bytes) -> None:
    value = b"\x01" if key == b"\xa1v" else msgpack.packb([raw_node(b"a")], use_bin_type=True)
    once = raw_tree(raw_node(b"a"))
    assert once[:1] == b"\x82"
    twice = b"\x83" + once[1:] + key + value  # a map of three entries, one key again
    with pytest.raises(IntegrityError, match="twice"):
        decode_tree(twice)


# -- version 2: files whose chunk ids are in chunk-list blobs ------------------------------------

LIST_A = Id(bytes(range(64, 96)))
LIST_B = Id(bytes(range(96, 128)))


def big_file(name: bytes = b"db.dump") -> Node:
    return Node(
        name, NodeType.FILE, mode=0o600, size=10 << 30, content_lists=[LIST_A, LIST_B, LIST_A]
    )


def test_version_2_round_trip() -> None:
    nodes = [*sample_nodes(), big_file()]
    encoded = encode_tree(nodes)
    decoded = decode_tree(encoded)
    assert decoded == sorted(nodes, key=lambda n: n.name)
    (dump,) = [n for n in decoded if n.name == b"db.dump"]
    assert dump.content == [] and dump.content_lists == [LIST_A, LIST_B, LIST_A]
    assert all(isinstance(i, Id) for i in dump.content_lists)
    assert encode_tree(decoded) == encoded  # canonical


def test_version_2_document_layout() -> None:
    doc = msgpack.unpackb(encode_tree([*sample_nodes(), big_file()]), raw=False)
    assert list(doc) == ["v", "nodes"] and doc["v"] == 2
    dump = next(n for n in doc["nodes"] if n["name"] == b"db.dump")
    assert list(dump) == [
        "name",
        "type",
        "mode",
        "uid",
        "gid",
        "user",
        "group",
        "mtime_ns",
        "size",
        "content_lists",
    ]
    assert dump["content_lists"] == [bytes(LIST_A), bytes(LIST_B), bytes(LIST_A)]
    # The other file nodes of a version 2 tree keep their inline content.
    zeta = next(n for n in doc["nodes"] if n["name"] == b"zeta.txt")
    assert zeta["content"] == [bytes(BLOB)] * 2 and "content_lists" not in zeta


def test_version_1_is_written_while_no_node_uses_chunk_lists() -> None:
    assert msgpack.unpackb(encode_tree(sample_nodes()))["v"] == 1
    assert msgpack.unpackb(encode_tree([big_file()]))["v"] == 2


def test_a_node_with_both_content_and_content_lists_is_refused() -> None:
    both = big_file()
    both.content = [BLOB]
    with pytest.raises(ValueError):
        encode_tree([both])
    hostile = raw_tree(
        raw_node(b"a", content=[bytes(BLOB)], content_lists=[bytes(LIST_A)]), version=2
    )
    with pytest.raises(IntegrityError):
        decode_tree(hostile)


@pytest.mark.parametrize(
    "fields",
    [
        {"content_lists": [b"short"]},
        {"content_lists": None},
        {"content_lists": bytes(LIST_A)},
    ],
)
def test_malformed_content_lists(fields: dict[str, Any]) -> None:
    node = raw_node(b"a", **fields)
    del node["content"]
    with pytest.raises(IntegrityError):
        decode_tree(raw_tree(node, version=2))


def test_a_version_1_tree_has_no_chunk_lists() -> None:
    """Chunk lists exist only in version 2: a version 1 file node must have inline content."""
    node = raw_node(b"a", content_lists=[bytes(LIST_A)])
    del node["content"]
    with pytest.raises(IntegrityError):
        decode_tree(raw_tree(node, version=1))


def test_every_truncation_of_a_version_2_tree_is_refused() -> None:
    encoded = encode_tree([big_file(), Node(b"x", NodeType.FILE, content=[BLOB])])
    for length in range(len(encoded)):
        with pytest.raises(IntegrityError):
            decode_tree(encoded[:length])


def special_nodes() -> list[Node]:
    return [
        Node(b"fifo", NodeType.FIFO, mode=0o600, mtime_ns=5, extra={"inode": 9}),
        Node(b"sock", NodeType.SOCKET, mode=0o755, uid=991, gid=991),
        Node(b"null", NodeType.CHARDEV, mode=0o666, rdev_major=1, rdev_minor=3),
        Node(b"sda", NodeType.BLOCKDEV, mode=0o660, gid=6, rdev_major=8, rdev_minor=0),
    ]


def test_special_nodes_round_trip_in_a_version_3_tree() -> None:
    nodes = [*sample_nodes(), big_file(), *special_nodes()]
    encoded = encode_tree(nodes)
    assert msgpack.unpackb(encoded)["v"] == 3  # a superset of version 2: chunk lists too
    decoded = decode_tree(encoded)
    assert decoded == sorted(nodes, key=lambda n: n.name)
    assert encode_tree(decoded) == encoded
    for node in special_nodes():
        assert msgpack.unpackb(encode_tree([node]))["v"] == 3


def test_special_node_layout() -> None:
    doc = msgpack.unpackb(encode_tree(special_nodes()), raw=False)
    by_name = {n["name"]: n for n in doc["nodes"]}
    common = ["name", "type", "mode", "uid", "gid", "user", "group", "mtime_ns", "size"]
    assert list(by_name[b"null"]) == [*common, "rdev_major", "rdev_minor"]
    assert (by_name[b"sda"]["rdev_major"], by_name[b"sda"]["rdev_minor"]) == (8, 0)
    assert list(by_name[b"sock"]) == common
    assert list(by_name[b"fifo"]) == [*common, "extra"]


def test_special_nodes_are_refused_below_version_3() -> None:
    for version in (1, 2):
        for node_type in ("fifo", "socket", "chardev", "blockdev"):
            with pytest.raises(IntegrityError, match=f"{node_type} node in a version {version}"):
                decode_tree(raw_tree(raw_node(b"a", node_type, rdev_major=1, rdev_minor=1),
                                     version=version))


@pytest.mark.parametrize(
    "fields",
    [
        {},  # no device number
        {"rdev_major": 1},
        {"rdev_major": -1, "rdev_minor": 0},
        {"rdev_major": 0, "rdev_minor": 2**32},
        {"rdev_major": 1.0, "rdev_minor": 3},
        {"rdev_major": 1, "rdev_minor": False},
        {"rdev_major": "1", "rdev_minor": 3},
    ],
)
def test_malformed_device_numbers(fields: dict[str, Any]) -> None:
    with pytest.raises(IntegrityError):
        decode_tree(raw_tree(raw_node(b"dev", "chardev", **fields), version=3))


def test_type_bits_are_one_mapping_both_ways() -> None:
    for node_type in NodeType:
        assert NodeType.from_mode(node_type.type_bits | 0o644) is node_type
        assert stat.S_IFMT(Node(b"x", node_type, mode=0o4755).st_mode) == node_type.type_bits
    assert stat.filemode(Node(b"x", NodeType.CHARDEV, mode=0o620).st_mode) == "crw--w----"
    assert stat.filemode(Node(b"x", NodeType.SOCKET, mode=0o777).st_mode)[0] == "s"
    assert NodeType.from_mode(0) is None  # no type bits: nothing a node can hold
    assert {t for t in NodeType if t.special} == {
        NodeType.FIFO, NodeType.SOCKET, NodeType.CHARDEV, NodeType.BLOCKDEV
    }


def test_display_name() -> None:
    assert Node(b"caf\xc3\xa9", NodeType.FILE).display_name == "caf\u00e9"
    assert os.fsencode(Node(b"\xff", NodeType.FILE).display_name) == b"\xff"
