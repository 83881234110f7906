"""The prune plan, a pure function: which packs to delete, repack and keep."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import pytest

from snapstore.errors import UsageError
from snapstore.ids import Id
from snapstore.pack import FLAG_DELTA, BlobType, PackEntry
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


# -- delta blobs --------------------------------------------------------------------------------
def delta_pack(*blobs: tuple[str, int, str | None]) -> PackContents:
    """A pack of data blobs, each (name, length, base name or None when stored whole)."""
    entries = []
    offset = 0
    for name, length, base in blobs:
        if base is None:
            entries.append(PackEntry(BlobType.DATA, bid(name), offset, length, length))
        else:
            entries.append(
                PackEntry(BlobType.DATA, bid(name), offset, length, length * 10, FLAG_DELTA, bid(base))
            )
        offset += length
    return PackContents(offset + HEADER, tuple(entries))


def test_a_used_delta_keeps_its_base() -> None:
    packs = {
        pid("old"): delta_pack(("base", 10_000, None), ("junk", 10_000, None)),
        pid("new"): delta_pack(("d", 100, "base")),
    }
    plan = plan_prune(packs, used("d"), 0.0, rebase=False)
    assert plan.keep == {pid("new")}
    assert [e.id for e in plan.repack[pid("old")]] == [bid("base")]
    assert plan.blobs_used == 2 and plan.blobs_unused == 1
    assert not plan.missing and not plan.missing_bases


def test_a_base_used_directly_and_as_a_base_is_kept_once() -> None:
    packs = {
        pid("a"): delta_pack(("base", 10_000, None), ("junk", 10_000, None)),
        pid("b"): delta_pack(("base", 10_000, None), ("d", 100, "base")),
    }
    plan = plan_prune(packs, used("d", "base"), 0.0)
    assert plan.keep == {pid("b")} and plan.delete == {pid("a")} and not plan.repack
    assert plan.blobs_used == 2 and plan.unused_after == 0


def test_a_delta_whose_base_is_nowhere_is_reported() -> None:
    packs = {pid("new"): delta_pack(("d", 100, "gone"), ("x", 100, None))}
    plan = plan_prune(packs, used("d", "x"), 0.05)
    assert plan.missing_bases == {blob_key(BlobType.DATA, bid("d")): blob_key(BlobType.DATA, bid("gone"))}
    assert not plan.missing


def test_a_whole_copy_serves_when_the_delta_copy_has_no_base() -> None:
    packs = {
        pid("p1"): delta_pack(("d", 100, "gone"), ("y", 100, None)),
        pid("p2"): delta_pack(("d", 5_000, None), ("junk", 5_000, None)),
    }
    plan = plan_prune(packs, used("d", "y"), 0.0)
    assert not plan.missing_bases and not plan.missing
    assert [e.base for e in plan.repack[pid("p2")]] == [None]  # the whole copy of d
    assert pid("p1") in plan.repack  # y is copied out; the broken delta is left behind


def test_a_base_is_kept_whole_even_where_a_delta_copy_is_preferred() -> None:
    """`base` has a whole copy and a delta copy (against `other`); as a base only the whole
    copy serves, though the pack of the delta copy is the more used one."""
    packs = {
        pid("whole"): delta_pack(("base", 1_000, None), ("junk", 50_000, None)),
        pid("busy"): delta_pack(("base", 100, "other"), ("d", 100, "base"), ("other", 1_000, None)),
    }
    plan = plan_prune(packs, used("d", "other"), 0.0, rebase=False)
    assert [e.id for e in plan.repack[pid("whole")]] == [bid("base")]
    assert pid("busy") in plan.repack  # its delta copy of `base` is unused
    assert {e.id for e in plan.repack[pid("busy")]} == {bid("d"), bid("other")}
    copied = [e for entries in plan.repack.values() for e in entries if e.id == bid("base")]
    assert len(copied) == 1 and copied[0].base is None


def test_a_kept_pack_with_an_unused_delta_whose_base_goes_is_repacked() -> None:
    """With no limit the mostly used pack would stay, still naming `stale`, whose base is in
    a pack deleted whole. The new index must not name a delta nobody can read."""
    packs = {
        pid("old"): delta_pack(("base", 10_000, None)),
        pid("mixed"): delta_pack(("x", 50_000, None), ("stale", 100, "base")),
    }
    plan = plan_prune(packs, used("x"), 1.0)
    assert plan.delete == {pid("old")}
    assert [e.id for e in plan.repack[pid("mixed")]] == [bid("x")]
    assert not plan.keep


def test_a_kept_pack_with_an_unused_delta_whose_base_stays_is_kept() -> None:
    packs = {
        pid("old"): delta_pack(("base", 10_000, None)),
        pid("mixed"): delta_pack(("x", 50_000, None), ("stale", 100, "base"), ("y", 100, "base")),
    }
    plan = plan_prune(packs, used("x", "y"), 1.0, rebase=False)
    assert plan.keep == {pid("old"), pid("mixed")} and not plan.repack and not plan.delete


def test_a_whole_base_to_copy_is_not_replaced_by_a_kept_delta_copy() -> None:
    packs = {
        pid("R"): delta_pack(("base", 1_000, None), ("junk", 100_000, None)),
        pid("K"): delta_pack(("x", 9_000, None), ("base", 100, "other"), ("other", 1_000, None)),
        pid("D"): delta_pack(("d", 100, "base")),
    }
    plan = plan_prune(packs, used("d", "x", "other"), 0.1, rebase=False)
    assert [e.id for e in plan.repack[pid("R")]] == [bid("base")]
    assert {pid("K"), pid("D")} <= plan.keep


# -- re-basing: used deltas stored whole so that dead bases can go ---------------------------------
PLAIN = 40_000  # every version of the chunk below has this plaintext length


def versions_pack(*blobs: tuple[str, int, str | None]) -> PackContents:
    """Versions of one chunk: (name, stored length, base name or None when whole), all with
    the same plaintext length, as nightly versions of a database chunk have."""
    entries, offset = [], 0
    for name, length, base in blobs:
        flags, base_id = (0, None) if base is None else (FLAG_DELTA, bid(base))
        entries.append(PackEntry(BlobType.DATA, bid(name), offset, length, PLAIN, flags, base_id))
        offset += length
    return PackContents(offset + HEADER, tuple(entries))


def test_a_live_delta_is_stored_whole_so_its_dead_chain_goes() -> None:
    """live 24 -> dead 16 -> dead 0 (whole): writing 24 whole (10 000 bytes, by 0's length)
    frees 0, 16 and 24's delta copy (12 300 bytes). 25 and 26 rest on 24 and stay deltas."""
    packs = {
        pid("night 0"): versions_pack(("v0", 10_000, None)),
        pid("night 16"): versions_pack(("v16", 1_500, "v0")),
        pid("night 24"): versions_pack(("v24", 800, "v16"), ("x", 5_000, None)),
        pid("night 25"): versions_pack(("v25", 300, "v24"), ("v26", 400, "v24")),
    }
    plan = plan_prune(packs, used("v24", "v25", "v26", "x"), 1.0)
    assert plan.rebase == used("v24") and plan.rebase_bytes == 10_000
    assert plan.bases_freed == 2 and plan.bases_freed_bytes == 11_500
    assert plan.delete == {pid("night 0"), pid("night 16")}
    # the pack of 24's delta copy goes, though max_unused would let it stay: x is copied out
    assert [e.id for e in plan.repack[pid("night 24")]] == [bid("x")]
    assert plan.keep == {pid("night 25")}
    assert plan.blobs_used == 4 and plan.used_bytes == 10_000 + 5_000 + 700
    plain = plan_prune(packs, used("v24", "v25", "v26", "x"), 1.0, rebase=False)
    assert not plain.rebase and plain.keep == set(packs) and plain.blobs_used == 6


def test_a_dead_base_shared_by_live_chains_goes_only_when_all_of_them_are_cut() -> None:
    """0 is the base of dead 8 and dead 16, under live 12 and live 24. Storing 24 whole alone
    would free 16 but not 0, which 12 still needs (6 500 freed for 10 000 written); storing
    both whole frees 0, 8 and 16 (23 000 for 20 000)."""
    packs = {
        pid("night 0"): versions_pack(("v0", 10_000, None)),
        pid("old"): versions_pack(("v8", 6_000, "v0"), ("v16", 6_000, "v0")),
        pid("new"): versions_pack(("v12", 500, "v8"), ("v24", 500, "v16")),
    }
    plan = plan_prune(packs, used("v12", "v24"), 0.0)
    assert plan.rebase == used("v12", "v24") and plan.rebase_bytes == 20_000
    assert plan.bases_freed == 3 and plan.delete == set(packs) and not plan.repack
    assert plan.blobs_used == 2


def test_a_dead_base_other_live_chains_need_stays() -> None:
    """As above with live 4 and 8 resting on 0 as well: 0 stays for them (storing them whole
    too would write 20 000 bytes to free 16 500). Storing 24 whole still pays if 16 is
    large (12 000 + 500 freed for 10 000 written), and frees 16 alone."""
    packs = {
        pid("night 0"): versions_pack(("v0", 10_000, None)),
        pid("old"): versions_pack(("v4", 500, "v0"), ("v8", 6_000, "v0"), ("v16", 12_000, "v0")),
        pid("new"): versions_pack(("v12", 500, "v8"), ("v24", 500, "v16")),
    }
    live = used("v4", "v8", "v12", "v24")
    plan = plan_prune(packs, live, 0.0)
    assert plan.rebase == used("v24")
    assert plan.bases_freed == 1 and plan.bases_freed_bytes == 12_000
    assert plan.keep == {pid("night 0")}
    assert [e.id for e in plan.repack[pid("old")]] == [bid("v4"), bid("v8")]
    assert [e.id for e in plan.repack[pid("new")]] == [bid("v12")]
    # with 16 small it does not pay: nothing is rewritten and the plan is the plain one
    packs[pid("old")] = versions_pack(("v4", 500, "v0"), ("v8", 6_000, "v0"), ("v16", 6_000, "v0"))
    plan = plan_prune(packs, live, 0.0)
    assert not plan.rebase and plan.bases_freed == 0
    assert plan == plan_prune(packs, live, 0.0, rebase=False)


def test_a_rebase_that_does_not_pay_is_not_done() -> None:
    """0 is the dead base of live 1 and live 2: storing both whole writes 20 000 bytes to
    free 11 000; storing one frees nothing. And a live delta with twice the root's plaintext
    would be estimated at twice its length."""
    packs = {
        pid("night 0"): versions_pack(("v0", 10_000, None)),
        pid("nights"): versions_pack(("v1", 500, "v0"), ("v2", 500, "v0")),
    }
    plan = plan_prune(packs, used("v1", "v2"), 0.0)
    assert not plan.rebase and plan.bases_freed == 0 and plan.keep == set(packs)
    grown = PackEntry(BlobType.DATA, bid("v1"), 0, 500, 2 * PLAIN, FLAG_DELTA, bid("v0"))
    packs = {pid("night 0"): versions_pack(("v0", 10_000, None)), pid("n"): PackContents(600, (grown,))}
    assert not plan_prune(packs, used("v1"), 0.0).rebase
    same = replace(grown, plain_length=PLAIN)  # estimated at 10 000: 10 500 freed, it pays
    assert plan_prune({**packs, pid("n"): PackContents(600, (same,))}, used("v1"), 0.0).rebase == used("v1")


def test_the_rebase_plan_does_not_depend_on_input_order() -> None:
    """Two chains with equal gains either way round: the same blobs are chosen whatever the
    order of the packs and of the used set."""
    packs = {
        pid("a0"): versions_pack(("a0", 10_000, None)),
        pid("b0"): versions_pack(("b0", 10_000, None)),
        pid("mid"): versions_pack(("a16", 3_000, "a0"), ("b16", 3_000, "b0")),
        pid("live"): versions_pack(("a24", 700, "a16"), ("b24", 700, "b16"), ("a25", 100, "a24")),
    }
    live = used("a24", "b24", "a25")
    plan = plan_prune(packs, live, 0.05)
    assert plan.rebase == used("a24", "b24") and plan.bases_freed == 4
    for reordered in (dict(reversed(list(packs.items()))), dict(sorted(packs.items(), key=lambda i: i[1].size))):
        again = plan_prune(reordered, set(reversed(sorted(live))), 0.05)
        assert again == plan


# -- re-basing at a dead branch point: a base no snapshot uses stored whole ------------------------
def skip_delta_night(night: int, drift: int) -> tuple[str, int, str | None]:
    """Version `night` of a chunk whose chain starts whole at night 0 (generation = night):
    stored against version night & (night - 1), 1 500 bytes plus `drift` a night spanned."""
    if night == 0:
        return ("v0", 60_000, None)
    base = night & (night - 1)
    return (f"v{night}", 1_500 + drift * (night - base), f"v{base}")


def weekly_packs(nights: range, drift: int) -> dict[Id, PackContents]:
    return {pid(f"night {n}"): versions_pack(skip_delta_night(n, drift)) for n in nights}


def test_a_dead_branch_point_is_stored_whole_so_the_chain_under_it_goes() -> None:
    """Nights 0-25 of a chunk, skip-delta chains; kept: 17 and 24 (weeklies) and 25 (daily).
    17 and 24 hang on dead 16 (25 on 24), 16 on dead 0 (whole, 60 000 bytes). Storing 17 and 24
    whole writes 120 000 bytes to free 0, 16 and their delta copies (89 500): not done. Storing
    16 whole writes 60 000 to free 0 and 16's delta copy (77 500): done, once, and 17, 24 and
    25 stay deltas, 17 and 24 against 16 stored whole."""
    packs = weekly_packs(range(26), 1_000)
    live = used("v17", "v24", "v25")
    plan = plan_prune(packs, live, 0.0)
    assert plan.rebase == used("v16") and plan.rebase_bytes == 60_000
    assert plan.bases_freed == 1 and plan.bases_freed_bytes == 60_000  # v0
    assert plan.keep == {pid("night 17"), pid("night 24"), pid("night 25")}
    assert pid("night 0") in plan.delete and pid("night 16") in plan.delete and not plan.repack
    assert plan.blobs_used == 4  # 16 (whole, a base), 17, 24, 25
    assert plan.used_bytes == 60_000 + 2_500 + 9_500 + 2_500
    plain = plan_prune(packs, live, 0.0, rebase=False)
    assert plan.used_bytes == plain.used_bytes - 17_500
    assert plan.blobs_used == plain.blobs_used - plan.bases_freed
    # Deterministic whatever the order of the input.
    again = plan_prune(dict(reversed(list(packs.items()))), set(reversed(sorted(live))), 0.0)
    assert again == plan


def test_the_lowest_dead_branch_point_that_pays_is_chosen() -> None:
    """Kept 25 and 26 hang on dead 24, 24 on dead 16, 16 on dead 0. Storing 24 whole frees 0,
    16 and 24's delta copy (60 000 + 17 500 + 9 500); storing 16 whole frees less (77 500)."""
    packs = weekly_packs(range(27), 1_000)
    plan = plan_prune(packs, used("v25", "v26"), 0.0)
    assert plan.rebase == used("v24")
    assert plan.bases_freed == 2 and plan.bases_freed_bytes == 77_500


def test_a_dead_branch_point_is_not_stored_whole_when_that_does_not_pay() -> None:
    """As above, with night 8 kept as well (a monthly): 0 stays for it, so storing 16 whole
    would free only 16's delta copy (17 500) for 60 000 written; storing 8 whole too would
    write 120 000 for 86 500. Nothing is rewritten."""
    packs = weekly_packs(range(26), 1_000)
    live = used("v8", "v17", "v24", "v25")
    plan = plan_prune(packs, live, 0.0)
    assert not plan.rebase and plan.bases_freed == 0
    assert plan == plan_prune(packs, live, 0.0, rebase=False)
    # Nor when the branch point's plaintext doubled: its whole copy is estimated at 120 000.
    grown = PackEntry(BlobType.DATA, bid("v16"), 0, 17_500, 2 * PLAIN, FLAG_DELTA, bid("v0"))
    packs = {**weekly_packs(range(26), 1_000), pid("night 16"): PackContents(17_600, (grown,))}
    assert not plan_prune(packs, used("v17", "v24", "v25"), 0.0).rebase


def test_a_dead_blob_nothing_rests_on_is_freed_not_stored_whole() -> None:
    """Kept 17 alone on dead 16: 17 itself is stored whole (the cheaper cut, 2 500 + 17 500 +
    60 000 freed for 60 000), never 16, which nothing would rest on."""
    packs = weekly_packs(range(18), 1_000)
    plan = plan_prune(packs, used("v17"), 0.0)
    assert plan.rebase == used("v17") and plan.bases_freed == 2
