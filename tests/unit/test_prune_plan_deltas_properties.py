"""Prune plan invariants with delta blobs, over random packs where some copies are deltas:

- every used blob survives in a form that can be read: whole, or a delta whose chain of bases
  survives down to a whole copy within `deltas.MAX_DEPTH`;
- every delta left in a kept pack (used or not) has such a chain surviving, so the new index
  names no delta nobody can read;
- no used blob's chain grows deeper than the shallowest it had;
- each blob is copied at most once, and kept, deleted and repacked packs partition the input;
- a used blob none of whose copies has a chain ending in a whole copy is reported;
- blobs re-based (stored whole) are used deltas, not also copied, and the plan keeps fewer
  stored bytes with them than without, by its own estimate;
- the plan does not depend on the order of the input.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from snapstore.ids import Id
from snapstore.index.deltas import MAX_DEPTH
from snapstore.pack import FLAG_DELTA, BlobType, PackEntry
from snapstore.prune import PackContents, PrunePlan, blob_key, plan_prune

HEADER = 64


def bid(number: int) -> Id:
    return Id(number.to_bytes(32, "big"))


def key(number: int) -> bytes:
    return blob_key(BlobType.DATA, bid(number))


@st.composite
def repositories(draw: st.DrawFn) -> tuple[dict[Id, PackContents], set[bytes]]:
    """Data blobs 0..n-1; each copy of a blob is whole or (sometimes) a delta against another
    blob, which may be stored whole, only as a delta, or not at all."""
    blob_count = draw(st.integers(2, 24))
    lengths = draw(st.lists(st.integers(1, 5000), min_size=blob_count, max_size=blob_count))
    packs: dict[Id, PackContents] = {}
    for number in range(draw(st.integers(0, 10))):
        members = draw(
            st.lists(st.integers(0, blob_count - 1), min_size=1, max_size=8, unique=True)
        )
        entries, offset = [], 0
        for blob in members:
            # a base anywhere, or the blob before it: long chains, some deeper than allowed
            base = draw(st.one_of(st.none(), st.integers(0, blob_count + 2), st.just(blob - 1)))
            if base == blob or base == -1:
                base = None
            flags, base_id = (0, None) if base is None else (FLAG_DELTA, bid(base))
            entries.append(
                PackEntry(BlobType.DATA, bid(blob), offset, lengths[blob], 10, flags, base_id)
            )
            offset += lengths[blob]
        packs[Id((number + 1000).to_bytes(32, "big"))] = PackContents(
            offset + HEADER, tuple(entries)
        )
    present = sorted({blob_key(e.type, e.id) for p in packs.values() for e in p.entries})
    used = set(draw(st.lists(st.sampled_from(present), unique=True))) if present else set()
    return packs, used


def surviving(packs: dict[Id, PackContents], plan: PrunePlan) -> list[PackEntry]:
    stays = [e for p in plan.keep for e in packs[p].entries]
    stays += [PackEntry(BlobType(k[0]), Id(k[1:]), 0, 1, 1) for k in plan.rebase]  # whole
    return stays + [e for entries in plan.repack.values() for e in entries]


@settings(max_examples=400, deadline=None)
@given(repositories(), st.sampled_from([0.0, 0.05, 0.5, 1.0]), st.booleans())
def test_plan_invariants_with_deltas(
    repo: tuple[dict[Id, PackContents], set[bytes]], max_unused: float, rebase: bool
) -> None:
    packs, used = repo
    plan = plan_prune(packs, used, max_unused, rebase=rebase)
    repacked = set(plan.repack)
    assert plan.keep | plan.delete | repacked == set(packs)
    assert not (plan.keep & plan.delete or plan.keep & repacked or plan.delete & repacked)
    stays = surviving(packs, plan)
    after = depths(stays)
    before = depths([e for p in packs.values() for e in p.entries])
    # Every used blob that could be kept readable is, no deeper than before; the others are
    # reported.
    assert used - plan.missing_bases.keys() <= after.keys()
    for blob in used - plan.missing_bases.keys():
        assert after[blob] <= before[blob]
    assert plan.missing_bases.keys() == used - before.keys() - plan.missing
    # No delta stays behind in a kept pack without a chain to a whole copy.
    for pack_id in plan.keep:
        for entry in packs[pack_id].entries:
            assert entry.base is None or after.get(key_of(entry.base), MAX_DEPTH) < MAX_DEPTH
    # Copies are made once, out of the pack and place the plan says.
    copied = [blob_key(e.type, e.id) for entries in plan.repack.values() for e in entries]
    assert len(copied) == len(set(copied))
    for pack_id, entries in plan.repack.items():
        assert set(entries) <= set(packs[pack_id].entries)
    # Re-basing stores used deltas whole, each instead of copying it, and only where it pays.
    assert plan.rebase <= used and not plan.rebase & set(copied)
    assert all(before[k] > 0 for k in plan.rebase)
    if rebase:
        plain = plan_prune(packs, used, max_unused, rebase=False)
        assert plan.used_bytes < plain.used_bytes if plan.rebase else plan.used_bytes == plain.used_bytes
        assert plan.blobs_used == plain.blobs_used - plan.bases_freed
    else:
        assert not plan.rebase
    # The plan does not depend on the order of the input.
    reordered = dict(reversed(list(packs.items())))
    again = plan_prune(reordered, used, max_unused, rebase=rebase)
    assert (again.keep, again.delete, again.repack) == (plan.keep, plan.delete, plan.repack)
    assert again.rebase == plan.rebase
    assert again.missing_bases == plan.missing_bases


def key_of(base: Id) -> bytes:
    return blob_key(BlobType.DATA, base)


def depths(entries: list[PackEntry]) -> dict[bytes, int]:
    """Each blob's shallowest chain to a whole copy among `entries`, if at most MAX_DEPTH
    deltas deep: relaxed until nothing changes (a reference independent of prune's own)."""
    found: dict[bytes, int] = {}
    changed = True
    while changed:
        changed = False
        for e in entries:
            if e.base is None:
                d: int | None = 0
            else:
                below = found.get(key_of(e.base))
                d = None if below is None else below + 1
            k = blob_key(e.type, e.id)
            if d is not None and d <= MAX_DEPTH and d < found.get(k, MAX_DEPTH + 1):
                found[k] = d
                changed = True
    return found


def chain_pack(length: int) -> dict[Id, PackContents]:
    """One pack: blob 0 whole, blob i a delta against blob i - 1."""
    entries = tuple(
        PackEntry(BlobType.DATA, bid(i), i * 10, 10, 100, FLAG_DELTA if i else 0, bid(i - 1) if i else None)
        for i in range(length)
    )
    return {Id((1000).to_bytes(32, "big")): PackContents(length * 10 + HEADER, entries)}


def test_a_used_delta_keeps_its_whole_chain_and_no_more() -> None:
    packs = chain_pack(MAX_DEPTH + 3)
    plan = plan_prune(packs, {key(5)}, 0.0, rebase=False)
    (kept,) = plan.repack.values()
    assert [e.id for e in kept] == [bid(i) for i in range(6)]  # 5 and the bases under it
    assert not plan.missing_bases and plan.blobs_used == 6


def test_a_used_delta_deep_in_a_chain_is_stored_whole_when_that_frees_the_chain() -> None:
    """Every blob 10 bytes stored, 100 plain: storing 5 whole (10 bytes by the estimate from
    blob 0) frees 0 to 4 and its own delta copy."""
    plan = plan_prune(chain_pack(MAX_DEPTH + 3), {key(5)}, 0.0)
    assert plan.rebase == {key(5)} and plan.rebase_bytes == 10
    assert plan.bases_freed == 5 and plan.bases_freed_bytes == 50
    assert not plan.repack and plan.blobs_used == 1 and plan.used_bytes == 10


def test_a_chain_deeper_than_allowed_stops_prune() -> None:
    packs = chain_pack(MAX_DEPTH + 2)  # blob MAX_DEPTH + 1 sits MAX_DEPTH + 1 deltas deep
    plan = plan_prune(packs, {key(MAX_DEPTH), key(MAX_DEPTH + 1)}, 0.0)
    assert plan.missing_bases == {key(MAX_DEPTH + 1): key(MAX_DEPTH)}
