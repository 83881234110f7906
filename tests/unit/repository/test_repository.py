"""The repository facade: init/open, blobs in packs, the index, and whole encrypted objects."""

from __future__ import annotations

import os
import random
from concurrent.futures import ThreadPoolExecutor

import msgpack
import pytest

from snapstore import pack
from snapstore.backend.base import FileType, Handle
from snapstore.backend.faulty import FaultyBackend
from snapstore.backend.memory import MemoryBackend
from snapstore.compression import decompress
from snapstore.crypto.aead import OVERHEAD, Kind
from snapstore.crypto.idhash import object_id
from snapstore.crypto.kdf import TEST_KDF
from snapstore.crypto.keys import KeyFileInfo, wrap_master_key
from snapstore.errors import (
    AuthenticationFailed,
    IdMismatch,
    IntegrityError,
    ObjectNotFound,
    RepositoryExists,
    RepositoryNotFound,
    TransientBackendError,
    UnsupportedVersion,
    WrongPassword,
)
from snapstore.ids import Id
from snapstore.index.codec import IndexFile, decode_index
from snapstore.pack import BlobType, PackEntry
from snapstore.repository import repository as repository_module
from snapstore.repository.config import RepositoryConfig
from snapstore.repository.packer import SavedBlob
from snapstore.repository.repository import Repository
from tests.conftest import PASSWORD, assert_repository_ok, reopen
from tests.support.damage import flip_byte as flip

PACK_SIZE = 1 << 20


def blobs(count: int, size: int, seed: int = 0) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(size) for _ in range(count)]


def pack_names(backend: MemoryBackend) -> set[str]:
    return {info.handle.name for info in backend.list(FileType.PACK)}


def indexed_packs(repo: Repository) -> set[str]:
    names: set[str] = set()
    for info in repo.list_objects(FileType.INDEX):
        names.update(p.hex() for p in repo.load_index_file(info.handle.name).packs)
    return names


# -- init and open --------------------------------------------------------------------------


def test_init_writes_config_and_one_key(repo: Repository, backend: MemoryBackend) -> None:
    assert [i.handle for i in backend.list(FileType.CONFIG)] == [Handle(FileType.CONFIG)]
    keys = list(backend.list(FileType.KEY))
    assert len(keys) == 1
    key_blob = backend.load(keys[0].handle)
    assert keys[0].handle.name == object_id(key_blob).hex()
    assert repo.config.pack_size == PACK_SIZE
    assert set(repo.config.chunker) == {"files", "database"}
    assert_repository_ok(repo)


def test_init_refuses_an_existing_repository(repo: Repository, backend: MemoryBackend) -> None:
    with pytest.raises(RepositoryExists):
        Repository.init(backend, PASSWORD, kdf=TEST_KDF)
    with pytest.raises(RepositoryExists):
        Repository.init(backend, b"another password", kdf=TEST_KDF)
    assert len(list(backend.list(FileType.KEY))) == 1
    assert_repository_ok(repo)


def test_init_refuses_a_half_initialised_repository(backend: MemoryBackend) -> None:
    """A key file without a config (init interrupted) still counts as a repository.

    The repository is left broken on purpose, so this test does not end with the checker.
    """
    repo = Repository.init(backend, PASSWORD, kdf=TEST_KDF)
    backend.remove(Handle(FileType.CONFIG))
    with pytest.raises(RepositoryExists):
        Repository.init(backend, PASSWORD, kdf=TEST_KDF)
    repo.close()


def test_open_empty_backend() -> None:
    with pytest.raises(RepositoryNotFound):
        Repository.open(MemoryBackend(), PASSWORD)


def test_open_wrong_password(repo: Repository) -> None:
    with pytest.raises(WrongPassword):
        Repository.open(repo.backend, b"wrong")
    assert_repository_ok(repo)


def test_open_sees_the_same_keys_and_config(repo: Repository) -> None:
    again = reopen(repo)
    assert again.config == repo.config
    assert again.repository_id == repo.repository_id and len(repo.repository_id) == 32
    assert again.chunker_seed == repo.chunker_seed
    assert again.hash_blob(b"x") == repo.hash_blob(b"x")
    assert_repository_ok(repo)


def test_two_repositories_have_different_secrets() -> None:
    a = Repository.init(MemoryBackend(), PASSWORD, kdf=TEST_KDF)
    b = Repository.init(MemoryBackend(), PASSWORD, kdf=TEST_KDF)
    assert a.hash_blob(b"same") != b.hash_blob(b"same")
    assert a.chunker_seed != b.chunker_seed
    assert a.repository_id != b.repository_id
    assert_repository_ok(a)
    assert_repository_ok(b)


def test_open_with_a_second_key_file(repo: Repository, backend: MemoryBackend) -> None:
    """Every key file is tried; the one that fits opens the repository."""
    other = wrap_master_key(repo._master, b"second", TEST_KDF, KeyFileInfo("", "", ""))
    backend.save(Handle(FileType.KEY, object_id(other).hex()), other)
    assert Repository.open(backend, b"second").hash_blob(b"x") == repo.hash_blob(b"x")
    assert Repository.open(backend, PASSWORD).hash_blob(b"x") == repo.hash_blob(b"x")
    assert_repository_ok(repo)


def test_a_damaged_key_file_does_not_lock_out_the_others(
    repo: Repository, backend: MemoryBackend
) -> None:
    copy = MemoryBackend()
    copy.save(Handle(FileType.KEY, "0" * 64), b"\xc1 not a key file")  # listed first
    for file_type in FileType:
        for info in backend.list(file_type):
            copy.save(info.handle, backend.load(info.handle))
    assert Repository.open(copy, PASSWORD).hash_blob(b"x") == repo.hash_blob(b"x")


def test_damaged_config_is_refused(repo: Repository, backend: MemoryBackend) -> None:
    flip(backend, Handle(FileType.CONFIG), 40)
    with pytest.raises(AuthenticationFailed):
        Repository.open(backend, PASSWORD)
    flip(backend, Handle(FileType.CONFIG), 40)
    assert_repository_ok(repo)


# -- config codec -----------------------------------------------------------------------------


def test_config_round_trip() -> None:
    config = RepositoryConfig.new("2026-01-01T00:00:00+00:00", {"files": (1, 2, 4, 2)}, 1234)
    assert RepositoryConfig.decode(config.encode()) == config


def _config_doc(**changes: object) -> bytes:
    config = RepositoryConfig.new("now", {"files": (1, 2, 4, 2)}, 1234)
    doc = msgpack.unpackb(config.encode())
    doc.update(changes)
    return msgpack.packb({k: v for k, v in doc.items() if v is not ...}, use_bin_type=True)


@pytest.mark.parametrize("changes", [{"v": 2}, {"features": ["zebra-stripes"]}])
def test_config_from_the_future(changes: dict[str, object]) -> None:
    with pytest.raises(UnsupportedVersion):
        RepositoryConfig.decode(_config_doc(**changes))


@pytest.mark.parametrize(
    "plaintext",
    [b"", b"\xc1", msgpack.packb([1]), _config_doc(pack_size="big"), _config_doc(id=...)],
    ids=lambda plaintext: f"{len(plaintext)}B",  # stable: some cases hold random ids
)
def test_malformed_config(plaintext: bytes) -> None:
    with pytest.raises(IntegrityError):
        RepositoryConfig.decode(plaintext)


@pytest.mark.parametrize("changes", [{"features": 5}, {"chunker": [1, 2]}])
def test_mistyped_config_fields(changes: dict[str, object]) -> None:
    with pytest.raises(IntegrityError):
        RepositoryConfig.decode(_config_doc(**changes))


# -- blobs ----------------------------------------------------------------------------------


def test_save_and_load_blob(repo: Repository) -> None:
    data = b"hello blob" * 100
    saved = repo.save_blob(BlobType.DATA, data)
    assert saved.id == repo.hash_blob(data)
    assert saved.added and saved.plain_length == len(data)
    assert saved.stored_length < len(data)  # compressible
    repo.flush()
    assert repo.load_blob(BlobType.DATA, saved.id) == data
    again = reopen(repo)
    assert again.load_blob(BlobType.DATA, saved.id) == data
    assert again.has_blob(saved.id)
    assert_repository_ok(repo)


def test_load_blob_round_trip_for_many_sizes(repo: Repository) -> None:
    contents = [b"", b"a", os.urandom(100), bytes(50_000), os.urandom(300_000)]
    ids = [repo.save_blob(BlobType.DATA, c).id for c in contents]
    tree = repo.save_blob(BlobType.TREE, b"tree-ish bytes")
    repo.flush()
    again = reopen(repo)
    for blob_id, content in zip(ids, contents, strict=True):
        assert again.load_blob(BlobType.DATA, blob_id) == content
    assert again.load_blob(BlobType.TREE, tree.id) == b"tree-ish bytes"
    assert_repository_ok(repo)


def test_dedup(repo: Repository, backend: MemoryBackend) -> None:
    data = os.urandom(10_000)
    first = repo.save_blob(BlobType.DATA, data)
    second = repo.save_blob(BlobType.DATA, data)  # still in the open pack
    assert first.added and not second.added and second.id == first.id
    repo.flush()
    stored = {i.handle: i.size for t in FileType for i in backend.list(t)}
    uploaded = repo.bytes_uploaded
    third = repo.save_blob(BlobType.DATA, data)  # now in a stored pack
    repo.flush()
    assert not third.added
    assert repo.bytes_uploaded == uploaded
    assert {i.handle: i.size for t in FileType for i in backend.list(t)} == stored
    # A second process that loaded the index dedups too.
    again = reopen(repo)
    assert not again.save_blob(BlobType.DATA, data).added
    again.flush()
    assert len(pack_names(backend)) == 1
    assert_repository_ok(repo)


def test_same_content_as_data_and_tree_is_one_blob(repo: Repository) -> None:
    """Ids are over content only, so the type of the first save wins."""
    repo.save_blob(BlobType.DATA, b"same")
    assert not repo.save_blob(BlobType.TREE, b"same").added
    repo.flush()
    assert_repository_ok(repo)


def test_load_unknown_blob(repo: Repository) -> None:
    with pytest.raises(ObjectNotFound):
        repo.load_blob(BlobType.DATA, bytes(32))


def test_load_blob_with_the_wrong_type(repo: Repository) -> None:
    saved = repo.save_blob(BlobType.DATA, b"data, not a tree")
    repo.flush()
    with pytest.raises(AuthenticationFailed):
        reopen(repo).load_blob(BlobType.TREE, saved.id)
    assert_repository_ok(repo)


def test_packs_stay_near_pack_size(repo: Repository, backend: MemoryBackend) -> None:
    size = 100_000
    for data in blobs(60, size):  # about 6 MiB, incompressible
        repo.save_blob(BlobType.DATA, data)
    repo.flush()
    sizes = [i.size for i in backend.list(FileType.PACK)]
    assert len(sizes) >= 5
    largest_blob = size + 1 + OVERHEAD
    for pack_size in sizes:
        assert pack_size <= PACK_SIZE + largest_blob + 2 * pack.ENTRY_SIZE * 12 + 200
    assert sum(sizes) == repo.bytes_uploaded
    assert_repository_ok(repo)


def test_flush_writes_an_index_naming_only_stored_packs(
    repo: Repository, backend: MemoryBackend
) -> None:
    repo.flush()
    assert not list(backend.list(FileType.INDEX))  # nothing to index
    for data in blobs(25, 100_000, seed=1):
        repo.save_blob(BlobType.DATA, data)
    repo.flush()
    assert indexed_packs(repo) == pack_names(backend)
    assert len(list(backend.list(FileType.INDEX))) == 1
    repo.save_blob(BlobType.DATA, b"one more")
    repo.flush()
    assert len(list(backend.list(FileType.INDEX))) == 2
    assert indexed_packs(repo) == pack_names(backend)
    assert_repository_ok(repo)


def test_index_matches_the_pack_headers(repo: Repository, backend: MemoryBackend) -> None:
    for data in blobs(15, 100_000, seed=2):
        repo.save_blob(BlobType.DATA, data)
    repo.flush()
    for info in repo.list_objects(FileType.INDEX):
        for pack_id, entries in repo.load_index_file(info.handle.name).packs.items():
            assert repo.read_pack_header(pack_id) == entries
    assert_repository_ok(repo)


def test_read_pack_header_beyond_the_tail_guess(
    repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = [repo.save_blob(BlobType.DATA, d).id for d in blobs(5, 1000, seed=3)]
    repo.flush()
    (pack_id,) = repo.index.pack_ids()
    monkeypatch.setattr(repository_module, "_PACK_TAIL_GUESS", pack.TRAILER_SIZE + 1)
    entries = repo.read_pack_header(pack_id)
    assert [e.id for e in entries] == ids
    assert_repository_ok(repo)


def test_index_files_written_during_a_long_backup(
    repo: Repository, backend: MemoryBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every PACKS_PER_INDEX_FILE packs an index file is written, naming only stored packs."""
    monkeypatch.setattr(repository_module, "PACKS_PER_INDEX_FILE", 2)
    seen_violations: list[str] = []
    original_save = backend.save

    def checking_save(handle: Handle, data: bytes) -> None:
        if handle.type is FileType.INDEX:
            plaintext = decompress(repo._opener.open(Kind.INDEX, data))
            for pack_id in decode_index(plaintext).packs:
                if pack_id.hex() not in pack_names(backend):
                    seen_violations.append(pack_id.hex())
        original_save(handle, data)

    monkeypatch.setattr(backend, "save", checking_save)
    for data in blobs(120, 100_000, seed=4):  # 12 packs: at most 3 uploads are still under way
        repo.save_blob(BlobType.DATA, data)
    assert len(list(backend.list(FileType.INDEX))) >= 2  # before any flush
    repo.flush()
    assert not seen_violations
    assert indexed_packs(repo) == pack_names(backend)
    assert_repository_ok(repo)


def test_corrupted_pack_byte_is_detected(repo: Repository, backend: MemoryBackend) -> None:
    data = os.urandom(5000)
    saved = repo.save_blob(BlobType.DATA, data)
    repo.flush()
    (pack_name,) = pack_names(backend)
    # Version, suite, session id, counter, ciphertext, tag.
    for position in (0, 1, 2, 20, 30, 2500, 5000 + OVERHEAD):
        flip(backend, Handle(FileType.PACK, pack_name), position)
        with pytest.raises(IntegrityError):
            reopen(repo).load_blob(BlobType.DATA, saved.id)
        flip(backend, Handle(FileType.PACK, pack_name), position)  # undo
    assert reopen(repo).load_blob(BlobType.DATA, saved.id) == data
    assert_repository_ok(repo)


def test_a_good_copy_in_another_pack_is_used(repo: Repository, backend: MemoryBackend) -> None:
    """Two writers that did not see each other store the same blob twice; either copy serves."""
    data = os.urandom(5000)
    other = reopen(repo)
    saved = repo.save_blob(BlobType.DATA, data)
    assert other.save_blob(BlobType.DATA, data).added
    repo.flush()
    other.flush()
    assert len(pack_names(backend)) == 2
    reader = reopen(repo)
    assert len(reader.index.lookup_all(saved.id)) == 2
    first = reader.index.lookup_all(saved.id)[0]
    flip(backend, Handle(FileType.PACK, first.pack_id.hex()), first.offset + 100)
    assert reopen(repo).load_blob(BlobType.DATA, saved.id) == data
    flip(backend, Handle(FileType.PACK, first.pack_id.hex()), first.offset + 100)
    assert_repository_ok(repo)


def test_blob_filed_under_the_wrong_id(repo: Repository) -> None:
    a = repo.save_blob(BlobType.DATA, b"content a")
    b = repo.save_blob(BlobType.DATA, b"content b")
    repo.flush()
    reader = Repository.open(repo.backend, PASSWORD)
    location = repo.index.lookup(b.id)
    assert location is not None
    # An index that points a's id at b's bytes: the envelope opens, the id check catches it.
    reader.index.add_pack(
        location.pack_id,
        [PackEntry(location.type, a.id, location.offset, location.length, location.plain_length)],
    )
    with pytest.raises(IdMismatch):
        reader.load_blob(BlobType.DATA, a.id)
    assert_repository_ok(repo)


def test_concurrent_submit_blob(repo: Repository, backend: MemoryBackend) -> None:
    shared = blobs(20, 20_000, seed=5)

    def work(n: int) -> list[SavedBlob]:
        own = blobs(30, 20_000, seed=100 + n)
        futures = [repo.submit_blob(BlobType.DATA, d) for d in own + shared]
        return [f.result() for f in futures]

    with ThreadPoolExecutor(4) as pool:
        results = dict(enumerate(pool.map(work, range(4))))
    repo.flush()
    shared_ids = {repo.hash_blob(d) for d in shared}
    added_shared = sum(1 for r in results.values() for s in r if s.id in shared_ids and s.added)
    assert added_shared == len(shared)  # each shared blob stored exactly once
    assert len(repo.index) == 4 * 30 + 20
    again = reopen(repo)
    assert len(again.index) == 4 * 30 + 20
    for n in range(4):
        for data, saved in zip(blobs(30, 20_000, seed=100 + n), results[n], strict=False):
            assert again.load_blob(BlobType.DATA, saved.id) == data
    assert_repository_ok(repo)


def test_failed_pack_upload_surfaces_on_flush() -> None:
    faulty = FaultyBackend(MemoryBackend())
    repo = Repository.init(faulty, PASSWORD, kdf=TEST_KDF, pack_size=PACK_SIZE)
    faulty.fail("save", file_type=FileType.PACK)
    repo.save_blob(BlobType.DATA, b"lost")
    with pytest.raises(TransientBackendError):
        repo.flush()
    assert not list(faulty.list(FileType.INDEX))  # no index for a pack that is not there
    assert_repository_ok(repo)
    repo.close()


# -- whole objects ----------------------------------------------------------------------------


def test_save_and_load_object(repo: Repository, backend: MemoryBackend) -> None:
    body = b"snapshot body " * 50
    name = repo.save_object(FileType.SNAPSHOT, body)
    sealed = backend.load(Handle(FileType.SNAPSHOT, name.hex()))
    assert object_id(sealed) == name
    assert body[:14] not in sealed
    assert reopen(repo).load_object(FileType.SNAPSHOT, name.hex()) == body
    repo.remove_object(FileType.SNAPSHOT, name.hex())
    with pytest.raises(ObjectNotFound):
        repo.load_object(FileType.SNAPSHOT, name.hex())
    assert_repository_ok(repo)


def test_tampered_object_is_detected(repo: Repository, backend: MemoryBackend) -> None:
    name = repo.save_object(FileType.INDEX, b"not really an index").hex()
    handle = Handle(FileType.INDEX, name)
    original = backend.load(handle)
    for position in range(len(original)):
        flip(backend, handle, position)
        with pytest.raises(IntegrityError):
            repo.load_object(FileType.INDEX, name)
        flip(backend, handle, position)
    # Tampered and re-filed under the hash of its new bytes: the tag still fails.
    damaged = bytearray(original)
    damaged[-1] ^= 1
    new_name = object_id(bytes(damaged)).hex()
    backend.save(Handle(FileType.INDEX, new_name), bytes(damaged))
    with pytest.raises(AuthenticationFailed):
        repo.load_object(FileType.INDEX, new_name)
    backend.remove(Handle(FileType.INDEX, new_name))
    backend.remove(handle)
    assert_repository_ok(repo)


def test_object_kinds_cannot_be_swapped(repo: Repository, backend: MemoryBackend) -> None:
    name = repo.save_object(FileType.SNAPSHOT, b"a snapshot").hex()
    sealed = backend.load(Handle(FileType.SNAPSHOT, name))
    backend.save(Handle(FileType.INDEX, name), sealed)
    with pytest.raises(AuthenticationFailed):
        repo.load_object(FileType.INDEX, name)
    backend.remove(Handle(FileType.INDEX, name))
    backend.remove(Handle(FileType.SNAPSHOT, name))
    assert_repository_ok(repo)


def test_write_and_read_index_file(repo: Repository) -> None:
    entry = PackEntry(BlobType.DATA, Id(os.urandom(32)), 0, 10, 10)
    index_file = IndexFile(packs={Id(os.urandom(32)): [entry]})
    name = repo.write_index(index_file)
    assert repo.load_index_file(name.hex()) == index_file
    repo.remove_object(FileType.INDEX, name.hex())
    assert_repository_ok(repo)
