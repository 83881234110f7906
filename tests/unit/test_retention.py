"""The retention policy as a table of timestamps: DST changes, ISO week 53, month ends, leap days,
keep-within, keep-tag and combined rules, each kept snapshot with its reasons.

Times are written with their UTC offset so that the repeated hour of a DST change is unambiguous;
the bucket zone of each case is Europe/Berlin unless the case says UTC.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

import pytest

from snapstore.errors import UsageError
from snapstore.ids import Id
from snapstore.retention import (
    Duration,
    GroupKey,
    RetentionPolicy,
    apply_policy,
    group_snapshots,
    plan_forget,
)
from snapstore.snapshot.manifest import Snapshot
from snapstore.snapshot.selection import SnapshotFilter

BERLIN = ZoneInfo("Europe/Berlin")
FAR_FUTURE = datetime(2100, 1, 1, tzinfo=UTC)


def snap(when: str, *, tags: tuple[str, ...] = (), host: str = "web1",
         paths: tuple[str, ...] = ("/srv",)) -> Snapshot:
    return Snapshot(
        time=datetime.fromisoformat(when), host=host, user="root", tags=list(tags),
        source="files", paths=list(paths), tree=Id(bytes(32)),
        id=Id(hashlib.blake2b(f"{when}{host}{paths}{tags}".encode(), digest_size=32).digest()),
    )


@dataclass
class Case:
    name: str
    policy: RetentionPolicy
    times: list[str]
    kept: dict[str, tuple[str, ...]]  # time -> reasons; every other time is forgotten
    tz: tzinfo = BERLIN
    now: datetime = FAR_FUTURE
    tags: dict[str, tuple[str, ...]] = field(default_factory=dict)


# Berlin leaves summer time on 2023-10-29 at 03:00 CEST (02:00-03:00 happens twice) and enters
# it on 2024-03-31 at 02:00 CET (02:00-03:00 does not exist: that day has 23 hours).
FALL_BACK = [
    "2023-10-29T01:30+02:00",
    "2023-10-29T02:10+02:00",  # first 02:xx, summer time
    "2023-10-29T02:40+02:00",
    "2023-10-29T02:20+01:00",  # second 02:xx, winter time: newer than 02:40+02:00
    "2023-10-29T03:05+01:00",
]
SPRING_FORWARD = [
    "2024-03-30T12:00+01:00",
    "2024-03-31T00:30+01:00",  # Berlin's 31 March, UTC's 30 March
    "2024-03-31T01:59+01:00",
    "2024-03-31T03:01+02:00",  # one minute of real time after 01:59
    "2024-03-31T23:30+02:00",
    "2024-04-01T00:30+02:00",  # Berlin's 1 April, UTC's 31 March
]
# 2020-12-28 (Mon) to 2021-01-03 (Sun) is ISO week 2020-W53.
WEEK_53 = [
    "2020-12-27T12:00+01:00",  # Sunday of 2020-W52
    "2020-12-28T12:00+01:00",
    "2020-12-31T12:00+01:00",
    "2021-01-01T12:00+01:00",
    "2021-01-03T12:00+01:00",
    "2021-01-04T12:00+01:00",  # Monday of 2021-W01
    "2021-01-10T12:00+01:00",
]
MONTH_ENDS = [
    "2024-01-31T12:00+01:00",
    "2024-02-01T00:15+01:00",  # Berlin's February, UTC's 31 January
    "2024-02-29T12:00+01:00",  # leap day
    "2024-03-01T00:30+01:00",  # Berlin's March, UTC's leap day
    "2024-03-31T12:00+02:00",
]
DAILY_TEN = [f"2024-05-{day:02d}T08:00+02:00" for day in range(1, 11)]

CASES = [
    Case("keep-last", RetentionPolicy(keep_last=3), DAILY_TEN[:5], {
        DAILY_TEN[4]: ("last #1",), DAILY_TEN[3]: ("last #2",), DAILY_TEN[2]: ("last #3",)}),
    Case("keep-last unlimited", RetentionPolicy(keep_last=RetentionPolicy.UNLIMITED),
         DAILY_TEN[:2], {DAILY_TEN[1]: ("last #1",), DAILY_TEN[0]: ("last #2",)}),
    Case("hourly: the repeated hour is one bucket", RetentionPolicy(keep_hourly=10), FALL_BACK, {
        "2023-10-29T03:05+01:00": ("hourly #1",),
        "2023-10-29T02:20+01:00": ("hourly #2",),
        "2023-10-29T01:30+02:00": ("hourly #3",)}),
    Case("hourly in UTC: four hours", RetentionPolicy(keep_hourly=10), FALL_BACK, {
        "2023-10-29T03:05+01:00": ("hourly #1",),
        "2023-10-29T02:20+01:00": ("hourly #2",),
        "2023-10-29T02:40+02:00": ("hourly #3",),
        "2023-10-29T01:30+02:00": ("hourly #4",)}, tz=UTC),
    Case("daily across spring-forward", RetentionPolicy(keep_daily=3), SPRING_FORWARD, {
        "2024-04-01T00:30+02:00": ("daily #1",),
        "2024-03-31T23:30+02:00": ("daily #2",),
        "2024-03-30T12:00+01:00": ("daily #3",)}),
    Case("daily in UTC, and the oldest kept while count is left", RetentionPolicy(keep_daily=3),
         SPRING_FORWARD, {
             "2024-04-01T00:30+02:00": ("daily #1",),
             "2024-03-31T00:30+01:00": ("daily #2",),
             "2024-03-30T12:00+01:00": ("daily #3 (oldest)",)}, tz=UTC),
    Case("keep-within 1d is a calendar day: 23 hours here",
         RetentionPolicy(keep_within=Duration(days=1)),
         ["2024-03-31T00:20+01:00", "2024-03-31T00:30+01:00", "2024-03-31T00:45+01:00",
          "2024-04-01T00:30+02:00"], {
             "2024-03-31T00:45+01:00": ("within 1d",),
             "2024-04-01T00:30+02:00": ("within 1d",)}),
    Case("keep-within 24h as a timedelta is exact",
         RetentionPolicy(keep_within=timedelta(hours=24)),
         ["2024-03-30T23:20+01:00", "2024-03-31T00:20+01:00", "2024-04-01T00:30+02:00"], {
             "2024-03-31T00:20+01:00": ("within 24h",),
             "2024-04-01T00:30+02:00": ("within 24h",)}),
    Case("ISO week 53 spans the new year; years are calendar years",
         RetentionPolicy(keep_weekly=3, keep_yearly=2), WEEK_53, {
             "2021-01-10T12:00+01:00": ("weekly #1", "yearly #1"),
             "2021-01-03T12:00+01:00": ("weekly #2",),
             "2020-12-31T12:00+01:00": ("yearly #2",),
             "2020-12-27T12:00+01:00": ("weekly #3",)}),
    Case("month ends and the leap day", RetentionPolicy(keep_monthly=3), MONTH_ENDS, {
        "2024-03-31T12:00+02:00": ("monthly #1",),
        "2024-02-29T12:00+01:00": ("monthly #2",),
        "2024-01-31T12:00+01:00": ("monthly #3",)}),
    Case("month ends in UTC", RetentionPolicy(keep_monthly=3), MONTH_ENDS, {
        "2024-03-31T12:00+02:00": ("monthly #1",),
        "2024-03-01T00:30+01:00": ("monthly #2",),
        "2024-02-01T00:15+01:00": ("monthly #3",)}, tz=UTC),
    Case("keep-within 1m from 31 March reaches back to 29 February",
         RetentionPolicy(keep_within=Duration(months=1)), MONTH_ENDS, {
             "2024-03-31T12:00+02:00": ("within 1m",),
             "2024-03-01T00:30+01:00": ("within 1m",)}),  # 29 Feb 12:00 is the bound: out
    Case("keep-within 1y from a leap day ends on 28 February",
         RetentionPolicy(keep_within=Duration(years=1)),
         ["2023-02-28T11:00+01:00", "2023-02-28T13:00+01:00", "2024-02-29T12:00+01:00"], {
             "2023-02-28T13:00+01:00": ("within 1y",),
             "2024-02-29T12:00+01:00": ("within 1y",)}),
    Case("keep-within counts from the latest snapshot, not from now",
         RetentionPolicy(keep_within=Duration(weeks=2)), DAILY_TEN, {
             t: ("within 2w",) for t in DAILY_TEN}, now=datetime(2025, 1, 1, tzinfo=UTC)),
    Case("a snapshot from the future is not the latest",
         RetentionPolicy(keep_within=Duration(days=2)),
         DAILY_TEN[:5] + ["2030-01-01T00:00+00:00"], {
             "2030-01-01T00:00+00:00": ("within 2d",),
             DAILY_TEN[4]: ("within 2d",), DAILY_TEN[3]: ("within 2d",)},
         now=datetime(2024, 6, 1, tzinfo=UTC)),
    Case("keep-within-daily: one per day inside the window",
         RetentionPolicy(keep_within_daily=Duration(days=2)),
         ["2024-05-01T08:00+02:00", "2024-05-02T08:00+02:00", "2024-05-02T20:00+02:00",
          "2024-05-03T08:00+02:00"], {
             "2024-05-03T08:00+02:00": ("daily within 2d #1",),
             "2024-05-02T20:00+02:00": ("daily within 2d #2",)}),
    Case("keep-tag: any of the tags, or all of a,b", RetentionPolicy(keep_tags=["monthly", "a,b"]),
         DAILY_TEN[:4], {DAILY_TEN[0]: ("tag monthly",), DAILY_TEN[2]: ("tags a,b",)},
         tags={DAILY_TEN[0]: ("monthly",), DAILY_TEN[1]: ("a",), DAILY_TEN[2]: ("b", "a")}),
    Case("combined rules: kept once, with every reason",
         RetentionPolicy(keep_last=2, keep_daily=3, keep_weekly=2, keep_within=Duration(weeks=1),
                         keep_tags=["release"]),
         DAILY_TEN + ["2024-05-10T20:00+02:00"], {
             "2024-05-10T20:00+02:00": ("last #1", "daily #1", "weekly #1", "within 1w"),
             DAILY_TEN[9]: ("last #2", "within 1w"),
             DAILY_TEN[8]: ("daily #2", "within 1w"),
             DAILY_TEN[7]: ("daily #3", "within 1w"),
             DAILY_TEN[6]: ("within 1w",),
             DAILY_TEN[5]: ("within 1w",),
             DAILY_TEN[4]: ("weekly #2", "within 1w"),  # Sunday 5 May closes 2024-W18
             DAILY_TEN[3]: ("within 1w",),
             DAILY_TEN[0]: ("tag release",)},
         tags={DAILY_TEN[0]: ("release",)}),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_policy_table(case: Case) -> None:
    snapshots = [snap(t, tags=case.tags.get(t, ())) for t in case.times]
    decisions = apply_policy(snapshots, case.policy, case.now, case.tz)
    assert [d.snapshot.time for d in decisions] == sorted((s.time for s in snapshots), reverse=True)
    got = {d.snapshot.time.isoformat(timespec="minutes"): d.reasons for d in decisions if d.keep}
    assert got == case.kept
    assert all(not d.reasons for d in decisions if not d.keep)


def test_week_53_is_one_bucket() -> None:
    times = WEEK_53[2:5]  # 2020-12-31, 2021-01-01, 2021-01-03: all 2020-W53
    policy = RetentionPolicy(keep_weekly=5)
    decisions = apply_policy([snap(t) for t in times], policy, FAR_FUTURE, BERLIN)
    assert [d.keep for d in decisions] == [True, False, True]  # newest, then the oldest rule
    assert decisions[2].reasons == ("weekly #2 (oldest)",)


@pytest.mark.parametrize("text, expected", [
    ("2w", Duration(weeks=2)),
    ("36h", Duration(hours=36)),
    ("1y5m7d2h", Duration(years=1, months=5, days=7, hours=2)),
    (" 3D ", Duration(days=3)),
])
def test_duration_parses_like_restic(text: str, expected: Duration) -> None:
    assert Duration.parse(text) == expected
    assert Duration.parse(str(expected)) == expected


@pytest.mark.parametrize("text", ["", "2", "d", "2x", "1d1d", "0d", "-1d", "1.5d", "2w 3d"])
def test_bad_durations_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError):
        Duration.parse(text)


def test_duration_before_clamps_month_ends() -> None:
    march_31 = datetime(2024, 3, 31, 12, tzinfo=BERLIN)
    assert Duration(months=1).before(march_31, BERLIN) == datetime(2024, 2, 29, 12, tzinfo=BERLIN)
    leap = datetime(2024, 2, 29, 12, tzinfo=BERLIN)
    assert Duration(years=1).before(leap, BERLIN) == datetime(2023, 2, 28, 12, tzinfo=BERLIN)
    assert Duration(years=5000).before(leap, BERLIN) is None  # before year 1: no bound


def test_policy_validation_and_description() -> None:
    with pytest.raises(UsageError):
        RetentionPolicy(keep_daily=-2)
    with pytest.raises(UsageError):
        RetentionPolicy(keep_within=timedelta(0))
    assert RetentionPolicy().is_empty()
    assert not RetentionPolicy(keep_tags=["x"]).is_empty()
    policy = RetentionPolicy(keep_daily=3, keep_weekly=RetentionPolicy.UNLIMITED,
                             keep_within=Duration(weeks=2))
    assert policy.describe() == "keep 3 daily, all weekly snapshots and all within 2w"


def test_grouping_defaults_to_host_and_paths() -> None:
    a = snap("2024-05-01T08:00+02:00", host="a", paths=("/x", "/y"), tags=("t1",))
    b = snap("2024-05-02T08:00+02:00", host="a", paths=("/y", "/x"), tags=("t2",))
    c = snap("2024-05-03T08:00+02:00", host="b", paths=("/x", "/y"))
    groups = group_snapshots([c, b, a])
    assert [(key, members) for key, members in groups] == [
        (GroupKey(host="a", paths=("/x", "/y")), [b, a]),
        (GroupKey(host="b", paths=("/x", "/y")), [c]),
    ]
    assert len(group_snapshots([a, b, c], ["tags"])) == 3
    assert len(group_snapshots([a, b, c], [""])) == 1
    assert groups[0][0].describe() == "host a; paths /x, /y"
    with pytest.raises(UsageError):
        group_snapshots([a], ["colour"])


def test_plan_refuses_to_forget_everything_by_accident() -> None:
    snapshots = [snap(t, tags=("old",)) for t in DAILY_TEN[:3]]
    with pytest.raises(UsageError, match="no keep rule"):
        plan_forget(snapshots, RetentionPolicy(), now=FAR_FUTURE)
    with pytest.raises(UsageError, match="filter"):
        plan_forget(snapshots, RetentionPolicy(), now=FAR_FUTURE, allow_remove_all=True)
    with pytest.raises(UsageError, match="every snapshot of the group"):
        plan_forget(snapshots, RetentionPolicy(keep_tags=["nope"]), now=FAR_FUTURE)
    plan = plan_forget(snapshots, RetentionPolicy(), now=FAR_FUTURE,
                       selection=SnapshotFilter(tags=["old"]), allow_remove_all=True)
    assert [len(g.remove) for g in plan] == [3]


def test_plan_applies_the_policy_per_group() -> None:
    snapshots = [snap(t, host=h) for t in DAILY_TEN[:3] for h in ("a", "b")]
    plan = plan_forget(snapshots, RetentionPolicy(keep_last=1), now=FAR_FUTURE, tz=BERLIN)
    assert [(g.key.host, len(g.keep), len(g.remove)) for g in plan] == [("a", 1, 2), ("b", 1, 2)]
    only_b = plan_forget(snapshots, RetentionPolicy(keep_last=1), now=FAR_FUTURE,
                         selection=SnapshotFilter(hosts=["b"]))
    assert [g.key.host for g in only_b] == ["b"]
