"""Prune plan invariants with delta blobs, over random packs where some copies are deltas:

- every used blob survives in a form that can be read: whole, or a delta whose base survives whole;
- every delta left in a kept pack (used or not) has its base surviving whole, so the new index
  names no delta nobody can read;
- each blob is copied at most once, and kept, deleted and repacked packs partition the input;
- a used blob whose every copy is a delta against a base stored whole nowhere is reported;
- the plan does not depend on the order of the input.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from snapstore.ids import Id
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
    blob_count = draw(st.integers(2, 20))
    lengths = draw(st.lists(st.integers(1, 5000), min_size=blob_count, max_size=blob_count))
    packs: dict[Id, PackContents] = {}
    for number in range(draw(st.integers(0, 10))):
        members = draw(
            st.lists(st.integers(0, blob_count - 1), min_size=1, max_size=8, unique=True)
        )
        entries, offset = [], 0
        for blob in members:
            base = draw(st.one_of(st.none(), st.integers(0, blob_count + 2)))
            if base == blob:
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
    return stays + [e for entries in plan.repack.values() for e in entries]


@settings(max_examples=400, deadline=None)
@given(repositories(), st.sampled_from([0.0, 0.05, 0.5, 1.0]))
def test_plan_invariants_with_deltas(
    repo: tuple[dict[Id, PackContents], set[bytes]], max_unused: float
) -> None:
    packs, used = repo
    plan = plan_prune(packs, used, max_unused)
    repacked = set(plan.repack)
    assert plan.keep | plan.delete | repacked == set(packs)
    assert not (plan.keep & plan.delete or plan.keep & repacked or plan.delete & repacked)
    stays = surviving(packs, plan)
    whole = {blob_key(e.type, e.id) for e in stays if e.base is None}
    readable = whole | {
        blob_key(e.type, e.id) for e in stays if e.base is not None and key_of(e.base) in whole
    }
    # Every used blob that could be kept readable is; the others are reported.
    assert used - plan.missing_bases.keys() <= readable
    for blob in plan.missing_bases:
        assert all(
            e.base is not None and key_of(e.base) not in all_whole(packs)
            for p in packs.values()
            for e in p.entries
            if blob_key(e.type, e.id) == blob
        )
    # No delta stays behind in a kept pack without its base.
    for pack_id in plan.keep:
        for entry in packs[pack_id].entries:
            assert entry.base is None or key_of(entry.base) in whole
    # Copies are made once, out of the pack and place the plan says.
    copied = [blob_key(e.type, e.id) for entries in plan.repack.values() for e in entries]
    assert len(copied) == len(set(copied))
    for pack_id, entries in plan.repack.items():
        assert set(entries) <= set(packs[pack_id].entries)
    # The plan does not depend on the order of the input.
    reordered = dict(reversed(list(packs.items())))
    again = plan_prune(reordered, used, max_unused)
    assert (again.keep, again.delete, again.repack) == (plan.keep, plan.delete, plan.repack)
    assert again.missing_bases == plan.missing_bases


def key_of(base: Id) -> bytes:
    return blob_key(BlobType.DATA, base)


def all_whole(packs: dict[Id, PackContents]) -> set[bytes]:
    return {blob_key(e.type, e.id) for p in packs.values() for e in p.entries if e.base is None}
