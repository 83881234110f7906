"""Prune plan invariants, over random packs with duplicates, shared ids and unused blobs:

- every used blob survives: in a kept pack, or in the copy list exactly once;
- nothing used is lost through deletion, and kept, deleted and repacked packs partition the input;
- what stays unused is within the limit;
- a pack with nothing used in it is deleted; with a 100% limit nothing is repacked;
- the plan does not depend on the order of the input.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from snapstore.ids import Id
from snapstore.pack import BlobType, PackEntry
from snapstore.prune import PackContents, PrunePlan, blob_key, plan_prune, unused_allowed

HEADER = 64


@st.composite
def repositories(draw: st.DrawFn) -> tuple[dict[Id, PackContents], set[bytes]]:
    blob_count = draw(st.integers(1, 30))
    lengths = draw(st.lists(st.integers(1, 5000), min_size=blob_count, max_size=blob_count))
    types = draw(st.lists(st.sampled_from(BlobType), min_size=blob_count, max_size=blob_count))
    packs: dict[Id, PackContents] = {}
    for number in range(draw(st.integers(0, 12))):
        members = draw(
            st.lists(st.integers(0, blob_count - 1), min_size=1, max_size=8, unique=True)
        )
        entries, offset = [], 0
        for blob in members:
            blob_id = Id(blob.to_bytes(32, "big"))
            entries.append(PackEntry(types[blob], blob_id, offset, lengths[blob], lengths[blob]))
            offset += lengths[blob]
        packs[Id((number + 1000).to_bytes(32, "big"))] = PackContents(
            offset + HEADER, tuple(entries)
        )
    present = sorted({blob_key(e.type, e.id) for p in packs.values() for e in p.entries})
    used = set(draw(st.lists(st.sampled_from(present), unique=True))) if present else set()
    return packs, used


def survivors(packs: dict[Id, PackContents], plan: PrunePlan) -> list[bytes]:
    kept = {blob_key(e.type, e.id) for p in plan.keep for e in packs[p].entries}
    copied = [blob_key(e.type, e.id) for entries in plan.repack.values() for e in entries]
    return sorted(kept) + sorted(copied)


@settings(max_examples=300, deadline=None)
@given(repositories(), st.sampled_from([0.0, 0.05, 0.2, 0.5, 1.0]))
def test_plan_invariants(
    repo: tuple[dict[Id, PackContents], set[bytes]], max_unused: float
) -> None:
    packs, used = repo
    plan = plan_prune(packs, used, max_unused)
    assert not plan.missing
    # The three sets partition the packs.
    repacked = set(plan.repack)
    assert plan.keep | plan.delete | repacked == set(packs)
    assert not (plan.keep & plan.delete or plan.keep & repacked or plan.delete & repacked)
    # Every used blob survives, and is copied at most once and never when a kept pack has it.
    kept = {blob_key(e.type, e.id) for p in plan.keep for e in packs[p].entries}
    copied = [blob_key(e.type, e.id) for entries in plan.repack.values() for e in entries]
    assert len(copied) == len(set(copied))
    assert not kept & set(copied)
    assert used <= kept | set(copied)
    assert set(copied) <= used
    # Copies come out of the pack the plan says, at the place it says.
    for pack_id, entries in plan.repack.items():
        assert set(entries) <= set(packs[pack_id].entries)
    # Packs with nothing used are deleted.
    for pack_id, contents in packs.items():
        if not {blob_key(e.type, e.id) for e in contents.entries} & used:
            assert pack_id in plan.delete
    # The unused share left is within the limit (repacking everything partly used gets to 0).
    assert plan.unused_after <= unused_allowed(max_unused, plan.used_bytes) + 1e-6
    unused_kept = sum(
        e.length for p in plan.keep for e in packs[p].entries if blob_key(e.type, e.id) not in used
    )
    assert unused_kept <= plan.unused_after
    if max_unused >= 1:
        assert not plan.repack
    assert plan.blobs_used == len(used)


@settings(max_examples=100, deadline=None)
@given(repositories(), st.randoms(use_true_random=False))
def test_plan_does_not_depend_on_input_order(
    repo: tuple[dict[Id, PackContents], set[bytes]], rng: object
) -> None:
    packs, used = repo
    items = list(packs.items())
    rng.shuffle(items)  # type: ignore[attr-defined]
    shuffled = dict(items)
    assert plan_prune(packs, used, 0.05) == plan_prune(shuffled, frozenset(used), 0.05)
