"""The fuzz tests' time limit follows their case count: pytest-timeout's 300 s (pyproject.toml)
is for the CI variant, while 100,000 cases of one decoder take several minutes. A hang still
fails the test, just later. After the run, the cases each test ran are listed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import _count  # the one place --nightly and --fuzz-cases are read
from tests.fuzz.fuzzing import RUNS

HERE = Path(__file__).resolve().parent
#: A case takes about 2 ms (10 in the slowest test) on a shared 2-core machine: room for 25x.
SECONDS_PER_CASE = 0.05


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    limit = max(300.0, 60 + _count(config, "fuzz_cases") * SECONDS_PER_CASE)
    for item in items:
        if item.path.parent == HERE:
            item.add_marker(pytest.mark.timeout(limit))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if RUNS:
        terminalreporter.section("fuzz cases")
        for test, asked, ran in RUNS:
            terminalreporter.write_line(f"{ran:>9,} run ({asked:,} asked)  {test}")
        terminalreporter.write_line(f"{sum(r for _, _, r in RUNS):>9,} in all")
