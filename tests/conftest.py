"""Shared fixtures for every layer: a memory backend, an initialised repository, a checker."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest

from snapstore.backend.memory import MemoryBackend
from snapstore.checker.checker import CheckOptions, check_repository
from snapstore.crypto.kdf import TEST_KDF
from snapstore.repository.repository import Repository

PASSWORD = b"correct horse battery staple"


@pytest.fixture
def backend() -> MemoryBackend:
    return MemoryBackend()


@pytest.fixture
def repo(backend: MemoryBackend) -> Iterator[Repository]:
    """An initialised repository with cheap KDF parameters and small packs."""
    repository = Repository.init(backend, PASSWORD, kdf=TEST_KDF, pack_size=1 << 20)
    yield repository
    repository.close()


def reopen(repo: Repository, *, load_index: bool = True) -> Repository:
    """A fresh handle on the same backend, as a second process would see it."""
    again = Repository.open(repo.backend, PASSWORD)
    if load_index:
        again.load_index()
    return again


def assert_repository_ok(repo: Repository, read_data: bool = True) -> None:
    """Runs the real checker on a fresh handle; every test that writes ends with this."""
    report = check_repository(reopen(repo, load_index=False), CheckOptions(read_data=read_data))
    assert report.ok, [str(f) for f in report.findings]


# -- the nightly mode: long loops behind a flag, a short variant in every CI run -------------
#
#     python -m pytest tests/robustness --nightly          (or SNAPSTORE_NIGHTLY=1)
#     python -m pytest ... --fuzz-cases 100000 --kill-points 1000 --fault-runs 200
#
# Each count has a CI default (minutes of the suite) and a nightly default; an explicit option
# wins over both.
_COUNTS = {
    # option: (CI default, nightly default, what it counts)
    "fuzz_cases": (300, 100_000, "hypothesis cases per fuzzed decoder"),
    "kill_points": (8, 1_000, "SIGKILL points in the kill loops"),
    "fault_runs": (3, 200, "runs of each operation over the fault-injecting backends"),
}


def pytest_configure(config: pytest.Config) -> None:
    """Ctrl-C as a terminal gives it, whatever started the suite: a shell that runs it in the
    background without job control (`.ci/run &`, cron, nohup) leaves SIGINT ignored, Python
    then keeps it ignored, and so would every command the tests start (an ignored signal
    stays ignored across exec), so the tests of what Ctrl-C does would fail."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if config.getoption("nightly"):  # for what test modules size at import (deep_trees.DEPTH)
        os.environ["SNAPSTORE_NIGHTLY"] = "1"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("snapstore nightly mode")
    group.addoption("--nightly", action="store_true", help="run the long loops (fuzz, kills, faults)")
    for name, (ci, nightly, what) in _COUNTS.items():
        group.addoption(
            "--" + name.replace("_", "-"), type=int, default=None,
            help=f"{what} (default {ci}; {nightly} with --nightly)",
        )


def _count(config: pytest.Config, name: str) -> int:
    explicit = config.getoption(name)
    if explicit is not None:
        return int(explicit)
    nightly = config.getoption("nightly") or os.environ.get("SNAPSTORE_NIGHTLY") == "1"
    ci, long = _COUNTS[name][:2]
    return long if nightly else ci


@pytest.fixture(scope="session")
def fuzz_cases(pytestconfig: pytest.Config) -> int:
    return _count(pytestconfig, "fuzz_cases")


@pytest.fixture(scope="session")
def kill_points(pytestconfig: pytest.Config) -> int:
    return _count(pytestconfig, "kill_points")


@pytest.fixture(scope="session")
def fault_runs(pytestconfig: pytest.Config) -> int:
    return _count(pytestconfig, "fault_runs")


@pytest.fixture(autouse=True)
def _signal_handlers_left_as_found(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test that leaves SIGINT or SIGTERM handled otherwise breaks later tests in the same
    process, and every command they start: an ignored signal stays ignored across exec."""
    watched = (signal.SIGINT, signal.SIGTERM)
    before = {s: signal.getsignal(s) for s in watched}
    yield
    after = {s: signal.getsignal(s) for s in watched}
    changed = {signal.Signals(s).name: (before[s], after[s]) for s in watched if after[s] != before[s]}
    for s in watched:  # put them back, so that one test's leak does not fail the others
        if after[s] != before[s] and before[s] is not None:
            signal.signal(s, before[s])
    assert not changed, f"{request.node.nodeid} left signal handlers changed: {changed}"
