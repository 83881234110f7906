"""Local repositories driven through the installed command, for the crash, kill and
concurrency tests: one to create, the same command line pointed at another, a clean check,
a snapshot of standard input, a seed that can be changed from outside; and the same
repositories opened in this process through the library, to set them up and to check them
quickly."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import snapstore
from tests.support.cli import PASSWORD, Cli
from tests.support.processes import objects

SEED_VARIABLE = "SNAPSTORE_TEST_SEED"


def base_seed(default: int) -> int:
    """A test's seed: `default`, or SNAPSTORE_TEST_SEED to try other random choices."""
    return int(os.environ.get(SEED_VARIABLE, default))


def new_repository(tmp_path: Path, name: str = "repo", pack_size: int | None = None) -> Cli:
    """A fresh local repository and the command line pointed at it (no SNAPSTORE_* of ours)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SNAPSTORE_")}
    env.update(SNAPSTORE_REPOSITORY=str(tmp_path / name), SNAPSTORE_PASSWORD=PASSWORD)
    made = Cli(tmp_path / name, env)
    args = ["init"] if pack_size is None else ["init", "--pack-size", str(pack_size)]
    created = made(*args)
    assert created.code == 0, created.err
    return made


def on(cli: Cli, repo: Path) -> Cli:
    """The same command line, pointed at another repository."""
    return Cli(repo, dict(cli.env, SNAPSTORE_REPOSITORY=str(repo)))


def stored_bytes(repo: Path) -> int:
    return sum(p.stat().st_size for folder in ("data", "index") for p in objects(repo, folder))


def assert_clean(cli: Cli) -> None:
    checked = cli("check", "--read-data")
    assert checked.code == 0, checked.out.decode() + checked.err


def snapshot_stdin(cli: Cli, data: bytes, name: str = "dump.sql") -> dict[str, Any]:
    taken = cli("snapshot", "stdin", "--database", "--name", name, "--json", input=data)
    assert taken.code == 0, taken.err
    result: dict[str, Any] = taken.json()
    return result


def feed(proc: subprocess.Popen[bytes], data: bytes) -> threading.Thread:
    """Writes `data` to the command's standard input from a thread of its own, then closes it:
    a command that waits for its lock reads nothing meanwhile, and one killed reads no more
    (the rest is dropped). Join the thread once the command has ended."""

    def write() -> None:
        assert proc.stdin is not None
        try:
            for at in range(0, len(data), 1 << 16):
                proc.stdin.write(data[at : at + (1 << 16)])
            proc.stdin.close()
        except (BrokenPipeError, ValueError, OSError):
            pass

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    return thread


def kill_all(procs: Iterable[subprocess.Popen[bytes]]) -> None:
    """Ends the commands a failed test left running, stopped ones too."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)
            proc.kill()
            proc.wait()


def opened(cli: Cli, **kwargs: Any) -> snapstore.Repository:
    """The repository opened in this process (no lock unless asked for); a damaged index file
    or snapshot fails the test."""
    damaged: list[snapstore.DamagedObject] = []
    repo = snapstore.open_repository(
        str(cli.repo), PASSWORD.encode(), on_damaged=damaged.append, **kwargs
    )
    assert not damaged, damaged
    return repo


def assert_checks_clean(cli: Cli, where: str = "") -> None:
    """What `check --read-data` finds, found in this process: no error (notes are fine)."""
    with opened(cli, load_index=False) as repo:
        report = snapstore.check(repo, snapstore.CheckOptions(read_data=True))
        assert report.ok, f"{where}: " + "\n".join(str(f) for f in report.errors)
        assert not repo.damaged, (where, repo.damaged)


def dumped_here(cli: Cli, snap_id: str, path: str = "/dump.sql") -> bytes:
    """One file of a snapshot, read in this process."""
    with opened(cli) as repo:
        return b"".join(snapstore.dump_file(repo, snapstore.find_snapshot(repo, snap_id), path))
