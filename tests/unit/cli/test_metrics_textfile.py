"""cli/metrics.py: the file parses as Prometheus parses it, and a run replaces only its own
series."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from snapstore.cli.metrics import Sample, merge, write_metrics


def series(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        assert family.type == "gauge" and family.documentation
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_merge_replaces_same_series_and_keeps_others(tmp_path: Path) -> None:
    etc = {"source": "files", "host": "h", "paths": "/etc"}
    odd = {"source": "files", "host": "h", "paths": '/srv/a "b"\\c\nd'}
    path = tmp_path / "snapstore.prom"
    write_metrics(path, [Sample("snapstore_snapshot_files", etc, 10),
                         Sample("snapstore_snapshot_duration_seconds", etc, 1.25)])
    write_metrics(path, [Sample("snapstore_snapshot_files", odd, 3)])
    write_metrics(path, [Sample("snapstore_snapshot_files", etc, 12)])
    parsed = series(path.read_text())
    assert parsed == {
        ("snapstore_snapshot_files", tuple(sorted(etc.items()))): 12,
        ("snapstore_snapshot_files", tuple(sorted(odd.items()))): 3,
        ("snapstore_snapshot_duration_seconds", tuple(sorted(etc.items()))): 1.25,
    }
    assert path.stat().st_mode & 0o777 == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["snapstore.prom", "snapstore.prom.lock"]


def test_merge_is_stable_and_drops_garbage() -> None:
    once = merge("", [Sample("snapstore_last_run_success", {"command": "prune"}, 1)])
    assert merge(once, []) == once
    assert merge("not a metric line\n" + once, []) == once
