"""One command's run, and what happens around it: hooks before and after, the metrics file.

app.py's `main` makes a CommandRun and gives it to click as the root context's `obj`; the
group gives it its plan (run_options.resolve_plan: flags, variables, config file); the
command starts it once its arguments are parsed (options.repository_options), which runs
the `before` hooks; a snapshot command notes its source and figures (note_source,
note_snapshot); `main` finishes it with the exit code and the one error line: the metrics
file is written, then the `after` hooks run on exit 0 and the `failure` hooks on any other
exit (3, an incomplete snapshot, included). A run that never started (--help, a usage error
in the arguments) runs no hook and writes no metrics.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

import click

import snapstore
from snapstore.cli.hooks import run_hooks
from snapstore.cli.metrics import Sample, write_metrics
from snapstore.cli.output import print_warning
from snapstore.cli.run_options import RunPlan

METRICS_COMMANDS = frozenset({"snapshot", "forget", "prune", "check", "copy", "drill"})
"""Commands whose runs go into the metrics file (listings and restores do not)."""
EXIT_INTERRUPTED = 130


@dataclass
class SnapshotFacts:
    """The source being backed up, and once it is, the snapshot's figures."""

    source: str
    host: str
    paths: list[str]
    snapshot_id: str | None = None
    summary: dict[str, float] = field(default_factory=dict)

    def labels(self) -> dict[str, str]:
        return {"source": self.source, "host": self.host, "paths": ",".join(sorted(self.paths))}


class CommandRun:
    def __init__(self) -> None:
        self.plan: RunPlan | None = None
        self.command = ""
        self.snapshot: SnapshotFacts | None = None
        self.repository: str | None = None
        self.repository_bytes: int | None = None
        self.error: str | None = None  # a failure the command returned as an exit code
        self._started: float | None = None

    def start(self, command: str) -> None:
        """The command is about to run: the `before` hooks (HookFailed stops it)."""
        if self.plan is None or self._started is not None:
            return
        self.command = command
        self._started = time.monotonic()
        run_hooks("before", self.plan.hooks.get("before", ()), self._facts(),
                  self.plan.hook_timeout)  # fmt: skip

    def finish(self, code: int, error: str | None) -> int:
        """Metrics, then the `after` or `failure` hooks; returns the exit code (130 when
        interrupted meanwhile)."""
        if self.plan is None or self._started is None:
            return code
        duration = time.monotonic() - self._started
        error = (error or self.error) if code != 0 else None
        try:
            if self.plan.metrics_file is not None and self.plan.command in METRICS_COMMANDS:
                self._write_metrics(self.plan.metrics_file, code, duration)
            kind = "after" if code == 0 else "failure"
            facts = {
                **self._facts(), "SNAPSTORE_STATUS": "success" if code == 0 else "failure",
                "SNAPSTORE_EXIT_CODE": str(code), "SNAPSTORE_DURATION": f"{duration:.1f}",
                **({"SNAPSTORE_ERROR": error} if error else {}),
            }  # fmt: skip
            run_hooks(kind, self.plan.hooks.get(kind, ()), facts, self.plan.hook_timeout)
        except KeyboardInterrupt:
            click.echo("snapstore: interrupted", err=True)
            return EXIT_INTERRUPTED
        return code

    def _facts(self) -> dict[str, str]:
        facts = {"SNAPSTORE_COMMAND": self.command}
        snap = self.snapshot
        if snap is not None and snap.snapshot_id is not None:
            facts["SNAPSTORE_SNAPSHOT_ID"] = snap.snapshot_id
            facts["SNAPSTORE_BYTES_ADDED"] = str(int(snap.summary.get("bytes_added", 0)))
        return facts

    def _write_metrics(self, path: Path, code: int, duration: float) -> None:
        now = time.time()
        command = {"command": self.plan.command if self.plan else self.command}
        samples = [
            Sample("snapstore_last_run_timestamp_seconds", command, now),
            Sample("snapstore_last_run_success", command, int(code == 0)),
            Sample("snapstore_last_run_exit_code", command, code),
            Sample("snapstore_last_run_duration_seconds", command, round(duration, 3)),
        ]
        if code == 0:
            samples.append(Sample("snapstore_last_success_timestamp_seconds", command, now))
        snap = self.snapshot
        if snap is not None:
            labels = snap.labels()
            complete = snap.snapshot_id is not None and code == 0
            samples += [
                Sample("snapstore_snapshot_last_run_timestamp_seconds", labels, now),
                Sample("snapstore_snapshot_last_run_success", labels, int(complete)),
                Sample("snapstore_snapshot_duration_seconds", labels, round(duration, 3)),
            ]
            if complete:
                samples.append(Sample("snapstore_snapshot_last_success_timestamp_seconds", labels, now))
            for name, value in snap.summary.items():
                samples.append(Sample(f"snapstore_snapshot_{name}", labels, value))
        if self.repository is not None and self.repository_bytes is not None:
            samples.append(Sample("snapstore_repository_blob_bytes",
                                  {"repository": self.repository}, self.repository_bytes))
        try:
            write_metrics(path, samples)
        except OSError as exc:
            print_warning(f"metrics file {path}", f"not written: {exc.strerror or exc}")


def current_run() -> CommandRun | None:
    """The run of this invocation (None outside `main`, e.g. click's test runner)."""
    ctx = click.get_current_context(silent=True)
    run = ctx.find_root().obj if ctx is not None else None
    return run if isinstance(run, CommandRun) else None


def start_run() -> None:
    """Called as the command starts, its arguments parsed: the `before` hooks."""
    ctx = click.get_current_context(silent=True)
    run = current_run()
    if ctx is not None and run is not None:
        run.start(ctx.command_path.partition(" ")[2] or ctx.command_path)


def note_source(source: snapstore.Source, host: str | None) -> None:
    """A snapshot of `source` is being taken (its metrics' labels, should it fail)."""
    run = current_run()
    if run is not None:
        run.snapshot = SnapshotFacts(source.kind, host or socket.gethostname(), source.describe())


def note_snapshot(
    result: snapstore.BackupResult, location: str, repo: snapstore.Repository
) -> None:
    """The snapshot taken, its figures, and the repository's size (from the loaded index)."""
    run = current_run()
    if run is None:
        return
    snap, summary = result.snapshot, result.snapshot.summary
    run.snapshot = SnapshotFacts(
        snap.source, snap.host, list(snap.paths), snap.id.hex() if snap.id else None,
        {"files": summary.files, "files_unchanged": summary.files_unchanged,
         "bytes_read": summary.bytes_read, "bytes_added": summary.bytes_added,
         "errors": summary.errors},
    )  # fmt: skip
    run.repository, run.repository_bytes = location, repo.stored_blob_bytes()
    if result.errors:
        run.error = (f"snapshot incomplete: {len(result.errors)} source items could not be "
                     "read or stored")
