"""Chunk lists: how a big file's chunk ids are cut into list blobs, and read back.

The cut rule (SPEC.md section 9): a list ends after an id whose last two bytes, read as a u16
little-endian, are divisible by the modulus, or once it holds `max_ids` ids. So the lists are
the *runs* of the id sequence (each ending at a cut id, the last one possibly not), each run
chopped into pieces of `max_ids`. What that means for an edit is pinned below:

- the lists of every run the edit does not touch are unchanged (as a prefix and a suffix);
- when no run is longer than `max_ids` (the usual case: with the defaults a run is longer only
  with probability (1 - 1/2048)^8192, about 1.8%), an inserted id changes only the list it lands
  in (which splits in two if the new id is itself a cut id), and a removed id changes only its
  list (merged with the next one if the removed id was a cut id): "at most the list containing
  it and the next one". A run longer than `max_ids` shifts its forced cuts, so an edit in it
  can change every list of that run, never more.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from snapstore.errors import IntegrityError, ObjectNotFound
from snapstore.ids import ID_SIZE, Id
from snapstore.pack import BlobType
from snapstore.repository.repository import Repository
from snapstore.snapshot import content
from snapstore.snapshot.content import (
    INLINE_CHUNK_LIMIT,
    LIST_CUT_MODULUS,
    LIST_MAX_IDS,
    chunk_ids,
    iter_chunk_ids,
    parse_chunk_list,
    split_chunk_list,
)
from snapstore.snapshot.tree import Node, NodeType, decode_tree, encode_tree
from tests.conftest import assert_repository_ok, reopen

# Small parameters so generated sequences have many runs and forced cuts.
MODULUS = 4
MAX_IDS = 5

ids = st.binary(min_size=32, max_size=32).map(Id)
id_lists = st.lists(ids, max_size=60)


def is_cut(blob_id: bytes, modulus: int = MODULUS) -> bool:
    return int.from_bytes(blob_id[-2:], "little") % modulus == 0


def with_tail(tail: int, seed: int = 0) -> Id:
    """An id whose last two bytes are `tail` as u16 LE."""
    return Id(random.Random(seed).randbytes(30) + tail.to_bytes(2, "little"))


def runs(blob_ids: Sequence[bytes], modulus: int = MODULUS) -> list[list[bytes]]:
    """The id sequence cut after every cut id: the content-defined part of the rule."""
    out: list[list[bytes]] = []
    current: list[bytes] = []
    for blob_id in blob_ids:
        current.append(blob_id)
        if is_cut(blob_id, modulus):
            out.append(current)
            current = []
    if current:
        out.append(current)
    return out


def model(blob_ids: Sequence[bytes], modulus: int = MODULUS, max_ids: int = MAX_IDS) -> list[bytes]:
    """Every run chopped into pieces of max_ids: what split_chunk_list must return."""
    return [
        b"".join(run[i : i + max_ids])
        for run in runs(blob_ids, modulus)
        for i in range(0, len(run), max_ids)
    ]


def common_prefix(a: Sequence[bytes], b: Sequence[bytes]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def common_suffix(a: Sequence[bytes], b: Sequence[bytes], prefix: int) -> int:
    n = 0
    while n < min(len(a), len(b)) - prefix and a[-1 - n] == b[-1 - n]:
        n += 1
    return n


# -- the split --------------------------------------------------------------------------------


def test_defaults() -> None:
    assert (INLINE_CHUNK_LIMIT, LIST_CUT_MODULUS, LIST_MAX_IDS) == (1024, 2048, 8192)


def test_empty() -> None:
    assert split_chunk_list([]) == []


def test_cut_after_an_id_whose_last_two_bytes_divide() -> None:
    a, b, c = with_tail(1, 1), with_tail(2048 * 3, 2), with_tail(5, 3)
    assert split_chunk_list([a, b, c]) == [a + b, c]
    # Read as little-endian: 0x0800 is 2048 and cuts; the same bytes big-endian (8) would not.
    assert split_chunk_list([Id(bytes(30) + b"\x00\x08"), a]) == [bytes(30) + b"\x00\x08", a]
    assert split_chunk_list([Id(bytes(30) + b"\x08\x00"), a]) == [bytes(30) + b"\x08\x00" + a]
    assert split_chunk_list([with_tail(0)]) == [with_tail(0)]  # 0 is divisible too


def test_forced_cut_after_max_ids() -> None:
    plain = [with_tail(7, n) for n in range(7)]
    assert split_chunk_list(plain, max_ids=3) == [
        b"".join(plain[0:3]),
        b"".join(plain[3:6]),
        plain[6],
    ]
    # A cut id restarts the count.
    mixed = [plain[0], with_tail(0, 9), *plain[1:5]]
    assert split_chunk_list(mixed, max_ids=3) == [
        plain[0] + mixed[1],
        b"".join(plain[1:4]),
        plain[4],
    ]


def test_default_sizes_on_random_ids() -> None:
    rng = random.Random(5)
    blob_ids = [Id(rng.randbytes(32)) for _ in range(40_000)]
    lists = split_chunk_list(blob_ids)
    assert b"".join(lists) == b"".join(blob_ids)
    counts = [len(x) // ID_SIZE for x in lists]
    assert max(counts) <= LIST_MAX_IDS
    assert 1000 < sum(counts) / len(counts) < 4000  # about 2048 ids, 64 KiB, per list


@settings(max_examples=300, deadline=None)
@given(id_lists, st.integers(1, 8), st.sampled_from([1, 2, 4, 16]))
def test_split_properties(blob_ids: list[Id], max_ids: int, modulus: int) -> None:
    lists = split_chunk_list(blob_ids, modulus=modulus, max_ids=max_ids)
    assert b"".join(lists) == b"".join(blob_ids)
    for n, plaintext in enumerate(lists):
        assert plaintext and len(plaintext) % ID_SIZE == 0
        assert len(plaintext) <= max_ids * ID_SIZE
        members = parse_chunk_list(plaintext)
        # No cut id inside a list, only at its end.
        assert not any(is_cut(m, modulus) for m in members[:-1])
        if n < len(lists) - 1:
            assert is_cut(members[-1], modulus) or len(members) == max_ids
    assert lists == model(blob_ids, modulus, max_ids)
    assert [i for x in lists for i in parse_chunk_list(x)] == blob_ids


@settings(max_examples=100, deadline=None)
@given(id_lists, id_lists, id_lists)
def test_a_run_ending_in_a_cut_id_is_cut_the_same_anywhere(
    before: list[Id], middle: list[Id], after: list[Id]
) -> None:
    """Content-defined: whatever comes before, the lists after a cut id depend only on what
    follows it."""
    cut = with_tail(MODULUS * 7)
    tail = split_chunk_list(middle + [cut] + after, MODULUS, MAX_IDS)
    whole = split_chunk_list(before + [with_tail(0, 1)] + middle + [cut] + after, MODULUS, MAX_IDS)
    assert whole[-len(tail) :] == tail
    # ...and every list after the cut id is the same as when the sequence starts there.
    assert whole[len(whole) - len(split_chunk_list(after, MODULUS, MAX_IDS)) :] == split_chunk_list(
        after, MODULUS, MAX_IDS
    )


def _run_of_each_id(blob_ids: Sequence[bytes]) -> list[int]:
    out: list[int] = []
    for number, run in enumerate(runs(blob_ids)):
        out += [number] * len(run)
    return out


def _unchanged_lists(old: Sequence[bytes], touched: set[int], run_of: list[int]) -> tuple[int, int]:
    """How many of the old lists lie wholly in runs before, and wholly after, the touched runs."""
    lists = split_chunk_list(old, MODULUS, MAX_IDS)
    position, spans = 0, []
    for plaintext in lists:
        count = len(plaintext) // ID_SIZE
        spans.append({run_of[i] for i in range(position, position + count)})
        position += count
    before = sum(1 for s in spans if max(s) < min(touched))
    after = sum(1 for s in spans if min(s) > max(touched))
    return before, after


@settings(max_examples=300, deadline=None)
@given(id_lists, st.data())
def test_inserting_an_id_changes_only_its_run(blob_ids: list[Id], data: st.DataObject) -> None:
    position = data.draw(st.integers(0, len(blob_ids)))
    new_id = data.draw(ids)
    edited = blob_ids[:position] + [new_id] + blob_ids[position:]
    old, new = (
        split_chunk_list(blob_ids, MODULUS, MAX_IDS),
        split_chunk_list(edited, MODULUS, MAX_IDS),
    )
    run_of = _run_of_each_id(blob_ids)
    if position < len(blob_ids):
        touched = run_of[position]  # the new id joins the run of the id it lands before
    elif blob_ids and not is_cut(blob_ids[-1]):
        touched = run_of[-1]  # appended to the unfinished last run
    else:
        touched = len(runs(blob_ids))  # starts a new run after the last
    before, after = _unchanged_lists(blob_ids, {touched}, run_of)
    assert new[:before] == old[:before]
    assert new[len(new) - after :] == old[len(old) - after :]


@settings(max_examples=300, deadline=None)
@given(id_lists.filter(bool), st.data())
def test_removing_an_id_changes_only_its_run_and_the_next(
    blob_ids: list[Id], data: st.DataObject
) -> None:
    position = data.draw(st.integers(0, len(blob_ids) - 1))
    edited = blob_ids[:position] + blob_ids[position + 1 :]
    old, new = (
        split_chunk_list(blob_ids, MODULUS, MAX_IDS),
        split_chunk_list(edited, MODULUS, MAX_IDS),
    )
    run_of = _run_of_each_id(blob_ids)
    touched = {run_of[position]}
    if is_cut(blob_ids[position]):
        touched.add(run_of[position] + 1)  # its run and the next merge
    before, after = _unchanged_lists(blob_ids, touched, run_of)
    assert new[:before] == old[:before]
    assert new[len(new) - after :] == old[len(old) - after :]


NO_FORCED_CUTS = 10**6


@settings(max_examples=300, deadline=None)
@given(id_lists, st.data())
def test_without_forced_cuts_an_edit_changes_at_most_two_lists(
    blob_ids: list[Id], data: st.DataObject
) -> None:
    """When no run reaches max_ids: an insertion replaces one list by at most two, a removal at
    most two lists (its own and the next) by one."""
    insert = not blob_ids or data.draw(st.booleans())
    if insert:
        position = data.draw(st.integers(0, len(blob_ids)))
        new_id = data.draw(ids)
        edited = blob_ids[:position] + [new_id] + blob_ids[position:]
    else:
        position = data.draw(st.integers(0, len(blob_ids) - 1))
        edited = blob_ids[:position] + blob_ids[position + 1 :]
    old = split_chunk_list(blob_ids, MODULUS, NO_FORCED_CUTS)
    new = split_chunk_list(edited, MODULUS, NO_FORCED_CUTS)
    prefix = common_prefix(old, new)
    suffix = common_suffix(old, new, prefix)
    old_changed, new_changed = len(old) - prefix - suffix, len(new) - prefix - suffix
    if insert:
        assert old_changed <= 1 and new_changed <= 2
        assert new_changed <= 1 or is_cut(new_id)
    else:
        assert old_changed <= 2 and new_changed <= 1
        assert old_changed <= 1 or is_cut(blob_ids[position])


# -- parsing ----------------------------------------------------------------------------------


def test_parse_chunk_list() -> None:
    blob_ids = [with_tail(n, n) for n in range(5)]
    assert parse_chunk_list(b"".join(blob_ids)) == blob_ids
    assert all(isinstance(i, Id) for i in parse_chunk_list(b"".join(blob_ids)))


@pytest.mark.parametrize("length", [0, 1, 31, 33, 65])
def test_parse_refuses_anything_but_a_run_of_ids(length: int) -> None:
    with pytest.raises(IntegrityError):
        parse_chunk_list(bytes(length))


# -- reading through a repository -------------------------------------------------------------


def chunk_blobs(repo: Repository, count: int, seed: int = 0) -> list[Id]:
    rng = random.Random(seed)
    return [repo.save_blob(BlobType.DATA, rng.randbytes(40)).id for _ in range(count)]


def store_lists(repo: Repository, blob_ids: list[Id], bases: Sequence[Id] = ()) -> list[Id]:
    return [
        repo.save_blob(BlobType.DATA, plaintext, bases=bases).id
        for plaintext in split_chunk_list(blob_ids, modulus=16, max_ids=64)
    ]


def test_inline_content(repo: Repository) -> None:
    blob_ids = chunk_blobs(repo, 3)
    node = Node(b"f", NodeType.FILE, content=blob_ids)
    assert chunk_ids(repo, node) == blob_ids
    assert list(iter_chunk_ids(repo, Node(b"e", NodeType.FILE))) == []
    repo.flush()
    assert_repository_ok(repo)


def test_chunk_lists_through_a_tree(repo: Repository) -> None:
    blob_ids = chunk_blobs(repo, 300)
    lists = store_lists(repo, blob_ids)
    assert len(lists) > 2
    tree_id = repo.save_blob(
        BlobType.TREE,
        encode_tree([Node(b"db.dump", NodeType.FILE, size=12000, content_lists=lists)]),
    ).id
    repo.flush()
    reader = reopen(repo)
    (node,) = decode_tree(reader.load_blob(BlobType.TREE, tree_id))
    assert node.content == [] and node.content_lists == lists
    assert chunk_ids(reader, node) == blob_ids
    assert [reader.load_blob(BlobType.DATA, i) for i in chunk_ids(reader, node)] == [
        repo.load_blob(BlobType.DATA, i) for i in blob_ids
    ]
    assert_repository_ok(repo)


def test_iter_chunk_ids_reads_one_list_at_a_time(
    repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    blob_ids = chunk_blobs(repo, 200, seed=1)
    lists = store_lists(repo, blob_ids)
    repo.flush()
    loaded: list[bytes] = []
    load_blob = repo.load_blob

    def counting(blob_type: BlobType, wanted: bytes) -> bytes:
        loaded.append(wanted)
        return load_blob(blob_type, wanted)

    monkeypatch.setattr(repo, "load_blob", counting)
    stream = iter_chunk_ids(repo, Node(b"f", NodeType.FILE, content_lists=lists))
    assert next(stream) == blob_ids[0]
    assert loaded == [lists[0]]
    assert [blob_ids[0], *stream] == blob_ids
    assert loaded == lists
    assert_repository_ok(repo)


def test_list_blobs_dedup_and_are_deltas_of_yesterdays(repo: Repository) -> None:
    """Day 2 of a dump: most lists are the same blobs as day 1's; a changed one is a delta."""
    day1 = chunk_blobs(repo, 2000, seed=2)
    lists1 = store_lists(repo, day1)
    repo.flush()
    # Replace an id in the middle of a list of at least 16 ids, by an id that is no cut
    # either (ids depend on the test's random keys, so both are looked for)
    def is_cut(blob_id: bytes) -> bool:
        return int.from_bytes(blob_id[-2:], "little") % 16 == 0

    replacement = next(i for i in chunk_blobs(repo, 20, seed=3) if not is_cut(i))
    cuts = [n for n, blob_id in enumerate(day1) if is_cut(blob_id)]
    start, end = next((a + 1, b) for a, b in zip(cuts, cuts[1:], strict=False) if 16 <= b - a <= 64)
    day2 = list(day1)
    day2[(start + end) // 2] = replacement
    day2_lists = split_chunk_list(day2, modulus=16, max_ids=64)
    changed = [
        n for n, plaintext in enumerate(day2_lists) if repo.hash_blob(plaintext) not in set(lists1)
    ]
    assert len(changed) == 1
    lists2 = []
    for n, plaintext in enumerate(day2_lists):
        saved = repo.save_blob(BlobType.DATA, plaintext, bases=[lists1[n]] if n in changed else ())
        assert saved.added == (n in changed)
        lists2.append(saved.id)
    repo.flush()
    reader = reopen(repo)
    location = reader.index.lookup(lists2[changed[0]])
    assert location is not None
    # A 32-byte change in a list of ids: the delta is far below 0.8 x its zstd size.
    assert location.is_delta
    assert reader.delta_base_of(lists2[changed[0]]) == lists1[changed[0]]
    assert chunk_ids(reader, Node(b"f", NodeType.FILE, content_lists=lists2)) == day2
    assert_repository_ok(repo)


def test_a_missing_list_blob(repo: Repository) -> None:
    node = Node(b"f", NodeType.FILE, content_lists=[Id(bytes(32))])
    with pytest.raises(ObjectNotFound):
        chunk_ids(repo, node)


def test_a_list_blob_that_is_not_a_run_of_ids(repo: Repository) -> None:
    bad = repo.save_blob(BlobType.DATA, b"x" * 33).id
    repo.flush()
    with pytest.raises(IntegrityError):
        chunk_ids(repo, Node(b"f", NodeType.FILE, content_lists=[bad]))
    assert_repository_ok(repo)


def test_module_constants_are_what_split_uses() -> None:
    blob_ids = [with_tail(LIST_CUT_MODULUS, 1), with_tail(1, 2)]
    assert content.split_chunk_list(blob_ids) == [blob_ids[0], blob_ids[1]]
