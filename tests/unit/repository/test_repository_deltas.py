"""Delta blobs in the repository: when the writer stores one, how a reader rebuilds it, and the
chain rules (SPEC.md section 6): with `delta-chains` a base may be a delta, at most
`deltas.MAX_DEPTH` deep; in a repository with only `delta-v1` a base is always a whole data blob.

Fixtures that a correct writer never produces (a delta of a delta, a tree delta, a delta
against the wrong base) are built with the repository's own keys and `write_pack`, as a buggy
or hostile writer holding the key would.
"""

from __future__ import annotations

import dataclasses
import os
import random

import msgpack
import pytest

from snapstore import compression
from snapstore.backend.base import FileType, Handle
from snapstore.backend.memory import MemoryBackend
from snapstore.checker.checker import CheckOptions, check_repository
from snapstore.crypto.aead import Kind, Opener, Sealer
from snapstore.crypto.keys import MasterKey, unwrap_master_key
from snapstore.errors import AuthenticationFailed, IdMismatch, IntegrityError, ObjectNotFound
from snapstore.ids import Id
from snapstore.index import deltas
from snapstore.index.codec import IndexFile
from snapstore.pack import MAX_GENERATION, BlobType, PackBlob
from snapstore.repository import blob_reader
from snapstore.repository.config import FEATURE_CHAINS, FEATURE_DELTAS, RepositoryConfig
from snapstore.repository.packer import DELTA_KEEP_RATIO, DELTA_TINY, SavedBlob
from snapstore.repository.repository import Repository
from tests.conftest import PASSWORD, assert_repository_ok, reopen
from tests.support.damage import flip_blob
from tests.support.deltas import repository_with_features
from tests.unit.repository.test_blob_reader import CountingBackend


def dump_like(seed: int, size: int = 200_000) -> bytes:
    """Compressible but varied bytes, like a database dump: zstd gets about 3:1 on its own."""
    rng = random.Random(seed)
    words = [rng.randbytes(rng.randint(3, 9)).hex().encode() for _ in range(3000)]
    return b" ".join(rng.choice(words) for _ in range(size // 8))[:size]


def edit(data: bytes, *positions: int) -> bytes:
    out = bytearray(data)
    for position in positions:
        out[position : position + 5] = b"EDIT!"
    return bytes(out)


OLD = dump_like(1)
NEW = edit(OLD, 1000, 90_000, 150_000)


def master_key(repo: Repository) -> MasterKey:
    (info,) = repo.backend.list(FileType.KEY)
    return unwrap_master_key(repo.backend.load(info.handle), PASSWORD)


def key_of(blob_id: bytes) -> int:
    return int.from_bytes(blob_id[:8], "big")


def store_raw(
    repo: Repository,
    blob_type: BlobType,
    blob_id: Id,
    framed: bytes,
    plain: int,
    base: Id | None,
    generation: int = 0,
) -> None:
    """Stores one blob with exactly this compression frame, indexed, as a writer with the key
    could: the format checks are the reader's."""
    kind = Kind.DATA_BLOB if blob_type is BlobType.DATA else Kind.TREE_BLOB
    envelope = Sealer(master_key(repo).encryption).seal(kind, framed)
    pack_id, entries, _ = repo.write_pack([PackBlob(blob_type, blob_id, envelope, plain, base, generation)])
    repo.write_index(IndexFile(packs={pack_id: entries}))
    repo.index.add_pack(pack_id, entries)


def check_finds(repo: Repository, blob_id: bytes) -> None:
    """The checker, on a fresh handle, reports the damage this blob is: a test that damaged the
    repository on purpose ends with this instead of assert_repository_ok."""
    report = check_repository(reopen(repo, load_index=False), CheckOptions(read_data=True))
    assert not report.ok
    found = [str(f) for f in report.findings]
    assert any(bytes(blob_id).hex()[:16] in f for f in found), found


def pack_of(repo: Repository, blob_id: bytes) -> Handle:
    location = repo.index.lookup(blob_id)
    assert location is not None
    return Handle(FileType.PACK, location.pack_id.hex())


def flip(repo: Repository, blob_id: bytes, at: int) -> None:
    flip_blob(repo, blob_id, at, bit=0x01)


# -- the feature flag -------------------------------------------------------------------------


def test_a_new_repository_has_the_delta_features(repo: Repository) -> None:
    assert FEATURE_DELTAS == "delta-v1" and FEATURE_CHAINS == "delta-chains"
    assert repo.config.features == ("delta-v1", "delta-chains") and repo.config.delta_chains
    again = Repository.open(repo.backend, PASSWORD)
    assert again.config.features == ("delta-v1", "delta-chains") and again.config.delta_chains
    sealed = repo.backend.load(Handle(FileType.CONFIG))
    doc = msgpack.unpackb(
        compression.decompress(Opener(master_key(repo).encryption).open(Kind.CONFIG, sealed))
    )
    assert doc["v"] == 1 and doc["features"] == ["delta-v1", "delta-chains"]
    assert_repository_ok(repo)


def old_repository(backend: MemoryBackend) -> Repository:
    """A repository whose config has no features, as snapstore wrote before deltas."""
    return repository_with_features(backend, (), PASSWORD)


def test_without_the_feature_bases_are_ignored(backend: MemoryBackend) -> None:
    repo = old_repository(backend)
    assert repo.config.features == () and not repo.config.deltas
    old = repo.save_blob(BlobType.DATA, OLD)
    repo.flush()
    new = repo.save_blob(BlobType.DATA, NEW, bases=[old.id])
    assert new.added and not new.delta
    repo.flush()
    reader = reopen(repo)
    location = reader.index.lookup(new.id)
    assert location is not None and not location.is_delta and location.base_key == 0
    assert reader.load_blob(BlobType.DATA, new.id) == NEW
    # Everything stays in version 1 objects an older reader understands.
    for info in repo.list_objects(FileType.INDEX):
        assert msgpack.unpackb(repo.load_object(FileType.INDEX, info.handle.name))["v"] == 1
    for pack_id in repo.list_packs():
        assert all(e.base is None for e in repo.read_pack_header(pack_id))
    assert_repository_ok(repo)
    repo.close()


# -- writing deltas ---------------------------------------------------------------------------


def test_save_blob_stores_a_delta_when_it_pays(repo: Repository) -> None:
    old = repo.save_blob(BlobType.DATA, OLD)
    repo.flush()
    new = repo.save_blob(BlobType.DATA, NEW, bases=[old.id])
    assert new.added and new.delta and new.base == old.id
    plain = len(compression.compress(NEW, repo.config.compression_level))
    assert new.stored_length < DELTA_KEEP_RATIO * plain
    assert new.stored_length < plain // 20  # three small edits in 200 KB
    repo.flush()

    reader = reopen(repo)
    assert reader.load_blob(BlobType.DATA, new.id) == NEW
    location = reader.index.lookup(new.id)
    assert location is not None and location.is_delta and location.base_key == key_of(old.id)
    assert location.plain_length == len(NEW)
    base_location = reader.index.lookup(old.id)
    assert base_location is not None and not base_location.is_delta and base_location.base_key == 0
    assert reader.delta_base_of(new.id) == old.id
    assert reader.delta_base_of(old.id) is None
    assert reader.delta_base_of(bytes(32)) is None
    # The pack header (version 2) and the index file (version 2) both name the base.
    (entry,) = [e for e in reader.read_pack_header(location.pack_id) if e.id == new.id]
    assert entry.is_delta and entry.base == old.id
    bases = [
        e.base
        for _, index_file in reader.read_index_files()
        for entries in index_file.packs.values()
        for e in entries
        if e.id == new.id
    ]
    assert bases == [old.id]
    assert_repository_ok(repo)


def test_a_tiny_first_delta_is_kept_without_compressing_the_blob_alone(
    repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first delta within DELTA_TINY of the plaintext is kept at once (no plain frame, no
    other candidate); one just above it still has the plain frame made to be judged by."""
    old = repo.save_blob(BlobType.DATA, OLD)
    repo.flush()
    plain_frames: list[int] = []
    real = compression.compress
    monkeypatch.setattr(compression, "compress", lambda data, level=3: plain_frames.append(len(data)) or real(data, level))
    near = repo.save_blob(BlobType.DATA, NEW, bases=[old.id, Id(bytes(32))])
    assert near.delta and near.stored_length <= DELTA_TINY * len(NEW) and plain_frames == []
    far = bytes(reversed(OLD[: int(len(OLD) * DELTA_TINY * 3)])) + OLD[int(len(OLD) * DELTA_TINY * 3) :]
    repo.save_blob(BlobType.DATA, far, bases=[old.id])
    assert plain_frames == [len(far)]


def test_the_smallest_delta_of_several_candidates(repo: Repository) -> None:
    far = repo.save_blob(BlobType.DATA, dump_like(7))
    near = repo.save_blob(BlobType.DATA, OLD)
    repo.flush()
    new = repo.save_blob(BlobType.DATA, NEW, bases=[far.id, Id(bytes(32)), near.id, near.id])
    assert new.base == near.id
    repo.flush()
    assert reopen(repo).delta_base_of(new.id) == near.id
    assert_repository_ok(repo)


def test_a_delta_that_does_not_pay_is_not_kept(repo: Repository) -> None:
    old = repo.save_blob(BlobType.DATA, dump_like(2))
    repo.flush()
    new = repo.save_blob(BlobType.DATA, dump_like(3), bases=[old.id])
    assert new.added and not new.delta
    repo.flush()
    location = reopen(repo).index.lookup(new.id)
    assert location is not None and not location.is_delta
    assert_repository_ok(repo)


def test_a_blob_already_stored_is_not_stored_again_as_a_delta(repo: Repository) -> None:
    old = repo.save_blob(BlobType.DATA, OLD)
    new = repo.save_blob(BlobType.DATA, NEW)
    repo.flush()
    again = repo.save_blob(BlobType.DATA, NEW, bases=[old.id])
    assert not again.added and not again.delta and again.id == new.id
    repo.flush()
    assert_repository_ok(repo)


def test_submit_blob_with_bases(repo: Repository) -> None:
    old = repo.save_blob(BlobType.DATA, OLD)
    repo.flush()
    future = repo.submit_blob(BlobType.DATA, NEW, bases=[old.id])
    assert future.result().delta
    repo.flush()
    assert reopen(repo).load_blob(BlobType.DATA, future.result().id) == NEW
    assert_repository_ok(repo)


def depth_one(backend: MemoryBackend) -> Repository:
    """A repository with `delta-v1` only, as snapstore wrote before `delta-chains`."""
    return repository_with_features(backend, (FEATURE_DELTAS,), PASSWORD)


def test_without_chains_a_delta_is_never_a_base(backend: MemoryBackend) -> None:
    """In a `delta-v1` repository chains stay one level deep: a candidate stored as a delta is
    passed over, so the next day's blob is stored whole or as a delta of a whole blob."""
    repo = depth_one(backend)
    day1 = repo.save_blob(BlobType.DATA, OLD)
    repo.flush()
    day2 = repo.save_blob(BlobType.DATA, NEW, bases=[day1.id])
    assert day2.delta
    repo.flush()
    day3_data = edit(NEW, 50_000)
    day3 = repo.save_blob(BlobType.DATA, day3_data, bases=[day2.id])
    assert day3.added and not day3.delta  # its only candidate is a delta
    day4_data = edit(day3_data, 60_000)
    day4 = repo.save_blob(BlobType.DATA, day4_data, bases=[day2.id, day1.id])
    assert day4.base == day1.id
    repo.flush()
    reader = reopen(repo)
    assert reader.delta_base_of(day4.id) == day1.id
    for saved, data in ((day2, NEW), (day3, day3_data), (day4, day4_data)):
        assert reader.load_blob(BlobType.DATA, saved.id) == data
    for blob_id, _ in reader.index.entries():
        base = reader.delta_base_of(blob_id)
        if base is not None:
            base_location = reader.index.lookup(base)
            assert base_location is not None and not base_location.is_delta
    assert_repository_ok(repo)


def test_only_data_blobs_serve_as_bases(repo: Repository) -> None:
    tree = repo.save_blob(BlobType.TREE, OLD)
    repo.flush()
    new = repo.save_blob(BlobType.DATA, NEW, bases=[tree.id])
    assert new.added and not new.delta
    repo.flush()
    assert_repository_ok(repo)


def test_tree_blobs_are_stored_whole_whatever_the_bases(repo: Repository) -> None:
    """A reader refuses a tree delta, so a writer must never store one."""
    old = repo.save_blob(BlobType.DATA, OLD)
    repo.flush()
    tree = repo.save_blob(BlobType.TREE, NEW, bases=[old.id])
    assert tree.added and not tree.delta
    repo.flush()
    assert reopen(repo).load_blob(BlobType.TREE, tree.id) == NEW
    assert_repository_ok(repo)


# -- reading deltas that went wrong -----------------------------------------------------------


def saved_pair(repo: Repository) -> tuple[Id, Id]:
    old = repo.save_blob(BlobType.DATA, OLD)
    repo.flush()
    new = repo.save_blob(BlobType.DATA, NEW, bases=[old.id])
    assert new.delta
    repo.flush()
    return old.id, new.id


def test_a_delta_whose_base_is_not_indexed(repo: Repository) -> None:
    old, new = saved_pair(repo)
    location = repo.index.lookup(new)
    assert location is not None
    reader = Repository.open(repo.backend, PASSWORD)  # an index that knows only the delta's pack
    reader.index.add_pack(location.pack_id, repo.read_pack_header(location.pack_id))
    assert reader.index.lookup(old) is None
    with pytest.raises(ObjectNotFound) as raised:
        reader.load_blob(BlobType.DATA, new)
    assert old.hex() in str(raised.value) and new.hex() in str(raised.value)
    assert_repository_ok(repo)


def test_a_delta_whose_base_pack_is_gone(repo: Repository) -> None:
    old, new = saved_pair(repo)
    handle = pack_of(repo, old)
    kept = repo.backend.load(handle)
    repo.backend.remove(handle)
    with pytest.raises(ObjectNotFound) as raised:
        reopen(repo).load_blob(BlobType.DATA, new)
    assert old.hex() in str(raised.value) and new.hex() in str(raised.value)
    repo.backend.save(handle, kept)
    assert reopen(repo).load_blob(BlobType.DATA, new) == NEW
    assert_repository_ok(repo)


def test_a_tampered_delta_envelope(repo: Repository) -> None:
    _, new = saved_pair(repo)
    for at in (0, 5, 30, 60):
        flip(repo, new, at)
        with pytest.raises(IntegrityError):
            reopen(repo).load_blob(BlobType.DATA, new)
        flip(repo, new, at)
    assert reopen(repo).load_blob(BlobType.DATA, new) == NEW
    assert_repository_ok(repo)


def test_a_tampered_base_envelope(repo: Repository) -> None:
    old, new = saved_pair(repo)
    flip(repo, old, 40)
    with pytest.raises(AuthenticationFailed) as raised:
        reopen(repo).load_blob(BlobType.DATA, new)
    assert old.hex() in str(raised.value) and new.hex() in str(raised.value)
    flip(repo, old, 40)
    assert_repository_ok(repo)


def test_an_index_entry_naming_another_base(repo: Repository) -> None:
    old, new = saved_pair(repo)
    reader = reopen(repo)
    location = reader.index.lookup(new)
    assert location is not None
    wrong = Id(b"\x99" * 32)
    lying = Repository.open(repo.backend, PASSWORD)
    for pack_id in repo.list_packs():
        entries = repo.read_pack_header(pack_id)
        lying.index.add_pack(
            pack_id, [dataclasses.replace(e, base=wrong) if e.id == new else e for e in entries]
        )
    with pytest.raises(IntegrityError, match="another base"):
        lying.load_blob(BlobType.DATA, new)
    assert reader.load_blob(BlobType.DATA, new) == NEW
    assert_repository_ok(repo)


def test_a_delta_against_the_wrong_base_is_refused(repo: Repository) -> None:
    """The frame names one base but was made against other bytes: zstd fails or the result
    does not hash to the id; either way no wrong data comes out."""
    old = repo.save_blob(BlobType.DATA, OLD)
    other = repo.save_blob(BlobType.DATA, dump_like(9))
    repo.flush()
    framed = compression.compress_delta(NEW, bytes(old.id), dump_like(9))
    store_raw(repo, BlobType.DATA, repo.hash_blob(NEW), framed, len(NEW), old.id)
    with pytest.raises((IdMismatch, compression.DecompressionError)):
        reopen(repo).load_blob(BlobType.DATA, repo.hash_blob(NEW))
    assert other.id != old.id
    check_finds(repo, repo.hash_blob(NEW))


def test_without_chains_a_delta_of_a_delta_is_refused(backend: MemoryBackend) -> None:
    repo = depth_one(backend)
    old, new = saved_pair(repo)
    data = edit(NEW, 20_000)
    framed = compression.compress_delta(data, bytes(new), NEW)
    blob_id = repo.hash_blob(data)
    store_raw(repo, BlobType.DATA, blob_id, framed, len(data), new)
    with pytest.raises(IntegrityError) as raised:
        reopen(repo).load_blob(BlobType.DATA, blob_id)
    assert new.hex() in str(raised.value) and blob_id.hex() in str(raised.value)
    assert reopen(repo).load_blob(BlobType.DATA, new) == NEW  # the level-1 delta is fine
    assert old != new
    check_finds(repo, blob_id)


def test_a_tree_delta_is_refused(repo: Repository) -> None:
    old = repo.save_blob(BlobType.DATA, OLD)
    repo.flush()
    framed = compression.compress_delta(NEW, bytes(old.id), OLD)
    blob_id = repo.hash_blob(NEW)
    store_raw(repo, BlobType.TREE, blob_id, framed, len(NEW), old.id)
    with pytest.raises(IntegrityError, match="delta"):
        reopen(repo).load_blob(BlobType.TREE, blob_id)
    report = check_repository(reopen(repo, load_index=False), CheckOptions(read_data=True))
    assert not report.ok


def test_config_deltas_property() -> None:
    config = RepositoryConfig.new("now", {"files": (1, 2, 4, 2)}, 1234)
    assert config.deltas and config.features == (FEATURE_DELTAS, FEATURE_CHAINS)
    assert not dataclasses.replace(config, features=()).deltas
    assert not dataclasses.replace(config, features=(FEATURE_CHAINS,)).delta_chains  # needs delta-v1
    assert not dataclasses.replace(config, features=(FEATURE_DELTAS,)).delta_chains
    assert RepositoryConfig.decode(dataclasses.replace(config, features=()).encode()).features == ()


# -- chains (feature delta-chains) ------------------------------------------------------------


def nightly_versions(count: int) -> list[bytes]:
    """One chunk's versions night after night: each a small edit of the one before."""
    versions = [OLD]
    for night in range(1, count):
        versions.append(edit(versions[-1], (night * 7919) % (len(OLD) - 5)))
    return versions


def test_bases_follow_the_data_by_skip_deltas(repo: Repository) -> None:
    """Each night's version is offered its skip-delta base (generation g against the newest
    version whose generation is at most g & (g - 1)); chains stay shallow, every version
    reads back, and the check is clean."""
    saved = [repo.save_blob(BlobType.DATA, OLD)]
    repo.flush()
    root_generation = bytes(saved[0].id)[0] % deltas.STAGGER
    for data in nightly_versions(40)[1:]:
        offer = repo.delta_offer(saved[-1].id)
        assert offer is not None
        saved.append(repo.save_blob(BlobType.DATA, data, bases=[offer]))
        assert saved[-1].delta and saved[-1].base == offer.base
        repo.flush()
    generations = [root_generation] + [deltas.generation(s.id, repo.index.lookup(s.id)) for s in saved[1:]]
    assert generations == list(range(root_generation, root_generation + 40))
    for version, blob in enumerate(saved[1:], start=1):
        g = generations[version]
        # the base is the newest earlier version within the chain with generation <= g & (g-1)
        expected = max((v for v in range(version) if generations[v] <= g & (g - 1)), default=0)
        expected_base = saved[expected].id
        # a version deeper than allowed falls back to the root; that does not happen here
        assert blob.base == expected_base, (version, g)
    depths = [deltas.depth(repo.index, s.id) for s in saved]
    assert max(d for d in depths if d is not None) <= 6 and None not in depths
    reader = reopen(repo)
    for blob, data in zip(saved, nightly_versions(40), strict=True):
        assert reader.load_blob(BlobType.DATA, blob.id) == data
    assert [r.data for r in reader.read_blobs((BlobType.DATA, s.id) for s in reversed(saved))] == list(
        reversed(nightly_versions(40))
    )
    assert_repository_ok(repo)


def test_a_chain_past_the_last_generation_starts_anew(repo: Repository) -> None:
    """A version whose generation would pass pack.MAX_GENERATION is offered nothing: it is
    stored whole and starts a new chain."""
    base = repo.save_blob(BlobType.DATA, OLD)
    repo.flush()
    data = edit(OLD, 77)
    framed = compression.compress_delta(data, bytes(base.id), OLD)
    top = repo.hash_blob(data)
    store_raw(repo, BlobType.DATA, top, framed, len(data), base.id, generation=MAX_GENERATION)
    assert repo.delta_offer(top) is None
    store_raw(repo, BlobType.DATA, top2 := repo.hash_blob(edit(OLD, 99)),
              compression.compress_delta(edit(OLD, 99), bytes(base.id), OLD), len(OLD), base.id,
              generation=MAX_GENERATION - 1)  # fmt: skip
    offer = repo.delta_offer(top2)
    assert offer is not None and offer.generation == MAX_GENERATION
    assert_repository_ok(repo)


def test_no_chain_grows_past_the_maximum_depth(repo: Repository) -> None:
    """Offers never make a chain deeper than MAX_DEPTH: a version sitting at the maximum
    depth is not offered itself (an older, shallower version of its chain is)."""
    chain = [repo.save_blob(BlobType.DATA, OLD)]
    repo.flush()
    versions = nightly_versions(deltas.MAX_DEPTH + 2)
    for data in versions[1:]:
        # each against the one before, whatever the skip rule says: a chain as deep as allowed
        framed = compression.compress_delta(data, bytes(chain[-1].id), versions[len(chain) - 1])
        blob_id = repo.hash_blob(data)
        store_raw(repo, BlobType.DATA, blob_id, framed, len(data), chain[-1].id, generation=len(chain))
        chain.append(SavedBlob(blob_id, len(data), 1, chain[-1].id))
        if len(chain) > deltas.MAX_DEPTH:
            break
    top = chain[deltas.MAX_DEPTH]
    assert deltas.depth(repo.index, top.id) == deltas.MAX_DEPTH
    offer = repo.delta_offer(top.id)
    assert offer is not None and deltas.depth(repo.index, offer.base) < deltas.MAX_DEPTH
    assert reopen(repo).load_blob(BlobType.DATA, top.id) == versions[deltas.MAX_DEPTH]
    assert_repository_ok(repo)


def test_a_chain_deeper_than_allowed_is_refused_and_found(repo: Repository) -> None:
    versions = nightly_versions(deltas.MAX_DEPTH + 2)
    ids = [repo.save_blob(BlobType.DATA, OLD).id]
    repo.flush()
    for n, data in enumerate(versions[1:], start=1):
        framed = compression.compress_delta(data, bytes(ids[-1]), versions[n - 1])
        ids.append(repo.hash_blob(data))
        store_raw(repo, BlobType.DATA, ids[-1], framed, len(data), ids[-2], generation=n)
    reader = reopen(repo)
    assert reader.load_blob(BlobType.DATA, ids[deltas.MAX_DEPTH]) == versions[deltas.MAX_DEPTH]
    too_deep = ids[deltas.MAX_DEPTH + 1]
    with pytest.raises(IntegrityError) as raised:
        reader.load_blob(BlobType.DATA, too_deep)
    assert too_deep.hex() in str(raised.value)
    (read,) = reopen(repo).read_blobs([(BlobType.DATA, too_deep)])
    assert read.data is None and isinstance(read.error, IntegrityError)
    check_finds(repo, too_deep)


def test_a_chain_in_a_circle_is_refused(repo: Repository) -> None:
    """Two deltas naming each other as base (a hostile writer): reading ends, with an error."""
    a_data, b_data = edit(OLD, 10), edit(OLD, 20)
    a, b = repo.hash_blob(a_data), repo.hash_blob(b_data)
    store_raw(repo, BlobType.DATA, a, compression.compress_delta(a_data, bytes(b), b_data), len(a_data), b, generation=1)
    store_raw(repo, BlobType.DATA, b, compression.compress_delta(b_data, bytes(a), a_data), len(b_data), a, generation=1)
    with pytest.raises(IntegrityError):
        reopen(repo).load_blob(BlobType.DATA, a)
    assert deltas.depth(repo.index, a) is None and repo.delta_offer(a) is None
    check_finds(repo, a)


def test_offers_of_many_candidates_are_each_ones_offer(repo: Repository) -> None:
    """A parent file's chunks are offered a block at a time (`delta_offers`, chains followed
    a level at a time for all of them): each gets what asking for it alone gives, whether its
    chain is whole, deep, past the maximum depth, in a circle or unknown."""
    versions = nightly_versions(deltas.MAX_DEPTH + 3)
    saved = [repo.save_blob(BlobType.DATA, OLD)]
    repo.flush()
    for data in versions[1:12]:
        saved.append(repo.save_blob(BlobType.DATA, data, bases=[repo.delta_offer(saved[-1].id)]))  # type: ignore[list-item]
        repo.flush()
    deep = [repo.save_blob(BlobType.DATA, edit(OLD, 3)).id]
    repo.flush()
    for n, data in enumerate(versions[1:], start=1):  # each against the one before: too deep at the end
        deep.append(repo.hash_blob(data + b"deep"))
        framed = compression.compress_delta(data + b"deep", bytes(deep[-2]), (versions[n - 1] + b"deep") if n > 1 else edit(OLD, 3))
        store_raw(repo, BlobType.DATA, deep[-1], framed, len(data) + 4, deep[-2], generation=n)
    a_data, b_data = edit(OLD, 10), edit(OLD, 20)
    a, b = repo.hash_blob(a_data), repo.hash_blob(b_data)
    store_raw(repo, BlobType.DATA, a, compression.compress_delta(a_data, bytes(b), b_data), len(a_data), b, generation=1)
    store_raw(repo, BlobType.DATA, b, compression.compress_delta(b_data, bytes(a), a_data), len(b_data), a, generation=1)
    candidates = [bytes(s.id) for s in saved] + [bytes(d) for d in deep] + [bytes(a), bytes(b), os.urandom(32)]
    candidates += candidates[:5]  # asked twice in one block
    one_by_one = [repo.delta_offer(c) for c in candidates]
    batch = repo.delta_offers(candidates)
    assert batch == one_by_one
    assert [o.chain if o else None for o in batch] == [o.chain if o else None for o in one_by_one]  # not compared by ==
    mine = len(saved) + len(deep)
    assert one_by_one[mine - 1] is None and one_by_one[mine:mine + 3] == [None] * 3  # too deep; circle; unknown
    assert all(o is not None for o in one_by_one[: len(saved)])


@pytest.mark.parametrize("damaged", [0, 1, 2], ids=["root", "middle", "top"])
def test_a_damaged_blob_in_a_chain_is_named_when_the_chain_is_read_alone(repo: Repository, damaged: int) -> None:
    """Reading one blob rebuilds its chain in one call into zstd; when that fails, the read
    level by level names the blob that is damaged, wherever it sits in the chain."""
    versions = nightly_versions(3)
    ids = [repo.save_blob(BlobType.DATA, OLD).id]
    repo.flush()
    for n, data in enumerate(versions[1:], start=1):  # each against the one before
        ids.append(repo.hash_blob(data))
        framed = compression.compress_delta(data, bytes(ids[-2]), versions[n - 1])
        store_raw(repo, BlobType.DATA, ids[-1], framed, len(data), ids[-2], generation=n)
    assert deltas.depth(repo.index, ids[2]) == 2
    assert reopen(repo).load_blob(BlobType.DATA, ids[2]) == versions[2]
    flip(repo, ids[damaged], 40)
    with pytest.raises(AuthenticationFailed) as raised:
        reopen(repo).load_blob(BlobType.DATA, ids[2])
    assert ids[damaged].hex() in str(raised.value)


def linear_chain(repo: Repository, count: int, salt: bytes = b"") -> tuple[list[Id], list[bytes]]:
    """`count` versions of a chunk, each stored against the one before (a chain as deep)."""
    versions = [v + salt for v in nightly_versions(count)]
    ids = [repo.save_blob(BlobType.DATA, versions[0]).id]
    repo.flush()
    for n, data in enumerate(versions[1:], start=1):
        ids.append(repo.hash_blob(data))
        framed = compression.compress_delta(data, bytes(ids[-2]), versions[n - 1])
        store_raw(repo, BlobType.DATA, ids[-1], framed, len(data), ids[-2], generation=n)
    return ids, versions


def test_a_window_rebuilds_chains_nobody_else_needs_in_one_call_and_shared_ones_level_by_level(
    repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A restore asks for the tops of chains (the old versions below are asked for by no one):
    those are rebuilt in one call each, from their whole root's envelope, which is neither
    opened nor hashed on its own; a chain whose middle another request also needs, or that is
    itself asked for, is rebuilt level by level. Every result is the same."""
    alone, alone_data = linear_chain(repo, 5, b"alone")
    shared, shared_data = linear_chain(repo, 5, b"shared")
    branch_data = edit(shared_data[2], 500)
    branch = repo.hash_blob(branch_data)
    store_raw(repo, BlobType.DATA, branch, compression.compress_delta(branch_data, bytes(shared[2]), shared_data[2]),
              len(branch_data), shared[2], generation=3)  # fmt: skip
    in_one_call: list[tuple[str, int]] = []
    from_root, from_plaintext = compression.rebuild_chain, compression.rebuild_on
    monkeypatch.setattr(compression, "rebuild_chain", lambda root, size, frames: in_one_call.append(("root", len(frames)))
                        or from_root(root, size, frames))  # fmt: skip
    monkeypatch.setattr(compression, "rebuild_on", lambda base, frames: in_one_call.append(("plaintext", len(frames)))
                        or from_plaintext(base, frames))  # fmt: skip
    hashed: list[bytes] = []
    real_hash = blob_reader.keyed_hash
    monkeypatch.setattr(blob_reader, "keyed_hash", lambda key, data: hashed.append(real_hash(key, data)) or real_hash(key, data))
    wanted = [alone[-1], shared[-1], branch, shared[3]]
    reads = list(reopen(repo).read_blobs((BlobType.DATA, i) for i in wanted))
    assert [r.data for r in reads] == [alone_data[-1], shared_data[-1], branch_data, shared_data[3]]
    assert in_one_call == [("root", 4)]  # only the chain nothing else needed: four deltas in one call
    assert alone[0] not in hashed and shared[0] in hashed  # the lone chain's root was not read alone
    got: list[bytes | None] = []
    reopen(repo).read_each_blob([(BlobType.DATA, alone[-1])], lambda r: got.append(r.data))
    assert got == [alone_data[-1]] and in_one_call == [("root", 4), ("root", 4)]


def test_a_root_two_lone_chains_rest_on_is_opened_once_and_serves_both(
    repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two requested chains resting on one whole blob nobody asked for: the root is opened
    once, first, and both chains are rebuilt on its plaintext, each in one call."""
    ids, versions = linear_chain(repo, 3, b"fork")
    other_data = [edit(versions[0], 900), edit(versions[0], 1900)]
    other = [repo.hash_blob(data) for data in other_data]
    for n, (blob, base, base_data) in enumerate(zip(other, [ids[0], other[0]], [versions[0], other_data[0]], strict=True)):
        store_raw(repo, BlobType.DATA, blob, compression.compress_delta(other_data[n], bytes(base), base_data),
                  len(other_data[n]), base, generation=n + 1)  # fmt: skip
    calls: list[tuple[str, int]] = []
    from_root, from_plaintext = compression.rebuild_chain, compression.rebuild_on
    monkeypatch.setattr(compression, "rebuild_chain", lambda r, s, frames: calls.append(("root", len(frames))) or from_root(r, s, frames))
    monkeypatch.setattr(compression, "rebuild_on", lambda b, frames: calls.append(("plaintext", len(frames))) or from_plaintext(b, frames))
    reads = list(reopen(repo).read_blobs([(BlobType.DATA, ids[2]), (BlobType.DATA, other[1])]))
    assert [r.data for r in reads] == [versions[2], other_data[1]]
    assert calls == [("plaintext", 2), ("plaintext", 2)]
    flip(repo, ids[0], 40)  # the shared root damaged: each chain is read alone, which names it
    reads = list(reopen(repo).read_blobs([(BlobType.DATA, ids[2]), (BlobType.DATA, other[1])]))
    assert all(r.data is None and isinstance(r.error, AuthenticationFailed) and ids[0].hex() in str(r.error) for r in reads)


@pytest.mark.parametrize("damaged", [0, 2, 4], ids=["root", "middle", "top"])
def test_a_damaged_blob_in_a_chain_read_in_a_window_is_named(repo: Repository, damaged: int) -> None:
    ids, versions = linear_chain(repo, 5)
    other = repo.save_blob(BlobType.DATA, b"another blob, read as well")
    repo.flush()
    flip(repo, ids[damaged], 40)
    reads = list(reopen(repo).read_blobs([(BlobType.DATA, ids[-1]), (BlobType.DATA, other.id)]))
    assert reads[1].data == b"another blob, read as well"
    assert reads[0].data is None and isinstance(reads[0].error, AuthenticationFailed)
    assert ids[damaged].hex() in str(reads[0].error)


def test_an_offered_base_is_read_along_the_chain_the_offer_found(repo: Repository, monkeypatch: pytest.MonkeyPatch) -> None:
    """The packer reads an offered base along the chain the offer found, without asking the
    index again; a chain that does not hold (an envelope names another base) is read as any
    base is."""
    ids, versions = linear_chain(repo, 4)
    offer = deltas.offer_against(repo.index, ids[2], chains=True)
    assert offer is not None and [b for b, _ in offer.chain] == [ids[2], ids[1], ids[0]]
    reader = reopen(repo)
    index = reader.index

    def no_lookups(*_: object) -> object:
        raise AssertionError("the index was asked")

    monkeypatch.setattr(index, "lookup", no_lookups)
    monkeypatch.setattr(index, "lookup_all", no_lookups)
    assert reader.reader.offered_base(offer) == versions[2]
    monkeypatch.undo()
    twisted = dataclasses.replace(offer, chain=(offer.chain[0], offer.chain[2], offer.chain[1]))
    assert reopen(repo).reader.offered_base(twisted) == versions[2]


def test_a_damaged_root_costs_two_reads_of_its_chain_not_one_per_level(repo: Repository) -> None:
    """Once the one-call read of a chain failed, the level-by-level read that names the damage
    does not try a one-call read again at every level (a chain of d deltas would cost about
    d * d / 2 reads, each a request on S3)."""
    ids, _ = linear_chain(repo, 7)
    flip(repo, ids[0], 40)
    fresh = reopen(repo)
    counting = CountingBackend(fresh.backend)
    fresh.backend = counting
    with pytest.raises(AuthenticationFailed):
        fresh.load_blob(BlobType.DATA, ids[-1])
    assert counting.pack_reads == 2 * len(ids)
    counting.pack_reads = 0
    (read,) = fresh.read_blobs([(BlobType.DATA, ids[-1])])
    assert isinstance(read.error, AuthenticationFailed) and ids[0].hex() in str(read.error)
    assert counting.pack_reads <= 2 * len(ids) + 1  # the window's one plan, then the read alone
