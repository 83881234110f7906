"""The snapshot walker: order, each tree and chunk list read once, damage reported or raised,
and snapshots thousands of levels deep."""

from __future__ import annotations

import tracemalloc
from collections import Counter

import pytest

from snapstore.errors import IntegrityError, ObjectNotFound, SnapstoreError
from snapstore.ids import Id
from snapstore.pack import BlobType
from snapstore.repository.repository import Repository
from snapstore.snapshot.store import walk
from snapstore.snapshot.tree import Node, NodeType, encode_tree
from snapstore.snapshot.walk import BlobRole, Step, TreeVisit, Unreadable, Walker
from tests.conftest import assert_repository_ok
from tests.support.deep_trees import DEPTH, deep_snapshot

Reads = Counter[tuple[BlobType, bytes]]
NOWHERE = Id(b"\xee" * 32)  # named by a tree, stored nowhere


@pytest.fixture
def reads(repo: Repository, monkeypatch: pytest.MonkeyPatch) -> Reads:
    """Every blob the repository is asked for, by type and id."""
    counts: Reads = Counter()
    real = repo.load_blob

    def counting(blob_type: BlobType, wanted: bytes) -> bytes:
        counts[(blob_type, bytes(wanted))] += 1
        return real(blob_type, wanted)

    monkeypatch.setattr(repo, "load_blob", counting)
    return counts


def tree(repo: Repository, *nodes: Node) -> Id:
    return repo.save_blob(BlobType.TREE, encode_tree(nodes)).id


def data(repo: Repository, content: bytes) -> Id:
    return repo.save_blob(BlobType.DATA, content).id


def file(name: bytes, *content: Id, lists: tuple[Id, ...] = ()) -> Node:
    return Node(name, NodeType.FILE, size=len(content), content=list(content), content_lists=list(lists))


def directory(name: bytes, subtree: Id) -> Node:
    return Node(name, NodeType.DIR, mode=0o755, subtree=subtree)


def chunk_list(repo: Repository, *ids: Id) -> Id:
    return data(repo, b"".join(ids))


@pytest.fixture
def nested(repo: Repository) -> dict[str, Id]:
    """root: a/ (x, y/ (z)), b, c -> b"""
    x, z, b = data(repo, b"x"), data(repo, b"z"), data(repo, b"b")
    y = tree(repo, file(b"z", z))
    a = tree(repo, file(b"x", x), directory(b"y", y))
    root = tree(
        repo, Node(b"c", NodeType.SYMLINK, target=b"b"), file(b"b", b), directory(b"a", a)
    )
    repo.flush()
    return {"root": root, "a": a, "y": y}


def test_pre_order_puts_parents_before_children_in_name_order(
    repo: Repository, nested: dict[str, Id]
) -> None:
    visits = list(Walker(repo).pre_order(nested["root"]))
    assert [v.path for v in visits] == [
        (b"a",), (b"a", b"x"), (b"a", b"y"), (b"a", b"y", b"z"), (b"b",), (b"c",)
    ]
    assert [v.node.name for v in visits] == [p.path[-1] for p in visits]
    assert visits[3].display_path == "a/y/z"
    assert visits[2].node.subtree == nested["y"]
    assert [(p, n.name) for p, n in walk(repo, nested["root"], (b"top",))][:2] == [
        ((b"top", b"a"), b"a"), ((b"top", b"a", b"x"), b"x")
    ]
    assert_repository_ok(repo)


def test_post_order_yields_each_tree_after_the_trees_below_it(
    repo: Repository, nested: dict[str, Id]
) -> None:
    trees = list(Walker(repo).post_order(nested["root"]))
    assert [(t.path, t.tree_id) for t in trees] == [
        ((b"a", b"y"), nested["y"]), ((b"a",), nested["a"]), ((), nested["root"])
    ]
    assert [n.name for n in trees[1].nodes] == [b"x", b"y"]
    assert trees[0].display_path == "a/y" and trees[2].display_path == ""
    assert_repository_ok(repo)


@pytest.fixture
def sharing(repo: Repository) -> tuple[Id, Id, Id]:
    """Two roots sharing a subtree: first (a/ -> shared, b/ -> shared), second (c/ -> shared, e)."""
    shared = tree(repo, file(b"f", data(repo, b"f")))
    first = tree(repo, directory(b"a", shared), directory(b"b", shared))
    second = tree(repo, directory(b"c", shared), file(b"e", data(repo, b"e")))
    repo.flush()
    return first, second, shared


def test_each_tree_is_read_once_across_snapshots(
    repo: Repository, sharing: tuple[Id, Id, Id], reads: Reads
) -> None:
    first, second, shared = sharing
    walker = Walker(repo)
    # b names the tree a led into: b is met, what is below it is not walked again
    assert [v.path for v in walker.pre_order(first)] == [(b"a",), (b"a", b"f"), (b"b",)]
    assert [v.path for v in walker.pre_order(second)] == [(b"c",), (b"e",)]
    assert list(walker.pre_order(first)) == []  # met before: nothing at all
    assert reads[(BlobType.TREE, bytes(shared))] == 1
    assert {k: n for k, n in reads.items() if n != 1} == {}

    again = Walker(repo)  # another walker remembers nothing
    assert [t.tree_id for t in again.post_order(first)] == [shared, first]
    assert [t.tree_id for t in again.post_order(second)] == [second]
    assert_repository_ok(repo)


def test_every_copy_of_a_shared_tree_when_asked(
    repo: Repository, sharing: tuple[Id, Id, Id]
) -> None:
    first, _, _ = sharing
    walker = Walker(repo, each_tree_once=False)
    expected = [(b"a",), (b"a", b"f"), (b"b",), (b"b", b"f")]
    assert [v.path for v in walker.pre_order(first)] == expected
    assert [v.path for v in walker.pre_order(first)] == expected  # and every time
    assert [p for p, _ in walk(repo, first)] == expected
    assert_repository_ok(repo)


def test_chunk_lists_are_read_once_and_only_when_asked(repo: Repository, reads: Reads) -> None:
    chunks = [data(repo, bytes([i]) * 100) for i in range(5)]
    one, two = chunk_list(repo, *chunks[:3]), chunk_list(repo, *chunks[3:])
    root = tree(repo, file(b"big", lists=(one, two)), file(b"tail", chunks[0], lists=()),
                file(b"twin", lists=(two,)))  # fmt: skip
    repo.flush()
    walker = Walker(repo)
    visits = {v.node.name: v.node for v in walker.pre_order(root)}
    assert [k for k in reads if k[0] is BlobType.DATA] == []  # walking reads no chunk list

    assert list(walker.blobs(visits[b"big"])) == [(BlobType.DATA, i) for i in [one, two, *chunks]]
    assert list(walker.blobs(visits[b"twin"])) == [(BlobType.DATA, two)]  # its list was read
    assert list(walker.blobs(visits[b"tail"])) == [(BlobType.DATA, chunks[0])]
    assert list(walker.chunk_lists(visits[b"big"])) == []
    assert reads[(BlobType.DATA, bytes(one))] == reads[(BlobType.DATA, bytes(two))] == 1

    fresh = Walker(repo)
    assert list(fresh.chunk_lists(visits[b"twin"])) == [(two, chunks[3:])]
    assert list(fresh.chunk_lists(visits[b"big"])) == [(one, chunks[:3])]
    assert_repository_ok(repo)


def test_blobs_of_directories_and_symlinks(repo: Repository, nested: dict[str, Id]) -> None:
    walker = Walker(repo)
    nodes = {v.path: v.node for v in walker.pre_order(nested["root"])}
    assert list(walker.blobs(nodes[(b"a",)])) == [(BlobType.TREE, nested["a"])]
    assert list(walker.blobs(nodes[(b"c",)])) == []
    assert_repository_ok(repo)


@pytest.fixture
def damaged(repo: Repository) -> dict[str, Id]:
    """root: a/ -> stored nowhere, b/ -> not a tree, c (chunk lists: stored nowhere, malformed,
    good), d/ (e)"""
    garbage = repo.save_blob(BlobType.TREE, b"\x93not a tree").id
    good = chunk_list(repo, data(repo, b"listed"))
    malformed = data(repo, b"33 bytes is not a run of 32-byte ids"[:33])
    d = tree(repo, file(b"e", data(repo, b"e")))
    root = tree(repo, directory(b"a", NOWHERE), directory(b"b", garbage),
                file(b"c", lists=(NOWHERE, malformed, good)), directory(b"d", d))  # fmt: skip
    repo.flush()
    return {"root": root, "garbage": garbage, "good": good, "malformed": malformed, "d": d}


def test_damage_is_reported_and_the_walk_carries_on(
    repo: Repository, damaged: dict[str, Id]
) -> None:
    problems: list[Unreadable] = []
    walker = Walker(repo, on_error=problems.append)
    found = []
    for visit in walker.pre_order(damaged["root"]):
        found.append(visit.path)
        if visit.node.type is NodeType.FILE:
            found.extend(list(walker.chunk_lists(visit.node)))
    listed = data(repo, b"listed")
    assert found == [(b"a",), (b"b",), (b"c",), (NOWHERE, []), (damaged["malformed"], []),
                     (damaged["good"], [listed]), (b"d",), (b"d", b"e")]  # fmt: skip
    assert [(p.role, p.blob_id) for p in problems] == [
        (BlobRole.TREE, NOWHERE),
        (BlobRole.TREE, damaged["garbage"]),
        (BlobRole.CHUNK_LIST, NOWHERE),
        (BlobRole.CHUNK_LIST, damaged["malformed"]),
    ]
    assert isinstance(problems[0].error, ObjectNotFound)
    assert isinstance(problems[1].error, IntegrityError)
    assert isinstance(problems[3].error, IntegrityError)


def test_an_unreadable_tree_comes_in_post_order_as_empty(
    repo: Repository, damaged: dict[str, Id]
) -> None:
    problems: list[Unreadable] = []
    trees = list(Walker(repo, on_error=problems.append).post_order(damaged["root"]))
    assert [(t.path, t.tree_id, len(t.nodes)) for t in trees] == [
        ((b"a",), NOWHERE, 0),
        ((b"b",), damaged["garbage"], 0),
        ((b"d",), damaged["d"], 1),
        ((), damaged["root"], 4),
    ]
    assert len(problems) == 2  # post-order reads no chunk list unless asked


def test_without_a_callback_the_first_damage_is_raised(
    repo: Repository, damaged: dict[str, Id]
) -> None:
    met = []
    with pytest.raises(ObjectNotFound):
        for visit in Walker(repo).pre_order(damaged["root"]):
            met.append(visit.path)
    assert met == [(b"a",)]
    node = file(b"c", lists=(damaged["malformed"],))
    with pytest.raises(IntegrityError):
        list(Walker(repo).chunk_lists(node))
    with pytest.raises(ObjectNotFound):
        list(Walker(repo).post_order(NOWHERE))


def test_a_callback_that_raises_stops_the_walk(repo: Repository, damaged: dict[str, Id]) -> None:
    class Stop(Exception):
        pass

    def stop(problem: Unreadable) -> None:
        raise Stop(problem.blob_id.hex()) from problem.error

    met = []
    with pytest.raises(Stop) as raised:
        for visit in Walker(repo, on_error=stop).pre_order(damaged["root"]):
            met.append(visit.path)
    assert met == [(b"a",)] and str(raised.value) == NOWHERE.hex()
    assert isinstance(raised.value.__cause__, SnapstoreError)


def test_thousands_of_levels(repo: Repository, reads: Reads) -> None:
    snap = deep_snapshot(repo)
    walker = Walker(repo)
    count, last = 0, None
    for count, visit in enumerate(walker.pre_order(snap.tree), 1):
        assert len(visit.path) == min(count, DEPTH) + (count > DEPTH)
        last = visit
    assert count == DEPTH + 1 and last is not None
    assert last.path == (b"d",) * DEPTH + (b"leaf.txt",) and last.node.type is NodeType.FILE
    assert sum(n for (t, _), n in reads.items() if t is BlobType.TREE) == DEPTH + 1

    trees = Walker(repo).post_order(snap.tree)
    bottom = next(trees)
    assert bottom.path == (b"d",) * DEPTH and [n.name for n in bottom.nodes] == [b"leaf.txt"]
    rest = list(trees)
    assert len(rest) == DEPTH and rest[-1].path == () and rest[-1].tree_id == snap.tree
    assert sum(1 for _ in walk(repo, snap.tree)) == DEPTH + 1
    assert_repository_ok(repo)


def test_a_deep_walk_holds_one_level_of_nodes_per_level(repo: Repository) -> None:
    """Memory grows with the depth, not with the square of it: paths are not kept per level."""
    snap = deep_snapshot(repo)
    tracemalloc.start()
    try:
        for _ in Walker(repo).post_order(snap.tree):
            pass
        for _ in Walker(repo).pre_order(snap.tree):
            pass
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # a path per level would be DEPTH**2 / 2 pointers (36 MB at 3,000 levels, 400 MB at
    # 10,000); one level each is about a kilobyte a level
    assert peak < DEPTH * (4 << 10), peak


def test_post_order_trees_are_the_walkers_to_give_away(repo: Repository) -> None:
    """Copy rewrites the nodes it is given: they must be fresh, not a cache's."""
    root = tree(repo, file(b"f", data(repo, b"f")))
    repo.flush()
    (first,) = Walker(repo).post_order(root)
    first.nodes[0].name = b"changed"
    (second,) = Walker(repo).post_order(root)
    assert isinstance(second, TreeVisit) and second.nodes[0].name == b"f"


def test_steps_leave_each_directory_after_its_contents_and_descend_only_where_asked(
    repo: Repository, nested: dict[str, Id]
) -> None:
    def shown(steps: list[Step]) -> list[str]:
        return [("leave " if s.leaving else "") + s.display_path for s in steps]

    assert shown(list(Walker(repo).steps(nested["root"]))) == [
        "a", "a/x", "a/y", "a/y/z", "leave a/y", "leave a", "b", "c", "leave ",
    ]
    leaves = [s for s in Walker(repo).steps(nested["root"]) if s.leaving]
    assert [s.node.name if s.node else None for s in leaves] == [b"y", b"a", None]
    asked: list[str] = []

    def only_a(path: tuple[bytes, ...], node: Node) -> bool:
        asked.append(b"/".join(path).decode())
        return path == (b"a",)

    assert shown(list(Walker(repo).steps(nested["root"], only_a))) == [
        "a", "a/x", "a/y", "leave a", "b", "c", "leave ",
    ]
    assert asked == ["a", "a/y"]
