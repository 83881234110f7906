"""Fuzzing the tree codec and the chunk-list parser: any plaintext of a tree blob or a
chunk-list blob decodes to well-typed nodes or ids, or raises a clean error."""

from __future__ import annotations

from hypothesis import example, given

from snapstore.errors import IntegrityError, UnsafePath, UnsupportedVersion
from snapstore.ids import ID_SIZE, Id
from snapstore.snapshot.content import parse_chunk_list
from snapstore.snapshot.tree import decode_tree
from tests.fuzz.fuzzing import decoded, documents, fuzz, hostile, with_field
from tests.fuzz.seeds import CHUNK_LIST_SEEDS, TREES
from tests.fuzz.wellformed import check_tree

TREE_ERRORS = (IntegrityError, UnsupportedVersion, UnsafePath)


TREE = TREES[0]
SPECIAL = TREES[-2]  # special_nodes.json's version 3 tree: node 0 a chardev, 1 a FIFO


def test_tree_decoder(fuzz_cases: int) -> None:
    @given(hostile(TREES, documents(TREES)))
    # Found by this test: int() of an infinite mode, uid, gid, mtime or size raised
    # OverflowError (so did restore, ls and check on such a tree).
    @example(with_field(TREE, ["nodes", 0, "mode"], float("inf")))
    @example(with_field(TREE, ["nodes", 0, "size"], float("-inf")))
    @example(with_field(TREE, ["nodes", 1, "mtime_ns"], float("inf")))
    # A device number must be an integer that makedev takes, on a device node of a v3 tree.
    @example(with_field(SPECIAL, ["nodes", 0, "rdev_major"], float("inf")))
    @example(with_field(SPECIAL, ["nodes", 0, "rdev_minor"], -1))
    @example(with_field(SPECIAL, ["nodes", 0, "rdev_minor"], 2**32))
    @example(with_field(SPECIAL, ["nodes", 0, "rdev_major"], True))
    @example(with_field(SPECIAL, ["v"], 2))
    @example(with_field(SPECIAL, ["nodes", 1, "type"], "door"))
    def case(plaintext: bytes) -> None:
        nodes = decoded(decode_tree, plaintext, allowed=TREE_ERRORS)
        if nodes is not None:
            check_tree(nodes)

    fuzz(fuzz_cases, case)


def test_chunk_list_parser(fuzz_cases: int) -> None:
    @given(hostile(CHUNK_LIST_SEEDS))
    def case(plaintext: bytes) -> None:
        ids = decoded(parse_chunk_list, plaintext)
        if ids is not None:
            assert ids and all(type(i) is Id for i in ids)
            assert b"".join(ids) == plaintext and len(ids) * ID_SIZE == len(plaintext)

    fuzz(fuzz_cases, case)
