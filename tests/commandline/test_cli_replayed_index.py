"""Through the command: an old index file copied back after a prune does not make the next
backup unrestorable (issue 10, item 1)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from tests.support.cli import Cli


def _snapshot(cli: Cli, path: Path) -> str:
    done = cli("snapshot", "files", str(path), "--json")
    assert done.code == 0, done.err
    return str(done.json()["snapshot_id"])


def test_replayed_index_file_after_prune(initialised: Cli, tmp_path: Path) -> None:
    cli = initialised
    doomed, kept = tmp_path / "doomed", tmp_path / "kept"
    doomed.mkdir()
    kept.mkdir()
    (doomed / "a.bin").write_bytes(os.urandom(300_000))
    (kept / "b.bin").write_bytes(os.urandom(300_000))
    _snapshot(cli, doomed)
    _snapshot(cli, kept)
    saved = tmp_path / "old-index"
    shutil.copytree(cli.repo / "index", saved)

    done = cli("forget", "--keep-last", "1", "--group-by", "host")
    assert done.code == 0, done.err
    done = cli("prune")
    assert done.code == 0, done.err
    for old in saved.iterdir():  # an rsync of an old copy brings the old index files back
        if not (cli.repo / "index" / old.name).exists():
            shutil.copy(old, cli.repo / "index" / old.name)

    again = _snapshot(cli, doomed)
    target = tmp_path / "restored"
    done = cli("restore", again, "--target", str(target))
    assert done.code == 0, done.err
    restored = next(target.rglob("a.bin"))
    assert restored.read_bytes() == (doomed / "a.bin").read_bytes()
