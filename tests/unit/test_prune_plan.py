"""The prune plan, a pure function: which packs to delete, repack and keep."""

from __future__ import annotations

import hashlib

import pytest

from snapstore.errors import UsageError
from snapstore.ids import Id
from snapstore.pack import BlobType, PackEntry
from snapstore.prune import PackContents, blob_key, plan_prune

HEADER = 100  # header envelope and trailer bytes in every pack


def bid(name: str) -> Id:
    return Id(hashlib.sha256(name.encode()).digest())


def pid(name: str) -> Id:
    return Id(hashlib.sha256(b"pack " + name.encode()).digest())


def make_pack(*blobs: tuple[str, int] | tuple[str, int, BlobType]) -> PackContents:
    entries = []
    offset = 0
    for blob in blobs:
        name, length = blob[0], blob[1]
        blob_type = blob[2] if len(blob) == 3 else BlobType.DATA
        entries.append(PackEntry(blob_type, bid(name), offset, length, length))
        offset += length
    return PackContents(offset + HEADER, tuple(entries))


def used(*names: str, blob_type: BlobType = BlobType.DATA) -> set[bytes]:
    return {blob_key(blob_type, bid(n)) for n in names}


def test_all_used_packs_are_kept_and_unused_ones_deleted() -> None:
    packs = {pid("a"): make_pack(("x", 1000), ("y", 1000)), pid("b"): make_pack(("z", 1000))}
    plan = plan_prune(packs, used("x", "y"), 0.05)
    assert plan.keep == {pid("a")} and plan.delete == {pid("b")} and not plan.repack
    assert plan.blobs_used == 2 and plan.blobs_unused == 1
    assert plan.unused_before == 1000 and plan.unused_after == 0
    assert not plan.missing


def test_partly_used_packs_are_repacked_until_under_the_limit() -> None:
    packs = {
        pid("mostly unused"): make_pack(("a", 100), ("junk1", 900)),
        pid("half"): make_pack(("b", 500), ("junk2", 500)),
        pid("full"): make_pack(("c", 10_000)),
    }
    everything = used("a", "b", "c")
    plan = plan_prune(packs, everything, 0.05)
    # 1400 unused of 10600 used: repack the worst pack (900 unused) first; 500 left is 4.5%.
    assert set(plan.repack) == {pid("mostly unused")}
    assert [e.id for e in plan.repack[pid("mostly unused")]] == [bid("a")]
    assert plan.keep == {pid("half"), pid("full")}
    assert plan.unused_after == 500
    assert set(plan_prune(packs, everything, 0.0).repack) == {pid("mostly unused"), pid("half")}
    assert not plan_prune(packs, everything, 1.0).repack


def test_duplicates_keep_the_copy_in_the_most_used_pack() -> None:
    packs = {
        pid("p1"): make_pack(("dup", 100), ("junk", 5000)),
        pid("p2"): make_pack(("dup", 100), ("other", 5000)),
    }
    plan = plan_prune(packs, used("dup", "other"), 0.05)
    assert plan.keep == {pid("p2")} and plan.delete == {pid("p1")} and not plan.repack
    assert plan.unused_after == 0


def test_a_blob_to_copy_that_sits_in_a_kept_pack_is_not_copied() -> None:
    packs = {
        pid("big"): make_pack(("dup", 100), ("junk", 100_000)),  # partly used, repacked
        pid("kept"): make_pack(("x", 2000), ("dup", 100), ("j", 50)),  # keeps dup too
    }
    plan = plan_prune(packs, used("dup", "x"), 0.05)
    assert pid("big") in plan.delete and not plan.repack
    assert pid("kept") in plan.keep


def test_tree_and_data_blobs_with_the_same_id_are_different_blobs() -> None:
    packs = {
        pid("trees"): make_pack(("same", 100, BlobType.TREE)),
        pid("data"): make_pack(("same", 100, BlobType.DATA)),
    }
    plan = plan_prune(packs, used("same", blob_type=BlobType.TREE), 0.05)
    assert plan.keep == {pid("trees")} and plan.delete == {pid("data")}


def test_missing_blobs_are_reported() -> None:
    plan = plan_prune({pid("a"): make_pack(("x", 10))}, used("x", "gone"), 0.05)
    assert plan.missing == used("gone")


def test_out_of_range_limit_is_refused() -> None:
    with pytest.raises(UsageError):
        plan_prune({}, set(), 1.5)


def test_empty_repository() -> None:
    plan = plan_prune({}, set(), 0.05)
    assert not (plan.keep or plan.delete or plan.repack or plan.missing)


def test_a_copy_in_a_kept_pack_replaces_the_copy_planned() -> None:
    """`dup`'s best copy is in R, which is repacked; K keeps another copy, so none is made."""
    packs = {
        pid("R"): make_pack(("a", 1000), ("dup", 100), ("junk", 900)),
        pid("K"): make_pack(("dup", 100), ("x", 500), ("junk2", 600)),
        pid("F"): make_pack(("a", 1000)),
    }
    plan = plan_prune(packs, used("a", "dup", "x"), 0.5)
    assert plan.delete == {pid("R")} and not plan.repack
    assert plan.keep == {pid("K"), pid("F")}
    assert plan.unused_after == 600
