"""`snapstore schedule install|remove|status` through the installed command: units checked by
`systemd-analyze verify`, enabled and disabled by the real systemctl on the unit files (under
--root, or a user's ~/.config/systemd/user), crontab lines parsed and run, and a stand-in
systemctl for a host where systemd runs."""

from __future__ import annotations

import getpass
import json
import os
import shlex
import shutil
import subprocess
from pathlib import Path

from tests.support import server_unavailable
from tests.support.cli import Cli, snapstore_command

CONFIG = """\
repository = {repo}
password_file = "password"

[retention]
keep_last = 1

[schedule]
snapshot = [{snapshot}]
"""


def _config(folder: Path, cli: Cli, snapshot: str, extra: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "password").write_text(cli.env["SNAPSTORE_PASSWORD"])
    path = folder / "snapstore.toml"
    path.write_text(CONFIG.format(repo=json.dumps(str(cli.repo)), snapshot=json.dumps(snapshot)) + extra)
    return path


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        server_unavailable(f"{name} is missing (apt-get install systemd)")
    return found


def _verify(paths: list[Path], user: bool = False, runtime: Path | None = None) -> None:
    """systemd-analyze verify: exit 0 and nothing said (a warning is a failure too)."""
    env = dict(os.environ, **({"XDG_RUNTIME_DIR": str(runtime)} if runtime else {}))
    done = subprocess.run([_tool("systemd-analyze"), *(["--user"] if user else []), "verify",
                           *map(str, paths)], capture_output=True, text=True, env=env)  # fmt: skip
    assert done.returncode == 0 and not done.stdout.strip() and not done.stderr.strip(), (
        done.stdout + done.stderr
    )


def _exec_start(unit: Path) -> list[list[str]]:
    """The ExecStart= lines read back as systemd.service(5) reads them: words split at
    blanks, double quotes with C escapes, %% for %, $$ for $."""
    commands = []
    for line in unit.read_text().splitlines():
        if not line.startswith("ExecStart="):
            continue
        words, word, quoted, text, i = [], "", False, line.partition("=")[2], 0
        started = False
        while i < len(text):
            c = text[i]
            if c == "\\" and quoted:
                word += {"n": "\n", "t": "\t"}.get(text[i + 1], text[i + 1])
                i += 2
                continue
            if c == '"':
                quoted, started = not quoted, True
            elif c in "%$" and text[i + 1] == c:
                word, started = word + c, True
                i += 1
            elif c in "%$":
                raise AssertionError(f"unescaped {c} in {line!r}")
            elif c == " " and not quoted:
                if started:
                    words.append(word)
                word, started = "", False
            else:
                word, started = word + c, True
            i += 1
        assert not quoted, line
        commands.append([*words, *([word] if started else [])])
    return commands


def test_system_units_verify_enable_show_and_remove(initialised: Cli, tmp_path: Path) -> None:
    _tool("systemctl")
    odd = tmp_path / "conf dir %k $HOME"  # specifiers and variables systemd would expand
    config = _config(odd, initialised, "files '/srv/a b' /srv/100%")
    root = tmp_path / "root"
    done = initialised("--config", str(config), "schedule", "install", "--root", str(root),
                       "--daily", "02:40", "--check", "daily", "--check-max-duration", "30m")  # fmt: skip
    assert done.code == 0, done.err
    units = root / "etc/systemd/system"
    names = sorted(p.name for p in units.glob("snapstore-*"))
    assert names == ["snapstore-check.service", "snapstore-check.timer", "snapstore-forget.service",
                     "snapstore-snapshot.service", "snapstore-snapshot.timer"]  # fmt: skip
    _verify(sorted(units.glob("snapstore-*")))

    command = snapstore_command()
    base = [*command, "--config", str(config)]
    assert _exec_start(units / "snapstore-snapshot.service") == [
        [*base, "snapshot", "files", "--retry-lock", "2h", "/srv/a b", "/srv/100%"]]
    assert _exec_start(units / "snapstore-forget.service") == [
        [*base, "forget", "--prune", "--retry-lock", "2h"]]
    assert _exec_start(units / "snapstore-check.service") == [
        [*base, "check", "--read-data-subset", "5%", "--max-duration", "30m", "--retry-lock", "2h"]]
    snapshot_unit = (units / "snapstore-snapshot.service").read_text()
    assert "Wants=network-online.target snapstore-forget.service" in snapshot_unit
    assert "After=network-online.target snapstore-snapshot.service" in (
        units / "snapstore-forget.service").read_text()
    assert "OnCalendar=*-*-* 02:40:00" in (units / "snapstore-snapshot.timer").read_text()
    assert "OnCalendar=*-*-* 04:40:00" in (units / "snapstore-check.timer").read_text()
    wants = units / "timers.target.wants"
    assert sorted(p.name for p in wants.iterdir()) == ["snapstore-check.timer", "snapstore-snapshot.timer"]
    assert "not running here" in done.out.decode()

    status = initialised("schedule", "status", "--root", str(root))
    assert status.code == 0, status.err
    lines = status.text.splitlines()
    assert "snapstore-snapshot.timer: enabled, at *-*-* 02:40:00" in lines
    assert "snapstore-check.timer: enabled, at *-*-* 04:40:00" in lines
    assert any(line.startswith("snapstore-forget.service: runs ") for line in lines)
    assert lines[-1] == "systemd is not running here: no last or next runs to show"

    removed = initialised("schedule", "remove", "--root", str(root))
    assert removed.code == 0, removed.err
    assert list(units.glob("snapstore-*")) == []
    assert not wants.exists() or list(wants.iterdir()) == []
    assert initialised("schedule", "status", "--root", str(root)).code == 1


def test_a_second_install_replaces_the_first_and_drops_what_it_no_longer_runs(
    initialised: Cli, tmp_path: Path
) -> None:
    _tool("systemctl")
    config = _config(tmp_path / "etc", initialised, "files /srv")
    root = tmp_path / "root"
    assert initialised("--config", str(config), "schedule", "install", "--root", str(root)).code == 0
    again = initialised("--config", str(config), "schedule", "install", "--root", str(root),
                        "--check", "off", "--daily", "01:05")  # fmt: skip
    assert again.code == 0, again.err
    units = root / "etc/systemd/system"
    assert sorted(p.name for p in units.glob("snapstore-*")) == [
        "snapstore-forget.service", "snapstore-snapshot.service", "snapstore-snapshot.timer"]
    assert sorted(p.name for p in (units / "timers.target.wants").iterdir()) == ["snapstore-snapshot.timer"]
    assert "OnCalendar=*-*-* 01:05:00" in (units / "snapstore-snapshot.timer").read_text()


def test_user_units_go_to_the_users_config_folder(initialised: Cli, tmp_path: Path) -> None:
    _tool("systemctl")
    config = _config(tmp_path / "etc", initialised, "files /srv")
    home = tmp_path / "config-home"
    env = {"XDG_CONFIG_HOME": str(home)}
    done = initialised("--config", str(config), "schedule", "install", "--user", env=env)
    assert done.code == 0, done.err
    units = home / "systemd/user"
    assert (units / "timers.target.wants/snapstore-snapshot.timer").is_symlink()
    for unit in units.glob("snapstore-*.service"):
        assert "network-online" not in unit.read_text()  # a user manager has no such target
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    _verify(sorted(units.glob("snapstore-*")), user=True, runtime=runtime)
    status = initialised("schedule", "status", "--user", env=env)
    assert "snapstore-snapshot.timer: enabled, at *-*-* 03:15:00" in status.text.splitlines()
    assert status.text.splitlines()[-1].startswith("your user's systemd is not running here")
    assert initialised("schedule", "remove", "--user", env=env).code == 0
    assert list(units.glob("snapstore-*")) == []


def test_the_config_files_schedule_section_gives_the_defaults(initialised: Cli, tmp_path: Path) -> None:
    extra = 'daily = "04:50"\ncheck = "monthly"\nretry_lock = "45m"\n'
    config = _config(tmp_path / "etc", initialised, "files /srv", extra)
    root = tmp_path / "root"
    done = initialised("--config", str(config), "schedule", "install", "--root", str(root),
                       "--check-subset", "10%")  # fmt: skip
    assert done.code == 0, done.err
    units = root / "etc/systemd/system"
    assert "OnCalendar=*-*-01 06:50:00" in (units / "snapstore-check.timer").read_text()
    check = _exec_start(units / "snapstore-check.service")[0]
    assert check[check.index("check"):] == ["check", "--read-data-subset", "10%", "--retry-lock", "45m"]


def _cron_lines(text: str) -> list[tuple[str, str, list[str]]]:
    """(time fields, user, commands) of each /etc/cron.d line; cron turns \\% into %."""
    parsed = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split(None, 6)
        assert "%" not in fields[6].replace("\\%", ""), line  # a bare % would be a newline
        parsed.append((" ".join(fields[:5]), fields[5], [fields[6].replace("\\%", "%")]))
    return parsed


def test_cron_lines_run_the_nightly_jobs(initialised: Cli, tmp_path: Path) -> None:
    source = tmp_path / "src 100%"
    source.mkdir()
    (source / "file").write_text("night one")
    config = _config(tmp_path / "etc", initialised, f"files {shlex.quote(str(source))}")
    done = initialised("--config", str(config), "schedule", "install", "--cron", "--daily", "23:59")
    assert done.code == 0, done.err
    (nightly_when, user, [nightly]), (check_when, _, [check]) = _cron_lines(done.text)
    assert (nightly_when, check_when) == ("59 23 * * *", "59 1 * * 0")
    assert user == getpass.getuser()
    env = {k: v for k, v in initialised.env.items() if not k.startswith("SNAPSTORE_")}
    for night in (1, 2):  # as cron runs them: sh -c with nothing from snapstore's environment
        (source / "file").write_text(f"night {night}")
        run = subprocess.run(["sh", "-c", nightly], capture_output=True, text=True, env=env)
        assert (run.returncode, run.stdout, run.stderr) == (0, "", "")  # nothing for cron to mail
    snapshots = initialised("snapshots", "--json").json()
    assert len(snapshots) == 1 and snapshots[0]["paths"] == [str(source)]  # keep_last = 1
    checked = subprocess.run(["sh", "-c", check], capture_output=True, text=True, env=env)
    assert (checked.returncode, checked.stdout, checked.stderr) == (0, "", "")
    assert initialised("health", "--max-age", "1h").code == 0  # the check was recorded

    as_user = initialised("--config", str(config), "schedule", "install", "--cron", "--user")
    first = [line for line in as_user.text.splitlines() if not line.startswith("#")][0]
    assert first.split(None, 5)[5].startswith(snapstore_command()[0])  # no user column


def test_where_systemd_runs_it_is_reloaded_started_and_asked(initialised: Cli, tmp_path: Path) -> None:
    """A stand-in systemctl that says systemd runs and logs what it is asked."""
    bin_dir, log = tmp_path / "bin", tmp_path / "systemctl.log"
    bin_dir.mkdir()
    fake = bin_dir / "systemctl"
    fake.write_text(f"""#!/bin/sh
echo "$*" >> {shlex.quote(str(log))}
case "$*" in
  *is-system-running*) echo running ;;
  *is-enabled*) echo enabled ;;
  *show*snapstore-snapshot.service*) printf 'Result=exit-code\\nExecMainStatus=3\\nExecMainExitTimestamp=Mon 2026-12-07 03:17:02 UTC\\n' ;;
  *show*) printf 'Result=success\\nExecMainStatus=0\\nExecMainExitTimestamp=\\n' ;;
  *list-timers*) echo "NEXT LEFT LAST PASSED UNIT ACTIVATES" ;;
esac
""")
    fake.chmod(0o755)
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    config = _config(tmp_path / "etc", initialised, "files /srv")
    done = initialised("--config", str(config), "schedule", "install", "--user", env=env)
    assert done.code == 0, done.err
    assert "they start now" in done.text
    calls = log.read_text().splitlines()
    assert calls[-2:] == ["--user daemon-reload",
                          "--user enable --now snapstore-snapshot.timer snapstore-check.timer"]

    status = initialised("schedule", "status", "--user", env=env)
    lines = status.text.splitlines()
    assert "snapstore-snapshot.service: last run ended Mon 2026-12-07 03:17:02 UTC: exit-code, exit 3" in lines
    assert "snapstore-check.service: not run yet" in lines
    assert lines[-1] == "NEXT LEFT LAST PASSED UNIT ACTIVATES"
    assert "--user list-timers --all snapstore-snapshot.timer snapstore-check.timer" in log.read_text()

    assert initialised("schedule", "remove", "--user", env=env).code == 0
    calls = log.read_text().splitlines()
    assert calls[-2:] == ["--user disable --now snapstore-snapshot.timer snapstore-check.timer",
                          "--user daemon-reload"]


def test_what_cannot_be_scheduled_is_refused(initialised: Cli, tmp_path: Path) -> None:
    root = tmp_path / "root"
    no_config = initialised("schedule", "install", "--root", str(root))
    assert no_config.code == 2 and "--config" in no_config.err

    bare = tmp_path / "bare.toml"
    bare.write_text('repository = "/srv/backup"\n')
    refused = initialised("--config", str(bare), "schedule", "install", "--root", str(root))
    assert refused.code == 2 and "password_file or password_command" in refused.err

    nothing = tmp_path / "nothing.toml"
    nothing.write_text('repository = "/srv/backup"\npassword_command = "cat /pw"\n')
    unsaid = initialised("--config", str(nothing), "schedule", "install", "--root", str(root))
    assert unsaid.code == 2 and "--snapshot" in unsaid.err
    stdin = initialised("--config", str(nothing), "schedule", "install", "--root", str(root),
                        "--snapshot", "stdin --name x")  # fmt: skip
    assert stdin.code == 2 and "must start with one of" in stdin.err
    bad_time = initialised("--config", str(nothing), "schedule", "install", "--snapshot", "files /srv",
                           "--daily", "25:00", "--cron")  # fmt: skip
    assert bad_time.code == 2 and "time of day" in bad_time.err

    units = root / "etc/systemd/system"
    units.mkdir(parents=True)
    (units / "snapstore-check.timer").write_text("[Timer]\nOnCalendar=daily\n")  # the admin's own
    foreign = initialised("--config", str(nothing), "schedule", "install", "--root", str(root),
                          "--snapshot", "files /srv")  # fmt: skip
    assert foreign.code == 2 and "not written by snapstore" in foreign.err
    assert (units / "snapstore-check.timer").read_text() == "[Timer]\nOnCalendar=daily\n"
    mastodon = tmp_path / "mastodon.toml"
    mastodon.write_text('repository = "/srv/b"\npassword_file = "pw"\n[mastodon]\n'
                        'env_file = "/home/mastodon/live/.env.production"\n')  # fmt: skip
    done = initialised("--config", str(mastodon), "schedule", "install", "--cron")
    assert done.code == 0 and " snapshot mastodon --retry-lock 2h" in done.text
    assert "no [retention]" in done.err and " forget " not in done.text


def test_the_readmes_complete_config_file_schedules_what_it_says(cli: Cli, tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    start = readme.index("    # /etc/snapstore.toml\n")
    block = readme[start:readme.index("**Schedules.**", start)]
    config = tmp_path / "snapstore.toml"
    config.write_text("\n".join(line[4:] for line in block.splitlines()))
    done = cli("--config", str(config), "schedule", "install", "--cron")
    assert done.code == 0, done.err
    (nightly_when, _, [nightly]), (check_when, _, [check]) = _cron_lines(done.text)
    assert (nightly_when, check_when) == ("15 3 * * *", "15 5 * * 0")
    said = [shlex.split(part)[3:] for part in nightly.replace(" && ", "; ").split("; ")]
    assert {part[0] for part in said} == {"-q"}  # cron mails what a job prints
    said = [part[1:] for part in said]
    assert said == [["snapshot", "mastodon", "--retry-lock", "2h"],
                    ["snapshot", "files", "--retry-lock", "2h", "/etc", "/root"],
                    ["forget", "--prune", "--retry-lock", "2h"]]  # fmt: skip
    assert shlex.split(check)[3:] == ["-q", "check", "--read-data-subset", "25%", "--max-duration",
                                      "2h", "--retry-lock", "2h"]  # fmt: skip
    shown = readme[readme.index("    # Printed by", start):].split("\n\n", 1)[0]
    shown = shown.replace("/usr/local/bin/snapstore", snapstore_command()[0])
    shown = shown.replace("/etc/snapstore.toml", str(config)).replace("    ", "")
    assert shown.splitlines() == done.text.splitlines()  # the README shows what it prints


def test_the_config_file_may_follow_the_command(cli: Cli, tmp_path: Path) -> None:
    config = _config(tmp_path / "etc", cli, "files /srv")
    before = cli("--config", str(config), "schedule", "install", "--cron")
    after = cli("schedule", "install", "--cron", "--config", str(config))
    assert before.code == after.code == 0, before.err + after.err
    assert after.text == before.text and f"--config {config} -q snapshot files" in after.text
