"""`snapstore check` without --read-data finds a pack cut short or extended (issue 10, item 6)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.cli import Cli


@pytest.mark.parametrize("damage", ["truncate", "extend"])
def test_check_finds_a_pack_cut_short_or_extended(initialised: Cli, tmp_path: Path, damage: str) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "f.bin").write_bytes(os.urandom(400_000))
    done = initialised("snapshot", "files", str(source), "--json")
    assert done.code == 0, done.err
    snap = done.json()["snapshot_id"]
    pack = max((p for p in (initialised.repo / "data").rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    data = pack.read_bytes()
    pack.write_bytes(data[:-100] if damage == "truncate" else data + os.urandom(100))
    done = initialised("check")
    assert done.code == 1
    assert pack.name in done.out.decode() and snap[:8] in done.out.decode()
