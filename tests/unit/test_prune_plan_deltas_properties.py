"""Prune plan invariants with delta blobs, over random packs where some copies are deltas:

- every used blob survives in a form that can be read: whole, or a delta whose chain of bases
  survives down to a whole copy within `deltas.MAX_DEPTH`;
- every delta left in a kept pack (used or not) has such a chain surviving, so the new index
  names no delta nobody can read;
- no used blob's chain grows deeper than the shallowest it had;
- each blob is copied at most once, and kept, deleted and repacked packs partition the input;
- a used blob none of whose copies has a chain ending in a whole copy is reported;
- blobs re-based (stored whole) are deltas, used or dead bases that deltas kept still rest on,
  not also copied, and the plan keeps fewer stored bytes with them than without, by its own
  estimate;
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


@st.composite
def skip_delta_forests(draw: st.DrawFn) -> tuple[dict[Id, PackContents], set[bytes]]:
    """Nightly versions of a few chunks, each stored whole or as a skip-delta (version g
    against version g & (g - 1) of its chain), one pack a night, a random set of nights kept:
    dead bases shared by several live branches are common here."""
    chunks = draw(st.integers(1, 3))
    nights = draw(st.integers(2, 24))
    packs: dict[Id, PackContents] = {}
    starts = [0] * chunks  # the night each chunk's chain started whole
    for night in range(nights):
        entries, offset = [], 0
        for chunk in range(chunks):
            blob = chunk * 100 + night
            restart = draw(st.integers(0, 9)) == 0  # a new whole version starts the chain anew
            if night == 0 or restart:
                starts[chunk] = night
                flags, base_id = 0, None
            else:
                g = night - starts[chunk]
                flags, base_id = FLAG_DELTA, bid(chunk * 100 + starts[chunk] + (g & (g - 1)))
            length = draw(st.integers(1, 20)) * (100 if base_id is None else draw(st.integers(1, 40)))
            plain = draw(st.sampled_from([1000, 1000, 1000, 2000]))
            entries.append(PackEntry(BlobType.DATA, bid(blob), offset, length, plain, flags, base_id))
            offset += length
        packs[Id((night + 1000).to_bytes(32, "big"))] = PackContents(offset + HEADER, tuple(entries))
    kept = draw(st.lists(st.integers(0, nights - 1), min_size=1, unique=True))
    used = {key(chunk * 100 + night) for night in kept for chunk in range(chunks)}
    return packs, used


@settings(max_examples=400, deadline=None)
@given(repositories(), st.sampled_from([0.0, 0.05, 0.5, 1.0]), st.booleans())
def test_plan_invariants_with_deltas(
    repo: tuple[dict[Id, PackContents], set[bytes]], max_unused: float, rebase: bool
) -> None:
    check_plan(*repo, max_unused, rebase)


@settings(max_examples=300, deadline=None)
@given(skip_delta_forests(), st.sampled_from([0.0, 0.05, 1.0]))
def test_plan_invariants_with_skip_delta_chains(
    repo: tuple[dict[Id, PackContents], set[bytes]], max_unused: float
) -> None:
    check_plan(*repo, max_unused, True)


def check_plan(packs: dict[Id, PackContents], used: set[bytes], max_unused: float, rebase: bool) -> None:
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
    # Re-basing stores deltas whole, each instead of copying it, and only where it pays: used
    # ones, or dead ones that stay as the base of a delta that stays.
    assert not plan.rebase & set(copied)
    assert all(before[k] > 0 for k in plan.rebase)
    bases_left = {key_of(e.base) for e in stays if e.base is not None}
    assert plan.rebase - used <= bases_left
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


@settings(max_examples=200, deadline=None)
@given(skip_delta_forests())
def test_rebasing_frees_the_most_any_choice_of_blobs_to_store_whole_frees(
    repo: tuple[dict[Id, PackContents], set[bytes]],
) -> None:
    """Against every subset of the kept deltas (live or dead) to store whole, on forests small
    enough to try them all: the plan's net gain (bytes it keeps less) is the best there is."""
    packs, used = repo
    copy = {blob_key(e.type, e.id): e for p in packs.values() for e in p.entries}
    needed, frontier = set(used), list(used)
    while frontier:
        entry = copy[frontier.pop()]
        if entry.base is not None and key_of(entry.base) not in needed:
            needed.add(key_of(entry.base))
            frontier.append(key_of(entry.base))
    candidates = sorted(k for k in needed if copy[k].base is not None)
    if len(candidates) > 10:
        return

    def root(k: bytes) -> PackEntry:
        while (entry := copy[k]).base is not None:
            k = key_of(entry.base)
        return entry

    estimate = {k: -(-root(k).length * copy[k].plain_length // root(k).plain_length) for k in candidates}
    best = 0
    for mask in range(1 << len(candidates)):
        whole = {k for n, k in enumerate(candidates) if mask >> n & 1}
        still, frontier = set(used), list(used)
        while frontier:
            k = frontier.pop()
            if k not in whole and (entry := copy[k]).base is not None and key_of(entry.base) not in still:
                still.add(key_of(entry.base))
                frontier.append(key_of(entry.base))
        gain = sum(copy[k].length for k in needed - still) + sum(copy[k].length for k in whole & still)
        best = max(best, gain - sum(estimate[k] for k in whole))
    plan = plan_prune(packs, used, 0.0)
    plain = plan_prune(packs, used, 0.0, rebase=False)
    assert plain.used_bytes - plan.used_bytes == best
