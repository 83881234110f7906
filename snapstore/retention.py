"""Retention: which snapshots a policy keeps, and why. Pure: no I/O, no clock, no environment.

The rules follow `restic forget` ("Removing snapshots according to a policy"):

- Snapshots are walked newest first (ties broken by id, so the input order never matters).
- A *bucket rule* (keep-hourly/daily/weekly/monthly/yearly N) keeps the newest snapshot of each
  bucket until it has kept N; the bucket is the local calendar hour, day, ISO week (ISO year and
  week: 2021-01-01 is in 2020-W53), month or year in the time zone given. keep-last N is the same
  rule where every snapshot is its own bucket. N may be `RetentionPolicy.UNLIMITED`.
- If a bucket rule still has count left when the walk reaches the oldest snapshot, that one is
  kept as well ("daily #4 (oldest)"): the longest history the counts allow (restic >= 0.17).
- keep-within D keeps every snapshot strictly newer than *latest* - D, where latest is the newest
  snapshot that is not in the future (restic measures from it, not from now; a backup that
  stopped running therefore does not lose its history). D counts calendar units in the local
  zone: `1m` is a month (clamped at month ends: a month before 31 March is 29 February 2024),
  `1d` is a calendar day (23 hours across spring-forward), `h` are exact hours.
- keep-within-hourly/daily/weekly/monthly/yearly D: the bucket rule without a count, limited to
  snapshots within D.
- keep-tag "a,b" keeps snapshots tagged with both a and b; several values are alternatives.
- A snapshot kept by several rules is kept once, with every reason.
- Incomplete snapshots (`Snapshot.complete` is false: the source reported errors) fill no
  bucket, are not kept by keep-within and are not the *latest* it measures from: the rules
  keep exactly what they would keep if the incomplete snapshots were not there, so a night
  that failed in part never takes the place of a complete one. Like borg's checkpoint
  archives, the newest snapshot is still kept when it is incomplete ("incomplete, newer than
  any complete"): it may hold what no complete one has yet. keep-tag keeps incomplete
  snapshots as any other. A policy with no rule keeps none of them.
- Grouping: the policy applies to each group of snapshots (same host, paths and/or tags) alone.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable, Collection, Hashable, Iterable, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta, tzinfo
from typing import ClassVar, TypeAlias

from snapstore.errors import UsageError
from snapstore.snapshot.manifest import Snapshot
from snapstore.snapshot.selection import SnapshotFilter, has_tag_list

INCOMPLETE_REASON = "incomplete, newer than any complete"
GROUP_FIELDS = ("host", "paths", "tags")
DEFAULT_GROUP_BY = ("host", "paths")  # restic's default
EVERY_SNAPSHOT = SnapshotFilter()
_GROUP_ALIASES = {"host": "host", "hosts": "host", "path": "paths", "paths": "paths",
                  "tag": "tags", "tags": "tags"}
_DURATION = re.compile(r"(?:\d+[ymwdh])+")
_DURATION_PART = re.compile(r"(\d+)([ymwdh])")
_UNITS = {"y": "years", "m": "months", "w": "weeks", "d": "days", "h": "hours"}


@dataclass(frozen=True)
class Duration:
    """A calendar duration as restic spells it (`1y5m7d2h`), plus weeks (`2w` = 14 days)."""

    years: int = 0
    months: int = 0
    weeks: int = 0
    days: int = 0
    hours: int = 0

    @classmethod
    def parse(cls, text: str) -> Duration:
        spelled = text.strip().lower()
        if not _DURATION.fullmatch(spelled):
            raise UsageError(f"{text!r} is not a duration like 2w, 36h or 1y5m7d2h")
        parts: dict[str, int] = {}
        for number, unit in _DURATION_PART.findall(spelled):
            if _UNITS[unit] in parts:
                raise UsageError(f"{text!r} gives the unit {unit!r} twice")
            parts[_UNITS[unit]] = int(number)
        duration = cls(**parts)
        if duration.is_zero():
            raise UsageError(f"{text!r} is a zero duration")
        return duration

    def is_zero(self) -> bool:
        return not any(getattr(self, f.name) for f in fields(self))

    def __str__(self) -> str:
        return "".join(f"{getattr(self, name)}{unit}" for unit, name in _UNITS.items()
                       if getattr(self, name)) or "0h"

    def before(self, moment: datetime, tz: tzinfo | None) -> datetime | None:
        """`moment` minus this duration on the local calendar; None if that is before year 1."""
        local = moment.astimezone(tz).replace(tzinfo=None)
        try:
            months = local.year * 12 + local.month - 1 - self.years * 12 - self.months
            year, month = divmod(months, 12)
            day = min(local.day, calendar.monthrange(year, month + 1)[1])
            wall = local.replace(year=year, month=month + 1, day=day)
            wall -= timedelta(days=self.weeks * 7 + self.days)
            # A naive time read as system local time when no zone is given (tz=None).
            placed = wall.replace(tzinfo=tz) if tz is not None else wall.astimezone()
            return placed.astimezone(UTC) - timedelta(hours=self.hours)
        except (ValueError, OverflowError):
            return None


Within: TypeAlias = Duration | timedelta


def _spell(within: Within) -> str:
    if isinstance(within, Duration):
        return str(within)
    hours, rest = divmod(within, timedelta(hours=1))
    return f"{hours}h" if not rest else str(within)


def _cutoff(latest: datetime | None, within: Within, tz: tzinfo | None) -> datetime | None:
    """Snapshots strictly newer than this are within; None means all of them are."""
    if latest is None:  # every snapshot is in the future: restic then keeps them all
        return None
    if isinstance(within, Duration):
        return within.before(latest, tz)
    try:
        return latest - within
    except OverflowError:
        return None


@dataclass(frozen=True)
class RetentionPolicy:
    """What to keep. Counts are 0 (rule off), N, or UNLIMITED; durations None (off) or set."""

    UNLIMITED: ClassVar[int] = -1

    keep_last: int = 0
    keep_hourly: int = 0
    keep_daily: int = 0
    keep_weekly: int = 0
    keep_monthly: int = 0
    keep_yearly: int = 0
    keep_within: Within | None = None
    keep_within_hourly: Within | None = None
    keep_within_daily: Within | None = None
    keep_within_weekly: Within | None = None
    keep_within_monthly: Within | None = None
    keep_within_yearly: Within | None = None
    keep_tags: Sequence[str] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        object.__setattr__(self, "keep_tags", tuple(self.keep_tags))
        for name, count in self.counts().items():
            if count < self.UNLIMITED:
                raise UsageError(f"keep-{name} must be at least 0 (or unlimited), not {count}")
        for name, within in self.withins().items():
            if within is not None and (
                within <= timedelta(0) if isinstance(within, timedelta) else within.is_zero()
            ):
                raise UsageError(f"keep-{name} must be a positive duration")

    def counts(self) -> dict[str, int]:
        return {"last": self.keep_last, "hourly": self.keep_hourly, "daily": self.keep_daily,
                "weekly": self.keep_weekly, "monthly": self.keep_monthly,
                "yearly": self.keep_yearly}

    def withins(self) -> dict[str, Within | None]:
        return {"within": self.keep_within, "within-hourly": self.keep_within_hourly,
                "within-daily": self.keep_within_daily, "within-weekly": self.keep_within_weekly,
                "within-monthly": self.keep_within_monthly,
                "within-yearly": self.keep_within_yearly}

    def is_empty(self) -> bool:
        """No keep rule at all: applying it would forget every snapshot."""
        return (not any(self.counts().values()) and all(w is None for w in self.withins().values())
                and not self.keep_tags)

    def describe(self) -> str:
        """One line for humans, e.g. "keep 3 daily, 2 weekly snapshots and all within 2w"."""
        parts = [f"{'all' if n == self.UNLIMITED else n} {'latest' if name == 'last' else name}"
                 for name, n in self.counts().items() if n]
        text = f"{', '.join(parts)} snapshots" if parts else ""
        for name, within in self.withins().items():
            if within is not None and name != "within":
                text += (", " if text else "") + f"{name.split('-')[1]} within {_spell(within)}"
        if self.keep_within is not None:
            text += (" and " if text else "") + f"all within {_spell(self.keep_within)}"
        if self.keep_tags:
            text += (" and " if text else "") + f"all tagged {' or '.join(self.keep_tags)}"
        return f"keep {text}" if text else "keep nothing"


@dataclass(frozen=True)
class Decision:
    """Keep or forget one snapshot; `reasons` say which rules keep it (empty when forgotten)."""

    snapshot: Snapshot
    keep: bool
    reasons: tuple[str, ...]


def _local(snapshot: Snapshot, tz: tzinfo | None) -> datetime:
    return snapshot.time.astimezone(tz)  # tz None: the system's local time, DST included


def _hour(t: datetime) -> Hashable:
    return t.year, t.month, t.day, t.hour


def _day(t: datetime) -> Hashable:
    return t.year, t.month, t.day


def _week(t: datetime) -> Hashable:
    iso = t.isocalendar()
    return iso.year, iso.week


def _month(t: datetime) -> Hashable:
    return t.year, t.month


def _year(t: datetime) -> Hashable:
    return t.year


_BUCKETS: dict[str, Callable[[datetime], Hashable]] = {
    "hourly": _hour, "daily": _day, "weekly": _week, "monthly": _month, "yearly": _year,
}


class _BucketRule:
    """Counts buckets along a newest-first walk; `None` key means "every snapshot is new"."""

    def __init__(self, label: str, bucket: Callable[[datetime], Hashable] | None,
                 limit: int) -> None:
        self.label = label
        self.bucket = bucket
        self.limit = limit
        self.used = 0
        self.last: Hashable = None

    def visit(self, position: int, local: datetime, oldest: bool) -> str | None:
        if self.limit != RetentionPolicy.UNLIMITED and self.used >= self.limit:
            return None
        key = position if self.bucket is None else self.bucket(local)
        if key == self.last and not oldest:
            return None
        self.used += 1
        suffix = " (oldest)" if key == self.last else ""
        self.last = key
        return f"{self.label} #{self.used}{suffix}"


def newest_first(snapshots: Iterable[Snapshot]) -> list[Snapshot]:
    return sorted(snapshots, key=lambda s: (s.time, bytes(s.id or b"")), reverse=True)


def apply_policy(
    snapshots: Iterable[Snapshot], policy: RetentionPolicy, now: datetime, tz: tzinfo | None = None
) -> list[Decision]:
    """One decision per snapshot, newest first. `now` only tells which snapshots are in the
    future (they do not count as the latest for keep-within); `tz` (default: the system's local
    time) decides where days, weeks and months begin. The rules other than keep-tag see only
    the complete snapshots, so what they keep does not depend on the incomplete ones (see the
    module docstring)."""
    ordered = newest_first(snapshots)
    complete = [index for index, s in enumerate(ordered) if s.complete]  # places in `ordered`
    latest = max((ordered[i].time for i in complete if ordered[i].time < now), default=None)
    counted = [_BucketRule("last", None, policy.keep_last)] + [
        _BucketRule(name, _BUCKETS[name], count)
        for name, count in policy.counts().items() if name != "last"
    ]
    counted = [rule for rule in counted if rule.limit]
    within_all = policy.keep_within
    within_cutoff = _cutoff(latest, within_all, tz) if within_all is not None else None
    bounded = []
    for name, within in policy.withins().items():
        if within is not None and name != "within":
            bucket = name.split("-")[1]
            rule = _BucketRule(f"{bucket} within {_spell(within)}", _BUCKETS[bucket],
                               RetentionPolicy.UNLIMITED)
            bounded.append((rule, _cutoff(latest, within, tz)))

    by_rule: list[list[str]] = [[] for _ in ordered]
    for position, index in enumerate(complete):  # only complete snapshots fill the rules
        snap = ordered[index]
        local = _local(snap, tz)
        oldest = position == len(complete) - 1
        reasons = [r for rule in counted if (r := rule.visit(position, local, oldest))]
        if within_all is not None and (within_cutoff is None or snap.time > within_cutoff):
            reasons.append(f"within {_spell(within_all)}")
        for rule, cutoff in bounded:
            inside = cutoff is None or snap.time > cutoff
            if inside and (reason := rule.visit(position, local, oldest)):
                reasons.append(reason)
        by_rule[index] = reasons
    # the newest snapshot when it is incomplete: no complete one is newer (borg's checkpoints)
    if ordered and not ordered[0].complete and not policy.is_empty():
        by_rule[0] = [INCOMPLETE_REASON]

    decisions = []
    for snap, reasons in zip(ordered, by_rule, strict=True):
        for tag_list in policy.keep_tags:
            if has_tag_list(snap, tag_list):
                reasons.append(f"tag {tag_list}" if "," not in tag_list else f"tags {tag_list}")
        decisions.append(Decision(snap, bool(reasons), tuple(reasons)))
    return decisions


@dataclass(frozen=True, order=True)
class GroupKey:
    """What the snapshots of a group share; a field not grouped by is None."""

    host: str | None = None
    paths: tuple[str, ...] | None = None
    tags: tuple[str, ...] | None = None

    def describe(self) -> str:
        parts = []
        if self.host is not None:
            parts.append(f"host {self.host}")
        if self.paths is not None:
            parts.append(f"paths {', '.join(self.paths) or '(none)'}")
        if self.tags is not None:
            parts.append(f"tags {', '.join(self.tags) or '(none)'}")
        return "; ".join(parts) or "all snapshots"


def parse_group_by(group_by: Iterable[str]) -> frozenset[str]:
    """{"host", "paths", "tags"} from names or restic's aliases (path, tag, hosts)."""
    chosen = set()
    for name in group_by:
        name = name.strip().lower()
        if not name:
            continue
        if name not in _GROUP_ALIASES:
            raise UsageError(f"cannot group by {name!r}: use host, paths and/or tags")
        chosen.add(_GROUP_ALIASES[name])
    return frozenset(chosen)


def group_snapshots(
    snapshots: Iterable[Snapshot], group_by: Collection[str] = DEFAULT_GROUP_BY
) -> list[tuple[GroupKey, list[Snapshot]]]:
    """Snapshots split into groups, the groups in a stable order; paths and tags compare sorted."""
    by = parse_group_by(group_by)
    groups: dict[GroupKey, list[Snapshot]] = {}
    for snap in snapshots:
        key = GroupKey(
            host=snap.host if "host" in by else None,
            paths=tuple(sorted(snap.paths)) if "paths" in by else None,
            tags=tuple(sorted(set(snap.tags))) if "tags" in by else None,
        )
        groups.setdefault(key, []).append(snap)
    return sorted(groups.items(), key=lambda item: _sort_key(item[0]))


def _sort_key(key: GroupKey) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    return key.host or "", key.paths or (), key.tags or ()


@dataclass(frozen=True)
class ForgetGroup:
    key: GroupKey
    decisions: list[Decision]

    @property
    def keep(self) -> list[Decision]:
        return [d for d in self.decisions if d.keep]

    @property
    def remove(self) -> list[Decision]:
        return [d for d in self.decisions if not d.keep]


def plan_forget(
    snapshots: Iterable[Snapshot],
    policy: RetentionPolicy,
    *,
    now: datetime,
    tz: tzinfo | None = None,
    group_by: Collection[str] = DEFAULT_GROUP_BY,
    selection: SnapshotFilter = EVERY_SNAPSHOT,
    allow_remove_all: bool = False,
) -> list[ForgetGroup]:
    """Selects (`selection`: hosts, tags, paths), groups and decides; refuses plans that would
    empty a group by accident."""
    if policy.is_empty():
        if not allow_remove_all:
            raise UsageError("no keep rule given: that would forget every snapshot")
        if not selection:
            raise UsageError("removing all snapshots needs a host, tag or path filter")
    plan = []
    for key, members in group_snapshots(selection.select(snapshots), group_by):
        group = ForgetGroup(key, apply_policy(members, policy, now, tz))
        if not policy.is_empty() and not group.keep:
            raise UsageError(f"refusing to forget every snapshot of the group {key.describe()}")
        plan.append(group)
    return plan
