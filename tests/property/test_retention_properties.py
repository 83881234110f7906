"""Retention invariants: the newest snapshot survives any rule with N >= 1, the input order does
not matter, raising a count never forgets a snapshot that a smaller count kept, and incomplete
snapshots (some of every list) never displace a complete one.

Snapshots carry times in several zones (one with a 30-minute DST shift) and are bucketed in
zones with DST; `now` sometimes falls before the newest snapshots.
"""

from __future__ import annotations

import dataclasses
import random
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from snapstore.ids import Id
from snapstore.retention import (
    INCOMPLETE_REASON,
    Decision,
    Duration,
    RetentionPolicy,
    apply_policy,
)
from snapstore.snapshot.manifest import Snapshot, Summary

ZONES: list[tzinfo] = [UTC, ZoneInfo("Europe/Berlin"), ZoneInfo("Australia/Lord_Howe"),
                       timezone(timedelta(hours=-3, minutes=-30))]
COUNT_FIELDS = ["keep_last", "keep_hourly", "keep_daily", "keep_weekly", "keep_monthly",
                "keep_yearly"]

times = st.datetimes(
    min_value=datetime(2019, 12, 1), max_value=datetime(2021, 2, 1),
    timezones=st.sampled_from(ZONES), allow_imaginary=False,
)


@st.composite
def snapshot_lists(draw: st.DrawFn) -> list[Snapshot]:
    moments = draw(st.lists(times, max_size=40))
    return [
        Snapshot(time=t, host="h", user="u", source="files", paths=["/"], tree=Id(bytes(32)),
                 tags=sorted(draw(st.sets(st.sampled_from(["a", "b"])))),
                 summary=Summary(errors=draw(st.sampled_from([0, 0, 1]))),  # 1: incomplete
                 id=Id(i.to_bytes(32, "big")))
        for i, t in enumerate(moments)
    ]


counts = st.one_of(st.integers(0, 6), st.just(RetentionPolicy.UNLIMITED))
durations = st.one_of(
    st.none(),
    st.builds(Duration, days=st.integers(1, 40)),
    st.builds(Duration, months=st.integers(1, 3), hours=st.integers(0, 30)),
    st.builds(lambda h: timedelta(hours=h), st.integers(1, 2000)),
)
policies = st.builds(
    RetentionPolicy,
    keep_last=counts, keep_hourly=counts, keep_daily=counts, keep_weekly=counts,
    keep_monthly=counts, keep_yearly=counts, keep_within=durations,
    keep_within_daily=durations, keep_within_weekly=durations,
    keep_tags=st.lists(st.sampled_from(["a", "b", "a,b"]), max_size=2),
)
nows = st.one_of(st.just(datetime(2100, 1, 1, tzinfo=UTC)), times)
zones = st.sampled_from(ZONES)


def summary(decisions: list[Decision]) -> list[tuple[bytes | None, bool, tuple[str, ...]]]:
    return [(d.snapshot.id, d.keep, d.reasons) for d in decisions]


@settings(max_examples=100, deadline=None)
@given(snapshot_lists(), policies, nows, zones)
def test_every_snapshot_gets_one_decision_with_reasons_iff_kept(
    snapshots: list[Snapshot], policy: RetentionPolicy, now: datetime, tz: tzinfo
) -> None:
    decisions = apply_policy(snapshots, policy, now, tz)
    assert sorted(d.snapshot.id or b"" for d in decisions) == sorted(s.id or b"" for s in snapshots)
    assert all(d.keep == bool(d.reasons) for d in decisions)


@settings(max_examples=100, deadline=None)
@given(snapshot_lists(), policies, nows, zones)
def test_newest_is_kept_by_any_rule_with_n_at_least_one(
    snapshots: list[Snapshot], policy: RetentionPolicy, now: datetime, tz: tzinfo
) -> None:
    if not snapshots:
        return
    decisions = apply_policy(snapshots, policy, now, tz)
    newest = max(snapshots, key=lambda s: (s.time, s.id or b""))
    assert decisions[0].snapshot is newest
    if any(policy.counts().values()) or policy.keep_within is not None:
        assert decisions[0].keep


@settings(max_examples=100, deadline=None)
@given(snapshot_lists(), policies, nows, zones, st.randoms(use_true_random=False))
def test_result_does_not_depend_on_input_order(
    snapshots: list[Snapshot], policy: RetentionPolicy, now: datetime, tz: tzinfo,
    rng: random.Random,
) -> None:
    shuffled = list(snapshots)
    rng.shuffle(shuffled)
    assert summary(apply_policy(shuffled, policy, now, tz)) == summary(
        apply_policy(snapshots, policy, now, tz))


def kept(snapshots: list[Snapshot], policy: RetentionPolicy, change: dict[str, Any],
         now: datetime, tz: tzinfo) -> set[bytes | None]:
    changed = dataclasses.replace(policy, **change)
    return {d.snapshot.id for d in apply_policy(snapshots, changed, now, tz) if d.keep}


@settings(max_examples=100, deadline=None)
@given(snapshot_lists(), policies, nows, zones, st.sampled_from(COUNT_FIELDS),
       st.integers(1, 5))
def test_keep_set_grows_with_n(
    snapshots: list[Snapshot], policy: RetentionPolicy, now: datetime, tz: tzinfo,
    name: str, more: int,
) -> None:
    before = getattr(policy, name)
    grown = RetentionPolicy.UNLIMITED if before == RetentionPolicy.UNLIMITED else before + more
    for smaller, larger in ((before, grown), (grown, RetentionPolicy.UNLIMITED)):
        assert kept(snapshots, policy, {name: smaller}, now, tz) <= kept(
            snapshots, policy, {name: larger}, now, tz)


@settings(max_examples=200, deadline=None)
@given(snapshot_lists(), policies, nows, zones)
def test_incomplete_snapshots_never_displace_complete_ones(
    snapshots: list[Snapshot], policy: RetentionPolicy, now: datetime, tz: tzinfo
) -> None:
    """The complete snapshots are decided, reasons and all, as if the incomplete ones were not
    there: an incomplete one fills no bucket and moves no keep-within."""
    complete = [s for s in snapshots if s.complete]
    with_them = [d for d in apply_policy(snapshots, policy, now, tz) if d.snapshot.complete]
    assert summary(with_them) == summary(apply_policy(complete, policy, now, tz))


@settings(max_examples=200, deadline=None)
@given(snapshot_lists(), policies, nows, zones)
def test_an_incomplete_snapshot_is_kept_only_as_the_newest_or_by_tag(
    snapshots: list[Snapshot], policy: RetentionPolicy, now: datetime, tz: tzinfo
) -> None:
    decisions = apply_policy(snapshots, policy, now, tz)
    for position, decision in enumerate(decisions):
        if decision.snapshot.complete:
            assert INCOMPLETE_REASON not in decision.reasons
            continue
        by_rule = [r for r in decision.reasons if not r.startswith("tag")]
        newest = position == 0 and not policy.is_empty()
        assert by_rule == ([INCOMPLETE_REASON] if newest else [])
