"""A repository from its location: the backend stack for the path or URL, the key opened with
the password, then the transfer limits, the metadata cache, the lock and the index.

`snapstore.open_repository`, `init_repository` and `recover_repository` are these (see
snapstore/__init__.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Literal

from snapstore.backend.cache import CacheBackend
from snapstore.backend.location import default_connections, is_local, open_backend
from snapstore.backend.readonly import ReadOnlyBackend
from snapstore.backend.retry import RetryPolicy
from snapstore.crypto.kdf import DEFAULT_KDF, KdfParams
from snapstore.crypto.paper import decode_paper_key
from snapstore.errors import (
    AuthenticationFailed,
    IntegrityError,
    PermissionDenied,
    UsageError,
    WrongPassword,
)
from snapstore.repository.keyring import add_key
from snapstore.repository.lock import StoredLock, remove_locks
from snapstore.repository.repository import DamagedObject, OnDamaged, Repository


def init_repository(
    location: str,
    password: bytes,
    *,
    kdf: KdfParams = DEFAULT_KDF,
    backend_options: Mapping[str, str] | None = None,
    pack_size: int | None = None,
    connections: int | None = None,
    cache_dir: str | Path | None = None,
    retry: RetryPolicy | None = None,
) -> Repository:
    """Creates an encrypted repository at a path or URL (`pack_size`: target bytes per pack).

    `connections`, `cache_dir` and `retry` are as for `open_repository`.
    """
    backend = open_backend(location, options=backend_options, connections=connections, retry=retry)
    if pack_size is None:
        repo = Repository.init(backend, password, kdf=kdf)
    else:
        repo = Repository.init(backend, password, kdf=kdf, pack_size=pack_size)
    _set_up(repo, location, connections, cache_dir)
    return repo


def open_repository(
    location: str,
    password: bytes,
    *,
    backend_options: Mapping[str, str] | None = None,
    load_index: bool = True,
    lock: Literal["shared", "exclusive"] | None = None,
    retry_lock: float = 0.0,
    connections: int | None = None,
    cache_dir: str | Path | None = None,
    retry: RetryPolicy | None = None,
    on_damaged: OnDamaged | None = None,
    read_only: bool = False,
    on_read_only: Callable[[PermissionDenied], None] | None = None,
) -> Repository:
    """Opens an existing repository; loads its index unless asked not to (e.g. for check).

    With `lock`, takes a shared or exclusive lock first, waiting up to `retry_lock` seconds
    for a conflicting one to go (else RepositoryLocked); `close()` releases it.

    `read_only` says the caller only reads (ls, restore, check...). A repository that refuses
    to store its lock (PermissionDenied: a read-only filesystem, a read-only S3 key) is then
    opened without one, and `on_read_only` is told why; without a lock (that, or `lock=None`)
    the handle refuses every write (PermissionDenied), so nothing is changed unprotected.
    Reading without a lock is safe unless a prune runs meanwhile: it may delete what is read.

    `connections` bounds parallel transfers (pack uploads; a remote store's connections);
    default 5. With `cache_dir`, a remote repository's index, snapshots, keys and trees are
    kept in `cache_dir/<repository id>` (see snapstore.backend.cache); local repositories
    are not cached. `retry` says how long a remote repository's transient failures are retried
    (default 5 minutes), whom each retry is reported to, and what interrupts the waits.

    One damaged object does not block the others: an index file or snapshot that cannot be
    read is left out, recorded in `repo.damaged` and handed to `on_damaged` as it is met.
    What a damaged index file described is found again from the packs' own headers (a writer
    names those packs in a new index file before it stores anything); listing snapshots, as
    `latest` does, leaves a damaged one out. `repair_index` and `repair_snapshots` remove the
    damage.
    """
    backend = open_backend(location, options=backend_options, connections=connections, retry=retry)
    try:
        repo = Repository.open(backend, password)
    except BaseException:
        backend.close()
        raise
    _set_up(repo, location, connections, cache_dir)
    try:
        if read_only and lock == "exclusive":
            raise UsageError("a repository opened read-only takes no exclusive lock")
        if lock is not None:
            try:
                repo.lock(exclusive=lock == "exclusive", retry=retry_lock)
            except PermissionDenied as exc:
                if not read_only:
                    raise
                if on_read_only is not None:
                    on_read_only(exc)
        if read_only and repo.held_lock is None:
            repo.backend = ReadOnlyBackend(repo.backend)
        repo.on_damaged = on_damaged or _record_only
        if load_index:
            repo.load_index()
            if any(d.kind == "index" for d in repo.damaged):
                repo.index_unindexed_packs()
    except BaseException:
        repo.close()
        raise
    return repo


def recover_repository(
    location: str,
    paper_key: str,
    password: bytes,
    *,
    kdf: KdfParams = DEFAULT_KDF,
    backend_options: Mapping[str, str] | None = None,
    connections: int | None = None,
    cache_dir: str | Path | None = None,
    retry: RetryPolicy | None = None,
) -> Repository:
    """Opens a repository with the master key typed back from its paper key (see
    `export_paper_key`) and writes a key file for `password`, which opens it from then on:
    access comes back when the key files, or every password, were lost. A typo raises
    PaperKeyError naming its line before the repository is touched; a paper key of another
    repository raises WrongPassword. The index is not loaded (`load_index()` does that).
    """
    from_paper = decode_paper_key(paper_key)
    backend = open_backend(location, options=backend_options, connections=connections, retry=retry)
    try:
        try:
            repo = Repository.open_with_master_key(backend, from_paper.master)
        except AuthenticationFailed:
            raise WrongPassword(
                f"the paper key of repository {from_paper.repository_id.hex()[:8]} does not open "
                f"the repository at {location} (another repository's, or its config is damaged)"
            ) from None
        if repo.config.repository_id != from_paper.repository_id:
            raise IntegrityError(
                f"the paper key names repository {from_paper.repository_id.hex()[:8]} but opens "
                f"{repo.repository_id[:8]}"
            )
        repo.key_name = add_key(repo, password, kdf=kdf)
    except BaseException:
        backend.close()
        raise
    _set_up(repo, location, connections, cache_dir)
    return repo


def _record_only(damaged: DamagedObject) -> None:
    """The default `on_damaged`: the damage is only recorded, in `repo.damaged`."""


def _set_up(
    repo: Repository, location: str, connections: int | None, cache_dir: str | Path | None
) -> None:
    """Transfer limits and the metadata cache, which is keyed by the repository id and so
    can only go in front of the backend once the config has been read."""
    repo.connections = connections or default_connections(location)
    if cache_dir is not None and not is_local(location):
        repo.backend = CacheBackend(repo.backend, Path(cache_dir) / repo.repository_id)


def unlock(repo: Repository, *, remove_all: bool = False) -> list[StoredLock]:
    """Removes stale locks (all locks with `remove_all`); returns the ones removed."""
    return remove_locks(repo, remove_all=remove_all)
