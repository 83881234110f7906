"""Commands at once on one repository, through the installed command: two snapshots; a snapshot
during prune; prune during copy. Locks decide (SPEC.md section 10): snapshots share, prune
excludes, and a command that cannot take its lock waits (--retry-lock) or exits 11; nothing
is ever corrupted: afterwards `check --read-data` is clean and every snapshot restores.

Each test overlaps the commands two ways: freely, started at random offsets (they may or may
not meet), and for certain, by stopping the first one (SIGSTOP) at a random point of its work
while it holds its lock, running the second, and letting the first go on (SIGCONT).
"""

from __future__ import annotations

import io
import random
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import snapstore
from tests.support.cli import PASSWORD, Cli, command_json
from tests.support.cli_repos import (
    assert_checks_clean,
    base_seed,
    dumped_here,
    feed,
    kill_all,
    new_repository,
    opened,
)
from tests.support.processes import finish, objects, start, wait_for

PACK_SIZE = 64 * 1024
EXIT_LOCKED = 11
MiB = 1 << 20


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[bytes]]]:
    """The commands a test starts in the background; any still running at its end (it failed)
    are ended, stopped ones too."""
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    kill_all(procs)


def write_tree(root: Path, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)


def restored_files(cli: Cli, snap_id: str, source: Path, target: Path) -> dict[str, bytes]:
    with opened(cli) as repo:
        result = snapstore.restore(repo, snapstore.find_snapshot(repo, snap_id), target)
    assert not result.errors, result.errors
    root = target / str(source).lstrip("/")
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def new_lock(repo: Path, before: set[str]) -> bool:
    return bool({p.name for p in objects(repo, "locks")} - before)


def stop_while_locked(
    proc: subprocess.Popen[bytes], repos: list[Path], rng: random.Random, window: float
) -> bool:
    """Stops `proc` (SIGSTOP) at a random moment within `window` seconds after its lock
    appeared in every repository of `repos`; True if it was stopped still holding them
    (False: it ended first)."""
    before = [{p.name for p in objects(repo, "locks")} for repo in repos]
    wait_for(
        lambda: proc.poll() is not None or all(new_lock(r, b) for r, b in zip(repos, before, strict=True)),
        what="the lock",
        interval=0.002,
    )
    time.sleep(rng.uniform(0, window))
    if proc.poll() is not None:
        return False
    proc.send_signal(signal.SIGSTOP)
    if all(new_lock(r, b) for r, b in zip(repos, before, strict=True)):
        return True
    proc.send_signal(signal.SIGCONT)  # it was letting go: no overlap this time
    return False


def resume(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGCONT)


def test_two_snapshots_at_once_both_succeed_and_both_restore(
    tmp_path: Path, started: list[subprocess.Popen[bytes]]
) -> None:
    rng = random.Random(base_seed(20260512))
    cli = new_repository(tmp_path, pack_size=PACK_SIZE)
    shared = {f"shared/{i}.bin": rng.randbytes(rng.randrange(1, 900_000)) for i in range(4)}
    saved: dict[str, tuple[Path, dict[str, bytes]]] = {}
    number = 0

    def source() -> tuple[Path, dict[str, bytes]]:
        nonlocal number
        number += 1
        root = tmp_path / f"src{number}"
        files = dict(shared)  # the same blobs go up from both at once
        files.update({f"own/{i}.bin": rng.randbytes(rng.randrange(1, 600_000)) for i in range(3)})
        write_tree(root, files)
        return root, files

    def record(result: tuple[int, bytes, str], taken: tuple[Path, dict[str, bytes]]) -> None:
        code, out, err = result
        assert code == 0, err
        saved[command_json(out)["snapshot_id"]] = taken

    for _ in range(2):  # started at random offsets
        first, second = source(), source()
        one = start(cli, "snapshot", "files", str(first[0]), "--json")
        started.append(one)
        time.sleep(rng.uniform(0, 0.5))
        other = start(cli, "snapshot", "files", str(second[0]), "--json")
        started.append(other)
        record(finish(one), first)
        record(finish(other), second)
        assert_checks_clean(cli)
    window = 0.2
    for _ in range(5):  # the first stopped half-way: the second runs from start to end meanwhile
        first, second = source(), source()
        one = start(cli, "snapshot", "files", str(first[0]), "--json")
        started.append(one)
        stopped = stop_while_locked(one, [cli.repo], rng, window)
        taken = cli("snapshot", "files", str(second[0]), "--json")
        if stopped:
            resume(one)
        record(finish(one), first)
        record((taken.code, taken.out, taken.err), second)
        assert_checks_clean(cli)
        if stopped:
            break
        window /= 2
    else:
        raise AssertionError("the first snapshot ended each time before it could be stopped")
    pruned = cli("prune", "--max-unused", "0")  # duplicates uploaded by both go
    assert pruned.code == 0, pruned.err
    assert_checks_clean(cli)
    for number, (snap_id, (root, files)) in enumerate(saved.items()):
        assert restored_files(cli, snap_id, root, tmp_path / f"out{number}") == files


def garbage(cli: Cli, rng: random.Random, saved: dict[str, bytes]) -> None:
    """Three snapshots of a stream, of which forget leaves the last: prune has work to do.
    (Set up in this process: only the commands that meet go through the installed command.)"""
    with opened(cli, lock="exclusive") as repo:
        for _ in range(3):
            data = rng.randbytes(2 * MiB)
            source = snapstore.StreamSource(io.BytesIO(data), "dump.sql")
            snap = snapstore.take_snapshot(repo, source).snapshot
            saved[snap.id.hex() if snap.id else ""] = data
        result = snapstore.forget(repo, snapstore.RetentionPolicy(keep_last=1))
    for snap in result.removed:  # (a destination's copies are not in `saved`)
        saved.pop(snap.id.hex() if snap.id else "", None)


def test_a_snapshot_during_prune_waits_or_fails_with_exit_11(
    tmp_path: Path, started: list[subprocess.Popen[bytes]]
) -> None:
    rng = random.Random(base_seed(20260513))
    cli = new_repository(tmp_path, pack_size=PACK_SIZE)
    saved: dict[str, bytes] = {}
    outcomes: dict[str, int] = {}

    # Stopped while it holds its lock: a snapshot now exits 11; one with --retry-lock waits.
    for _ in range(6):  # stopped as soon as its lock shows: a loaded machine may still lose
        garbage(cli, rng, saved)
        prune = start(cli, "prune", "--max-unused", "0")
        started.append(prune)
        if stop_while_locked(prune, [cli.repo], rng, window=0.0):
            break
        assert finish(prune)[0] == 0
    else:
        raise AssertionError("prune ended each time before it could be stopped")
    data = rng.randbytes(MiB)
    refused = cli("snapshot", "stdin", "--database", "--name", "dump.sql", input=data)
    assert refused.code == EXIT_LOCKED and "exclusive lock" in refused.err, refused.err
    waiting = start(cli, "snapshot", "stdin", "--database", "--name", "dump.sql", "--json",
                    "--retry-lock", "2m")  # fmt: skip
    started.append(waiting)
    feeding = feed(waiting, data)
    time.sleep(1.5)
    assert waiting.poll() is None, "the snapshot did not wait for prune"
    resume(prune)
    assert finish(prune)[0] == 0
    feeding.join()  # before finish(), whose communicate() would close stdin under the feeder
    code, out, err = finish(waiting)
    assert code == 0, err
    saved[command_json(out)["snapshot_id"]] = data
    assert_checks_clean(cli)

    # Started at random offsets: each ends with 0 or 11, never anything else.
    for _ in range(2):
        garbage(cli, rng, saved)
        data = rng.randbytes(MiB)
        prune = start(cli, "prune", "--max-unused", "0")
        time.sleep(rng.uniform(0, 0.4))
        snap = start(cli, "snapshot", "stdin", "--database", "--name", "dump.sql", "--json")
        started += [prune, snap]
        feeding = feed(snap, data)
        prune_code, _, prune_err = finish(prune)
        feeding.join()  # all fed, or the snapshot ended (exit 11) and the feeder saw the pipe close
        snap_code, out, snap_err = finish(snap)
        assert prune_code in (0, EXIT_LOCKED) and snap_code in (0, EXIT_LOCKED), (prune_err, snap_err)
        outcome = f"prune {prune_code}, snapshot {snap_code}"
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        if snap_code == 0:
            saved[command_json(out)["snapshot_id"]] = data
        assert_checks_clean(cli)
    print(f"\nsnapshot during prune, started freely: {outcomes}")
    for snap_id, data in saved.items():
        assert dumped_here(cli, snap_id) == data


def test_prune_during_copy_waits_or_fails_with_exit_11(
    tmp_path: Path, started: list[subprocess.Popen[bytes]]
) -> None:
    rng = random.Random(base_seed(20260514))
    src = new_repository(tmp_path, "src", pack_size=PACK_SIZE)
    src = Cli(src.repo, dict(src.env, SNAPSTORE_TO_PASSWORD=PASSWORD))
    dst = new_repository(tmp_path, "dst", pack_size=PACK_SIZE)
    saved: dict[str, bytes] = {}
    outcomes: dict[str, int] = {}

    # Copy stopped while it holds its locks on both: prune of either exits 11, or waits.
    for _ in range(6):  # stopped as soon as its locks show: a loaded machine may still lose
        garbage(src, rng, saved)
        garbage(dst, rng, {})  # something for a prune of the destination to do
        copy = start(src, "copy", "--to", str(dst.repo))
        started.append(copy)
        if stop_while_locked(copy, [src.repo, dst.repo], rng, window=0.0):
            break
        assert finish(copy)[0] == 0
    else:
        raise AssertionError("copy ended each time before it could be stopped")
    for cli in (src, dst):
        refused = cli("prune")
        assert refused.code == EXIT_LOCKED and "shared lock" in refused.err, refused.err
    waiting = start(src, "prune", "--max-unused", "0", "--retry-lock", "2m")
    started.append(waiting)
    time.sleep(1.5)
    assert waiting.poll() is None, "prune did not wait for copy"
    resume(copy)
    assert finish(copy)[0] == 0
    assert finish(waiting)[0] == 0
    assert_checks_clean(src)
    assert_checks_clean(dst)

    # Started at random offsets: each ends with 0 or 11.
    for _ in range(2):
        garbage(src, rng, saved)
        copy = start(src, "copy", "--to", str(dst.repo))
        time.sleep(rng.uniform(0, 0.4))
        prune = start(src, "prune", "--max-unused", "0")
        started += [copy, prune]
        (copy_code, _, copy_err), (prune_code, _, prune_err) = finish(copy), finish(prune)
        assert copy_code in (0, EXIT_LOCKED) and prune_code in (0, EXIT_LOCKED), (copy_err, prune_err)
        outcome = f"copy {copy_code}, prune {prune_code}"
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        assert_checks_clean(src)
        assert_checks_clean(dst)
    print(f"\nprune during copy, started freely: {outcomes}")
    copied = dst("snapshots", "--json").json()
    sources = {str(s["metadata"].get("copied_from")): s["id"] for s in copied}
    for snap_id, data in saved.items():
        assert dumped_here(src, snap_id) == data
        if snap_id in sources:
            assert dumped_here(dst, sources[snap_id]) == data
