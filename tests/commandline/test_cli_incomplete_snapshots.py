"""Incomplete snapshots through the installed command (issue 12, item 4): a night with an
unreadable file is recorded (exit 3), `snapshots` marks it, and `latest` and the --keep-*
rules pass it over for the complete snapshot before it; naming it by id still reaches it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support.cli import Cli

UTC_ENV = {"TZ": "UTC"}  # forget's days begin at midnight UTC


def take(cli: Cli, source: Path, time: str, code: int = 0) -> dict[str, Any]:
    done = cli("snapshot", "files", str(source), "--time", time, "--json", unprivileged=True)
    assert done.code == code, done.err
    record: dict[str, Any] = done.json()
    return record


def listed(cli: Cli) -> dict[str, dict[str, Any]]:
    done = cli("snapshots", "--json")
    assert done.code == 0, done.err
    return {s["id"]: s for s in done.json()}


def test_an_incomplete_snapshot_is_marked_and_passed_over(initialised: Cli, tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "ok.txt").write_text("fine\n")
    secret = source / "secret.txt"
    secret.write_text("the night's secret\n")
    good = take(initialised, source, "2025-03-01T10:00:00+00:00")
    secret.chmod(0o000)  # unreadable for the unprivileged run, so this night is incomplete
    bad = take(initialised, source, "2025-03-01T12:00:00+00:00", code=3)
    good_id, bad_id = good["snapshot_id"], bad["snapshot_id"]

    records = listed(initialised)
    assert records[good_id]["complete"] is True and records[good_id]["failed_parts"] == []
    assert records[bad_id]["complete"] is False and records[bad_id]["failed_parts"] == []
    table = initialised("snapshots")
    assert table.code == 0, table.err
    line = next(row for row in table.text.splitlines() if row.startswith(bad_id[:8]))
    assert line.rstrip().endswith("incomplete (1 error)")
    assert "2 snapshots (1 incomplete)" in table.text

    shown = initialised("ls", "latest")
    assert shown.code == 0, shown.err
    assert f"{source}/secret.txt" in shown.text  # from the complete snapshot
    target = tmp_path / "restored"
    restored = initialised("restore", "latest", "--target", str(target))
    assert restored.code == 0, restored.err
    assert (target / str(source).lstrip("/") / "secret.txt").read_text() == "the night's secret\n"
    named = initialised("ls", bad_id[:8])  # naming it by id still reaches it
    assert named.code == 0 and f"{source}/secret.txt" not in named.text

    # both kept: the incomplete one is newer than any complete, and takes no day's place
    plan = initialised("forget", "--keep-daily", "1", "--dry-run", "--json", env=UTC_ENV)
    assert plan.code == 0, plan.err
    keep = {s["id"]: s["reasons"] for s in plan.json()[0]["keep"]}
    assert keep == {good_id: ["daily #1"], bad_id: ["incomplete, newer than any complete"]}

    secret.chmod(0o644)
    # (a files snapshot records no parent: it looks one up only for database dumps and huge
    # files; tests/unit/archiver/test_incomplete_parent.py covers the parent)
    nextday = take(initialised, source, "2025-03-02T10:00:00+00:00")

    forgot = initialised("forget", "--keep-daily", "2", "--json", env=UTC_ENV)
    assert forgot.code == 0, forgot.err
    group = forgot.json()[0]
    assert {s["id"]: s["reasons"] for s in group["keep"]} == {
        nextday["snapshot_id"]: ["daily #1"], good_id: ["daily #2"]}
    assert [s["id"] for s in group["remove"]] == [bad_id]
    assert initialised("check").code == 0


def test_latest_with_only_incomplete_snapshots_names_one(initialised: Cli, tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "ok.txt").write_text("fine\n")
    missing = tmp_path / "media"  # not mounted
    done = initialised("snapshot", "files", str(source), str(missing), "--json")
    assert done.code == 3, done.err
    short = done.json()["short_id"]
    for args in (("ls", "latest"), ("restore", "latest", "--target", str(tmp_path / "t"))):
        refused = initialised(*args)
        assert refused.code == 1, refused.err
        assert f"the newest, {short}, is incomplete (1 error); name it by its id" in refused.err
    assert initialised("ls", short).code == 0
