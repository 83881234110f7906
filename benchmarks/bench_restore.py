"""Getting data back: dump, restore and check --read-data, snapstore against restic and borg.

Issue 11's targets, on the same data in the same run, local repositories (warm page cache)
unless said, medians of --runs runs with the tools taking turns:

  dump   the day-2 `pg_dump -Fc -Z0` of the Mastodon-like database (`benchmarks/fixtures.py`,
         day 1 backed up first, so day 2 is stored against it) to standard output:
         `snapstore dump`, `restic dump`, `borg extract --stdout`. Target >= 3x restic's MB/s.
  media  a media tree in Mastodon's layout (incompressible files, mostly 50 KB - 2 MB, a few
         videos up to 40 MB) restored into an empty directory. Target >= 3x.
  check  `check --read-data` (borg: `check --verify-data`) of the repository that holds both
         dumps and the media tree; MB/s counts the bytes of those three snapshots, so every
         tool is credited for the same data whatever its repository's size. Target >= 2x.
  s3     from moto's S3 server on loopback (borg has no S3 backend): a ~200 MB tree restored,
         and one 5 MB file restored out of the media tree's snapshot, each with a new, empty
         metadata cache (a new machine), and the one file again with the cache an earlier
         restore left. Wall time and HTTP requests, counted by a WSGI middleware in front
         of moto (`benchmarks/s3_loopback.py`). Targets: both <= restic's.
Peak RSS of every measured command (GNU time's %M, see commands.py), target <= restic's.

Every restore is compared file by file (SHA-256) with its source, and the dump once per
tool before the timed runs (which write to /dev/null); a difference stops the run.
Progress goes to stderr; the table (or with --json, a JSON document) to stdout.

    python benchmarks/bench_restore.py                 # scale 0.1: 150 MB dump, 100 MB media
    python benchmarks/bench_restore.py --scale 1.0 --fixtures ~/snapstore-fixtures
    python benchmarks/bench_restore.py --only dump,s3 --runs 5 --json

Scale 1.0 is the issue's: a ~1.5 GB dump, ~1 GB of media, a 200 MB tree on S3. It needs
PostgreSQL server binaries (tests/support/postgres.py) unless --fixtures already holds the
dumps (bench_dedup.py keeps them in the same place), moto[server], restic, borg and GNU time.
It takes about 17 minutes on 2 cores, 7 of them building the database (which --fixtures
keeps: 4.7 GB; a second run takes about 8), and about 15 GB of free space while it runs.

Figures on 2026-12-07 (scale 1.0, 2 cores shared with other work at load 3-5, snapstore at
0fdf214 with the read path half rewritten, commits landing during the run; restic 0.14,
borg 1.2): dump to stdout 0.99x restic's throughput, peak RSS 789 MB against 193 MB; media
restore 1.28x; check --read-data 1.54x; from S3, the 200 MB tree in 9.5 s with 1006
requests (a ranged GET per blob or two) against 2.4 s and 28, one 5 MB file 31 requests
against 17 (12 against 13 with a warm cache). The S3 part again at 7b74a42 (--only s3
--runs 5, load 4-5): the 200 MB tree in 3.19 s with 27 requests (each pack one GET) against
restic's 3.33 s and 28, peak RSS 185 MB against 109 MB; one 5 MB file 17 requests against
18, 1.31 s against 0.89 s, 147 MB against 79 MB (about 125 MB of that before any read: the
interpreter with s3fs and numpy, and Argon2id's 64 MiB). A tool's runs spread up to 2x on a
loaded machine: use --runs 5 when a figure decides something.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import NoReturn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.commands import (
    SNAPSTORE,
    Measured,
    dir_size,
    measured,
    run,
    snapstore_summary,
    tool_env,
)
from benchmarks.fixtures import (
    MediaTree,
    kept_media_tree,
    make_dumps,
    reuse,
    tree_mismatches,
)
from benchmarks.s3_loopback import LoopbackS3, loopback_s3, read_pattern

MEASUREMENTS = ("dump", "media", "check", "s3")
MEDIA_FULL = 1_000_000_000  # bytes of media at scale 1.0
S3_TREE_FULL = 200_000_000
PROBE_SIZE = 5_000_000  # the one file restored out of a large snapshot
ZSTD_LEVEL = 3
TOOLS = ("snapstore", "restic", "borg")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- the tools --------------------------------------------------------------------------------


@dataclass
class Tool:
    """One tool's commands against one repository. `cache` is where a remote repository's
    metadata cache goes for a command (None: the local default, no cache)."""

    name: str
    repo: str
    env: dict[str, str]
    setup_cache: Path | None = None  # for init and backups of a remote repository

    def init(self) -> None:
        raise NotImplementedError

    def backup_stdin(self, name: str, path: Path, label: str) -> str:
        """Back up the file at `path` as a stream called `name` (borg: in the archive
        `label`); the snapshot's id."""
        raise NotImplementedError

    def backup_tree(self, path: Path, label: str) -> str:
        raise NotImplementedError

    def dump(self, snapshot: str, name: str) -> list[str]:
        raise NotImplementedError

    def restore(
        self, snapshot: str, target: Path, include: str | None = None, cache: Path | None = None
    ) -> tuple[list[str], Path | None]:
        """The command, and the directory to run it in."""
        raise NotImplementedError

    def check(self) -> list[str]:
        raise NotImplementedError

    def local_path(self) -> Path | None:
        return None if ":" in self.repo else Path(self.repo)


class Snapstore(Tool):
    def _cache(self, cache: Path | None) -> list[str]:
        return ["--cache-dir", str(cache)] if cache else []

    def init(self) -> None:
        run([SNAPSTORE, "init", "-r", self.repo, *self._cache(self.setup_cache)], self.env)

    def backup_stdin(self, name: str, path: Path, label: str) -> str:
        cmd = [SNAPSTORE, "snapshot", "stdin", "-r", self.repo, "--name", name, "--database"]
        out = run([*cmd, "--json", *self._cache(self.setup_cache)], self.env, stdin=path)
        return str(snapstore_summary(out)["snapshot_id"])

    def backup_tree(self, path: Path, label: str) -> str:
        cmd = [SNAPSTORE, "snapshot", "files", "-r", self.repo, "--json", str(path)]
        return str(snapstore_summary(run([*cmd, *self._cache(self.setup_cache)], self.env))["snapshot_id"])

    def dump(self, snapshot: str, name: str) -> list[str]:
        return [SNAPSTORE, "dump", "-r", self.repo, snapshot, name]

    def restore(
        self, snapshot: str, target: Path, include: str | None = None, cache: Path | None = None
    ) -> tuple[list[str], Path | None]:
        cmd = [SNAPSTORE, "restore", "-r", self.repo, snapshot, "--target", str(target)]
        return [*cmd, *(["--include", include] if include else []), *self._cache(cache)], None

    def check(self) -> list[str]:
        return [SNAPSTORE, "check", "--read-data", "-r", self.repo]


class Restic(Tool):
    def _base(self, cache: Path | None = None) -> list[str]:
        cache = cache or self.setup_cache
        return [
            "restic",
            "-r",
            self.repo,
            *(["--cache-dir", str(cache)] if cache else ["--no-cache"]),
        ]

    def init(self) -> None:
        run([*self._base(), "init"], self.env)

    def _snapshot_id(self, output: str) -> str:
        for line in reversed(output.splitlines()):
            message = json.loads(line)
            if message.get("message_type") == "summary":
                return str(message["snapshot_id"])
        raise RuntimeError(f"restic backup printed no summary: {output[-500:]}")

    def backup_stdin(self, name: str, path: Path, label: str) -> str:
        cmd = [*self._base(), "backup", "--json", "--stdin", "--stdin-filename", name]
        return self._snapshot_id(run(cmd, self.env, stdin=path))

    def backup_tree(self, path: Path, label: str) -> str:
        return self._snapshot_id(run([*self._base(), "backup", "--json", str(path)], self.env))

    def dump(self, snapshot: str, name: str) -> list[str]:
        return [*self._base(), "dump", snapshot, name]

    def restore(
        self, snapshot: str, target: Path, include: str | None = None, cache: Path | None = None
    ) -> tuple[list[str], Path | None]:
        cmd = [*self._base(cache), "restore", snapshot, "--target", str(target)]
        return [*cmd, *(["--include", include] if include else [])], None

    def check(self) -> list[str]:
        return [*self._base(), "check", "--read-data"]


class Borg(Tool):
    def init(self) -> None:
        run(["borg", "init", "--encryption", "repokey-blake2", self.repo], self.env)

    def _create(self, label: str) -> list[str]:
        return ["borg", "create", "--compression", f"zstd,{ZSTD_LEVEL}", f"{self.repo}::{label}"]

    def backup_stdin(self, name: str, path: Path, label: str) -> str:
        run([*self._create(label), "-"], self.env, stdin=path)
        return label

    def backup_tree(self, path: Path, label: str) -> str:
        run([*self._create(label), str(path)], self.env)
        return label

    def dump(self, snapshot: str, name: str) -> list[str]:
        return ["borg", "extract", "--stdout", f"{self.repo}::{snapshot}"]

    def restore(
        self, snapshot: str, target: Path, include: str | None = None, cache: Path | None = None
    ) -> tuple[list[str], Path | None]:
        paths = [include.lstrip("/")] if include else []
        return ["borg", "extract", f"{self.repo}::{snapshot}", *paths], target

    def check(self) -> list[str]:
        return ["borg", "check", "--verify-data", self.repo]


# --- measuring --------------------------------------------------------------------------------


@dataclass
class Row:
    """One line of the table: a figure per tool (every run kept) and the target on the
    ratio snapstore / restic (>= target when higher is better, else <=)."""

    label: str
    unit: str
    higher_is_better: bool
    target: float | None
    runs: dict[str, list[float]] = field(default_factory=dict)

    def median(self, tool: str) -> float | None:
        values = self.runs.get(tool)
        return statistics.median(values) if values else None

    def ratio(self, other: str) -> float | None:
        ours, theirs = self.median("snapstore"), self.median(other)
        if ours is None or not theirs:
            return None
        return ours / theirs

    def met(self) -> bool | None:
        ratio = self.ratio("restic")
        if ratio is None or self.target is None:
            return None
        return ratio >= self.target if self.higher_is_better else ratio <= self.target


def warm(path: Path | None) -> None:
    """Read every file under `path`, so the repository is in the page cache."""
    if path is None:
        return
    buffer = bytearray(1 << 24)
    for f in path.rglob("*"):
        if f.is_file():
            with open(f, "rb", buffering=0) as handle:
                while handle.readinto(buffer):
                    pass


def take_turns(
    tools: Sequence[str], runs: int, once: Callable[[str, int], Measured]
) -> dict[str, list[Measured]]:
    """`runs` rounds in which each tool runs once, so a change in the machine's load lands
    on every tool rather than on one."""
    results: dict[str, list[Measured]] = {t: [] for t in tools}
    for n in range(runs):
        for tool in tools:
            os.sync()  # the last restore's dirty pages are not this run's to write
            results[tool].append(once(tool, n))
            m = results[tool][-1]
            log(f"  {tool:9} run {n + 1}: {m.seconds:7.2f} s, peak RSS {m.peak_rss / 1e6:6.0f} MB")
    return results


def throughput_rows(
    label: str, size: int, target: float, results: dict[str, list[Measured]]
) -> list[Row]:
    speed = Row(label, "MB/s", True, target)
    memory = Row(f"{label}: peak RSS", "MB", False, 1.0)
    for tool, ms in results.items():
        speed.runs[tool] = [size / 1e6 / m.seconds for m in ms]
        memory.runs[tool] = [m.peak_rss / 1e6 for m in ms]
    return [speed, memory]


def fail(message: str) -> NoReturn:
    raise SystemExit(f"FAILED: {message}")


def restored_root(target: Path, source: Path) -> Path:
    """Where a tool puts `source` (an absolute path) when restoring into `target`."""
    return target / source.relative_to(source.anchor)


def verify_tree(tool: str, target: Path, tree: MediaTree, only: str | None = None) -> None:
    expected = {only: tree.digests[only]} if only else tree.digests
    problems = tree_mismatches(restored_root(target, tree.root), expected)
    if problems:
        fail(f"{tool} restored {len(problems)} files wrong: {', '.join(problems[:5])}")


@dataclass
class LocalRepos:
    tools: dict[str, Tool]
    day2: dict[str, str] = field(default_factory=dict)  # tool -> snapshot of day 2's dump
    media: dict[str, str] = field(default_factory=dict)
    stored: int = 0  # bytes of the snapshots the repositories hold


def set_up_local(
    tools: dict[str, Tool], dumps: tuple[Path, Path] | None, media: MediaTree | None
) -> LocalRepos:
    repos = LocalRepos(tools)
    for name, tool in tools.items():
        started = time.perf_counter()
        tool.init()
        steps = []
        if dumps:
            tool.backup_stdin("data", dumps[0], "day1")
            repos.day2[name] = tool.backup_stdin("data", dumps[1], "day2")
            steps.append("dump days 1 and 2")
        if media:
            repos.media[name] = tool.backup_tree(media.root, "media")
            steps.append("media")
        size = dir_size(tool.local_path()) if tool.local_path() else 0
        log(
            f"{name:9} backed up {' and '.join(steps)} in {time.perf_counter() - started:6.1f} s; "
            f"repository {size / 1e6:.1f} MB"
        )
    repos.stored = (sum(d.stat().st_size for d in dumps) if dumps else 0) + (
        media.size if media else 0
    )
    return repos


def bench_dump(repos: LocalRepos, day2: Path, runs: int) -> list[Row]:
    size = day2.stat().st_size
    with open(day2, "rb") as f:
        expected = hashlib.file_digest(f, "sha256").hexdigest()
    log(f"\n== restore of the day-2 dump ({size / 1e6:.1f} MB) to stdout ==")
    for name, tool in repos.tools.items():  # byte for byte, once; this also warms the caches
        digest = hashlib.sha256()
        warm(tool.local_path())
        measured(tool.dump(repos.day2[name], "data"), tool.env, consume=digest.update)
        if digest.hexdigest() != expected:
            fail(f"{name}'s dump of day 2 is not the day-2 dump")
        log(f"  {name:9} dump is byte-identical")

    def once(name: str, n: int) -> Measured:
        tool = repos.tools[name]
        warm(tool.local_path())
        return measured(tool.dump(repos.day2[name], "data"), tool.env)

    results = take_turns(list(repos.tools), runs, once)
    return throughput_rows("restore day-2 dump to stdout", size, 3.0, results)


def bench_media(repos: LocalRepos, media: MediaTree, runs: int, work: Path) -> list[Row]:
    log(f"\n== restore of the media tree ({media.size / 1e6:.1f} MB, {media.files} files) ==")

    def once(name: str, n: int) -> Measured:
        tool = repos.tools[name]
        target = work / f"restored-{name}"
        target.mkdir()
        warm(tool.local_path())
        cmd, cwd = tool.restore(repos.media[name], target)
        m = measured(cmd, tool.env, cwd=cwd)
        verify_tree(name, target, media)
        shutil.rmtree(target)
        return m

    results = take_turns(list(repos.tools), runs, once)
    return throughput_rows("restore media tree to an empty dir", media.size, 3.0, results)


def bench_check(repos: LocalRepos, runs: int) -> list[Row]:
    log(f"\n== check --read-data (snapshots of {repos.stored / 1e6:.1f} MB) ==")

    def once(name: str, n: int) -> Measured:
        tool = repos.tools[name]
        warm(tool.local_path())
        return measured(tool.check(), tool.env)

    results = take_turns(list(repos.tools), runs, once)
    return throughput_rows("check --read-data", repos.stored, 2.0, results)


@dataclass
class S3Case:
    label: str
    snapshot: dict[str, str]
    tree: MediaTree
    include: str | None
    warm_cache: bool


def bench_s3(
    env: dict[str, str], tree: MediaTree, media: MediaTree, runs: int, work: Path, names: list[str]
) -> tuple[list[Row], dict[str, object]]:
    details: dict[str, object] = {}
    rows: list[Row] = []
    with loopback_s3() as s3:
        tools: dict[str, Tool] = {}
        for name in names:
            setup = work / f"s3-setup-cache-{name}"
            if name == "snapstore":
                repo, extra = "s3://bench-snapstore/repo", s3.endpoint.cli_env()
                tools[name] = Snapstore(name, repo, {**env, **extra}, setup)
            else:
                repo, extra = f"s3:{s3.endpoint.url}/bench-restic/repo", s3.restic_env()
                tools[name] = Restic(name, repo, {**env, **extra}, setup)
        tree_ids, media_ids = {}, {}
        for name, tool in tools.items():
            started = time.perf_counter()
            s3.reset()
            tool.init()
            tree_ids[name] = tool.backup_tree(tree.root, "tree")
            media_ids[name] = tool.backup_tree(media.root, "media")
            log(
                f"{name:9} backed up the {tree.size / 1e6:.0f} MB tree and the media tree to S3 "
                f"in {time.perf_counter() - started:6.1f} s ({s3.endpoint.requests.counts()['total']} requests)"
            )
        assert media.probe is not None
        probe = str(media.root / media.probe)
        cases = [
            S3Case(
                f"S3: restore {tree.size / 1e6:.0f} MB tree, empty cache",
                tree_ids,
                tree,
                None,
                False,
            ),
            S3Case(
                f"S3: restore one {PROBE_SIZE / 1e6:.0f} MB file, empty cache",
                media_ids,
                media,
                probe,
                False,
            ),
            S3Case(
                f"S3: restore one {PROBE_SIZE / 1e6:.0f} MB file, warm cache",
                media_ids,
                media,
                probe,
                True,
            ),
        ]
        for case in cases:
            log(f"\n== {case.label} ==")
            case_rows, case_details = s3_case(s3, tools, case, runs, work)
            rows += case_rows
            details[case.label] = case_details
    return rows, details


def s3_case(
    s3: LoopbackS3, tools: dict[str, Tool], case: S3Case, runs: int, work: Path
) -> tuple[list[Row], dict[str, object]]:
    requests: dict[str, list[dict[str, int]]] = {name: [] for name in tools}
    patterns: dict[str, list[dict[str, int]]] = {name: [] for name in tools}
    only = str(Path(case.include).relative_to(case.tree.root)) if case.include else None

    def restore_once(name: str, cache: Path) -> Measured:
        target = work / f"restored-s3-{name}"
        target.mkdir()
        cmd, cwd = tools[name].restore(case.snapshot[name], target, case.include, cache)
        s3.reset()
        m = measured(cmd, tools[name].env, cwd=cwd)
        requests[name].append(s3.endpoint.requests.counts())
        patterns[name].append(read_pattern(s3.traffic.requests()))
        verify_tree(name, target, case.tree, only)
        shutil.rmtree(target)
        return m

    if case.warm_cache:  # one restore first, whose cache every measured run starts from
        for name in tools:
            restore_once(name, work / f"s3-cache-{name}-warm")
            requests[name].clear()
            patterns[name].clear()

    def once(name: str, n: int) -> Measured:
        cache = work / (f"s3-cache-{name}-" + ("warm" if case.warm_cache else f"run{n}"))
        m = restore_once(name, cache)
        if not case.warm_cache:
            shutil.rmtree(cache, ignore_errors=True)
        return m

    results = take_turns(list(tools), runs, once)
    wall = Row(f"{case.label}: wall time", "s", False, 1.0)
    count = Row(f"{case.label}: HTTP requests", "requests", False, 1.0)
    memory = Row(f"{case.label}: peak RSS", "MB", False, 1.0)
    for name, ms in results.items():
        wall.runs[name] = [m.seconds for m in ms]
        count.runs[name] = [float(r["total"]) for r in requests[name]]
        memory.runs[name] = [m.peak_rss / 1e6 for m in ms]
        log(f"  {name:9} requests {requests[name][-1]}; reads {patterns[name][-1]}")
    return [wall, count, memory], {"requests": requests, "read_pattern": patterns}


# --- report -----------------------------------------------------------------------------------


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "requests":
        return f"{value:.0f}"
    if unit == "s":
        return f"{value:.2f} s"
    if unit == "MB":
        return f"{value:.0f} MB"
    return f"{value:.1f} {unit}"


def cell(row: Row, tool: str) -> str:
    """The median, and the range of the runs when they differ (a shared machine is noisy)."""
    values = row.runs.get(tool)
    text = fmt(row.median(tool), row.unit)
    digits = 2 if row.unit == "s" else 0
    low, high = (f"{v:.{digits}f}" for v in (min(values or [0]), max(values or [0])))
    return text + (f" ({low}–{high})" if low != high else "")


def table(rows: list[Row], tools: Sequence[str]) -> str:
    lines = [
        "| measurement | "
        + " | ".join(tools)
        + " | snapstore / restic | target | met |"
        + (" snapstore / borg |" if "borg" in tools else ""),
        "|---|" + "---:|" * len(tools) + "---:|---|---|" + ("---:|" if "borg" in tools else ""),
    ]
    for row in rows:
        ratio = row.ratio("restic")
        target = (
            "-"
            if row.target is None
            else ("≥ " if row.higher_is_better else "≤ ") + f"{row.target:g}x"
        )
        met = {True: "yes", False: "**no**", None: "-"}[row.met()]
        cells = [cell(row, t) for t in tools]
        line = f"| {row.label} | " + " | ".join(cells)
        line += f" | {'-' if ratio is None else f'{ratio:.2f}x'} | {target} | {met} |"
        if "borg" in tools:
            borg = row.ratio("borg")
            line += f" {'-' if borg is None else f'{borg:.2f}x'} |"
        lines.append(line)
    return "\n".join(lines)


def s3_notes(s3: dict[str, dict[str, dict[str, list[dict[str, int]]]]]) -> str:
    """Per S3 case and tool, the last run's requests by kind and how it read objects."""
    lines = [
        "",
        "S3 requests (last run) and reads: GETs of objects, distinct objects, ranged GETs,"
        " GETs of an object already read in the same run, MB received",
    ]
    for label, case in s3.items():
        lines.append(f"- {label}")
        for tool, counts in case["requests"].items():
            kinds = ", ".join(f"{k} {v}" for k, v in sorted(counts[-1].items()) if k != "total")
            p = case["read_pattern"][tool][-1]
            lines.append(
                f"  - {tool}: {counts[-1]['total']} requests ({kinds}); {p['gets']} GETs of "
                f"{p['objects']} objects, {p['ranged']} ranged, {p['repeat_gets']} repeated, "
                f"{p['bytes_in'] / 1e6:.1f} MB"
            )
    return "\n".join(lines)


ROOT = Path(__file__).resolve().parent.parent


def code_fingerprint() -> str:
    """A digest of snapstore's source as installed (editable): the work tree, not a commit,
    since others may be changing it while a long run goes on."""
    digest = hashlib.sha256()
    for path in sorted(
        [*ROOT.glob("snapstore/**/*.py"), *ROOT.glob("snapstore/**/*.c"), *ROOT.glob("cli/**/*.py")]
    ):
        digest.update(path.relative_to(ROOT).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def describe_setup(scale: float, runs: int) -> dict[str, object]:
    root = ROOT

    def out(cmd: list[str]) -> str:
        try:
            return subprocess.run(cmd, capture_output=True, text=True, cwd=root).stdout.strip()
        except OSError:
            return ""

    dirty = out(["git", "status", "--porcelain", "--", "snapstore", "cli"]).splitlines()
    return {
        "scale": scale,
        "runs": runs,
        "snapstore_commit": out(["git", "rev-parse", "--short", "HEAD"]),
        "snapstore_uncommitted_files": len(dirty),
        "snapstore_code": code_fingerprint(),
        "restic": out(["restic", "version"]),
        "borg": out(["borg", "--version"]),
        "cpus": os.cpu_count(),
        "machine": platform.platform(),
        "load_average": os.getloadavg(),
    }


def measure_all(
    args: argparse.Namespace,
    only: set[str],
    names: list[str],
    fixtures: Path | None,
    work: Path,
    env: dict[str, str],
    rows: list[Row],
    details: dict[str, object],
) -> None:
    """Make or reuse the fixtures, set up the repositories, measure; rows and details grow."""
    local = only & {"dump", "media", "check"}
    dumps = None
    if only & {"dump", "check"}:
        dumps = reuse(
            fixtures, f"scale{args.scale:g}.dump", work, lambda: make_dumps(work, args.scale)
        )
    media = None
    if only & {"media", "check", "s3"}:
        total = round(MEDIA_FULL * args.scale)
        media = kept_media_tree(fixtures, work, total, seed=1, probe_size=PROBE_SIZE)
    if local:
        tools: dict[str, Tool] = {}
        for name in names:
            repo = str(work / f"repo-{name}")
            kind = {"snapstore": Snapstore, "restic": Restic, "borg": Borg}[name]
            tools[name] = kind(name, repo, env)
        repos = set_up_local(tools, dumps, media if only & {"media", "check"} else None)
        details["repository_bytes"] = {n: dir_size(Path(t.repo)) for n, t in tools.items()}
        if "dump" in only and dumps:
            rows += bench_dump(repos, dumps[1], args.runs)
        if "media" in only and media:
            rows += bench_media(repos, media, args.runs, work)
        if "check" in only:
            rows += bench_check(repos, args.runs)
        for tool in tools.values():
            shutil.rmtree(tool.repo, ignore_errors=True)  # room for what comes next
    if "s3" in only and media:
        tree = kept_media_tree(fixtures, work, round(S3_TREE_FULL * args.scale), seed=2)
        s3_rows, s3_details = bench_s3(
            env, tree, media, args.runs, work, [n for n in names if n != "borg"]
        )
        rows += s3_rows
        details["s3"] = s3_details


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--scale", type=float, default=0.1, help="data size; 1.0 is the issue's (default 0.1)"
    )
    parser.add_argument("--runs", type=int, default=3, help="timed runs per tool (default 3)")
    parser.add_argument(
        "--only",
        action="append",
        default=None,
        help=f"measure only these, comma-separated: {', '.join(MEASUREMENTS)} (default: all)",
    )
    parser.add_argument(
        "--fixtures",
        type=Path,
        default=None,
        help="keep the dumps and media trees here and reuse them on the next run (per scale)",
    )
    parser.add_argument("--work", type=Path, default=None, help="work directory (default: temp)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    args = parser.parse_args()
    only = set(MEASUREMENTS) if not args.only else {m for o in args.only for m in o.split(",") if m}
    if only - set(MEASUREMENTS) or args.runs < 1:
        parser.error(f"--only takes {', '.join(MEASUREMENTS)}; --runs at least 1")
    if not shutil.which(SNAPSTORE):
        parser.error("the snapstore command is not on PATH (pip install -e .)")
    names = [t for t in TOOLS if t == "snapstore" or shutil.which(t)]
    for missing in set(TOOLS) - set(names):
        log(f"{missing} is not installed: no comparison with it")
    fixtures = args.fixtures.resolve() if args.fixtures else None
    setup = describe_setup(args.scale, args.runs)
    log(f"setup: {setup}")

    work = Path(tempfile.mkdtemp(prefix="snapstore-restore-", dir=args.work)).resolve()
    work.chmod(0o755)  # the PostgreSQL server runs as another user inside it
    env = tool_env()
    rows: list[Row] = []
    details: dict[str, object] = {"setup": setup}
    started = time.perf_counter()
    try:
        with contextlib.redirect_stdout(sys.stderr):  # the fixtures' progress lines
            measure_all(args, only, names, fixtures, work, env, rows, details)
    finally:
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    details["minutes"] = round((time.perf_counter() - started) / 60, 1)
    heading = (
        f"scale {args.scale:g}, medians of {args.runs} runs, snapstore at "
        f"{setup['snapstore_commit']} (+{setup['snapstore_uncommitted_files']} uncommitted "
        f"files in snapstore/ and cli/), {setup['restic']}, {setup['borg']}, "
        f"{setup['cpus']} CPUs, {details['minutes']} minutes"
    )
    if code_fingerprint() != setup["snapstore_code"]:
        details["snapstore_changed_during_run"] = True
        heading += (
            "\n\nWARNING: snapstore's code changed during the run (now at "
            f"{describe_setup(args.scale, args.runs)['snapstore_commit']}): "
            "the rows were not all measured on the same code."
        )
    report = [f"\n{heading}\n", table(rows, names)]
    if "repository_bytes" in details:
        sizes = details["repository_bytes"]
        assert isinstance(sizes, dict)
        report.append(
            "\nrepository sizes: " + ", ".join(f"{n} {b / 1e6:.1f} MB" for n, b in sizes.items())
        )
    if "s3" in details:
        report.append(s3_notes(details["s3"]))  # type: ignore[arg-type]
    if not args.json:
        print("\n".join(report))
        return
    log("\n".join(report))  # the table for whoever watches; the JSON for the pipe
    document = {
        "heading": heading,
        "rows": [
            {
                **asdict(r),
                "median": {t: r.median(t) for t in r.runs},
                "ratio_restic": r.ratio("restic"),
                "ratio_borg": r.ratio("borg"),
                "met": r.met(),
            }
            for r in rows
        ],
        "details": details,
    }
    print(json.dumps(document, indent=2))


if __name__ == "__main__":
    main()
