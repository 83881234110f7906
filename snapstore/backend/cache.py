"""A wrapper that keeps repository metadata on local disk, so commands stop fetching it again.

What is kept, all of it immutable and content-addressed:

    keys/<name>, index/<name>, snapshots/<name>   whole objects, on load and on save
    packs/<pack>                                  whole packs of trees: a pack saved with its
                                                  handle marked `metadata`, or the first time
                                                  a read marked so (a tree) asks for a range
                                                  of it; later tree reads cost no request

Nothing else is: not the config or locks (not named by their content), not data blob reads,
listings or stat. So `snapshots`, `ls` and a second backup read the index, snapshots and trees
locally, while every listing still goes to the backend, which keeps the cache coherent:

- **Verified.** A whole object's name, a pack's too, is the BLAKE3 hash of its bytes (SPEC.md
  section 2), checked on every read from the cache. A copy that fails the check is deleted and fetched again. The repository then
  authenticates what it reads as usual, whether it came from here or from the backend.
- **Fetched once.** Two threads that ask for the same uncached object at once (a restore
  walks the snapshot's trees while its progress scan walks them too) make one request: the
  second waits for the first and reads its copy.
- **Deleted with the original.** A complete listing of a type drops the cached objects of that
  type the backend no longer has (for packs: their ranges), and `remove` drops them at once.

The cache is not part of the repository format and never fails an operation: a cache folder
that cannot be read or written only costs requests. It holds ciphertext only.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import blake3

from snapstore.backend.base import Backend, FileInfo, FileType, Handle

WHOLE_OBJECT_TYPES = frozenset({FileType.KEY, FileType.INDEX, FileType.SNAPSHOT})
"""Types cached whole: every object of these types is named by the BLAKE3 hash of its bytes."""

_RANGES = "packs"
_CACHEDIR_TAG = (
    b"Signature: 8a477f597d28d172789f06886806bc55\n"
    b"# This file is a cache directory tag created by snapstore.\n"
    b"# For information about cache directory tags see https://bford.info/cachedir/\n"
)


class CacheBackend:
    """Serves metadata from `directory` when it has a good copy, else from `inner`, keeping one."""

    def __init__(self, inner: Backend, directory: str | os.PathLike[str]) -> None:
        self._inner = inner
        self._dir = Path(directory)
        self.hits = 0
        self.misses = 0
        self._fetching: dict[str, tuple[threading.Lock, int]] = {}  # name -> lock, waiters
        #: packs of trees whose cached copy this process has checked: a walk reads ranges
        #: of one such pack hundreds of times, and hashing it whole each time cost more than
        #: the reads
        self._verified: set[str] = set()
        self._fetching_lock = threading.Lock()

    @property
    def location(self) -> str:
        return self._inner.location

    @property
    def directory(self) -> Path:
        return self._dir

    def create(self) -> None:
        self._inner.create()

    def save(self, handle: Handle, data: bytes) -> None:
        self._inner.save(handle, data)
        if handle.type in WHOLE_OBJECT_TYPES or (handle.type is FileType.PACK and handle.metadata):
            self._write(self._object_path(handle), bytes(data))

    def load(self, handle: Handle, offset: int = 0, length: int | None = None) -> bytes:
        if handle.type in WHOLE_OBJECT_TYPES and offset == 0 and length is None:
            return self._load_object(handle)
        if handle.type is FileType.PACK and handle.metadata and length:
            if handle.name in self._verified:  # checked once: read just the range
                found = _read_range(self._object_path(handle), offset, length)
                if found is not None and len(found) == length:
                    self.hits += 1
                    return found
                self._verified.discard(handle.name)
            whole = self._load_object(handle)
            if offset + length > len(whole):
                return self._inner.load(handle, offset, length)  # let the backend say why
            return whole[offset : offset + length]
        return self._inner.load(handle, offset, length)

    def stat(self, handle: Handle) -> FileInfo:
        return self._inner.stat(handle)

    def remove(self, handle: Handle) -> None:
        try:
            self._inner.remove(handle)
        finally:
            self._evict(handle)

    def list(self, file_type: FileType) -> Iterator[FileInfo]:
        if file_type not in WHOLE_OBJECT_TYPES and file_type is not FileType.PACK:
            return self._inner.list(file_type)
        found = list(self._inner.list(file_type))  # evict only after a complete listing
        present = {info.handle.name for info in found}
        folder = self._dir / (_RANGES if file_type is FileType.PACK else file_type.value)
        for name in _entries(folder):
            if name not in present:
                self._evict(Handle(file_type, name))
        return iter(found)

    def close(self) -> None:
        self._inner.close()

    # -- internals ------------------------------------------------------------------------

    def _object_path(self, handle: Handle) -> Path:
        folder = _RANGES if handle.type is FileType.PACK else handle.type.value
        return self._dir / folder / handle.name

    def _load_object(self, handle: Handle) -> bytes:
        with self._one_fetch(handle.name):
            return self._load_object_once(handle)

    @contextmanager
    def _one_fetch(self, name: str) -> Iterator[None]:
        """Holds the object's lock: a second reader of it waits, then finds it cached."""
        with self._fetching_lock:
            lock, users = self._fetching.get(name, (threading.Lock(), 0))
            self._fetching[name] = (lock, users + 1)
        try:
            with lock:
                yield
        finally:
            with self._fetching_lock:
                lock, users = self._fetching[name]
                if users == 1:
                    del self._fetching[name]
                else:
                    self._fetching[name] = (lock, users - 1)

    def _load_object_once(self, handle: Handle) -> bytes:
        path = self._object_path(handle)
        cached = _read(path)
        if cached is not None:
            if blake3.blake3(cached).hexdigest() == handle.name:
                self.hits += 1
                self._checked(handle)
                return cached
            _unlink(path)  # damaged or tampered with: fetch it again
        self.misses += 1
        data = self._inner.load(handle)
        if blake3.blake3(data).hexdigest() == handle.name and self._write(path, data):
            self._checked(handle)  # keep only what can be verified
        return data

    def _checked(self, handle: Handle) -> None:
        if handle.type is FileType.PACK:
            self._verified.add(handle.name)

    def _evict(self, handle: Handle) -> None:
        self._verified.discard(handle.name)
        if handle.type is FileType.PACK:
            path = self._dir / _RANGES / handle.name
            shutil.rmtree(path, ignore_errors=True)  # a folder of ranges, from older caches
            _unlink(path)
        elif handle.type in WHOLE_OBJECT_TYPES:
            _unlink(self._object_path(handle))

    def _write(self, path: Path, data: bytes) -> bool:
        """Store a file atomically; any failure just leaves it uncached (False)."""
        try:
            if not self._dir.is_dir():
                self._dir.mkdir(mode=0o700, parents=True, exist_ok=True)
                (self._dir / "CACHEDIR.TAG").write_bytes(_CACHEDIR_TAG)
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                os.replace(temp, path)
            except BaseException:
                _unlink(Path(temp))
                raise
        except OSError:
            return False
        return True


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def _read_range(path: Path, offset: int, length: int) -> bytes | None:
    try:
        with open(path, "rb", buffering=0) as f:
            return os.pread(f.fileno(), length, offset)
    except OSError:
        return None


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass


def _entries(folder: Path) -> list[str]:
    """Names cached in a folder, without temporary files."""
    try:
        return [name for name in os.listdir(folder) if not name.startswith(".")]
    except OSError:
        return []
