"""Nightly runs as systemd units or crontab lines (`snapstore schedule install`): text only,
no click and no systemctl, so that what is written can be read and tested line by line.

A schedule is three jobs, each one or more snapstore command lines reading one config file:

    snapshot   at --daily (03:15) every day: each configured snapshot in turn
    forget     right after it, whether it succeeded or not: `forget --prune` by the config
               file's [retention] (left out when the file has none)
    check      --check daily, weekly (Sundays) or monthly (the 1st), two hours after the
               snapshot: a rotating `check --read-data-subset`, by default a share that
               reads the whole repository in about four weeks (5%, 25%, 100%)

Every command waits for a conflicting lock (`--retry-lock`), so that a long check and the
night's prune do not fail each other. As systemd units the snapshot service pulls the forget
service in, ordered after itself (a timer starts one unit); in a crontab they share a line.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from snapstore.errors import UsageError

EVERY = ("daily", "weekly", "monthly")
CHECK_SUBSET = {"daily": "5%", "weekly": "25%", "monthly": "100%"}
"""The share a check reads by default: the whole repository in about four weeks."""
CHECK_DELAY_HOURS = 2
DEFAULT_RETRY_LOCK = "2h"
_SYSTEMD_DAY = {"daily": "*-*-*", "weekly": "Sun *-*-*", "monthly": "*-*-01"}
_CRON_DAY = {"daily": "* * *", "weekly": "* * 0", "monthly": "1 * *"}
_SAID = {"daily": "every day", "weekly": "on Sundays", "monthly": "on the 1st of each month"}


@dataclass(frozen=True)
class Calendar:
    """A time of day, every day, week or month."""

    hour: int
    minute: int
    every: str = "daily"

    @classmethod
    def parse(cls, text: str, every: str = "daily") -> Calendar:
        match = re.fullmatch(r"(\d{1,2}):(\d{2})", text.strip())
        if not match or int(match[1]) > 23 or int(match[2]) > 59:
            raise UsageError(f"{text!r} is not a time of day like 03:15")
        return cls(int(match[1]), int(match[2]), every)

    def later(self, hours: int, every: str) -> Calendar:
        return Calendar((self.hour + hours) % 24, self.minute, every)

    def systemd(self) -> str:
        """OnCalendar= of a timer."""
        return f"{_SYSTEMD_DAY[self.every]} {self.hour:02d}:{self.minute:02d}:00"

    def cron(self) -> str:
        """The five time fields of a crontab line."""
        return f"{self.minute} {self.hour} {_CRON_DAY[self.every]}"

    def __str__(self) -> str:
        return f"{self.hour:02d}:{self.minute:02d} {_SAID[self.every]}"


@dataclass(frozen=True)
class Job:
    """One service: its command lines run in turn, when its calendar says, or (no calendar)
    when the job it follows has run."""

    name: str
    description: str
    commands: tuple[tuple[str, ...], ...]
    calendar: Calendar | None = None
    follows: str | None = None


@dataclass(frozen=True)
class Schedule:
    """What `schedule install` was asked for; `jobs` turns it into command lines."""

    command: tuple[str, ...]  # how to run snapstore: an absolute path, or python -m ...
    config_path: str
    snapshots: tuple[tuple[str, ...], ...]  # each: the words after `snapstore snapshot`
    daily: Calendar
    check: str | None = "weekly"  # None: no check
    check_subset: str | None = None  # None: CHECK_SUBSET's share for how often
    check_max_duration: str | None = None
    forget: bool = True
    retry_lock: str = DEFAULT_RETRY_LOCK

    def jobs(self, name: str = "snapstore", quiet: bool = False) -> list[Job]:
        """The jobs; `quiet` (cron, which mails any output) adds -q: nothing on success."""
        base = (*self.command, "--config", self.config_path, *(("-q",) if quiet else ()))
        wait = ("--retry-lock", self.retry_lock)
        snapshots = tuple(
            (*base, "snapshot", kind, *wait, *rest) for kind, *rest in self.snapshots
        )  # --retry-lock right after the kind: `snapshot command` ends with `-- PROGRAM ARGS`
        what = "; ".join(shlex.join(words) for words in self.snapshots)
        jobs = [Job(f"{name}-snapshot", f"snapstore snapshot {what}", snapshots, self.daily)]
        if self.forget:
            jobs.append(Job(f"{name}-forget", "snapstore forget --prune by the config file's "
                            "[retention]", ((*base, "forget", "--prune", *wait),),
                            follows=f"{name}-snapshot"))  # fmt: skip
        if self.check is not None:
            subset = self.check_subset or CHECK_SUBSET[self.check]
            limit = ("--max-duration", self.check_max_duration) if self.check_max_duration else ()
            check = (*base, "check", "--read-data-subset", subset, *limit, *wait)
            calendar = self.daily.later(CHECK_DELAY_HOURS, self.check)
            jobs.append(Job(f"{name}-check", f"snapstore check, {subset} of the data read",
                            (check,), calendar))  # fmt: skip
        return jobs


HEADER = "# Written by `snapstore schedule install`; `snapstore schedule remove` removes it."


def render_units(jobs: Sequence[Job], config_path: str, user: bool = False) -> dict[str, str]:
    """File name -> text of each service and timer."""
    followers = {job.follows: job.name for job in jobs if job.follows}
    network = () if user else ("network-online.target",)  # a user manager has no such target
    units = {}
    for job in jobs:
        wants = [*network, *([f"{followers[job.name]}.service"] if job.name in followers else [])]
        after = [*network, *([f"{job.follows}.service"] if job.follows else [])]
        unit = [HEADER, "[Unit]", f"Description={_specifiers(job.description)} "
                                  f"({_specifiers(config_path)})"]
        unit += [f"Wants={' '.join(wants)}"] if wants else []
        unit += [f"After={' '.join(after)}"] if after else []
        unit += ["", "[Service]", "Type=oneshot"]
        unit += [f"ExecStart={systemd_command(words)}" for words in job.commands]
        unit += ["Nice=10", "IOSchedulingClass=idle"]
        units[f"{job.name}.service"] = "\n".join(unit) + "\n"
        if job.calendar is not None:
            units[f"{job.name}.timer"] = "\n".join([
                HEADER, "[Unit]", f"Description={_specifiers(job.description)} at {job.calendar}", "",
                "[Timer]", f"OnCalendar={job.calendar.systemd()}",
                "Persistent=true", "", "[Install]", "WantedBy=timers.target",
            ]) + "\n"  # fmt: skip
    return units


def timers(jobs: Sequence[Job]) -> list[str]:
    return [f"{job.name}.timer" for job in jobs if job.calendar is not None]


def render_cron(jobs: Sequence[Job], user: str | None = None) -> str:
    """Crontab lines; with `user`, /etc/cron.d's form (a user column). A job that follows
    another runs after it on the same line, whatever its exit status, as with systemd.
    Give it quiet jobs: cron mails what a job prints, which should be nothing on success."""
    lines = ["# Printed by `snapstore schedule install --cron`."]
    after = {job.follows: job for job in jobs if job.follows}
    for job in jobs:
        if job.calendar is None:
            continue
        line = " && ".join(cron_command(words) for words in job.commands)
        if job.name in after:
            follow = " && ".join(cron_command(words) for words in after[job.name].commands)
            line = f"{line}; {follow}"  # sh reads `a && b; c` as `(a && b); c`
        lines.append(" ".join([job.calendar.cron(), *([user] if user else []), line]))
    return "\n".join(lines) + "\n"


def _refuse_control(word: str) -> None:
    if any(ord(c) < 32 or ord(c) == 127 for c in word):
        raise UsageError(f"{word!r} holds a control character: it cannot go into a unit or crontab")


def _specifiers(text: str) -> str:
    """Text where systemd expands %-specifiers (Description=), as written."""
    return text.replace("%", "%%")


def systemd_command(words: Sequence[str]) -> str:
    """A command line for ExecStart=: each word quoted as systemd reads it, with % (its
    specifiers) and $ (its variables) doubled."""
    quoted = []
    for word in words:
        _refuse_control(word)
        escaped = word.replace("\\", "\\\\").replace('"', '\\"')
        escaped = _specifiers(escaped).replace("$", "$$")
        plain = word and not re.search(r"[\s\"'\\;]", word)
        quoted.append(escaped if plain else f'"{escaped}"')
    return " ".join(quoted)


def cron_command(words: Sequence[str]) -> str:
    """A command line for cron: shell-quoted, with % escaped (cron turns a bare one into a
    newline)."""
    for word in words:
        _refuse_control(word)
    return shlex.join(words).replace("%", "\\%")
