"""The behaviour every backend must have, as one abstract test class.

A backend's test module subclasses `BackendConformance`, provides a `backend` fixture that
yields a fresh, created, empty backend, and (when it can) overrides `plant_stray` to drop a
file behind the backend's back. Everything the repository layer relies on is pinned here,
so a new backend is correct once this suite passes against it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

import pytest

from snapstore.backend.base import Backend, FileInfo, FileType, Handle
from snapstore.errors import ObjectNotFound, RangeError

LARGE_SIZE = 20 * 1024 * 1024

NAMED_TYPES: list[FileType] = [t for t in FileType if t is not FileType.CONFIG]
CONFIG = Handle(FileType.CONFIG)


def pack(name: str) -> Handle:
    return Handle(FileType.PACK, name)


def listing(backend: Backend, file_type: FileType) -> dict[str, int]:
    """name -> size of everything listed for one type, failing on duplicates."""
    found: dict[str, int] = {}
    for info in backend.list(file_type):
        assert isinstance(info, FileInfo)
        assert info.handle.type is file_type
        assert info.handle.name not in found, f"{info.handle} listed twice"
        found[info.handle.name] = info.size
    return found


def all_handles() -> list[Handle]:
    return [CONFIG] + [Handle(t, f"{t.value[:3]}0123456789abcdef") for t in NAMED_TYPES]


class BackendConformance:
    """Subclass as `Test<Name>Backend` and provide the `backend` fixture."""

    @pytest.fixture
    def backend(self) -> Iterator[Backend]:
        raise NotImplementedError("subclasses provide a fresh, created backend")

    def plant_stray(self, backend: Backend, relative_path: str, data: bytes) -> None:
        """Put a file at a path relative to the root without going through the backend."""
        pytest.skip("this backend has no files to plant")

    # -- protocol and basics -------------------------------------------------------------

    def test_implements_protocol(self, backend: Backend) -> None:
        assert isinstance(backend, Backend)
        assert isinstance(backend.location, str) and backend.location

    def test_new_backend_is_empty(self, backend: Backend) -> None:
        for file_type in FileType:
            assert listing(backend, file_type) == {}

    def test_create_is_idempotent_and_keeps_objects(self, backend: Backend) -> None:
        backend.save(pack("aa01"), b"kept")
        backend.create()
        backend.create()
        assert backend.load(pack("aa01")) == b"kept"

    # -- save and load ------------------------------------------------------------------

    @pytest.mark.parametrize("handle", all_handles(), ids=str)
    def test_round_trip_every_type(self, backend: Backend, handle: Handle) -> None:
        data = os.urandom(1000)
        backend.save(handle, data)
        loaded = backend.load(handle)
        assert type(loaded) is bytes
        assert loaded == data
        assert backend.stat(handle) == FileInfo(handle, 1000)

    def test_save_keeps_a_copy_of_mutable_input(self, backend: Backend) -> None:
        buffer = bytearray(b"original")
        backend.save(pack("ab"), buffer)  # type: ignore[arg-type]
        buffer[:] = b"changed!"
        assert backend.load(pack("ab")) == b"original"

    def test_overwrite_with_same_content(self, backend: Backend) -> None:
        data = os.urandom(4096)
        backend.save(pack("cafe01"), data)
        backend.save(pack("cafe01"), data)
        assert backend.load(pack("cafe01")) == data
        assert listing(backend, FileType.PACK) == {"cafe01": 4096}

    def test_overwrite_replaces_config_and_locks(self, backend: Backend) -> None:
        lock = Handle(FileType.LOCK, "lock1")
        for handle in (CONFIG, lock):
            backend.save(handle, b"first version")
            backend.save(handle, b"second")
            assert backend.load(handle) == b"second"
            assert backend.stat(handle).size == 6

    def test_empty_object(self, backend: Backend) -> None:
        handle = Handle(FileType.INDEX, "empty")
        backend.save(handle, b"")
        assert backend.load(handle) == b""
        assert backend.load(handle, 0, 0) == b""
        assert backend.stat(handle).size == 0
        assert listing(backend, FileType.INDEX) == {"empty": 0}
        with pytest.raises(RangeError):
            backend.load(handle, 0, 1)

    def test_large_object(self, backend: Backend) -> None:
        data = os.urandom(LARGE_SIZE)
        handle = pack("ff" + "0" * 62)
        backend.save(handle, data)
        assert backend.stat(handle).size == LARGE_SIZE
        assert backend.load(handle) == data
        middle = LARGE_SIZE // 2
        assert backend.load(handle, middle, 1 << 20) == data[middle : middle + (1 << 20)]
        assert backend.load(handle, LARGE_SIZE - 10) == data[-10:]

    # -- ranged loads -------------------------------------------------------------------

    @pytest.mark.parametrize(
        ("offset", "length"),
        [(0, None), (0, 10), (3, 4), (9, 1), (0, 0), (5, 0), (4, None), (9, None)],
    )
    def test_ranged_load(self, backend: Backend, offset: int, length: int | None) -> None:
        data = b"0123456789"
        backend.save(pack("ab12"), data)
        end = None if length is None else offset + length
        assert backend.load(pack("ab12"), offset, length) == data[offset:end]

    def test_ranged_load_at_end_is_empty(self, backend: Backend) -> None:
        backend.save(pack("ab12"), b"0123456789")
        assert backend.load(pack("ab12"), 10, 0) == b""
        assert backend.load(pack("ab12"), 10) == b""

    @pytest.mark.parametrize(("offset", "length"), [(0, 11), (5, 6), (9, 2), (10, 1), (11, 0)])
    def test_ranged_load_past_end(self, backend: Backend, offset: int, length: int) -> None:
        backend.save(pack("ab12"), b"0123456789")
        with pytest.raises(RangeError):
            backend.load(pack("ab12"), offset, length)

    def test_offset_past_end_without_length(self, backend: Backend) -> None:
        backend.save(pack("ab12"), b"0123456789")
        with pytest.raises(RangeError):
            backend.load(pack("ab12"), 11)

    @pytest.mark.parametrize(("offset", "length"), [(-1, None), (0, -1), (-5, 2)])
    def test_negative_range_is_a_caller_bug(
        self, backend: Backend, offset: int, length: int | None
    ) -> None:
        backend.save(pack("ab12"), b"0123456789")
        with pytest.raises(ValueError):
            backend.load(pack("ab12"), offset, length)

    # -- missing objects ----------------------------------------------------------------

    @pytest.mark.parametrize("handle", all_handles(), ids=str)
    def test_missing_object(self, backend: Backend, handle: Handle) -> None:
        with pytest.raises(ObjectNotFound):
            backend.load(handle)
        with pytest.raises(ObjectNotFound):
            backend.load(handle, 0, 1)
        with pytest.raises(ObjectNotFound):
            backend.load(handle, 0, 0)
        with pytest.raises(ObjectNotFound):
            backend.load(handle, 5)
        with pytest.raises(ObjectNotFound):
            backend.stat(handle)
        with pytest.raises(ObjectNotFound):
            backend.remove(handle)

    # -- remove -------------------------------------------------------------------------

    def test_remove(self, backend: Backend) -> None:
        backend.save(pack("ab01"), b"one")
        backend.save(pack("ab02"), b"two")
        backend.remove(pack("ab01"))
        with pytest.raises(ObjectNotFound):
            backend.load(pack("ab01"))
        with pytest.raises(ObjectNotFound):
            backend.stat(pack("ab01"))
        with pytest.raises(ObjectNotFound):
            backend.remove(pack("ab01"))
        assert listing(backend, FileType.PACK) == {"ab02": 3}

    def test_remove_config(self, backend: Backend) -> None:
        backend.save(CONFIG, b"cfg")
        backend.remove(CONFIG)
        assert listing(backend, FileType.CONFIG) == {}

    # -- list ---------------------------------------------------------------------------

    def test_list_per_type(self, backend: Backend) -> None:
        expected: dict[FileType, dict[str, int]] = {}
        for number, file_type in enumerate(NAMED_TYPES):
            names = {f"{file_type.value[:2]}{number}{i:03x}": i for i in range(1, 6)}
            for name, size in names.items():
                backend.save(Handle(file_type, name), b"x" * size)
            expected[file_type] = names
        backend.save(CONFIG, b"config!")
        for file_type, names in expected.items():
            assert listing(backend, file_type) == names
        assert list(backend.list(FileType.CONFIG)) == [FileInfo(CONFIG, 7)]

    def test_list_packs_across_shards(self, backend: Backend) -> None:
        names = [f"{prefix:02x}{'e' * 62}" for prefix in (0x00, 0x01, 0x7F, 0xAB, 0xFF)]
        names += ["ab", "ab00", "abff", "Zz-1"]
        for name in names:
            backend.save(pack(name), name.encode())
        assert listing(backend, FileType.PACK) == {name: len(name) for name in names}
        assert listing(backend, FileType.INDEX) == {}

    def test_list_can_be_abandoned(self, backend: Backend) -> None:
        for i in range(5):
            backend.save(Handle(FileType.SNAPSHOT, f"s{i}"), b"s")
        iterator = backend.list(FileType.SNAPSHOT)
        next(iterator)
        close = getattr(iterator, "close", None)
        if close is not None:
            close()
        assert len(listing(backend, FileType.SNAPSHOT)) == 5

    @pytest.mark.parametrize(
        "stray",
        [
            "data/ab/.tmp-0123456789abcdef",
            "keys/.tmp-0123456789abcdef",
            ".tmp-0123456789abcdef",
            "data/ab/.hidden",
            "snapshots/.tmp-x",
        ],
    )
    def test_list_ignores_temporary_files(self, backend: Backend, stray: str) -> None:
        backend.save(pack("ab01"), b"pack")
        backend.save(Handle(FileType.KEY, "k1"), b"key")
        backend.save(Handle(FileType.SNAPSHOT, "s1"), b"snap")
        self.plant_stray(backend, stray, b"half-written")
        assert listing(backend, FileType.PACK) == {"ab01": 4}
        assert listing(backend, FileType.KEY) == {"k1": 3}
        assert listing(backend, FileType.SNAPSHOT) == {"s1": 4}
        assert list(backend.list(FileType.CONFIG)) == []

    @pytest.mark.parametrize(
        "stray", ["data/cd/ab01", "data/abcd", "keys/sub/k2", "index/ab/ab01", "other/thing"]
    )
    def test_list_ignores_misplaced_files(self, backend: Backend, stray: str) -> None:
        backend.save(pack("ab01"), b"pack")
        self.plant_stray(backend, stray, b"stray")
        assert listing(backend, FileType.PACK) == {"ab01": 4}
        assert listing(backend, FileType.KEY) == {}
        assert listing(backend, FileType.INDEX) == {}

    # -- concurrency --------------------------------------------------------------------

    def test_concurrent_saves(self, backend: Backend) -> None:
        threads, per_thread = 8, 6
        payloads = {
            f"{t:02x}{i:02x}cc": os.urandom(10_000 + t * 100 + i)
            for t in range(threads)
            for i in range(per_thread)
        }
        errors: list[BaseException] = []
        start = threading.Barrier(threads)

        def worker(t: int) -> None:
            try:
                start.wait()
                for i in range(per_thread):
                    name = f"{t:02x}{i:02x}cc"
                    backend.save(pack(name), payloads[name])
                    # and one object every thread writes with the same content
                    backend.save(pack("shared"), b"same content from every thread")
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        workers = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
        for thread in workers:
            thread.start()
        for thread in workers:
            thread.join()
        assert errors == []
        expected = {name: len(data) for name, data in payloads.items()}
        expected["shared"] = len(b"same content from every thread")
        assert listing(backend, FileType.PACK) == expected
        for name, data in payloads.items():
            assert backend.load(pack(name)) == data

    # -- names --------------------------------------------------------------------------

    @pytest.mark.parametrize(
        ("file_type", "name"),
        [
            (FileType.PACK, ""),
            (FileType.PACK, "a/b"),
            (FileType.KEY, ".."),
            (FileType.CONFIG, "named"),
        ],
    )
    def test_handle_rejects_bad_names(self, file_type: FileType, name: str) -> None:
        with pytest.raises(ValueError):
            Handle(file_type, name)

    @pytest.mark.parametrize(
        "handle",
        [
            Handle(FileType.PACK, "a"),
            Handle(FileType.PACK, ".tmp-0123"),
            Handle(FileType.KEY, ".hidden"),
            Handle(FileType.INDEX, "back\\slash"),
            Handle(FileType.SNAPSHOT, "with space"),
            Handle(FileType.LOCK, "ünïcode"),
            Handle(FileType.KEY, "x" * 201),
            Handle(FileType.INDEX, "new\nline"),
        ],
        ids=repr,
    )
    def test_backend_rejects_unportable_names(self, backend: Backend, handle: Handle) -> None:
        for call in (
            lambda: backend.save(handle, b"data"),
            lambda: backend.load(handle),
            lambda: backend.stat(handle),
            lambda: backend.remove(handle),
        ):
            with pytest.raises(ValueError):
                call()
        for file_type in FileType:
            assert listing(backend, file_type) == {}

    def test_names_may_contain_dots_dashes_and_underscores(self, backend: Backend) -> None:
        backend.save(Handle(FileType.KEY, "key.v2"), b"dotted")
        backend.save(Handle(FileType.KEY, "key_v2-b"), b"other")
        assert listing(backend, FileType.KEY) == {"key.v2": 6, "key_v2-b": 5}
