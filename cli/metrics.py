"""The metrics file: Prometheus text format for node_exporter's textfile collector.

    snapstore --metrics-file /var/lib/prometheus/node-exporter/snapstore.prom snapshot mastodon

Each run replaces its own series (same name, same labels) and keeps the others, so the
nightly `snapshot mastodon` and an hourly `snapshot files /etc` share one file. The file is
read, merged and replaced under a lock on PATH.lock (two runs at once lose nothing), through
a temporary file renamed over it (the collector never reads half a file; it reads `*.prom`
only, so neither the temporary file nor the lock file is taken for metrics).

Series (gauges):

    snapstore_snapshot_*{source, host, paths}   per source: the last run and its figures
    snapstore_repository_blob_bytes{repository} stored size of the indexed blobs
    snapstore_last_run_*{command}               snapshot, forget, prune, check, copy, drill
"""

from __future__ import annotations

import contextlib
import fcntl
import math
import os
import re
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

METRICS = {
    "snapstore_snapshot_last_run_timestamp_seconds": "When the last snapshot of this source ended.",
    "snapstore_snapshot_last_run_success": "1 if the last snapshot of this source was taken "
                                           "complete, else 0.",
    "snapstore_snapshot_last_success_timestamp_seconds": "When the last complete snapshot of "
                                                         "this source was taken.",
    "snapstore_snapshot_duration_seconds": "How long the last snapshot of this source took.",
    "snapstore_snapshot_files": "Files in the last snapshot of this source.",
    "snapstore_snapshot_files_unchanged": "Of those, files taken from the parent unread.",
    "snapstore_snapshot_bytes_read": "Bytes the last snapshot of this source read.",
    "snapstore_snapshot_bytes_added": "Bytes the last snapshot of this source added to the "
                                      "repository.",
    "snapstore_snapshot_errors": "Items the last snapshot of this source could not read.",
    "snapstore_repository_blob_bytes": "Stored bytes of the blobs the repository's index "
                                       "names (pack headers and metadata left out).",
    "snapstore_last_run_timestamp_seconds": "When the last run of this command ended.",
    "snapstore_last_run_success": "1 if the last run of this command exited 0, else 0.",
    "snapstore_last_run_exit_code": "The exit code of the last run of this command.",
    "snapstore_last_run_duration_seconds": "How long the last run of this command took.",
    "snapstore_last_success_timestamp_seconds": "When this command last exited 0.",
}  # fmt: skip
"""Every series snapstore writes, with its HELP text."""


@dataclass(frozen=True)
class Sample:
    name: str
    labels: Mapping[str, str]
    value: float

    def key(self) -> str:
        """The name and the labels as written: what identifies the series in the file."""
        if not self.labels:
            return self.name
        pairs = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(self.labels.items()))
        return f"{self.name}{{{pairs}}}"

    def line(self) -> str:
        return f"{self.key()} {_number(self.value)}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(float(value))


_SAMPLE = re.compile(
    r'([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*",?)*\})?'
    r" (?:[-+]?(?:\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|Inf|NaN))"
)
"""A sample line as `Sample.line` writes it (no timestamp)."""


@dataclass
class _Family:
    help: str
    kind: str
    lines: dict[str, str]  # series key -> its line


def merge(old_text: str, samples: Iterable[Sample]) -> str:
    """The file `old_text` with each of `samples` replacing the line of the same series."""
    families = _parse(old_text)
    for sample in samples:
        family = families.setdefault(sample.name, _Family(METRICS.get(sample.name, ""), "gauge", {}))
        family.help = METRICS.get(sample.name, family.help)
        family.lines[sample.key()] = sample.line()
    out = []
    for name in sorted(families):
        family = families[name]
        if family.help:
            out.append(f"# HELP {name} {family.help}")
        out.append(f"# TYPE {name} {family.kind}")
        out.extend(family.lines[key] for key in sorted(family.lines))
    return "\n".join(out) + "\n" if out else ""


def _parse(text: str) -> dict[str, _Family]:
    """The file as this module writes it; lines of another shape are dropped."""
    families: dict[str, _Family] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            parts = line.split(" ", 3)
            if len(parts) < 3:
                continue
            family = families.setdefault(parts[2], _Family("", "gauge", {}))
            text_part = parts[3] if len(parts) > 3 else ""
            if parts[1] == "HELP":
                family.help = text_part
            else:
                family.kind = text_part or "untyped"
        else:
            sample = _SAMPLE.fullmatch(line)
            if sample:
                key = line.rsplit(" ", 1)[0]
                families.setdefault(sample[1], _Family("", "gauge", {})).lines[key] = line
    return families


def write_metrics(path: Path, samples: Iterable[Sample]) -> None:
    """Merges `samples` into the file at `path` and replaces it atomically (mode 0644)."""
    samples = list(samples)
    folder = path.parent if str(path.parent) else Path(".")
    with _locked(path):
        try:
            old = path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            old = ""
        text = merge(old, samples)
        fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(temp, 0o644)
            os.replace(temp, path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
