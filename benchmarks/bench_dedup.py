"""What day 2 of a database dump and of a Redis RDB costs: snapstore against restic and borg.

Builds the Mastodon-like database of `tests/support/mastodon_scale.py` in a throwaway
PostgreSQL cluster, dumps it (`pg_dump -Fc -Z0`, day 1), applies one day of churn (+2%
statuses, favourites and notifications, 0.3% of statuses deleted, counters of 5% of
accounts updated, VACUUM), dumps it again (day 2). Does the same for a throwaway
redis-server: N keys (RDB day 1), 5% of them changed (RDB day 2). Then backs both days up
with snapstore (`snapshot stdin --database`), restic and borg (zstd,3) when installed, in
the same run and on the same files, and prints per tool: bytes the repository grew by for
each day, chunk counts, snapshot and restore time (the restore is checked byte for byte),
and ratios against snapstore.

snapstore runs twice: as it is (new chunks stored as deltas against the parent snapshot's
where that pays, SPEC.md section 6) and with `--parent none` (new chunks stored whole), so
the report shows what deltas bring. Its repository is then copied off-site day by day
(`snapstore copy` to a second repository with its own keys, `snapstore-copy` in the report):
the copy should grow about as much as the repository it copies. The verdict line compares day 2 against restic's with
the issue's targets (0.1x for the dump, 0.2x for the RDB).

    python benchmarks/bench_dedup.py                 # scale 0.1: ~160 MB dump, ~2.5 minutes
    python benchmarks/bench_dedup.py --scale 1.0     # the issue's fixture: ~1.6 GB dump, ~300 MB RDB

Scale 1.0 takes about 15 minutes on 2 cores (4.5 of them building the database; with
`--fixtures DIR` a second run reuses the dumps and RDBs and takes about 7) and about 15 GB
of free space in the temp dir (or `--work DIR`).

Figures on 2026-11-22 (2 cores, restic 0.14, borg 1.2, scale 1.0): day 2 of the dump added
13.8 MB to snapstore against 314.1 MB to restic (0.044x) and 314.2 MB to borg; 229 MB
without deltas. RDB day 2: 11.3 MB against 142.4 MB (0.079x) and 141.2 MB.

The off-site copy, scale 0.1 (2 cores): day 2 of the dump added 1.34 MB to the copy against
1.32 MB to the repository copied, RDB day 2 1.26 MB against 1.26 MB; before copies kept
deltas, 22.13 MB and 14.84 MB (every blob whole, as with `--parent none`).

Needs PostgreSQL server binaries (see tests/support/postgres.py) and redis-server.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import snapstore
from benchmarks.commands import PASSWORD, dir_size, run, snapstore_summary, tool_env
from benchmarks.fixtures import make_dumps, reuse
from snapstore.snapshot.content import chunk_ids
from tests.support.redis import RedisServer, running_redis

ZSTD_LEVEL = 3
DELTA_KEEP = 0.8  # keep a delta only below this fraction of the plain compressed chunk
REDIS_KEYS_FULL = 1_000_000
TARGETS = (0.1, 0.2)  # day 2 against restic's: PostgreSQL dump, Redis RDB (issue 6)


# --- fixtures ---------------------------------------------------------------------------------


def _redis_fill(server: RedisServer, commands: Iterator[list[str]]) -> None:
    def encode(args: list[str]) -> bytes:
        parts = [f"*{len(args)}\r\n".encode()]
        for arg in args:
            raw = arg.encode()
            parts.append(b"$%d\r\n%s\r\n" % (len(raw), raw))
        return b"".join(parts)

    payload = b"".join(encode(c) for c in commands)
    subprocess.run(
        ["redis-cli", "-h", server.host, "-p", str(server.port), "--pipe"],
        input=payload,
        check=True,
        capture_output=True,
    )


def _status_json(rng: random.Random, n: int) -> str:
    words = " ".join(
        rng.choice(("toot", "boost", "fediverse", "admin", "backup", "relay", "cache"))
        for _ in range(rng.randint(5, 40))
    )
    return json.dumps(
        {
            "id": str(111_680_000_000_000_000 + n * 65_536),
            "content": f"<p>{words}</p>",
            "account": {"id": str(rng.getrandbits(56)), "acct": f"user{rng.randint(0, 9999)}"},
            "favourites_count": rng.randint(0, 500),
            "token": f"{rng.getrandbits(96):024x}",
        }
    )


def make_rdbs(work: Path, keys: int) -> tuple[Path, Path]:
    """Mastodon's Redis in miniature: 80% cached statuses (JSON strings), 20% home feeds (zsets)."""
    first, second = work / "day1.rdb", work / "day2.rdb"
    rng = random.Random(7)
    feeds = keys // 5

    def fill() -> Iterator[list[str]]:
        for n in range(keys - feeds):
            yield ["SET", f"cache:status:{n}", _status_json(rng, n)]
        for n in range(feeds):
            members = [str(111_680_000_000_000_000 + rng.getrandbits(30)) for _ in range(40)]
            yield ["ZADD", f"feed:home:{n}", *[x for m in members for x in (m, m)]]

    def churn() -> Iterator[list[str]]:
        for n in rng.sample(range(keys), k=keys // 20):
            if n < keys - feeds:
                yield ["SET", f"cache:status:{n}", _status_json(rng, n)]
            else:
                member = str(111_690_000_000_000_000 + rng.getrandbits(30))
                yield ["ZADD", f"feed:home:{n - (keys - feeds)}", member, member]

    with running_redis(work) as server:
        _redis_fill(server, fill())
        server.cli("--rdb", str(first))
        _redis_fill(server, churn())
        server.cli("--rdb", str(second))
    print(
        f"redis:    {keys} keys, 5% changed; RDB day 1 {first.stat().st_size / 1e6:.1f} MB, "
        f"day 2 {second.stat().st_size / 1e6:.1f} MB"
    )
    return first, second


# --- tools ------------------------------------------------------------------------------------


@dataclass
class Result:
    tool: str
    added: list[int] = field(default_factory=list)  # repository growth per day, bytes
    backup_s: list[float] = field(default_factory=list)
    restore_s: float = 0.0
    chunks: str = ""


@dataclass
class Tool:
    name: str
    init: Callable[[Path], list[str]]
    backup: Callable[[Path, int], list[str]]
    restore: Callable[[Path, Path], list[str]]  # day 2 into a directory, or to stdout
    restores_to_dir: bool = False
    #: Back up the day as a file at a fixed path (snapshot files), not on standard input.
    as_file: bool = False


SNAPSTORE = Tool(
    "snapstore",
    lambda repo: ["snapstore", "init", "-r", str(repo)],
    lambda repo, day: [
        "snapstore",
        "snapshot",
        "stdin",
        "-r",
        str(repo),
        "--name",
        "data",
        "--database",
        "--json",
    ],
    lambda repo, out: ["snapstore", "restore", "latest", "-r", str(repo), "--target", str(out)],
    restores_to_dir=True,
)
SNAPSTORE_NO_FLAG = Tool(  # recognised by its first bytes, as a restic user would pipe it
    "snapstore-noflag",
    SNAPSTORE.init,
    lambda repo, day: [arg for arg in SNAPSTORE.backup(repo, day) if arg != "--database"],
    SNAPSTORE.restore,
    restores_to_dir=True,
)
SNAPSTORE_AS_FILE = Tool(  # /var/lib/redis/dump.rdb taken by `snapshot files`
    "snapstore-file",
    SNAPSTORE.init,
    lambda repo, day: ["snapstore", "snapshot", "files", "-r", str(repo), "--json"],
    SNAPSTORE.restore,
    restores_to_dir=True,
    as_file=True,
)
SNAPSTORE_NO_DELTAS = Tool(
    "snapstore-nodelta",
    SNAPSTORE.init,
    lambda repo, day: [*SNAPSTORE.backup(repo, day), "--parent", "none"],
    SNAPSTORE.restore,
    restores_to_dir=True,
)
RESTIC = Tool(
    "restic",
    lambda repo: ["restic", "init", "-r", str(repo)],
    lambda repo, day: [
        "restic",
        "-r",
        str(repo),
        "--no-cache",
        "backup",
        "--stdin",
        "--stdin-filename",
        "data",
    ],
    lambda repo, out: ["restic", "-r", str(repo), "--no-cache", "dump", "latest", "data"],
)
BORG = Tool(
    "borg",
    lambda repo: ["borg", "init", "--encryption", "repokey-blake2", str(repo)],
    lambda repo, day: [
        "borg",
        "create",
        "--compression",
        f"zstd,{ZSTD_LEVEL}",
        f"{repo}::day{day}",
        "-",
    ],
    lambda repo, out: ["borg", "extract", "--stdout", f"{repo}::day2"],
)


def measure(tool: Tool, days: tuple[Path, Path], work: Path, env: dict[str, str]) -> Result:
    repo = work / f"repo-{tool.name}"
    out = work / f"restored-{tool.name}"
    run(tool.init(repo), env)
    result = Result(tool.name)
    source = work / f"input-{tool.name}" / "data"
    for day, dump in enumerate(days, start=1):
        argv, stdin = tool.backup(repo, day), dump
        if tool.as_file:
            source.parent.mkdir(exist_ok=True)
            shutil.copyfile(dump, source)
            argv, stdin = [*argv, str(source)], None
        before = dir_size(repo)
        started = time.perf_counter()
        output = run(argv, env, stdin=stdin)
        result.backup_s.append(time.perf_counter() - started)
        result.added.append(dir_size(repo) - before)
        if tool.name.startswith("snapstore"):
            summary = snapstore_summary(output)
            result.chunks += (
                f"{summary['blobs_added']} blobs added day {day}, {summary['deltas_added']} as deltas; "
            )
    started = time.perf_counter()
    run(tool.restore(repo, out), env, stdout=None if tool.restores_to_dir else out)
    result.restore_s = time.perf_counter() - started
    restored = out / "data" if tool.restores_to_dir else out
    if tool.as_file:
        restored = out / str(source).lstrip("/")
    if restored.read_bytes() != days[1].read_bytes():
        raise SystemExit(f"{tool.name}: the restored day 2 is not byte-identical")
    if out.is_dir():
        shutil.rmtree(out)
    else:
        out.unlink()
    return result


def measure_copy(days: tuple[Path, Path], work: Path, env: dict[str, str]) -> Result:
    """`snapstore copy` of each day of `repo-snapstore` to a new repository, day 1 then day 2,
    as a nightly off-site copy runs; the restored day 2 of the copy is checked byte for byte."""
    repo, offsite, out = work / f"repo-{SNAPSTORE.name}", work / "repo-snapstore-copy", work / "restored-copy"
    run(SNAPSTORE.init(offsite), env)
    source = snapstore.open_repository(str(repo), PASSWORD.encode())
    try:
        ids = [s.id.hex() for s in snapstore.list_snapshots(source) if s.id is not None]
    finally:
        source.close()
    result = Result("snapstore-copy")
    copy_env = dict(env, SNAPSTORE_TO_REPOSITORY=str(offsite), SNAPSTORE_TO_PASSWORD=PASSWORD)
    for day, snapshot_id in enumerate(ids[:2], start=1):
        before = dir_size(offsite)
        started = time.perf_counter()
        output = snapstore_summary(run(["snapstore", "copy", "-r", str(repo), "--json", snapshot_id], copy_env))
        result.backup_s.append(time.perf_counter() - started)
        result.added.append(dir_size(offsite) - before)
        result.chunks += f"{output['deltas_added']} deltas copied day {day}; "
    started = time.perf_counter()
    run(SNAPSTORE.restore(offsite, out), env)
    result.restore_s = time.perf_counter() - started
    if (out / "data").read_bytes() != days[1].read_bytes():
        raise SystemExit("snapstore-copy: the restored day 2 is not byte-identical")
    shutil.rmtree(out)
    return result


# --- snapstore's own figures -----------------------------------------------------------------


@dataclass
class RepoFacts:
    chunks_day1: int
    chunks_day2: int
    new_chunks: int
    index_bytes_per_blob: float
    chunk_lists: int  # chunk-list blobs of day 2's file (0: ids inline in the tree)


def repo_facts(repo_path: Path) -> RepoFacts:
    repo = snapstore.open_repository(str(repo_path), PASSWORD.encode())
    try:
        repo.load_index()
        day1, day2 = snapstore.list_snapshots(repo)[:2]
        nodes = [snapstore.find_node(repo, s.tree, "/data") for s in (day1, day2)]
        assert nodes[0] is not None and nodes[1] is not None
        ids = [chunk_ids(repo, n) for n in nodes]
        return RepoFacts(
            len(ids[0]),
            len(ids[1]),
            len(set(ids[1]) - set(ids[0])),
            repo.index.memory_bytes() / max(1, len(repo.index)),
            len(nodes[1].content_lists),
        )
    finally:
        repo.close()


# --- report -----------------------------------------------------------------------------------


def report(label: str, size: int, results: list[Result], facts: RepoFacts, target: float) -> None:
    print(f"\n== {label}: day 2 is {size / 1e6:.1f} MB ==")
    for r in results:
        print(
            f"{r.tool:18} day 1 added {r.added[0] / 1e6:9.2f} MB in {r.backup_s[0]:6.1f} s | "
            f"day 2 added {r.added[1] / 1e6:9.2f} MB ({100 * r.added[1] / size:5.1f}% of the dump) in "
            f"{r.backup_s[1]:6.1f} s | restore day 2 {r.restore_s:6.1f} s, byte-identical"
        )
    ours = results[0]
    print(
        f"snapstore chunks: day 1 {facts.chunks_day1}, day 2 {facts.chunks_day2}, new in day 2 "
        f"{facts.new_chunks} ({ours.chunks.strip('; ')}); day 2's chunk ids in "
        f"{facts.chunk_lists or 'no'} chunk-list blobs; in-memory index "
        f"{facts.index_bytes_per_blob:.1f} bytes per blob"
    )
    for other in results[1:]:
        if other.tool.startswith("snapstore"):
            print(
                f"ratio     day 2 added: snapstore {ours.added[1] / max(1, other.added[1]):.3f}x "
                f"{other.tool}"
            )
            continue
        ratio = ours.added[1] / max(1, other.added[1])
        verdict = "meets" if ratio <= target else "MISSES"
        print(
            f"ratio     day 2 added: snapstore {ratio:.3f}x {other.tool} ({verdict} the "
            f"{target:g}x target); snapshot speed {other.backup_s[1] / ours.backup_s[1]:.2f}x, "
            f"restore speed {other.restore_s / ours.restore_s:.2f}x {other.tool}'s"
        )
        for variant in results[1:]:
            if variant.tool in ("snapstore-noflag", "snapstore-file"):
                print(
                    f"ratio     day 2 added: {variant.tool} (no --database: recognised by its "
                    f"first bytes) {variant.added[1] / max(1, other.added[1]):.3f}x {other.tool}"
                )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--scale",
        type=float,
        default=0.1,
        help="database size; 1.0 is the issue's ~1.5 GB dump (default 0.1)",
    )
    parser.add_argument(
        "--redis-keys",
        type=int,
        default=None,
        help=f"Redis keys (default {REDIS_KEYS_FULL} x scale; 1M keys is ~300 MB)",
    )
    parser.add_argument(
        "--work", type=Path, default=None, help="work directory (default: a temp dir)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument(
        "--fixtures",
        type=Path,
        default=None,
        help="keep the dumps and RDBs here and reuse them on the next run (per scale)",
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="snapstore-dedup-", dir=args.work))
    work.chmod(0o755)  # the PostgreSQL server runs as another user inside it
    env = tool_env()
    tools = [RESTIC if shutil.which("restic") else None, BORG if shutil.which("borg") else None]
    try:
        keys = args.redis_keys or max(1000, round(REDIS_KEYS_FULL * args.scale))
        fixtures = [  # the targets: day 2 at most 0.1x restic's (dump), 0.2x (RDB)
            (
                "PostgreSQL dump (pg_dump -Fc -Z0)",
                reuse(
                    args.fixtures,
                    f"scale{args.scale:g}.dump",
                    work,
                    lambda: make_dumps(work, args.scale),
                ),
            ),
            (
                "Redis RDB",
                reuse(args.fixtures, f"keys{keys}.rdb", work, lambda: make_rdbs(work, keys)),
            ),
        ]
        for n, (label, days) in enumerate(fixtures):
            sub = work / f"run{n}"
            sub.mkdir()
            results = [measure(t, days, sub, env) for t in
                       (SNAPSTORE, SNAPSTORE_NO_FLAG, SNAPSTORE_AS_FILE, SNAPSTORE_NO_DELTAS)]
            results.append(measure_copy(days, sub, env))
            results += [measure(t, days, sub, env) for t in tools if t is not None]
            facts = repo_facts(sub / "repo-snapstore")
            report(label, days[1].stat().st_size, results, facts, TARGETS[n])
        for name, tool in (("restic", tools[0]), ("borg", tools[1])):
            if tool is None:
                print(f"{name} not installed: no comparison")
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
