"""`check --read-data-subset P%` and `--max-duration` through the installed command: nightly
runs cover the repository in turn, remembered in the cache directory."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.support.cli import Cli


@pytest.fixture
def packed(cli: Cli, tmp_path: Path) -> tuple[Cli, int]:
    """A repository of small packs, and the number of packs; the cache in tmp_path."""
    cli.env["SNAPSTORE_CACHE_DIR"] = str(tmp_path / "cache")
    assert cli("init", "--pack-size", "65536").code == 0
    source = tmp_path / "src"
    source.mkdir()
    for n in range(8):
        (source / f"f{n}").write_bytes(os.urandom(200_000))
    taken = cli("snapshot", "files", str(source))
    assert taken.code == 0, taken.err
    packs = [p for p in (cli.repo / "data").rglob("*") if p.is_file()]
    assert len(packs) >= 6
    return cli, len(packs)


def coverage(text: str) -> tuple[int, int]:
    found = re.search(r"verified in the last 7 days: (\d+) of (\d+) packs", text)
    assert found, text
    return int(found[1]), int(found[2])


def test_three_nightly_runs_cover_every_pack(packed: tuple[Cli, int]) -> None:
    cli, total = packed
    assert coverage(cli("check").text) == (0, total)
    covered = []
    for _ in range(3):
        night = cli("check", "--read-data-subset", "34%")
        assert night.code == 0, night.text + night.err
        covered.append(coverage(night.text)[0])
    assert covered[0] < covered[1] < covered[2] == total
    assert "(100%)," in night.text and "never verified" not in night.text
    report = cli("check", "--json").json()
    assert report["coverage"]["packs"] == total and report["coverage"]["bytes_total"] > 0


def test_max_duration_stops_cleanly(packed: tuple[Cli, int]) -> None:
    cli, total = packed
    stopped = cli("check", "--max-duration", "0")
    assert stopped.code == 0, stopped.text + stopped.err
    assert f"--max-duration 0 reached: read 1 of {total} packs selected" in stopped.text
    assert coverage(stopped.text) == (1, total)
    rest = cli("check", "--read-data-subset", "100%", "--max-duration", "1h")
    assert rest.code == 0 and "reached" not in rest.text
    assert coverage(rest.text) == (total, total)


def test_damage_found_is_reported_until_read_again(packed: tuple[Cli, int]) -> None:
    cli, total = packed
    biggest = max((p for p in (cli.repo / "data").rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    data = bytearray(biggest.read_bytes())
    data[100] ^= 1
    os.chmod(biggest, 0o600)
    biggest.write_bytes(bytes(data))
    assert cli("check", "--read-data").code == 1
    later = cli("check")  # reads no pack data, still fails on what was found
    assert later.code == 1 and "found damaged by a check on" in later.text
    assert coverage(later.text) == (total - 1, total)


def test_no_cache_falls_back_to_a_random_share(packed: tuple[Cli, int]) -> None:
    cli, total = packed
    night = cli("check", "--no-cache", "--read-data-subset", "34%")
    assert night.code == 0, night.err
    assert "not remembered" in night.err and "verified in the last" not in night.text
    assert f"read {-(-total * 34 // 100)} packs" in night.text
    assert coverage(cli("check").text) == (0, total)  # nothing was written to the cache
