"""Leaving a snapshot out of a retention decision never removes more of the others: what
forget does with a snapshot it cannot read (issue 10, item 5). For any snapshots, policy and
one of them left out, every other snapshot kept with it is kept without it. Likewise a
snapshot that is incomplete (issue 12, item 4): one night failing never costs another."""

from __future__ import annotations

import dataclasses
from datetime import datetime, tzinfo

from hypothesis import given, settings
from hypothesis import strategies as st

from snapstore.retention import RetentionPolicy, apply_policy
from snapstore.snapshot.manifest import Snapshot, Summary
from tests.property.test_retention_properties import nows, policies, snapshot_lists, zones


@settings(max_examples=300, deadline=None)
@given(snapshot_lists(), policies, nows, zones, st.data())
def test_leaving_one_out_keeps_at_least_the_others_kept(
    snapshots: list[Snapshot], policy: RetentionPolicy, now: datetime, tz: tzinfo, data: st.DataObject
) -> None:
    if not snapshots:
        return
    left_out = data.draw(st.sampled_from(snapshots))
    others = [s for s in snapshots if s is not left_out]
    kept_with = {d.snapshot.id for d in apply_policy(snapshots, policy, now, tz) if d.keep}
    kept_without = {d.snapshot.id for d in apply_policy(others, policy, now, tz) if d.keep}
    assert kept_with - {left_out.id} <= kept_without


@settings(max_examples=300, deadline=None)
@given(snapshot_lists(), policies, nows, zones, st.data())
def test_one_snapshot_failing_keeps_at_least_the_others_kept(
    snapshots: list[Snapshot], policy: RetentionPolicy, now: datetime, tz: tzinfo, data: st.DataObject
) -> None:
    if not snapshots:
        return
    failing = data.draw(st.sampled_from(snapshots))
    failed = [dataclasses.replace(s, summary=Summary(errors=1)) if s is failing else s
              for s in snapshots]
    kept_before = {d.snapshot.id for d in apply_policy(snapshots, policy, now, tz) if d.keep}
    kept_after = {d.snapshot.id for d in apply_policy(failed, policy, now, tz) if d.keep}
    assert kept_before - {failing.id} <= kept_after
