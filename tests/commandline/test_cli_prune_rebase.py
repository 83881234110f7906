"""Prune re-bases deltas so that old versions no snapshot uses can go (issue 16), through the
installed command.

Nightly dumps stored as skip-delta chains rest, chunk by chunk, on the first night's whole
copy and on intermediate versions. Once `forget` has removed the old nights, those versions
are kept only as bases; `snapstore prune` stores the live deltas on such chains whole where
that frees more than it writes, so old whole copies leave the index, the repository ends
smaller than after a prune that keeps every base, every kept night restores byte for byte,
and `check --read-data` is clean.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import snapstore
from snapstore.snapshot.content import chunk_ids
from tests.commandline.test_cli_deltas import dump_like, open_repo, repo_bytes, snapshot_stdin
from tests.support.cli import PASSWORD, Cli

ROWS = 40_000
NIGHTS = 10


def back_up_nights(cli: Cli, rng: random.Random, rows: int, count: int, churn: int) -> dict[str, bytes]:
    """`count` nightly dumps of `rows` rows, `churn` more rows changed each night, backed up
    from standard input one night apart; returns each snapshot's id and its dump."""
    changed: set[int] = set()
    nights: dict[str, bytes] = {}
    for night in range(1, count + 1):
        changed |= set(rng.sample(range(rows), churn))
        data = dump_like(rows, changed)
        summary = snapshot_stdin(cli, data, "--time", f"2026-11-{night:02d}T03:15:00+00:00")
        nights[str(summary["snapshot_id"])] = data
    return nights


def dead_whole_bases(cli: Cli) -> set[bytes]:
    """Whole copies at the roots of the snapshots' chains that no snapshot uses itself."""
    return {b for b, is_delta in dead_bases(cli).items() if not is_delta}


def indexed(cli: Cli, blobs: set[bytes]) -> set[bytes]:
    repo = open_repo(cli)
    try:
        return {b for b in blobs if repo.has_blob(b)}
    finally:
        repo.close()


def test_prune_rebases_so_the_old_whole_copies_go(initialised: Cli, tmp_path: Path) -> None:
    nights = back_up_nights(initialised, random.Random(16), ROWS, NIGHTS, ROWS // 200)
    forgot = initialised("forget", "--keep-daily", "2")
    assert forgot.code == 0, forgot.err
    kept = [s["id"] for s in initialised("snapshots", "--json").json()]
    assert len(kept) == 2
    dead = dead_whole_bases(initialised)
    assert dead  # the first night's whole copies, kept only as bases

    plain, kept_bases = pruned_keeping_every_base(initialised, tmp_path)
    assert kept_bases.blobs_rebased == 0 and indexed(plain, dead) == dead

    pruned = initialised("prune", "--max-unused", "0", "--json")
    assert pruned.code == 0, pruned.err
    report = pruned.json()
    assert report["blobs_rebased"] > 0 and report["bases_freed"] > 0, report
    assert report["rebase_bytes_written"] > 0 and report["bases_freed_bytes"] > 0, report
    left = indexed(initialised, dead)
    assert len(left) < len(dead), (len(left), len(dead))
    assert report["blobs_used"] == kept_bases.blobs_used - report["bases_freed"]
    assert repo_bytes(initialised.repo) < repo_bytes(plain.repo)
    print(
        f"\n{len(dead) - len(left)} of {len(dead)} dead whole bases gone; "
        f"rebased {report['blobs_rebased']} ({report['rebase_bytes_written']} B) freeing "
        f"{report['bases_freed']} bases ({report['bases_freed_bytes']} B); repository "
        f"{repo_bytes(initialised.repo)} B against {repo_bytes(plain.repo)} B keeping every base"
    )

    assert_kept_nights_restore(initialised, kept, nights, tmp_path)
    again = initialised("prune", "--max-unused", "0", "--json").json()
    assert again["blobs_rebased"] == 0 and again["bytes_freed"] == 0, again


def dead_bases(cli: Cli) -> dict[bytes, bool]:
    """The bases of the snapshots' chains that no snapshot uses itself, each with whether its
    indexed copy is a delta."""
    repo = open_repo(cli)
    try:
        used: set[bytes] = set()
        bases: set[bytes] = set()
        for snap in snapstore.list_snapshots(repo):
            node = snapstore.find_node(repo, snap.tree, "db.dump")
            assert node is not None
            for blob_id in chunk_ids(repo, node):
                used.add(bytes(blob_id))
                base = repo.delta_base_of(blob_id)
                while base is not None:
                    bases.add(bytes(base))
                    base = repo.delta_base_of(base)
        return {b: repo.index.lookup(b).is_delta for b in bases - used}  # type: ignore[union-attr]
    finally:
        repo.close()


WEEKLY_ROWS = 8_000
WEEKLY_NIGHTS = 10


def test_prune_under_daily_and_weekly_retention_stores_dead_branch_points_whole(
    initialised: Cli, tmp_path: Path
) -> None:
    """Ten nights from Sunday 1 November, `forget --keep-daily 2 --keep-weekly 2` keeps nights
    8 (the last of its week), 9 and 10. For most chunks (those whose chain started at
    generation 2 to 6) their versions rest on one dead intermediate version, which rests on
    the dead first night: storing the nights whole would cost a whole copy each, storing that
    version whole one. Prune does so (it stays, as their base), the chain under it goes, the
    repository ends smaller than keeping every base, every kept night restores and `check
    --read-data` is clean."""
    nights = back_up_nights(initialised, random.Random(7), WEEKLY_ROWS, WEEKLY_NIGHTS, WEEKLY_ROWS // 100)
    forgot = initialised("forget", "--keep-daily", "2", "--keep-weekly", "2")
    assert forgot.code == 0, forgot.err
    kept = [s["id"] for s in initialised("snapshots", "--json").json()]
    assert len(kept) == 3
    before = dead_bases(initialised)
    dead_deltas = {b for b, is_delta in before.items() if is_delta}
    assert dead_deltas

    plain, kept_bases = pruned_keeping_every_base(initialised, tmp_path)

    pruned = initialised("prune", "--max-unused", "0", "--json")
    assert pruned.code == 0, pruned.err
    report = pruned.json()
    after = dead_bases(initialised)
    stored_whole = {b for b in dead_deltas if after.get(b) is False}  # dead, now whole, still a base
    assert stored_whole, report
    assert report["blobs_used"] == kept_bases.blobs_used - report["bases_freed"]
    assert repo_bytes(initialised.repo) < repo_bytes(plain.repo)
    print(
        f"\n{len(stored_whole)} of {len(dead_deltas)} dead delta bases stored whole; rebased "
        f"{report['blobs_rebased']} ({report['rebase_bytes_written']} B) freeing {report['bases_freed']} "
        f"bases ({report['bases_freed_bytes']} B); repository {repo_bytes(initialised.repo)} B against "
        f"{repo_bytes(plain.repo)} B keeping every base"
    )
    assert_kept_nights_restore(initialised, kept, nights, tmp_path)


def pruned_keeping_every_base(cli: Cli, tmp_path: Path) -> tuple[Cli, snapstore.PruneReport]:
    """A copy of the repository pruned by the library without re-basing, to compare with."""
    plain = Cli(tmp_path / "plain", dict(cli.env, SNAPSTORE_REPOSITORY=str(tmp_path / "plain")))
    shutil.copytree(cli.repo, plain.repo)
    with snapstore.open_repository(str(plain.repo), PASSWORD.encode()) as repo:
        return plain, snapstore.prune(repo, snapstore.PruneOptions(max_unused=0.0, rebase=False))


def assert_kept_nights_restore(cli: Cli, kept: list[str], nights: dict[str, bytes], tmp_path: Path) -> None:
    """Every kept night restores byte for byte and `check --read-data` is clean."""
    for snap_id in kept:
        target = tmp_path / f"restored-{snap_id[:8]}"
        restored = cli("restore", snap_id, "--target", str(target))
        assert restored.code == 0, restored.err
        assert (target / "db.dump").read_bytes() == nights[snap_id]
    check = cli("check", "--read-data")
    assert check.code == 0, check.err + check.text
