"""`deltas.sound_bases`, the check's pass over every delta at once, says what `ChainDepths`
says blob by blob: whether a delta's base reaches a whole data copy in a usable pack within
the depth allowed, on any index shape (copies in several packs, missing packs, trees, circles,
bases that are not indexed); where a key stands for several ids it leaves the delta to
`ChainDepths` and never vouches for it."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from snapstore.ids import Id
from snapstore.index import deltas
from snapstore.index.index import BlobIndex
from snapstore.pack import BlobType, PackEntry, delta_flags

PACKS = [Id(bytes([n]) * 32) for n in range(1, 5)]


def blob_ids(count: int, shared_keys: int) -> list[Id]:
    """`count` ids; the first `shared_keys` share their 8-byte key with the next one."""
    ids = [Id(bytes([n + 1]) * 8 + bytes([n + 1, 0xAB]) * 12) for n in range(count)]
    for n in range(min(shared_keys, count - 1)):
        ids[n] = Id(bytes(ids[n + 1])[:8] + bytes([0xCD]) * 24)
    return ids


copies = st.lists(
    st.tuples(
        st.integers(0, 11),  # blob
        st.integers(0, 3),  # pack
        st.sampled_from([BlobType.DATA, BlobType.DATA, BlobType.TREE]),
        st.one_of(st.none(), st.integers(0, 12)),  # whole, or a delta on blob n (12: not indexed)
    ),
    max_size=40,
)


@settings(max_examples=400, deadline=None)
@given(copies, st.integers(0, 3), st.sets(st.integers(0, 3)), st.integers(1, deltas.MAX_DEPTH))
def test_sound_bases_says_what_chain_depths_says(
    stored: list[tuple[int, int, BlobType, int | None]], shared_keys: int, missing: set[int], max_depth: int
) -> None:
    ids = blob_ids(13, shared_keys)
    index = BlobIndex()
    for pack_number, pack_id in enumerate(PACKS):
        entries = []
        for blob, pack, blob_type, base in stored:
            if pack != pack_number or any(e.id == ids[blob] and e.type is blob_type for e in entries):
                continue
            offset = 100 * len(entries)
            if base is None:
                entries.append(PackEntry(blob_type, ids[blob], offset, 100, 100))
            else:
                entries.append(PackEntry(blob_type, ids[blob], offset, 100, 100, delta_flags(1), ids[base]))
        if entries:
            index.add_pack(pack_id, entries)
    usable = {p for n, p in enumerate(PACKS) if n not in missing}
    limit = max_depth - 1
    columns = index.columns()
    sound = deltas.sound_bases(columns, usable, limit)
    depths = deltas.ChainDepths(index, lambda loc: loc.pack_id in usable)
    rows = np.flatnonzero(columns.is_delta).tolist()
    assert len(sound) == len(rows)
    for row, said in zip(rows, sound.tolist(), strict=True):
        candidates = index.ids_with_key(columns.location(row).base_key)
        exact = any(depths(c, limit) is not None for c in candidates)
        if said:
            assert exact and len(candidates) == 1, (row, candidates)
        elif not shared_keys:  # with keys shared, a chain through one is left to ChainDepths
            assert not exact, (row, candidates)


def test_an_empty_index_has_no_deltas() -> None:
    assert len(deltas.sound_bases(BlobIndex().columns(), set(), 7)) == 0
