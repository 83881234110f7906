"""Is the backup healthy? One verdict for a monitoring job (`snapstore health`).

A repository is healthy when

- every group of snapshots (host + paths, as `forget` groups them) has a complete snapshot
  newer than `max_age`: a group whose newest complete one is older names a backup that
  stopped running (the cron job, the timer, the host);
- no lock is stale (its holder is gone: nothing will release it, and `prune` waits on it);
- the last `check` found no damage, and there was one (unless `require_check` is off), not
  longer ago than `max_check_age` when that is given.

The last check is a `CheckRecord` kept on this machine, in the repository's folder of the
cache directory (`save_check_record`, which the command line calls when `check` has run):
a monitoring job must then use the same cache directory as the check. Snapshots and locks
are read from the repository; the verdict itself (`judge`) is pure.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from snapstore.repository.lock import StoredLock, list_locks
from snapstore.repository.repository import Repository
from snapstore.retention import group_snapshots
from snapstore.snapshot.manifest import Snapshot
from snapstore.snapshot.selection import SnapshotFilter
from snapstore.snapshot.store import list_snapshots

_GROUP_BY = ("host", "paths")
CHECK_RECORD_NAME = "last-check.json"


@dataclass(frozen=True)
class CheckRecord:
    """What the last `check` found: when it ran, whether it found damage, how deep it read."""

    time: datetime
    ok: bool
    errors: int = 0
    read_data: bool = False

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "time": self.time.isoformat()})

    @classmethod
    def now(cls, ok: bool, errors: int, read_data: bool) -> CheckRecord:
        return cls(datetime.now(UTC), ok, errors, read_data)

    @classmethod
    def from_json(cls, text: str) -> CheckRecord:
        """Raises ValueError for anything but what `to_json` writes."""
        try:
            doc = json.loads(text)
            time = datetime.fromisoformat(doc["time"])
            record = cls(time, doc["ok"], doc["errors"], doc["read_data"])
        except (TypeError, KeyError, json.JSONDecodeError) as exc:
            raise ValueError(f"not a check record: {exc}") from None
        if time.tzinfo is None or not isinstance(record.ok, bool):
            raise ValueError("not a check record: a time without offset or ok not a boolean")
        return record


def save_check_record(
    cache_dir: str | os.PathLike[str], repository_id: str, record: CheckRecord
) -> None:
    """Replaces the record of the last check (atomically: a reader sees the old or the new)."""
    folder = Path(cache_dir) / repository_id
    folder.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=".last-check-", dir=folder)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(record.to_json())
        os.replace(temp, folder / CHECK_RECORD_NAME)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def load_check_record(cache_dir: str | os.PathLike[str], repository_id: str) -> CheckRecord | None:
    """The last check's record; None when there is none or it cannot be read."""
    try:
        return CheckRecord.from_json((Path(cache_dir) / repository_id / CHECK_RECORD_NAME).read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return None


@dataclass(frozen=True)
class HealthOptions:
    max_age: timedelta
    hosts: Sequence[str] = ()
    tags: Sequence[str] = ()  # any of these tag lists ("a,b": both), as forget's --tag
    require_check: bool = True
    max_check_age: timedelta | None = None
    paths: Sequence[str] = ()  # snapshots whose paths include all of these, as --path


@dataclass(frozen=True)
class GroupHealth:
    host: str
    paths: tuple[str, ...]
    newest: Snapshot | None  # the newest complete snapshot of the group
    age: timedelta | None
    ok: bool


@dataclass(frozen=True)
class HealthReport:
    groups: list[GroupHealth]
    stale_locks: list[StoredLock]
    last_check: CheckRecord | None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def line(self) -> str:
        """The verdict in one line: `ok: ...` or `unhealthy: <first problem> (and N more)`."""
        if self.problems:
            more = len(self.problems) - 1
            return f"unhealthy: {self.problems[0]}" + (f" (and {more} more)" if more else "")
        ages = [group.age for group in self.groups if group.age is not None]
        groups = f"{len(self.groups)} group{'s' if len(self.groups) != 1 else ''} of snapshots"
        oldest = f", the newest complete one at most {format_age(max(ages))} old" if ages else ""
        check = self.last_check
        checked = (f", last check {check.time.astimezone():%Y-%m-%d %H:%M} found no damage"
                   if check else "")  # fmt: skip
        return f"ok: {groups}{oldest}, no stale lock{checked}"


def assess_health(
    repo: Repository,
    options: HealthOptions,
    last_check: CheckRecord | None,
    now: datetime | None = None,
) -> HealthReport:
    """Reads the snapshots and locks (no index, no data) and judges them."""
    now = now or datetime.now(UTC)
    snapshots = SnapshotFilter(options.hosts, options.tags, options.paths).select(list_snapshots(repo))
    stale = [lock for lock in list_locks(repo)
             if lock.info is not None and lock.info.is_stale(now)]  # fmt: skip
    return judge(snapshots, stale, last_check, options, now)


def judge(
    snapshots: Sequence[Snapshot],
    stale_locks: list[StoredLock],
    last_check: CheckRecord | None,
    options: HealthOptions,
    now: datetime,
) -> HealthReport:
    """The verdict, with one sentence per problem, groups first."""
    groups, problems = [], []
    for key, members in group_snapshots(snapshots, _GROUP_BY):
        host, paths = key.host or "", key.paths or ()
        complete = [s for s in members if s.complete]
        newest = max(complete, key=lambda s: s.time) if complete else None
        age = now - newest.time if newest else None
        ok = age is not None and age <= options.max_age
        groups.append(GroupHealth(host, paths, newest, age, ok))
        where = f"{host}:{','.join(paths)}"
        if newest is None:
            problems.append(f"{where} has no complete snapshot")
        elif not ok:
            problems.append(f"{where}: newest complete snapshot {newest.short_id} is "
                            f"{format_age(age)} old (max {format_age(options.max_age)})")
    if not groups:
        problems.append("no snapshots" + (" match" if options.hosts or options.tags or options.paths else ""))
    for lock in stale_locks:
        problems.append(f"stale lock: {lock.describe()} (run snapstore unlock)")
    problems.extend(_check_problems(last_check, options, now))
    return HealthReport(groups, stale_locks, last_check, problems)


def _check_problems(record: CheckRecord | None, options: HealthOptions, now: datetime) -> list[str]:
    if record is None:
        return ["no check has been recorded (run snapstore check)"] if options.require_check else []
    if not record.ok:
        errors = f"{record.errors} error{'s' if record.errors != 1 else ''}"
        return [f"the last check ({record.time.astimezone():%Y-%m-%d %H:%M}) found {errors}"]
    if options.max_check_age is not None and now - record.time > options.max_check_age:
        return [f"the last check is {format_age(now - record.time)} old "
                f"(max {format_age(options.max_check_age)})"]
    return []


def format_age(age: timedelta | None) -> str:
    """`3d4h`, `26h`, `45m`, `20s`: the largest two units."""
    if age is None:
        return "-"
    seconds = max(0, int(age.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "m"), (seconds, "s")]
    while len(parts) > 1 and parts[0][0] == 0:
        parts.pop(0)
    return "".join(f"{n}{unit}" for n, unit in parts[:2] if n or unit == parts[0][1])
