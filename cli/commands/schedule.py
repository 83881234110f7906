"""`snapstore schedule install|remove|status`: the nightly snapshot, forget --prune and a
rotating check as systemd timers (or crontab lines), all reading one config file; what the
units say is cli/schedule.py's, where they live and systemctl is cli/systemctl.py's."""

from __future__ import annotations

import getpass
import os
import shlex
import shutil
import sys
from pathlib import Path

import click

from snapstore.cli.config_file import ConfigFile, current_config
from snapstore.cli.remote_options import parse_wait
from snapstore.cli.schedule import (
    DEFAULT_RETRY_LOCK,
    EVERY,
    HEADER,
    Calendar,
    Schedule,
    render_cron,
    render_units,
    timers,
)  # fmt: skip
from snapstore.cli.systemctl import Scope
from snapstore.errors import UsageError

JOBS = ("snapshot", "forget", "check")
SNAPSHOT_KINDS = ("files", "command", "postgres", "redis", "mastodon")


def _command() -> tuple[str, ...]:
    """How the units run snapstore: this very command by its absolute path."""
    argv0 = sys.argv[0]
    if os.path.basename(argv0) == "snapstore":
        found = argv0 if os.sep in argv0 else shutil.which(argv0)
        if found:
            return (os.path.abspath(found),)
    return (sys.executable, "-m", "snapstore.cli")


def _snapshots(given: tuple[str, ...], config: ConfigFile) -> tuple[tuple[str, ...], ...]:
    """--snapshot (or [schedule] snapshot), else what the config file describes."""
    if not given:
        if config.mastodon:
            given = ("mastodon",)
        elif config.postgres.get("dbname"):
            given = ("postgres",)
        else:
            raise UsageError(f"{config.path} has no [mastodon] section or [postgres] dbname: "
                             "say what to back up with --snapshot 'files /etc /home' "
                             "(or [schedule] snapshot)")  # fmt: skip
    snapshots = []
    for text in given:
        words = tuple(shlex.split(text))
        if not words or words[0] not in SNAPSHOT_KINDS:
            raise UsageError(f"--snapshot {text!r} must start with one of {', '.join(SNAPSHOT_KINDS)}")
        snapshots.append(words)
    return tuple(snapshots)


def _schedule(config: ConfigFile, snapshot: tuple[str, ...], daily: str, check: str,
              check_subset: str | None, check_max_duration: str | None, retry_lock: str) -> Schedule:
    if not config.repository or not (config.settings.get("password_file")
                                      or config.settings.get("password_command")):
        raise UsageError(f"{config.path} must name the repository and password_file or "
                         "password_command: a timer's run has no other environment")  # fmt: skip
    if check_subset is not None:
        share = check_subset.strip().rstrip("%")
        if not check_subset.strip().endswith("%") or not 0 < float(share or "0") <= 100:
            raise UsageError(f"--check-subset {check_subset!r} must be a share like 25%")
    for text in (check_max_duration, retry_lock):
        if text is not None:
            parse_wait(text)
    return Schedule(
        _command(), str(config.path.absolute()), _snapshots(snapshot, config),
        Calendar.parse(daily), None if check == "off" else check, check_subset,
        check_max_duration, forget=bool(config.retention), retry_lock=retry_lock,
    )  # fmt: skip


def _ours(path: Path) -> bool:
    try:
        return path.read_text().startswith(HEADER)
    except OSError:
        return False


def _unit_files(scope: Scope, name: str) -> list[Path]:
    return [path for job in JOBS for kind in ("timer", "service")
            if (path := scope.unit_dir / f"{name}-{job}.{kind}").exists()]  # fmt: skip


def _write(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text)
    temporary.replace(path)


def _remove(scope: Scope, paths: list[Path]) -> None:
    """Disable the timers among `paths` (stopping them where systemd runs), delete the files."""
    names = [path.name for path in paths if path.suffix == ".timer"]
    running = scope.running()
    if names and scope.available:
        scope.run("disable", *(["--now"] if running else []), *names)
    for path in paths:
        path.unlink()
        click.echo(f"removed {path}")
    if running:
        scope.run("daemon-reload")


def _scope_options(func: click.decorators.FC) -> click.decorators.FC:
    func = click.option("--name", default="snapstore", show_default=True,
                        help="Units are NAME-snapshot, NAME-forget and NAME-check.")(func)  # fmt: skip
    func = click.option("--root", metavar="DIR", type=click.Path(file_okay=False),
                        help="System units under DIR/etc/systemd/system, as systemctl --root.")(func)  # fmt: skip
    return click.option("--user", is_flag=True,
                        help="A user's units (~/.config/systemd/user), not the system's.")(func)  # fmt: skip


def build() -> click.Group:
    @click.group("schedule")
    def schedule() -> None:
        """Run the configured snapshot, forget --prune and a rotating check on timers.

        Everything comes from the config file (--config or SNAPSTORE_CONFIG): the repository,
        its password, what to back up ([schedule] snapshot, else [mastodon], else [postgres]
        dbname) and the retention ([retention]; none: nothing is forgotten)."""

    @schedule.command("install")
    @click.option("--daily", default="03:15", show_default=True, metavar="HH:MM",
                  help="When the snapshot runs each day (local time); forget --prune follows it.")
    @click.option("--check", type=click.Choice([*EVERY, "off"]), default="weekly",
                  show_default=True, help="How often a check reads part of the data, two hours "
                  "after the snapshot (weekly: Sundays, monthly: the 1st).")
    @click.option("--check-subset", metavar="P%", help="The share each check reads, least "
                  "recently verified first [default: 5% daily, 25% weekly, 100% monthly].")
    @click.option("--check-max-duration", metavar="DURATION",
                  help="Stop each check starting packs after this long, e.g. 1h.")
    @click.option("--snapshot", multiple=True, metavar="'KIND ARGS'",
                  help="What to back up, e.g. 'files /etc /home' (repeatable, run in turn) "
                       "[default: the config file's mastodon or postgres].")
    @click.option("--retry-lock", default=DEFAULT_RETRY_LOCK, show_default=True,
                  metavar="DURATION", help="How long each run waits for a conflicting lock.")
    @click.option("--cron", is_flag=True, help="Print crontab lines instead of writing units "
                  "(/etc/cron.d's form; with --user, crontab -e's).")
    @_scope_options
    def install(daily: str, check: str, check_subset: str | None, check_max_duration: str | None,
                snapshot: tuple[str, ...], retry_lock: str, cron: bool, user: bool,
                root: str | None, name: str) -> int:
        """Write and enable systemd timers (or print crontab lines) for the nightly runs."""
        config = current_config()
        if config is None:
            raise UsageError("schedule install needs --config FILE (or SNAPSTORE_CONFIG): "
                             "the timers' runs read everything from it")  # fmt: skip
        plan = _schedule(config, snapshot, daily, check, check_subset, check_max_duration, retry_lock)
        jobs = plan.jobs(name)
        if not plan.forget:
            click.echo(f"note: {config.path} has no [retention]: nothing will be forgotten "
                       "(add e.g. keep_daily = 7, keep_weekly = 4)", err=True)  # fmt: skip
        if cron:
            lines = render_cron(plan.jobs(name, quiet=True), None if user else getpass.getuser())
            click.echo(lines, nl=False)
            return 0
        scope = Scope(user, root)
        units = render_units(jobs, plan.config_path, user=user)
        for filename in units:
            if (scope.unit_dir / filename).exists() and not _ours(scope.unit_dir / filename):
                raise UsageError(f"{scope.unit_dir / filename} exists and was not written by "
                                 "snapstore: not overwriting it")  # fmt: skip
        stale = [path for path in _unit_files(scope, name) if path.name not in units and _ours(path)]
        if stale:
            _remove(scope, stale)
        scope.unit_dir.mkdir(parents=True, exist_ok=True)
        for filename, text in units.items():
            _write(scope.unit_dir / filename, text)
            click.echo(f"wrote {scope.unit_dir / filename}")
        for job in jobs:
            runs = " && ".join(shlex.join(["snapstore", *words[len(plan.command):]])
                               for words in job.commands)  # fmt: skip
            click.echo(f"{job.name}: {job.calendar or 'after ' + str(job.follows)}: {runs}")
        if not scope.available:
            click.echo(f"systemctl not found: enable {', '.join(timers(jobs))} yourself, or use --cron")
            return 0
        running = scope.running()
        if running:
            scope.run("daemon-reload")
        enabled = scope.run("enable", *(["--now"] if running else []), *timers(jobs))
        if enabled.returncode != 0:
            raise UsageError(f"{scope.command('enable', *timers(jobs))} failed: {enabled.stderr.strip()}")
        when = "now" if running else f"when {scope.manager()} runs ({scope.manager()} is not running here)"
        click.echo(f"enabled {', '.join(timers(jobs))}: they start {when}")
        return 0

    @schedule.command("remove")
    @_scope_options
    def remove(user: bool, root: str | None, name: str) -> int:
        """Disable and delete the units `schedule install` wrote."""
        scope = Scope(user, root)
        found = [path for path in _unit_files(scope, name) if _ours(path)]
        if not found:
            click.echo(f"no schedule {name!r} in {scope.unit_dir}")
            return 0
        _remove(scope, found)
        return 0

    @schedule.command("status")
    @_scope_options
    def status(user: bool, root: str | None, name: str) -> int:
        """Show the installed timers, what they run and, where systemd runs, their last and
        next runs; exit 1 when none is installed."""
        scope = Scope(user, root)
        found = _unit_files(scope, name)
        if not found:
            click.echo(f"no schedule {name!r} in {scope.unit_dir}")
            return 1
        running = scope.running()
        for path in found:
            lines = path.read_text().splitlines()
            if path.suffix == ".timer":
                state = scope.run("is-enabled", path.name).stdout.strip() if scope.available else "?"
                when = ", ".join(line.partition("=")[2] for line in lines if line.startswith("OnCalendar="))
                click.echo(f"{path.name}: {state or 'unknown'}, at {when}")
                continue
            for line in lines:
                if line.startswith("ExecStart="):
                    click.echo(f"{path.name}: runs {line.partition('=')[2]}")
            if running:
                shown = scope.run("show", "--property=Result,ExecMainStatus,ExecMainExitTimestamp",
                                  path.name).stdout  # fmt: skip
                facts = dict(line.partition("=")[::2] for line in shown.splitlines())
                if facts.get("ExecMainExitTimestamp"):
                    click.echo(f"{path.name}: last run ended {facts['ExecMainExitTimestamp']}: "
                               f"{facts.get('Result', '?')}, exit {facts.get('ExecMainStatus', '?')}")
                else:
                    click.echo(f"{path.name}: not run yet")
        if running:
            names = [path.name for path in found if path.suffix == ".timer"]
            click.echo(scope.run("list-timers", "--all", *names).stdout.rstrip())
        else:
            click.echo(f"{scope.manager()} is not running here: no last or next runs to show")
        return 0

    return schedule
