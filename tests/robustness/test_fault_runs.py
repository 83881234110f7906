"""Every operation over a store that fails, stalls and lags: done right, or failed cleanly.

Each run draws, from its own seed, a store (how far its listings lag, how often each method
fails, how long calls stall; see tests/support/flaky_store.py) and a sequence of operations:
snapshot of files, snapshot of a stream, forget, forget then prune, prune, copy to a second
flaky repository, check (with and without --read-data) and repair index, each in a fresh
handle as the command would open it. After each operation:

- it returned, or raised a SnapstoreError (a transient error that outlasted the retries, a lock
  left behind by a failed release...); any other exception fails the test;
- the truth underneath passes `check --read-data` (notes such as unindexed packs are fine);
- every snapshot reported saved (or copied) is still there and restores byte for byte, unless
  a forget asked to remove it; and a check that completed found no error (a read the store
  failed after the retries stops the check with that error: it is not damage, as the test at
  the end pins).

Locks left behind by a failed release are removed between operations, as `unlock
--remove-all` would. The number of runs is the `fault_runs` fixture (--fault-runs,
--nightly), each with its own seed (SNAPSTORE_TEST_SEED moves them all); with -s each run
prints its seed, store and outcome.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import snapstore
from snapstore.backend.base import Backend, Handle
from snapstore.backend.faulty import Method
from snapstore.backend.retry import RetryBackend
from snapstore.checker.checker import CheckOptions, check_repository
from snapstore.errors import SnapstoreError, TransientBackendError
from snapstore.repository.lock import remove_locks
from snapstore.repository.repository import Repository
from tests.conftest import PASSWORD
from tests.support.cli_repos import base_seed
from tests.support.flaky_store import (
    Content,
    FlakyStore,
    assert_restores,
    snapshots_by_id,
    stream_source,
)
from tests.support.memory_source import MemorySource

OPERATIONS = ("snapshot files", "snapshot stream", "forget", "forget --prune", "prune", "copy",
              "check", "check --read-data", "repair index")  # fmt: skip
LAGS = (0, 1, 4, 15, 40)
#: In the message of every error the flaky store injects.
INJECTED = "injected fault"
ERROR_RATES = (0.0, 0.01, 0.05, 0.15, 0.35, 0.6)
#: RetryPolicy.retry_for: short ones make operations give up now and then
RETRY_FORS = (0.01, 0.03, 0.1)


@dataclass
class Repo:
    """A flaky repository and what it is known to hold: snapshot id -> content."""

    store: FlakyStore
    expected: dict[bytes, Content] = field(default_factory=dict)


@dataclass
class Tally:
    done: int = 0
    failed: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)

    def failure(self, operation: str, exc: SnapstoreError) -> None:
        self.failed += 1
        key = f"{operation}: {type(exc).__name__}"
        self.errors[key] = self.errors.get(key, 0) + 1
        self.messages.append(f"{operation}: {type(exc).__name__}: {exc}")


class FaultRun:
    def __init__(self, seed: int, scratch: Path) -> None:
        self.rng = random.Random(seed)
        self.scratch = scratch
        rng = self.rng
        self.lag = rng.choice(LAGS)
        self.error_rate = rng.choice(ERROR_RATES)
        methods: tuple[Method, ...] = ("save", "load", "stat", "remove", "list")
        errors = {m: self.error_rate * rng.uniform(0.5, 1.5) for m in methods}
        delay: dict[Method, float] | float = 0.0
        if rng.random() < 0.5:
            delay = {"save": 0.002, "load": 0.001, "list": 0.001}
        self.retry_for = rng.choice(RETRY_FORS)
        self.src = Repo(FlakyStore(seed, lag=self.lag, errors=errors, delay=delay,
                                   retry_for=self.retry_for, name="src"))
        self.dst = Repo(FlakyStore(seed + 1, lag=rng.choice(LAGS), errors=errors,
                                   retry_for=self.retry_for, name="dst"))  # fmt: skip
        self.files: dict[str, bytes] = {
            f"d{i % 3}/f{i}.bin": rng.randbytes(rng.randrange(1, 120_000)) for i in range(10)
        }
        self.stream = rng.randbytes(600_000)
        self.tally = Tally()
        self.allowed_to_go: set[bytes] = set()  # what the operation under way may remove

    # -- the operations -----------------------------------------------------------------
    def snapshot_files(self) -> None:
        rng = self.rng
        for name in rng.sample(sorted(self.files), 3):  # some files change, some go, some come
            action = rng.random()
            if action < 0.2:
                del self.files[name]
            else:
                data = bytearray(self.files[name])
                data[rng.randrange(len(data) + 1):] = rng.randbytes(rng.randrange(1, 50_000))
                self.files[name] = bytes(data)
        self.files[f"d3/new{rng.randrange(10**6)}.bin"] = rng.randbytes(rng.randrange(1, 80_000))
        content = dict(self.files)
        with self.src.store.open(lock="shared") as repo:
            result = snapstore.take_snapshot(repo, MemorySource(content))
        assert result.snapshot.id is not None
        self.src.expected[bytes(result.snapshot.id)] = content

    def snapshot_stream(self) -> None:
        rng = self.rng
        cut = rng.randrange(len(self.stream))
        self.stream = self.stream[:cut] + rng.randbytes(rng.randrange(1, 200_000)) + self.stream[cut:]
        data = self.stream
        with self.src.store.open(lock="shared") as repo:
            result = snapstore.take_snapshot(repo, stream_source(data))
        assert result.snapshot.id is not None
        self.src.expected[bytes(result.snapshot.id)] = data

    def forget(self, and_prune: bool = False) -> None:
        policy = snapstore.RetentionPolicy(keep_last=self.rng.randint(1, 3))
        with self.src.store.clean() as repo:  # what a forget with a full view would remove
            allowed = {bytes(s.id or b"") for s in snapstore.forget(repo, policy, dry_run=True).removed}
        self.allowed_to_go = allowed
        with self.src.store.open(lock="exclusive" if and_prune else "shared", load_index=False) as repo:
            result = snapstore.forget(repo, policy)
            removed = {bytes(s.id or b"") for s in result.removed}
            assert removed <= allowed, "forget removed a snapshot its policy keeps"
            if and_prune and removed:
                snapstore.prune(repo)

    def prune(self) -> None:
        options = snapstore.PruneOptions(max_unused=self.rng.choice((0.0, 0.05, 0.3)))
        with self.src.store.open(lock="exclusive", load_index=False) as repo:
            snapstore.prune(repo, options)

    def copy(self) -> None:
        with self.src.store.open(lock="shared") as src, self.dst.store.open(lock="shared") as dst:
            result = snapstore.copy_snapshots(src, dst)
        for source, made in result.copied:
            content = self.src.expected.get(bytes(source.id or b""))
            if content is not None and made.id is not None:
                self.dst.expected[bytes(made.id)] = content

    def check(self, read_data: bool) -> None:
        with self.src.store.open(lock="shared", load_index=False) as repo:
            report = check_repository(repo, CheckOptions(read_data=read_data))
        # a read the store failed stops the check (a SnapstoreError, counted as a clean
        # failure); a check that completes finds nothing wrong
        assert report.ok, "\n".join(str(f) for f in report.errors)

    def repair_index(self) -> None:
        with self.src.store.open(lock="exclusive", load_index=False) as repo:
            snapstore.repair_index(repo)

    # -- one run --------------------------------------------------------------------------
    def run(self, steps: int) -> None:
        actions: dict[str, Callable[[], None]] = {
            "snapshot files": self.snapshot_files,
            "snapshot stream": self.snapshot_stream,
            "forget": self.forget,
            "forget --prune": lambda: self.forget(and_prune=True),
            "prune": self.prune,
            "copy": self.copy,
            "check": lambda: self.check(False),
            "check --read-data": lambda: self.check(True),
            "repair index": self.repair_index,
        }
        # two snapshots first, so that forget and prune have something to work on
        plan = ["snapshot files", "snapshot stream"]
        plan += [self.rng.choice(OPERATIONS) for _ in range(steps - 2)]
        for operation in plan:
            self.allowed_to_go = set()
            try:
                actions[operation]()
                self.tally.done += 1
            except SnapstoreError as exc:
                self.tally.failure(operation, exc)
            self.verify(operation)

    def verify(self, after: str) -> None:
        """The truth checks clean and every snapshot known to be saved restores as saved."""
        for repo in (self.src, self.dst):
            with repo.store.clean(load_index=False) as clean:
                remove_locks(clean, remove_all=True)  # unlock --remove-all
                report = check_repository(clean, CheckOptions(read_data=True))
            assert report.ok, (after, [str(f) for f in report.errors])
            with repo.store.clean() as clean:
                present = snapshots_by_id(clean)
                for snap_id, content in list(repo.expected.items()):
                    if snap_id not in present:
                        assert repo is self.src and snap_id in self.allowed_to_go, (
                            f"after {after}: snapshot {snap_id.hex()[:8]} is gone"
                        )
                        del repo.expected[snap_id]
                        continue
                    assert_restores(clean, present[snap_id], content, self.scratch)

    def describe(self) -> str:
        return f"lag {self.lag}, error rate {self.error_rate}, retry for {self.retry_for} s"


def test_operations_on_a_failing_lagging_store_complete_or_fail_cleanly(
    fault_runs: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    totals = Tally()
    base = base_seed(20260510)
    for number in range(fault_runs):
        seed = base + number
        run = FaultRun(seed, tmp_path)
        try:
            run.run(steps=10)
        except AssertionError as exc:
            raise AssertionError(f"run {number} (seed {seed}, {run.describe()}): {exc}") from exc
        totals.done += run.tally.done
        totals.failed += run.tally.failed
        for key, count in run.tally.errors.items():
            totals.errors[key] = totals.errors.get(key, 0) + count
        with capsys.disabled():
            print(f"\nfault run {number} (seed {seed}, {run.describe()}): {run.tally.done} "
                  f"operations done, {run.tally.failed} failed cleanly, "
                  f"{run.src.store.faulty.injected} faults injected")  # fmt: skip
            for message in run.tally.messages:
                print(f"  {message[:200]}")
    with capsys.disabled():
        print(f"\nfault runs: {fault_runs}, operations done {totals.done}, failed cleanly "
              f"{totals.failed} ({totals.errors}), failures of the promise: 0")  # fmt: skip


def test_check_on_a_store_that_keeps_failing_fails_instead_of_reporting_damage() -> None:
    store = FlakyStore(1)
    with store.open(lock="shared") as repo:
        snapstore.take_snapshot(repo, MemorySource({"a/b.bin": b"x" * 100_000}))
    failing = RetryBackend(TreeReadsFail(store.truth), retry_for=0.01, max_attempts=None,
                           initial_delay=0.001)  # fmt: skip
    repo = Repository.open(failing, PASSWORD)
    try:
        report = check_repository(repo, CheckOptions())
    except TransientBackendError:
        return  # failed cleanly, naming the store
    finally:
        repo.close()
    assert report.ok, "\n".join(str(f) for f in report.errors)


class TreeReadsFail:
    """Every read of a tree from a pack fails, as a store that keeps failing would."""

    def __init__(self, inner: Backend) -> None:
        self._inner = inner
        self.location = inner.location
        self.create, self.save, self.stat = inner.create, inner.save, inner.stat
        self.remove, self.list, self.close = inner.remove, inner.list, inner.close

    def load(self, handle: Handle, offset: int = 0, length: int | None = None) -> bytes:
        if handle.metadata:
            raise TransientBackendError(f"{INJECTED}: load {handle}")
        return self._inner.load(handle, offset, length)
