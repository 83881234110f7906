"""End-to-end backup and restore throughput, what a modified stream costs, and how fast a
media tree is backed up again when little or nothing changed.

stream: MB/s for a first snapshot of a stream, a second unchanged one, a modified one (100
  bytes inserted in the middle), restore, and check --read-data; the bytes each adds.
media: a Mastodon media tree (benchmarks/fixtures.py `make_media_tree`) backed up once, then
  again unchanged, then again after 3% new files were added (`--new-percent`): wall times,
  medians of `--runs` runs with the tools taking turns. An unchanged file is not read by any
  of the three (restic compares with the parent snapshot, borg with its files cache), so
  these are the nightly costs of a big, mostly static tree. Targets (issue 13, item 1):
  unchanged at most 0.5x borg's time, 3% new at most 0.5x restic's.

Where restic or borg is installed, runs them on the same data in the same run and prints the
ratios; restic and borg keep their caches in the work directory, as a cron job's would be.
`snapstore --force` (every file read, as before unchanged files were skipped) is measured on
the unchanged tree for comparison.

Figures (2026-12-07, 2 cores, restic 0.14.0, borg 1.2.4, page cache warm; medians of 3 runs):

    media 1013.8 MB, 2418 files    snapstore  restic  borg   snapstore --force
    again, unchanged                  1.47 s  1.33 s  0.87 s  2.78 s
    again, 3% new files               1.58 s  1.61 s  1.01 s
    media 100 MB, 202 files
    again, unchanged                  0.57 s  0.72 s  0.39 s  0.77 s
    again, 3% new files               0.49 s  0.70 s  0.33 s

The targets (0.5x borg, 0.5x restic) are missed: about 0.7 s of snapstore's run is fixed
(interpreter and imports, the Argon2id key derivation, the index, the parent lookup), and each
directory of the parent costs a tree blob read (a media tree has 2.6 directories per file).

    python benchmarks/bench_backup.py [--size-mib 256] [--media-mb 100] [--parts stream,media]
        [--fixtures /tmp/snapstore-fixtures]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.commands import measured, run, snapstore_summary, tool_env
from benchmarks.fixtures import MediaTree, kept_media_tree

PASSWORD = "benchmark password"


def dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def timed(cmd: list[str], env: dict[str, str], stdin: Path | None = None) -> float:
    started = time.perf_counter()
    with open(stdin, "rb") if stdin else open(os.devnull, "rb") as source:
        subprocess.run(cmd, env=env, stdin=source, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def make_data(work: Path, size: int) -> tuple[Path, Path]:
    rng = random.Random(42)
    # Half random, half text-like, so both the chunker and compression matter.
    text = b"".join(f"{i}\tuser{i % 977}\tstatus text number {i} with some words\n".encode() for i in range(size // 96))
    data = rng.randbytes(size // 2) + text[: size - size // 2]
    first = work / "day1.bin"
    first.write_bytes(data)
    middle = len(data) // 2
    second = work / "day2.bin"
    second.write_bytes(data[:middle] + rng.randbytes(100) + data[middle:])
    return first, second


def run_tool(name: str, steps: list[tuple[str, list[str], Path | None]], env: dict[str, str], repo: Path,
             size: int) -> dict[str, tuple[float, int]]:
    results = {}
    for label, cmd, stdin in steps:
        before = dir_size(repo) if repo.exists() else 0
        seconds = timed(cmd, env, stdin)
        results[label] = (seconds, dir_size(repo) - before)
        added = results[label][1]
        print(f"{name:9} {label:22} {size / seconds / 1e6:8.1f} MB/s  {seconds:7.2f} s  added {added / 1e6:9.2f} MB")
    return results


def bench_stream(size: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="snapstore-bench-"))
    try:
        first, second = make_data(work, size)
        print(f"data: {size >> 20} MiB stream (half random, half text); day 2 inserts 100 bytes in the middle")
        env = dict(os.environ, SNAPSTORE_PASSWORD=PASSWORD, RESTIC_PASSWORD=PASSWORD, BORG_PASSPHRASE=PASSWORD,
                   BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK="yes", BORG_RELOCATED_REPO_ACCESS_IS_OK="yes")
        results: dict[str, dict[str, tuple[float, int]]] = {}

        repo = work / "snapstore"
        env["SNAPSTORE_REPOSITORY"] = str(repo)
        subprocess.run(["snapstore", "init"], env=env, check=True, capture_output=True)
        restore_dir = work / "restore-snapstore"
        results["snapstore"] = run_tool("snapstore", [
            ("backup day 1", ["snapstore", "snapshot", "stdin", "--name", "db.dump", "--database"], first),
            ("backup day 1 again", ["snapstore", "snapshot", "stdin", "--name", "db.dump", "--database"], first),
            ("backup day 2 (+100 B)", ["snapstore", "snapshot", "stdin", "--name", "db.dump", "--database"], second),
            ("restore day 2", ["snapstore", "restore", "latest", "--target", str(restore_dir)], None),
            ("check --read-data", ["snapstore", "check", "--read-data"], None),
        ], env, repo, size)
        assert (restore_dir / "db.dump").read_bytes() == second.read_bytes(), "restore is not byte-identical"

        if shutil.which("restic"):
            repo = work / "restic"
            subprocess.run(["restic", "init", "-r", str(repo)], env=env, check=True, capture_output=True)
            r = ["restic", "-r", str(repo), "--no-cache"]
            results["restic"] = run_tool("restic", [
                ("backup day 1", r + ["backup", "--stdin", "--stdin-filename", "db.dump"], first),
                ("backup day 1 again", r + ["backup", "--stdin", "--stdin-filename", "db.dump"], first),
                ("backup day 2 (+100 B)", r + ["backup", "--stdin", "--stdin-filename", "db.dump"], second),
                ("restore day 2", r + ["restore", "latest", "--target", str(work / "restore-restic")], None),
                ("check --read-data", r + ["check", "--read-data"], None),
            ], env, repo, size)
        else:
            print("restic    not installed: no comparison")
        if shutil.which("borg"):
            repo = work / "borg"
            subprocess.run(["borg", "init", "--encryption", "repokey-blake2", str(repo)], env=env, check=True, capture_output=True)
            b = ["borg", "create", "--compression", "zstd,3"]
            results["borg"] = run_tool("borg", [
                ("backup day 1", b + [f"{repo}::d1", "-"], first),
                ("backup day 1 again", b + [f"{repo}::d1b", "-"], first),
                ("backup day 2 (+100 B)", b + [f"{repo}::d2", "-"], second),
                ("check --read-data", ["borg", "check", "--verify-data", str(repo)], None),
            ], env, repo, size)
        else:
            print("borg      not installed: no comparison")

        ours = results["snapstore"]
        for other in ("restic", "borg"):
            if other not in results:
                continue
            for label, (seconds, _) in results[other].items():
                if label in ours:
                    print(f"ratio     {label:22} snapstore is {seconds / ours[label][0]:5.2f}x the speed of {other}")
            label = "backup day 2 (+100 B)"
            print(f"ratio     {label:22} snapstore adds {ours[label][1] / max(1, results[other][label][1]):5.2f}x the bytes {other} adds")
    finally:
        shutil.rmtree(work, ignore_errors=True)


# --- the media tree, unchanged and with a few new files ---------------------------------------

NEW_DIR = "public/system/media_attachments/files/bench-new"
FORCED = "snapstore --force"


def media_commands(work: Path, root: Path) -> dict[str, tuple[list[str], list[str]]]:
    """Tool -> (init command, backup command without the archive name) for the tools here."""
    repo = work / "repos"
    tools = {
        "snapstore": (["snapstore", "init", "-r", str(repo / "snapstore")],
                      ["snapstore", "snapshot", "files", "-r", str(repo / "snapstore"), "--json",
                       str(root)]),
    }  # fmt: skip
    if shutil.which("restic"):
        r = ["restic", "-r", str(repo / "restic")]
        tools["restic"] = ([*r, "init"], [*r, "backup", "--json", str(root)])
    if shutil.which("borg"):
        tools["borg"] = (["borg", "init", "--encryption", "repokey-blake2", str(repo / "borg")],
                         ["borg", "create", "--compression", "zstd,3"])  # fmt: skip
    return tools


def add_new_files(tree: MediaTree, fraction: float, batch: int) -> int:
    """`fraction` of the tree's file count as new uploads (sizes drawn from the tree's own),
    under NEW_DIR/<batch>; returns the bytes written."""
    rng = random.Random(1000 + batch)
    sizes = [(tree.root / rel).stat().st_size for rel in sorted(tree.digests)]
    written = 0
    for n in range(max(1, round(len(sizes) * fraction))):
        path = tree.root / NEW_DIR / str(batch) / f"{n:06d}" / "original" / f"{rng.getrandbits(64):016x}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        size = rng.choice(sizes)
        path.write_bytes(rng.randbytes(size))
        written += size
    return written


def bench_media(total: int, runs: int, new_percent: float, fixtures: Path | None) -> None:
    work = Path(tempfile.mkdtemp(prefix="snapstore-bench-media-"))
    tree = kept_media_tree(fixtures, work, total, seed=1)
    env = tool_env(RESTIC_CACHE_DIR=str(work / "restic-cache"), BORG_BASE_DIR=str(work / "borg-base"))
    tools = media_commands(work, tree.root)
    times: dict[str, dict[str, list[float]]] = {name: {} for name in tools}
    archives = 0

    def backup(step: str, name: str) -> None:
        nonlocal archives
        cmd = tools[name.split()[0]][1] + name.split()[1:]
        if name == "borg":
            archives += 1
            cmd = [*cmd, f"{work / 'repos' / 'borg'}::a{archives}", str(tree.root)]
        out = bytearray()
        result = measured(cmd, env, consume=out.extend)
        times[name].setdefault(step, []).append(result.seconds)
        print(f"{name:9} {step:28} {result.seconds:7.2f} s  peak {result.peak_rss / 1e6:6.0f} MB"
              f"{_unchanged_note(name, bytes(out))}", flush=True)

    try:
        print(f"media: {tree.size / 1e6:.1f} MB in {tree.files} files at {tree.root}; "
              f"tools: {', '.join(tools)}; {runs} runs")
        for name, (init, _) in tools.items():
            run(init, env)
            backup("first backup", name)
        times[FORCED] = {}
        for _ in range(runs):
            for name in [*tools, FORCED]:  # FORCED: every file read, as before issue 13
                backup("again, unchanged", name)
        new_step = f"again, {new_percent:g}% new files"
        for batch in range(runs):
            added = add_new_files(tree, new_percent / 100, batch)
            print(f"added {added / 1e6:.1f} MB of new files (batch {batch})")
            for name in tools:
                backup(new_step, name)
        report(times, [("first backup", None), ("again, unchanged", ("borg", 0.5)),
                       (new_step, ("restic", 0.5))])  # fmt: skip
    finally:
        shutil.rmtree(tree.root / NEW_DIR, ignore_errors=True)  # a kept fixture stays as made
        shutil.rmtree(work, ignore_errors=True)


def _unchanged_note(name: str, out: bytes) -> str:
    """What the tool says it left unread: snapstore's files_unchanged, restic's unmodified."""
    text = out.decode(errors="replace")
    try:
        lines = [snapstore_summary(text)] if name.startswith("snapstore") else [
            json.loads(line) for line in text.splitlines() if line.startswith("{")]
    except ValueError:
        return ""
    for doc in lines:
        if name.startswith("snapstore") and "files_unchanged" in doc:
            return f"  ({doc['files_unchanged']} of {doc['files']} files unchanged)"
        if name == "restic" and doc.get("message_type") == "summary":
            return f"  ({doc['files_unmodified']} files unmodified)"
    return ""


def report(times: dict[str, dict[str, list[float]]], steps: list[tuple[str, tuple[str, float] | None]]) -> None:
    names = list(times)
    print("\n| step | " + " | ".join(f"{n} (s)" for n in names) + " | target |")
    print("|---|" + "---|" * len(names) + "---|")
    for step, target in steps:
        medians = {n: statistics.median(times[n][step]) for n in names if step in times[n]}
        cells = [f"{medians[n]:.2f}" if n in medians else "-" for n in names]
        verdict = ""
        if target is not None and target[0] in medians:
            other, factor = target
            ratio = medians["snapstore"] / medians[other]
            verdict = f"{ratio:.2f}x {other} (target <= {factor}x: {'met' if ratio <= factor else 'missed'})"
        print(f"| {step} | " + " | ".join(cells) + f" | {verdict} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default="stream,media", help="stream, media or both (comma-separated)")
    parser.add_argument("--size-mib", type=int, default=256, help="the stream's size")
    parser.add_argument("--media-mb", type=float, default=100, help="the media tree's size in MB")
    parser.add_argument("--new-percent", type=float, default=3.0, help="new files, as a share of the tree's")
    parser.add_argument("--runs", type=int, default=3, help="runs of each media step (median shown)")
    parser.add_argument("--fixtures", type=Path, help="keep the media tree here between runs")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    if "stream" in parts:
        bench_stream(args.size_mib << 20)
    if "media" in parts:
        bench_media(int(args.media_mb * 1e6), args.runs, args.new_percent, args.fixtures)


if __name__ == "__main__":
    main()
