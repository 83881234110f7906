"""End-to-end backup and restore throughput, and what a modified stream costs.

Prints plain lines: MB/s for a first snapshot of a stream, a second unchanged one, a
modified one (100 bytes inserted in the middle), restore, and check --read-data; the bytes
each adds. Where restic or borg is installed, runs them on the same data in the same run and
prints the ratios.

    python benchmarks/bench_backup.py [--size-mib 256]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=256)
    args = parser.parse_args()
    size = args.size_mib << 20
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


if __name__ == "__main__":
    main()
