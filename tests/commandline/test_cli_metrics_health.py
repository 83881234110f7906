"""--metrics-file and `snapstore health` through the installed command: the file parses as
Prometheus parses it and keeps each source's series; health's verdict for fresh, overdue,
never checked and damaged backups and for a stale lock, in one line or JSON."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.support.cli import Cli
from tests.support.processes import objects, start, wait_for


def metrics(path: Path) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    found: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(path.read_text()):
        assert family.type == "gauge" and family.documentation
        for sample in family.samples:
            labels = tuple(sorted(sample.labels.items()))
            found.setdefault(sample.name, {})[labels] = sample.value
    return found


def test_metrics_of_two_sources_share_the_file(initialised: Cli, tmp_path: Path) -> None:
    prom = tmp_path / "textfile" / "snapstore.prom"
    prom.parent.mkdir()
    config = tmp_path / "snapstore.toml"
    config.write_text(f"metrics_file = '{prom}'\n")
    first = initialised("--metrics-file", str(prom), "snapshot", "command", "--name", "db.sql",
                        "--host", "toot", "--", "echo", "CREATE TABLE accounts;")
    assert first.code == 0, first.err
    second = initialised("--config", str(config), "snapshot", "files", "--host", "toot",
                         str(config), "--json")
    assert second.code == 0, second.err
    summary = second.json()
    db = (("host", "toot"), ("paths", "db.sql"), ("source", "command"))
    files = (("host", "toot"), ("paths", str(config)), ("source", "files"))
    found = metrics(prom)
    assert found["snapstore_snapshot_files"] == {db: 1, files: 1}
    assert found["snapstore_snapshot_bytes_read"][db] == len("CREATE TABLE accounts;\n")
    assert found["snapstore_snapshot_bytes_added"][files] == summary["bytes_added"]
    assert found["snapstore_snapshot_last_run_success"] == {db: 1, files: 1}
    assert found["snapstore_last_run_success"] == {(("command", "snapshot"),): 1}
    assert found["snapstore_repository_blob_bytes"][(("repository", str(initialised.repo)),)] > 0
    succeeded = found["snapstore_snapshot_last_success_timestamp_seconds"][db]

    failed = initialised("--metrics-file", str(prom), "snapshot", "command", "--name", "db.sql",
                         "--host", "toot", "--", "sh", "-c", "exit 2")
    assert failed.code == 1
    again = metrics(prom)
    assert again["snapstore_snapshot_last_run_success"] == {db: 0, files: 1}
    assert again["snapstore_snapshot_last_success_timestamp_seconds"][db] == succeeded
    assert again["snapstore_snapshot_last_run_timestamp_seconds"][db] > succeeded
    assert again["snapstore_last_run_exit_code"] == {(("command", "snapshot"),): 1}
    assert initialised("--metrics-file", str(prom), "check").code == 0
    assert metrics(prom)["snapstore_last_run_success"] == {
        (("command", "snapshot"),): 0, (("command", "check"),): 1}
    assert sorted(p.name for p in prom.parent.iterdir()) == ["snapstore.prom", "snapstore.prom.lock"]


def test_health(initialised: Cli, tmp_path: Path) -> None:
    cli = Cli(initialised.repo, dict(initialised.env, SNAPSTORE_CACHE_DIR=str(tmp_path / "cache")))
    old = cli("snapshot", "stdin", "--name", "old", "--time", "2020-01-01T00:00:00+00:00",
              "--json", input=b"old")
    assert old.code == 0
    assert cli("snapshot", "stdin", "--name", "new", input=b"new").code == 0
    overdue = cli("health")
    assert overdue.code == 1 and overdue.text.startswith("unhealthy: ") and "(and 1 more)" in overdue.text
    assert ":old: newest complete snapshot" in overdue.text and "(max 1d2h)" in overdue.text
    report = cli("health", "--json").json()
    assert report["ok"] is False
    assert report["problems"][-1] == "no check has been recorded (run snapstore check)"
    assert [(g["paths"], g["ok"]) for g in report["groups"]] == [(["new"], True), (["old"], False)]

    assert cli("check").code == 0
    assert cli("forget", old.json()["snapshot_id"]).code == 0
    fresh = cli("health", "--max-age", "1h")
    assert fresh.code == 0, fresh.text
    assert fresh.text.startswith("ok: 1 group of snapshots, the newest complete one at most ")
    assert "found no damage" in fresh.text
    assert cli("health", "--no-cache").code == 0  # no cache: the check is not judged

    # a holder killed mid-snapshot leaves a stale lock
    holder = start(cli, "snapshot", "stdin", "--name", "killed")
    assert holder.stdin is not None
    holder.stdin.write(b"some bytes\n")
    holder.stdin.flush()
    wait_for(lambda: objects(cli.repo, "locks"), what="the lock")
    holder.kill()
    holder.wait()
    stale = cli("health")
    assert stale.code == 1
    assert stale.text.startswith("unhealthy: stale lock: a shared lock held by ")
    assert stale.text.rstrip().endswith("(run snapstore unlock)")


def test_health_after_a_check_that_found_damage(initialised: Cli, tmp_path: Path) -> None:
    cli = Cli(initialised.repo, dict(initialised.env, SNAPSTORE_CACHE_DIR=str(tmp_path / "cache")))
    assert cli("snapshot", "stdin", "--name", "x", input=b"x" * 1000).code == 0
    (index,) = objects(cli.repo, "index")
    index.unlink()
    assert cli("check").code == 1
    judged = cli("health")
    assert judged.code == 1, judged.text
    assert judged.text.startswith("unhealthy: the last check (") and "found 1 error" in judged.text
    assert cli("health", "--json").json()["last_check"]["ok"] is False
    assert cli("health", "--ignore-check").code == 0
