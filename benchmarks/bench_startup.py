"""Start-up: how long a command that does almost nothing takes, as cron jobs and scripts see it.

Prints the median wall time and CPU time (user + system) of `snapstore --help`, `--version`
and `snapshots` on a small local repository (two snapshots), next to `restic version` /
`restic snapshots` and `borg --version` / `borg list` on the same data when they are
installed, and the ratios. `snapshots` includes each tool's key derivation from the password
(snapstore: Argon2id; restic: scrypt; borg 1.x: PBKDF2), which is part of what a cron job
waits for. `python -c pass` is the interpreter's own floor.

snapstore is run as the console script next to this Python (`<prefix>/bin/snapstore`) and,
when `snapstore` on PATH is another file (a pyenv shim, say), through that too: a shim adds
its own start-up.

    python benchmarks/bench_startup.py [--runs 15]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.commands import run, tool_env  # noqa: E402


def timed(cmd: list[str], env: dict[str, str], runs: int) -> tuple[float, float]:
    """Median wall and median CPU seconds of `runs` runs, after one untimed warm-up run."""
    walls, cpus = [], []
    for i in range(runs + 1):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        done = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, check=False)
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}): "
                               f"{done.stderr.decode(errors='replace')[-2000:]}")
        if i:
            walls.append(wall)
            cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(walls), statistics.median(cpus)


def snapstore_commands() -> list[tuple[str, str]]:
    """(label, path) of the console script beside this Python, then of each other `snapstore`
    on PATH (a pyenv shim, say)."""
    beside = Path(sys.executable).parent / "snapstore"
    if not beside.exists():
        raise SystemExit("snapstore is not installed: run the README's install command")
    found = [("snapstore", str(beside))]
    seen = {beside.resolve()}
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        candidate = Path(folder or ".") / "snapstore"
        if os.access(candidate, os.X_OK) and candidate.resolve() not in seen:
            seen.add(candidate.resolve())
            found.append((f"snapstore ({folder})", str(candidate)))
    return found


def make_repositories(work: Path, env: dict[str, str]) -> dict[str, Path]:
    """A small folder backed up twice by each tool; the repositories by tool."""
    data = work / "data"
    data.mkdir()
    for i in range(20):
        (data / f"file{i}.txt").write_text(f"file {i}\n" * 100)
    repos = {"snapstore": work / "snapstore"}
    snapstore = snapstore_commands()[0][1]
    run([snapstore, "init", "-r", str(repos["snapstore"])], env)
    for _ in range(2):
        run([snapstore, "snapshot", "files", "-r", str(repos["snapstore"]), str(data)], env)
    if shutil.which("restic"):
        repos["restic"] = work / "restic"
        run(["restic", "init", "-r", str(repos["restic"])], env)
        for _ in range(2):
            run(["restic", "backup", "-r", str(repos["restic"]), str(data)], env)
    if shutil.which("borg"):
        repos["borg"] = work / "borg"
        run(["borg", "init", "--encryption", "repokey", str(repos["borg"])], env)
        for day in (1, 2):
            run(["borg", "create", f"{repos['borg']}::day{day}", str(data)], env)
    return repos


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=15, help="timed runs per command")
    args = parser.parse_args()
    env = tool_env()
    results: dict[str, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        repos = make_repositories(Path(tmp), env)
        commands: list[tuple[str, list[str]]] = [("python -c pass", [sys.executable, "-c", "pass"])]
        for label, exe in snapstore_commands():
            commands += [
                (f"{label} --help", [exe, "--help"]),
                (f"{label} --version", [exe, "--version"]),
                (f"{label} snapshots", [exe, "snapshots", "-r", str(repos["snapstore"])]),
            ]
        if "restic" in repos:
            commands += [
                ("restic version", ["restic", "version"]),
                ("restic snapshots", ["restic", "snapshots", "-r", str(repos["restic"])]),
            ]
        if "borg" in repos:
            commands += [
                ("borg --version", ["borg", "--version"]),
                ("borg list", ["borg", "list", str(repos["borg"])]),
            ]
        print(f"median of {args.runs} runs (load average {os.getloadavg()[0]:.1f})")
        print(f"{'command':<46} {'wall ms':>8} {'cpu ms':>8}")
        for label, cmd in commands:
            results[label] = timed(cmd, env, args.runs)
            wall, cpu = results[label]
            print(f"{label:<46} {wall * 1000:8.0f} {cpu * 1000:8.0f}")
    ratios = [
        ("snapstore --version", "restic version"),
        ("snapstore --version", "borg --version"),
        ("snapstore snapshots", "restic snapshots"),
        ("snapstore snapshots", "borg list"),
    ]
    for ours, theirs in ratios:
        if ours in results and theirs in results:
            wall = results[ours][0] / results[theirs][0]
            print(f"{ours} / {theirs}: {wall:.2f}x wall")


if __name__ == "__main__":
    main()
