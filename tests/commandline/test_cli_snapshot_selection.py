"""--host, --tag and --path through the installed command (issue 14, item 5): `latest` is the
newest snapshot they match in every command that takes a snapshot; `restore latest --include P`
picks the newest snapshot holding P and says which (the README's quick start, literally: a
stdin dump taken after the files no longer makes it restore nothing); `snapshots` groups
and, piped, prints whole paths."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.cli import Cli


def ok(cli: Cli, *args: str, input: bytes | None = None) -> str:
    done = cli(*args, input=input)
    assert done.code == 0, done.err
    return done.text


def snapshot_id(cli: Cli, *args: str, input: bytes | None = None) -> str:
    return json.loads(ok(cli, *args, "--json", input=input).splitlines()[-1])["snapshot_id"]  # the summary


@pytest.fixture
def etc(tmp_path: Path) -> Path:
    root = tmp_path / "etc"
    (root / "nginx" / "sites-enabled").mkdir(parents=True)
    (root / "nginx" / "nginx.conf").write_text("worker_processes 2;\n")
    (root / "nginx" / "sites-enabled" / "mastodon").write_text("server { listen 443; }\n")
    (root / "hostname").write_text("web1\n")
    return root


@pytest.fixture
def home(tmp_path: Path) -> Path:
    # a long path: `snapshots` piped must print it whole, not wrapped at 80 columns
    root = tmp_path / ("mastodon-live-directory-with-a-name-long-enough-to-wrap-" * 2) / "live"
    root.mkdir(parents=True)
    (root / ".env.production").write_text("LOCAL_DOMAIN=example.org\n")
    return root


def test_quick_start_restore_latest_include_finds_the_files(
    initialised: Cli, etc: Path, tmp_path: Path
) -> None:
    files = snapshot_id(initialised, "snapshot", "files", str(etc), "--tag", "config")
    snapshot_id(initialised, "snapshot", "stdin", "--name", "mastodon.dump", input=b"PGDMP dump\n")
    target = tmp_path / "restore"
    nginx = f"{etc}/nginx"
    done = initialised("restore", "latest", "--target", str(target), "--include", nginx)
    assert done.code == 0, done.err
    assert f"latest snapshot holding {nginx}: {files[:8]} (" in done.err
    assert (target / nginx.lstrip("/") / "nginx.conf").read_text() == "worker_processes 2;\n"
    assert not (target / str(etc).lstrip("/") / "hostname").exists()
    quiet = initialised("restore", "latest", "--target", str(tmp_path / "quiet"), "--include", nginx, "-q")
    assert quiet.code == 0 and quiet.err == ""  # -q: nothing when all is well
    assert (tmp_path / "quiet" / nginx.lstrip("/") / "nginx.conf").exists()
    # no snapshot holds it: one line, exit 1, nothing restored
    missing = initialised("restore", "latest", "--target", str(tmp_path / "none"), "--include", "/nowhere")
    assert missing.code == 1 and "no complete snapshot holds /nowhere" in missing.err
    assert not (tmp_path / "none").exists()


def test_filters_choose_latest_in_every_command(
    initialised: Cli, etc: Path, home: Path, tmp_path: Path
) -> None:
    web1 = snapshot_id(initialised, "snapshot", "files", str(etc), "--host", "web1", "--tag", "config")
    (etc / "hostname").write_text("web1, later\n")
    web1_later = snapshot_id(initialised, "snapshot", "files", str(etc), "--host", "web1", "--tag", "config",
                             "--tag", "daily")
    web2 = snapshot_id(initialised, "snapshot", "files", str(home), "--host", "web2")
    dump = snapshot_id(initialised, "snapshot", "stdin", "--name", "mastodon.dump", "--host", "db1",
                       input=b"PGDMP dump\n")
    hostname = f"{etc}/hostname"

    assert ok(initialised, "dump", "latest", hostname, "--host", "web1") == "web1, later\n"
    assert ok(initialised, "dump", "latest", "/mastodon.dump") == "PGDMP dump\n"  # the newest of all
    assert ok(initialised, "dump", "latest", "mastodon.dump", "--path", "mastodon.dump", "--host", "db1") \
        == "PGDMP dump\n"
    # "a,b" is both tags; repeated --tag is any of them
    assert ok(initialised, "dump", "latest", hostname, "--tag", "config,daily") == "web1, later\n"
    assert json.loads(ok(initialised, "ls", "latest", "--tag", "daily,nope", "--tag", "config", "--json"))
    listed = json.loads(ok(initialised, "ls", "latest", "--path", f"{home}/", "--json"))
    assert any(entry["path"].endswith(".env.production") for entry in listed)

    diff = ok(initialised, "diff", web1[:8], "latest", "--host", "web1")
    assert f"comparing snapshot {web1[:8]} to {web1_later[:8]}" in diff and "M    " + hostname in diff

    found = json.loads(ok(initialised, "find", "hostname", "--host", "web1", "--json"))
    assert [group["snapshot"] for group in found] == [web1_later, web1]  # newest first, web1 only
    found = json.loads(ok(initialised, "find", "*", "--snapshot", "latest", "--host", "web2", "--json"))
    assert [group["snapshot"] for group in found] == [web2]

    stats = json.loads(ok(initialised, "stats", "--host", "web1", "--json"))
    assert stats["snapshots"] == 2
    assert "checked 2 snapshots" in ok(initialised, "check", "--host", "web1")
    assert "checked 4 snapshots" in ok(initialised, "check")

    nothing = initialised("ls", "latest", "--host", "web9")
    assert nothing.code == 1 and nothing.err.strip() == \
        "snapstore: error: the repository has no snapshots of host web9"

    # tag with no SNAPSHOT acts on every snapshot the filters choose
    tagged = json.loads(ok(initialised, "tag", "--add", "nginx", "--host", "web1", "--json"))
    assert sorted(t["original"] for t in tagged) == sorted([web1, web1_later])
    assert initialised("tag", "--add", "x").code == 2  # neither names nor filters: usage error

    # forget ID... : latest is the newest snapshot the filters match
    gone = json.loads(ok(initialised, "forget", "latest", "--host", "web2", "--json"))
    assert [s["id"] for group in gone for s in group["remove"]] == [web2]
    left = json.loads(ok(initialised, "snapshots", "--json"))
    assert dump in [s["id"] for s in left] and web2 not in [s["id"] for s in left]


def test_snapshots_filters_groups_and_whole_paths_when_piped(
    initialised: Cli, etc: Path, home: Path
) -> None:
    ok(initialised, "snapshot", "files", str(etc), "--host", "web1", "--tag", "config")
    ok(initialised, "snapshot", "files", str(etc), "--host", "web1", "--tag", "config")
    ok(initialised, "snapshot", "files", str(home), "--host", "web2")

    text = ok(initialised, "snapshots")  # stdout is a pipe here
    assert str(home) in text.splitlines()[-2]  # whole, on the snapshot's own line
    assert text.splitlines()[-1] == "3 snapshots"

    only = json.loads(ok(initialised, "snapshots", "--host", "web1", "--json"))
    assert [s["host"] for s in only] == ["web1", "web1"]
    assert json.loads(ok(initialised, "snapshots", "--path", str(home), "--json"))[0]["paths"] == [str(home)]
    assert json.loads(ok(initialised, "snapshots", "--tag", "nope", "--json")) == []

    groups = json.loads(ok(initialised, "snapshots", "--group-by", "host,paths", "--json"))
    assert [(g["group_key"]["host"], g["group_key"]["paths"], len(g["snapshots"])) for g in groups] == [
        ("web1", [str(etc)], 2), ("web2", [str(home)], 1)]
    assert groups[0]["group_key"]["tags"] is None
    grouped = ok(initialised, "snapshots", "--group-by", "tags")
    assert "group: tags config" in grouped and "group: tags (none)" in grouped
    assert grouped.splitlines()[-1] == "3 snapshots in 2 groups"
    assert initialised("snapshots", "--group-by", "colour").code == 2


def test_a_comma_separated_tag_is_two_tags_the_filter_then_matches(initialised: Cli, etc: Path) -> None:
    both = snapshot_id(initialised, "snapshot", "files", str(etc), "--tag", "nightly,etc", "--tag", "web")
    snapshot_id(initialised, "snapshot", "files", str(etc), "--tag", "nightly")
    listing = json.loads(ok(initialised, "snapshots", "--json"))
    assert sorted(next(s for s in listing if s["id"] == both)["tags"]) == ["etc", "nightly", "web"]
    chosen = json.loads(ok(initialised, "snapshots", "--json", "--tag", "nightly,etc"))
    assert [s["id"] for s in chosen] == [both]  # 'a,b' in a filter: both tags, as restic


def test_dump_latest_path_reads_the_newest_snapshot_holding_it(initialised: Cli, etc: Path) -> None:
    files = snapshot_id(initialised, "snapshot", "files", str(etc))
    snapshot_id(initialised, "snapshot", "stdin", "--name", "mastodon.dump", input=b"PGDMP dump\n")
    done = initialised("dump", "latest", f"{etc}/hostname")
    assert done.code == 0, done.err
    assert done.out == b"web1\n" and done.err == ""  # its stderr is for trouble
    told = initialised("dump", "latest", f"{etc}/hostname", "-v")
    assert told.out == b"web1\n"
    assert f"latest snapshot holding {etc}/hostname: {files[:8]} (" in told.err
    stream = initialised("dump", "latest", "mastodon.dump", "-q")
    assert stream.code == 0 and stream.out == b"PGDMP dump\n" and stream.err == ""
    missing = initialised("dump", "latest", f"{etc}/nowhere")
    assert missing.code == 1 and "holds" in missing.err
