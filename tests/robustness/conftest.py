"""The long loops' time limit follows their count: pytest-timeout's 300 s (pyproject.toml) is
for the CI variant, while --nightly's 1,000 kill points take about an hour. A hang still fails
the test, just later."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import _count  # the one place --nightly and the counts are read

HERE = Path(__file__).resolve().parent
#: Seconds allowed per kill point and per fault run: several times what a shared 2-core
#: machine takes (about 3.5 s and 1 s).
SECONDS_PER = {"test_kill_loop.py": ("kill_points", 15.0), "test_fault_runs.py": ("fault_runs", 6.0)}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.parent != HERE or item.path.name not in SECONDS_PER:
            continue
        count, seconds = SECONDS_PER[item.path.name]
        item.add_marker(pytest.mark.timeout(max(300.0, 60 + _count(config, count) * seconds)))
