"""Repositories over a store that fails, stalls and lags on purpose, for the fault runs.

    store = FlakyStore(seed=7, lag=20, errors=0.1)
    with store.open(lock="shared") as repo:      # as open_repository opens it
        snapstore.take_snapshot(repo, source)
    store.truth                                  # what is really stored, read directly

The stack, top to bottom, is what `open_backend` builds for a remote store, with a flaky store
underneath:

    RetryBackend      retries TransientBackendError for `retry_for` seconds of failing (with
                      max_attempts=None, as RetryPolicy makes it; the waits scaled down)
    FaultyBackend     random transient errors (a create, save or remove may have taken effect
                      or not) and delays, drawn from the seed
    EventuallyConsistentBackend
                      listings lag `lag` operations behind saves and removes
    MemoryBackend     the truth

The verdicts read `truth` through a handle of their own, which no fault reaches.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Literal

import snapstore
from snapstore.backend.eventual import EventuallyConsistentBackend
from snapstore.backend.faulty import FaultyBackend, Method
from snapstore.backend.memory import MemoryBackend
from snapstore.backend.retry import RetryBackend
from snapstore.crypto.kdf import TEST_KDF
from snapstore.repository.repository import Repository
from snapstore.snapshot.store import list_snapshots
from tests.conftest import PASSWORD
from tests.support.memory_source import expected_tree, read_tree

PACK_SIZE = 256 << 10
#: Seconds a failing store is retried before an operation gives up (RetryPolicy.retry_for),
#: unless told otherwise; the first wait is 2 ms, doubling up to 20 ms.
RETRY_FOR = 0.1
STREAM_NAME = "dump.sql"

LockMode = Literal["shared", "exclusive"]


class FlakyStore:
    """One repository, initialised on the truth, reached through the flaky stack."""

    def __init__(
        self,
        seed: int,
        *,
        lag: int = 0,
        errors: float | Mapping[Method, float] = 0.0,
        delay: float | Mapping[Method, float] = 0.0,
        retry_for: float = RETRY_FOR,
        name: str = "memory",
    ) -> None:
        self.truth = MemoryBackend(name)
        Repository.init(self.truth, PASSWORD, kdf=TEST_KDF, pack_size=PACK_SIZE).close()
        self.eventual = EventuallyConsistentBackend(self.truth, lag)
        self.faulty = FaultyBackend(self.eventual)
        self.faulty.randomly(seed, errors=errors, delay=delay)
        self.retry_for = retry_for

    @contextlib.contextmanager
    def open(
        self, *, lock: LockMode | None = None, load_index: bool = True, connections: int = 3
    ) -> Iterator[Repository]:
        """A handle through the flaky stack, opened as `snapstore.open_repository` opens one
        (damaged objects skipped and recorded), closed on the way out. Each handle has a
        retry wrapper of its own, as each command does."""
        retrying = RetryBackend(
            self.faulty,
            retry_for=self.retry_for,
            max_attempts=None,
            initial_delay=0.002,
            max_delay=0.02,
        )
        with _opened(retrying, lock=lock, load_index=load_index, connections=connections) as repo:
            yield repo

    @contextlib.contextmanager
    def clean(self, *, load_index: bool = True) -> Iterator[Repository]:
        """A handle on the truth: no faults, no lag."""
        with _opened(self.truth, lock=None, load_index=load_index) as repo:
            yield repo


@contextlib.contextmanager
def _opened(
    backend: snapstore.Backend, *, lock: LockMode | None, load_index: bool, connections: int = 3
) -> Iterator[Repository]:
    repo = Repository.open(backend, PASSWORD)
    try:
        repo.connections = connections
        repo.listing_poll = 0.0  # the lag is counted in calls, not seconds: list again at once
        if lock is not None:
            repo.lock(exclusive=lock == "exclusive")
        repo.on_damaged = lambda damaged: None
        if load_index:
            repo.load_index()
            if any(d.kind == "index" for d in repo.damaged):
                repo.index_unindexed_packs()
        yield repo
    finally:
        repo.close()


# -- what was saved, and whether it is still there ------------------------------------------
Content = dict[str, bytes] | bytes  # a file tree (MemorySource spec) or one stream


def stream_source(data: bytes) -> snapstore.StreamSource:
    return snapstore.StreamSource(io.BytesIO(data), STREAM_NAME, mtime_ns=1_700_000_000_000_000_000)


def assert_restores(repo: Repository, snapshot: snapstore.Snapshot, content: Content, scratch: Path) -> None:
    """The snapshot gives back exactly `content`: the file tree restored, or the stream dumped."""
    if isinstance(content, bytes):
        dumped = b"".join(snapstore.dump_file(repo, snapshot, "/" + STREAM_NAME))
        assert dumped == content, f"snapshot {snapshot.short_id}: the stream differs"
        return
    target = scratch / f"restore-{snapshot.short_id}-{os.urandom(4).hex()}"
    result = snapstore.restore(repo, snapshot, target)
    assert not result.errors, result.errors
    assert read_tree(target) == expected_tree(content), f"snapshot {snapshot.short_id} differs"


def snapshots_by_id(repo: Repository) -> dict[bytes, snapstore.Snapshot]:
    return {bytes(s.id): s for s in list_snapshots(repo) if s.id is not None}
