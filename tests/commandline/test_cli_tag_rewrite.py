"""`snapstore tag` and `snapstore rewrite` through the installed command: a changed snapshot is
a new object recording its `original`; rewrite takes a leaked secret out of a snapshot, and
after prune its bytes are in no pack."""

from __future__ import annotations

import os
from pathlib import Path

import snapstore
from tests.support.cli import PASSWORD, Cli


def listing(cli: Cli) -> list[dict[str, object]]:
    done = cli("snapshots", "--json")
    assert done.code == 0, done.err
    result: list[dict[str, object]] = done.json()
    return result


def test_tag_add_remove_set(initialised: Cli, tmp_path: Path) -> None:
    cli = initialised
    (tmp_path / "f").write_bytes(b"x")
    assert cli("snapshot", "files", str(tmp_path / "f")).code == 0
    [first] = listing(cli)
    added = cli("tag", "--add", "nightly,keep", str(first["id"])[:8])
    assert added.code == 0, added.err
    assert "saved as" in added.text and "(tags: keep, nightly)" in added.text
    [tagged] = listing(cli)
    assert tagged["tags"] == ["keep", "nightly"] and tagged["id"] != first["id"]
    assert tagged["metadata"]["original"] == first["id"]  # type: ignore[index]
    assert tagged["tree"] == first["tree"]
    assert cli("tag", "--remove", "keep", "latest").code == 0
    assert [s["tags"] for s in listing(cli)] == [["nightly"]]
    unchanged = cli("tag", "--add", "nightly", "latest")
    assert unchanged.code == 0 and "unchanged" in unchanged.text
    assert cli("tag", "--set", "a", "--set", "b", "latest").code == 0
    [final] = listing(cli)
    assert final["tags"] == ["a", "b"] and final["metadata"]["original"] == first["id"]  # type: ignore[index]
    both = cli("tag", "--set", "a", "--add", "c", "latest")
    assert both.code == 2 and "--set" in both.err


def test_rewrite_removes_a_leaked_secret(initialised: Cli, tmp_path: Path) -> None:
    cli = initialised
    source = tmp_path / "app"
    source.mkdir()
    secret = b"AWS_SECRET_ACCESS_KEY=" + os.urandom(24).hex().encode() + b"\n"
    (source / "secret.env").write_bytes(secret)
    kept = {"config.yml": b"setting: 1\n", "data.bin": os.urandom(300_000)}
    for name, data in kept.items():
        (source / name).write_bytes(data)
    assert cli("snapshot", "files", str(source)).code == 0
    [original] = listing(cli)

    dry = cli("rewrite", "latest", "--exclude", "*.env", "--dry-run")
    assert dry.code == 0 and "would be removed /" in dry.text and "secret.env" in dry.text
    assert [s["id"] for s in listing(cli)] == [original["id"]]

    done = cli("rewrite", "latest", "--exclude", "*.env", "--forget")
    assert done.code == 0, done.err
    assert "original removed" in done.text
    [rewritten] = listing(cli)
    assert rewritten["id"] != original["id"] and rewritten["metadata"]["original"] == original["id"]  # type: ignore[index]
    listed = cli("ls", "latest")
    assert "secret.env" not in listed.text and "config.yml" in listed.text

    target = tmp_path / "restored"
    assert cli("restore", "latest", "--target", str(target)).code == 0
    restored = target / str(source).lstrip("/")
    assert {p.name: p.read_bytes() for p in restored.iterdir()} == kept
    assert cli("check", "--read-data").code == 0

    with snapstore.open_repository(str(cli.repo), PASSWORD.encode()) as repo:
        secret_id = repo.hash_blob(secret)
        assert repo.lookup(secret_id) is not None  # still stored until prune
    assert cli("prune", "--max-unused", "0").code == 0  # no unused byte left in a kept pack
    with snapstore.open_repository(str(cli.repo), PASSWORD.encode()) as repo:
        assert repo.lookup(secret_id) is None
    packs = [p.read_bytes() for p in (cli.repo / "data").rglob("*") if p.is_file()]
    assert not any(secret in pack for pack in packs)  # encrypted anyway; and gone
    assert cli("check", "--read-data").code == 0
