"""Kill -9 at random moments: a snapshot, then prune. Afterwards `check` passes, the snapshots
that were not forgotten restore byte for byte, and a re-run completes and reuses the upload.

Also the space test through the command line: snapshot A, snapshot B, forget A, prune.
"""

from __future__ import annotations

import random
import shutil
import time
from pathlib import Path

import pytest

from tests.support.cli import Cli
from tests.support.cli_repos import (
    assert_clean,
    new_repository,
    on,
    snapshot_stdin,
    stored_bytes,
)
from tests.support.processes import objects, start, wait_for

PACK_SIZE = 64 * 1024
MiB = 1 << 20


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return new_repository(tmp_path, pack_size=PACK_SIZE)


def killed_snapshot(cli: Cli, data: bytes, kill_after: int | None, delay: float = 0.0) -> int:
    """Streams `data` into a snapshot and kills it (SIGKILL) once `kill_after` bytes went in, or
    `delay` seconds after the start when `kill_after` is None. Returns the bytes sent."""
    proc = start(cli, "snapshot", "stdin", "--database", "--name", "dump.sql")
    assert proc.stdin is not None
    sent = 0
    if kill_after is None:
        time.sleep(delay)
    else:
        try:
            while sent < kill_after:
                piece = data[sent : min(kill_after, sent + (128 << 10))]
                proc.stdin.write(piece)
                proc.stdin.flush()
                sent += len(piece)
        except BrokenPipeError:
            pass
    proc.kill()
    proc.wait()
    proc.stdin.close()
    return sent


def test_a_snapshot_killed_at_random_moments_leaves_a_clean_repository_and_resumes(
    cli: Cli,
) -> None:
    rng = random.Random(20261122)
    data = rng.randbytes(24 * MiB)
    # Early kills land in start-up, locking, reading the index and recovery; the others in the
    # middle of the upload, each a little further in (as a cron job retried after each cut).
    for delay in (0.3, 0.9):
        killed_snapshot(cli, data, None, delay)
        assert_clean(cli)
    cut = 0
    for _ in range(3):
        cut = rng.randint(cut + MiB, cut + 8 * MiB)
        killed_snapshot(cli, data, cut)
        assert_clean(cli)
        assert not objects(cli.repo, "snapshots")
    summary = snapshot_stdin(cli, data)
    # Everything uploaded before the last cut is reused, indexed or not: only the rest is new.
    assert summary["bytes_added"] < len(data) - cut + 4 * MiB, (summary, cut)
    assert summary["bytes_read"] == len(data)
    assert_clean(cli)
    dumped = cli("dump", "latest", "dump.sql")
    assert dumped.code == 0 and dumped.out == data


def test_a_snapshot_killed_after_all_its_input_still_leaves_a_clean_repository(cli: Cli) -> None:
    data = random.Random(3).randbytes(6 * MiB)
    for delay in (0.05, 0.3):
        proc = start(cli, "snapshot", "stdin", "--database", "--name", "dump.sql")
        assert proc.stdin is not None
        proc.stdin.write(data)
        proc.stdin.close()
        # The end: flushing the last pack, the index file, the snapshot, the lock.
        wait_for(lambda: len(objects(cli.repo, "data")) > 10, what="packs")
        time.sleep(delay)
        proc.kill()
        proc.wait()
        assert_clean(cli)
    assert snapshot_stdin(cli, data)["bytes_added"] < MiB


def prepared(cli: Cli) -> tuple[bytes, bytes]:
    """Snapshot A, then B sharing half of A's data; A is forgotten. Returns (A's data, B's)."""
    rng = random.Random(11)
    shared, a_only, b_only = rng.randbytes(3 * MiB), rng.randbytes(4 * MiB), rng.randbytes(MiB)
    a = snapshot_stdin(cli, a_only + shared)
    snapshot_stdin(cli, shared + b_only)
    (cli.repo / "snapshots" / str(a["snapshot_id"])).unlink()  # forget A
    return a_only + shared, shared + b_only


def test_prune_killed_at_random_moments_keeps_every_snapshot_not_forgotten(
    cli: Cli, tmp_path: Path
) -> None:
    _, b_data = prepared(cli)
    clean = on(cli, tmp_path / "clean")
    shutil.copytree(cli.repo, clean.repo)
    assert clean("prune", "--max-unused", "0").code == 0
    packs = len(objects(cli.repo, "data"))
    indexes = {p.name for p in objects(cli.repo, "index")}
    moments = {
        "while it reads": lambda r: objects(r, "locks"),
        "once the new index is written": lambda r: {p.name for p in objects(r, "index")} - indexes,
        "once the old index is deleted": lambda r: (
            not indexes & {p.name for p in objects(r, "index")}
        ),
        "while it deletes packs": lambda r: len(objects(r, "data")) < packs - 5,
    }
    hit = []
    for number, (moment, reached) in enumerate(moments.items()):
        for attempt in range(3):  # prune of this small repository is quick: it may get away
            copy = on(cli, tmp_path / f"copy{number}-{attempt}")
            shutil.copytree(cli.repo, copy.repo)
            proc = start(copy, "prune", "--max-unused", "0")
            wait_for(
                lambda: reached(copy.repo) or proc.poll() is not None,  # noqa: B023
                timeout=60,
                what=moment,
                interval=0.001,
            )
            proc.kill()
            if proc.wait() != 0:
                hit.append(moment)
            assert_clean(copy)  # the dead prune's lock is stale: check is not blocked
            dumped = copy("dump", "latest", "dump.sql")
            assert dumped.code == 0 and dumped.out == b_data, moment
            finished = copy("prune", "--max-unused", "0")
            assert finished.code == 0, finished.err
            assert stored_bytes(copy.repo) <= stored_bytes(clean.repo) + PACK_SIZE, moment
            if hit and hit[-1] == moment:
                break
    assert len(hit) >= 3, f"prune was killed mid-way only {hit}"
    assert_clean(copy)


def test_space_comes_back_after_forget_and_prune(
    cli: Cli, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A and B share a file; A's own file is 4 MiB. Forget A, prune: about 4 MiB come back."""
    rng = random.Random(13)
    shared = rng.randbytes(3 * MiB)
    for name, own in (("a", rng.randbytes(4 * MiB)), ("b", rng.randbytes(MiB))):
        (tmp_path / name).mkdir()
        (tmp_path / name / "shared.bin").write_bytes(shared)
        (tmp_path / name / "own.bin").write_bytes(own)
    taken = [cli("snapshot", "files", str(tmp_path / name), "--json") for name in "ab"]
    assert all(t.code == 0 for t in taken), [t.err for t in taken]
    (cli.repo / "snapshots" / taken[0].json()["snapshot_id"]).unlink()  # forget A
    before = stored_bytes(cli.repo)
    # --max-unused 0: the repository's random chunker seed sometimes puts the end of A's file
    # in a pack with B's data, and by default prune may leave that little unused (5%)
    pruned = cli("prune", "--max-unused", "0", "--json")
    assert pruned.code == 0, pruned.err
    report = pruned.json()
    after = stored_bytes(cli.repo)
    freed = before - after
    with capsys.disabled():
        print(
            f"\nspace test: {before} bytes of packs and index before prune, {after} after: "
            f"{freed} freed for A's {4 * MiB} bytes of its own; report: {report}"
        )
    assert 4 * MiB < freed < 4 * MiB + 64 * 1024  # A's file, its trees, pack headers
    assert abs(report["bytes_freed"] - freed) < 0.001 * freed
    assert_clean(cli)
    target = tmp_path / "restored"
    assert cli("restore", "latest", "--target", str(target)).code == 0
    restored = target / str(tmp_path / "b").lstrip("/")
    assert (restored / "shared.bin").read_bytes() == shared
    assert (restored / "own.bin").read_bytes() == (tmp_path / "b" / "own.bin").read_bytes()
