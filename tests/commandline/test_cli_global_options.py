"""The global and repository options through the installed command, before and after the
command's name (issue 14, item 6): `snapstore -r REPO snapshots` as `snapstore snapshots -r
REPO`, and the same for the password, --config, --cache-dir, --no-cache, --debug and --json;
which one wins; and each command's help, its own options first."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.support.cli import PASSWORD, Cli, snapstore_command


def bare(cli: Cli, *drop: str) -> Cli:
    """The same command without some of its variables."""
    return Cli(cli.repo, {k: v for k, v in cli.env.items() if k not in drop})


def both_sides(cli: Cli, command: list[str], *options: str) -> list[tuple[int, bytes, str]]:
    """Runs `snapstore OPTIONS COMMAND` and `snapstore COMMAND OPTIONS`."""
    ran = []
    for args in ([*options, *command], [*command, *options]):
        done = cli(*args)
        ran.append((done.code, done.out, done.err))
    return ran


def test_the_repository_before_or_after_the_name(initialised: Cli) -> None:
    cli = bare(initialised, "SNAPSTORE_REPOSITORY")
    assert cli("snapshots", "--json").code == 2  # none given: a usage error
    for code, out, err in both_sides(cli, ["snapshots", "--json"], "-r", str(cli.repo)):
        assert code == 0 and json.loads(out) == [], err
    for code, out, err in both_sides(cli, ["snapshots", "--json"], "--repo", str(cli.repo)):
        assert code == 0 and json.loads(out) == [], err


def test_after_the_name_wins_over_before_it_which_wins_over_the_variable(
    initialised: Cli, tmp_path: Path
) -> None:
    missing = str(tmp_path / "missing")
    assert initialised("-r", missing, "snapshots", "-r", str(initialised.repo)).code == 0
    assert initialised("-r", str(initialised.repo), "snapshots", "-r", missing).code == 10
    wrong_env = {"SNAPSTORE_REPOSITORY": missing}
    assert initialised("-r", str(initialised.repo), "snapshots", env=wrong_env).code == 0
    assert initialised("snapshots", "-r", str(initialised.repo), env=wrong_env).code == 0
    assert initialised("snapshots", env=wrong_env).code == 10


def test_the_password_file_and_command_before_or_after_the_name(
    initialised: Cli, tmp_path: Path
) -> None:
    cli = bare(initialised, "SNAPSTORE_PASSWORD")
    good, bad = tmp_path / "good", tmp_path / "bad"
    good.write_text(PASSWORD + "\n")
    bad.write_text("not it\n")
    for code, _, err in both_sides(cli, ["snapshots"], "--password-file", str(good)):
        assert code == 0, err
    for code, _, _ in both_sides(cli, ["snapshots"], "--password-file", str(bad)):
        assert code == 12
    command = f"cat {good}"
    for code, _, err in both_sides(cli, ["snapshots"], "--password-command", command):
        assert code == 0, err
    assert cli("--password-file", str(bad), "snapshots", "--password-file", str(good)).code == 0


def test_the_config_file_before_or_after_the_name(initialised: Cli, tmp_path: Path) -> None:
    cli = bare(initialised, "SNAPSTORE_REPOSITORY", "SNAPSTORE_PASSWORD")
    (tmp_path / "password").write_text(PASSWORD)
    metrics = tmp_path / "snapstore.prom"
    marks = tmp_path / "hook-ran"
    config = tmp_path / "snapstore.toml"
    config.write_text(
        f'repository = "{cli.repo}"\npassword_file = "password"\nmetrics_file = "{metrics}"\n'
        f'[hooks]\nafter = ["echo $SNAPSTORE_COMMAND >> {marks}"]\n'
    )
    for code, out, err in both_sides(cli, ["snapshots", "--json"], "--config", str(config)):
        assert code == 0 and json.loads(out) == [], err
    for code, _, err in both_sides(cli, ["check"], "--config", str(config)):
        assert code == 0, err
    # the file's hooks and metrics file too, wherever --config stands
    assert marks.read_text().split() == ["snapshots", "snapshots", "check", "check"]
    assert 'snapstore_last_run_success{command="check"} 1' in metrics.read_text()


def test_the_cache_folder_and_no_cache_before_or_after_the_name(
    initialised: Cli, tmp_path: Path
) -> None:
    for args in (["--cache-dir", str(tmp_path / "before"), "check"],
                 ["check", "--cache-dir", str(tmp_path / "after")]):  # fmt: skip
        done = initialised(*args)
        assert done.code == 0, done.err
    for side in ("before", "after"):  # check remembers its result there, for `health`
        assert [p for p in (tmp_path / side).rglob("*") if p.is_file()], side
    for code, _, err in both_sides(initialised, ["check", "--read-data-subset", "50%"], "--no-cache"):
        assert code == 0 and "no cache directory (--no-cache)" in err, err


def test_debug_before_or_after_the_name_shows_the_traceback(initialised: Cli, tmp_path: Path) -> None:
    env = dict(initialised.env, SNAPSTORE_REPOSITORY=str(tmp_path / "missing"))
    for args in (["--debug", "snapshots"], ["snapshots", "--debug"], ["snapshots"]):
        done = subprocess.run([*snapstore_command(), *args], env=env, capture_output=True,
                              text=True, timeout=120)  # fmt: skip
        assert done.returncode == 10
        assert ("Traceback" in done.stderr) == ("--debug" in args), done.stderr


def test_json_before_or_after_the_name(initialised: Cli) -> None:
    for command in (["snapshots"], ["stats"]):
        for code, out, err in both_sides(initialised, command, "--json"):
            assert code == 0, err
            json.loads(out)
    for code, out, err in both_sides(initialised, ["check"], "--json"):  # JSON lines
        assert code == 0 and out.strip(), err
        for line in out.splitlines():
            json.loads(line)


@pytest.mark.parametrize("command", [["snapshots"], ["snapshot", "files"], ["schedule", "install"]])
def test_a_commands_help_lists_its_own_options_then_the_shared_ones(
    cli: Cli, command: list[str]
) -> None:
    done = cli(*command, "--help")
    assert done.code == 0, done.err
    titles = [line for line in done.text.splitlines() if line.endswith(":") and not line.startswith(" ")]
    expected = ["Options:", "Repository options:", "Global options:"]
    if command[0] == "schedule":
        expected.remove("Repository options:")  # it opens no repository
    assert titles[titles.index("Options:"):] == expected
    own = done.text.split("Options:\n", 1)[1].split("\n\n", 1)[0]
    assert "--repo" not in own and "--config" not in own


def _section(text: str, title: str) -> list[str]:
    """The option lines of one help section, each option's first line."""
    body = text.split(f"{title}:\n", 1)[1].split("\n\n", 1)[0]
    return [line.split()[0] for line in body.splitlines() if line.startswith("  -")]


def test_the_postgresql_server_has_one_spelling(initialised: Cli) -> None:
    every = ["--pg-host", "--pg-port", "--pg-user", "--pg-command-prefix", "--pg-run-as"]
    helps = {
        ("snapshot", "postgres"): every, ("drill",): every, ("restore", "mastodon"): every,
        ("restore",): every[:4], ("snapshot", "mastodon"): every[3:],
    }  # fmt: skip
    for command, flags in helps.items():
        done = initialised(*command, "--help")
        assert done.code == 0, done.err
        assert _section(done.text, "PostgreSQL server options") == flags, command
    for old, new in (("--host", "--pg-host"), ("--port", "--pg-port"), ("--username", "--pg-user"),
                     ("--command-prefix", "--pg-command-prefix")):  # fmt: skip
        refused = initialised("snapshot", "postgres", "--dbname", "x", old, "5432")
        assert refused.code == 2 and f"{old} is now {new}" in refused.err, refused.err


def test_the_redis_server_has_one_spelling(initialised: Cli, tmp_path: Path) -> None:
    for command in (("snapshot", "redis"), ("snapshot", "mastodon"), ("restore", "mastodon")):
        done = initialised(*command, "--help")
        assert done.code == 0 and "--redis-command-prefix" in done.text, command
    for old, new in (("--host", "--redis-host"), ("--port", "--redis-port"),
                     ("--command-prefix", "--redis-command-prefix")):  # fmt: skip
        refused = initialised("snapshot", "redis", old, "6379")
        assert refused.code == 2 and f"{old} is now {new}" in refused.err, refused.err
    # the [redis] keys reach the new flags: a prefix that writes down the redis-cli it was given
    seen = tmp_path / "redis-cli-args"
    config = tmp_path / "snapstore.toml"
    config.write_text(f'[redis]\nhost = "127.0.0.9"\nport = 7001\n'
                      f'command_prefix = ["sh", "-c", "echo \\"$@\\" >> {seen}; exit 3", "prefix"]\n')
    failed = initialised("snapshot", "redis", "--config", str(config))
    assert failed.code == 1, failed.err
    assert "-h 127.0.0.9 -p 7001" in seen.read_text()


def test_quiet_and_verbose_before_or_after_the_name(initialised: Cli, tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "a.txt").write_text("a")
    for code, out, err in both_sides(initialised, ["snapshot", "files", str(source)], "-q"):
        assert (code, out, err) == (0, b"", "")
    split = initialised("-v", "snapshot", "files", str(source), "-v")  # -v and -v: -vv
    assert split.code == 0, split.err
    assert f"unchanged {source / 'a.txt'}" in split.text.splitlines()
