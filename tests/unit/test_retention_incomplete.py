"""Retention with incomplete snapshots (issue 12, item 4): they fill no bucket, keep-within
neither keeps them nor measures from them, the newest is kept while no complete one is newer
(borg's checkpoints), keep-tag keeps them as any other. Times in UTC, buckets in UTC."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from snapstore.errors import UsageError
from snapstore.ids import Id
from snapstore.retention import INCOMPLETE_REASON, RetentionPolicy, apply_policy, plan_forget
from snapstore.snapshot.manifest import Snapshot, Summary
from snapstore.snapshot.selection import SnapshotFilter

NOW = datetime(2100, 1, 1, tzinfo=UTC)


def snap(when: str, *, failed: bool = False, tags: tuple[str, ...] = (),
         paths: tuple[str, ...] = ("/srv",)) -> Snapshot:
    return Snapshot(
        time=datetime.fromisoformat(when + "+00:00"), host="web1", user="root", tags=list(tags),
        source="files", paths=list(paths), tree=Id(bytes(32)),
        summary=Summary(files=1, errors=1 if failed else 0),
        id=Id(hashlib.blake2b(f"{when}{paths}".encode(), digest_size=32).digest()),
    )


def kept(snapshots: list[Snapshot], policy: RetentionPolicy) -> dict[str, tuple[str, ...]]:
    """time -> reasons of each snapshot kept"""
    return {d.snapshot.time.strftime("%m-%d %H:%M"): d.reasons
            for d in apply_policy(snapshots, policy, NOW, UTC) if d.keep}


def test_an_incomplete_night_does_not_take_the_days_bucket() -> None:
    snaps = [snap("2024-03-01T10:00"), snap("2024-03-02T10:00"),
             snap("2024-03-02T23:00", failed=True)]
    assert kept(snaps, RetentionPolicy(keep_daily=2)) == {
        "03-02 23:00": (INCOMPLETE_REASON,), "03-02 10:00": ("daily #1",),
        "03-01 10:00": ("daily #2",)}


def test_only_the_newest_incomplete_is_kept_and_only_while_no_complete_is_newer() -> None:
    snaps = [snap("2024-03-01T03:00"), snap("2024-03-02T03:00", failed=True),
             snap("2024-03-03T03:00"), snap("2024-03-04T03:00", failed=True),
             snap("2024-03-05T03:00", failed=True)]
    assert kept(snaps, RetentionPolicy(keep_daily=7)) == {
        "03-05 03:00": (INCOMPLETE_REASON,), "03-03 03:00": ("daily #1",),
        "03-01 03:00": ("daily #2",)}
    assert kept(snaps, RetentionPolicy(keep_last=1)) == {
        "03-05 03:00": (INCOMPLETE_REASON,), "03-03 03:00": ("last #1",)}
    healed = snaps + [snap("2024-03-06T03:00")]
    assert kept(healed, RetentionPolicy(keep_last=2)) == {
        "03-06 03:00": ("last #1",), "03-03 03:00": ("last #2",)}


def test_the_oldest_rule_extends_to_the_oldest_complete_snapshot() -> None:
    snaps = [snap("2024-03-01T03:00", failed=True), snap("2024-03-02T01:00"),
             snap("2024-03-02T03:00")]
    assert kept(snaps, RetentionPolicy(keep_daily=5)) == {
        "03-02 03:00": ("daily #1",), "03-02 01:00": ("daily #2 (oldest)",)}


def test_keep_within_measures_from_the_newest_complete_snapshot() -> None:
    snaps = [snap("2024-03-01T03:00")] + [
        snap(f"2024-03-{day:02}T03:00", failed=True) for day in range(2, 20)]
    assert kept(snaps, RetentionPolicy(keep_within=timedelta(days=2))) == {
        "03-19 03:00": (INCOMPLETE_REASON,), "03-01 03:00": ("within 48h",)}


def test_keep_tag_keeps_incomplete_snapshots_too() -> None:
    snaps = [snap("2024-03-01T03:00"), snap("2024-03-02T03:00", failed=True, tags=("pre-upgrade",)),
             snap("2024-03-03T03:00")]
    assert kept(snaps, RetentionPolicy(keep_last=1, keep_tags=["pre-upgrade"])) == {
        "03-03 03:00": ("last #1",), "03-02 03:00": ("tag pre-upgrade",)}


def test_groups_decide_alone_and_a_group_of_incomplete_ones_keeps_its_newest() -> None:
    snaps = [snap("2024-03-01T03:00"), snap("2024-03-02T03:00"),
             snap("2024-03-01T03:00", failed=True, paths=("/srv", "/media")),
             snap("2024-03-02T03:00", failed=True, paths=("/srv", "/media"))]
    plan = plan_forget(snaps, RetentionPolicy(keep_daily=1), now=NOW, tz=UTC)
    assert {g.key.paths: [(d.snapshot.time.day, d.reasons) for d in g.keep] for g in plan} == {
        ("/srv",): [(2, ("daily #1",))], ("/media", "/srv"): [(2, (INCOMPLETE_REASON,))]}


def test_a_policy_with_no_rule_keeps_no_incomplete_snapshot() -> None:
    snaps = [snap("2024-03-01T03:00", tags=("x",)), snap("2024-03-02T03:00", failed=True, tags=("x",))]
    plan = plan_forget(snaps, RetentionPolicy(), now=NOW, tz=UTC, selection=SnapshotFilter(tags=["x"]),
                       allow_remove_all=True)
    assert [len(g.remove) for g in plan] == [2]
    with pytest.raises(UsageError):
        plan_forget(snaps, RetentionPolicy(), now=NOW, tz=UTC)
