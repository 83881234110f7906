"""`snapstore repair index` and `repair snapshots` through the command, restic's procedure after
a pack is lost: `check` fails, `repair index` drops the pack from the index, `repair
snapshots` (a dry run first) saves a copy of the snapshot without the files whose content is
gone, tagged `repaired`, which restores cleanly; with `--forget` the original goes, after which
`prune` works and `check --read-data` is clean."""

from __future__ import annotations

import os
from pathlib import Path

import snapstore
from tests.support.cli import PASSWORD, Cli


def _pack_of(cli: Cli, snapshot_id: str, suffix: str) -> Path:
    """The pack file holding the first chunk of the file whose path ends with `suffix`."""
    with snapstore.open_repository(str(cli.repo), PASSWORD.encode()) as repo:
        snap = snapstore.find_snapshot(repo, snapshot_id)
        node = next(n for path, n in snapstore.list_tree(repo, snap) if path.endswith(suffix))
        location = repo.lookup(node.content[0])
        assert location is not None
        name = location.pack_id.hex()
    return cli.repo / "data" / name[:2] / name


def _snapshots(cli: Cli) -> list[dict[str, object]]:
    done = cli("snapshots", "--json")
    assert done.code == 0, done.err
    return list(done.json())


def test_repair_after_a_lost_pack(initialised: Cli, tmp_path: Path) -> None:
    cli = initialised
    source = tmp_path / "src"
    source.mkdir()
    (source / "lost.bin").write_bytes(os.urandom(200_000))
    (source / "small.txt").write_text("in the same pack as lost.bin\n")
    done = cli("snapshot", "files", str(source), "--json")
    assert done.code == 0, done.err
    original = done.json()["snapshot_id"]
    kept = {"later.bin": os.urandom(200_000), "c.txt": b"c\n" * 1000}  # in a pack of their own
    (source / "sub").mkdir()
    (source / "later.bin").write_bytes(kept["later.bin"])
    (source / "sub" / "c.txt").write_bytes(kept["c.txt"])
    done = cli("snapshot", "files", str(source), "--json")
    assert done.code == 0, done.err
    second = done.json()["snapshot_id"]

    _pack_of(cli, original, "/lost.bin").unlink()
    assert cli("check").code == 1

    done = cli("repair", "index")
    assert done.code == 0, done.err
    assert "1 packs the old index named are gone" in done.text

    snapshots_before = {p.name for p in (cli.repo / "snapshots").iterdir()}
    done = cli("repair", "snapshots", "--dry-run")
    assert done.code == 0, done.err
    assert "/lost.bin: removed (content blob" in done.text
    assert f"snapshot {original[:8]}:" in done.text and f"snapshot {second[:8]}:" in done.text
    assert {p.name for p in (cli.repo / "snapshots").iterdir()} == snapshots_before

    done = cli("repair", "snapshots")
    assert done.code == 0, done.err
    listed = _snapshots(cli)
    repaired = [s for s in listed if "repaired" in s["tags"]]  # type: ignore[operator]
    assert len(listed) == 4 and len(repaired) == 2
    target = tmp_path / "restored"
    newest = max(repaired, key=lambda s: str(s["time"]))
    done = cli("restore", str(newest["id"]), "--target", str(target))
    assert done.code == 0, done.err
    for name, data in kept.items():
        assert next(target.rglob(name)).read_bytes() == data
    assert not list(target.rglob("lost.bin")) and not list(target.rglob("small.txt"))

    done = cli("repair", "snapshots", "--forget")
    assert done.code == 0, done.err
    assert "already repaired as" in done.text and "original removed" in done.text
    assert {s["id"] for s in _snapshots(cli)} == {s["id"] for s in repaired}
    done = cli("prune")
    assert done.code == 0, done.err
    done = cli("check", "--read-data")
    assert done.code == 0, done.text + done.err


def test_repair_of_a_whole_repository_changes_nothing(initialised: Cli, tmp_path: Path) -> None:
    cli = initialised
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.txt").write_text("a\n")
    assert cli("snapshot", "files", str(tmp_path / "src")).code == 0
    done = cli("repair", "snapshots", "--forget")
    assert done.code == 0 and "checked 1 snapshots: 0 needed repair, 0 cannot be read" in done.text
    done = cli("repair", "index", "--json")
    assert done.code == 0, done.err
    report = done.json()
    assert report["damaged_index_files"] == {} and report["packs_indexed"] == report["packs"]
    done = cli("check", "--read-data")
    assert done.code == 0, done.text + done.err
