"""Choosing snapshots by host, tag and path (snapshot/selection.py), and `latest` among them
(store.find_snapshot): the newest complete snapshot the filter matches and, with `holding`,
that has the paths asked for; ids name their snapshot whatever the filter says."""

from __future__ import annotations

import hashlib
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import snapstore
from snapstore.errors import SnapshotNotFound
from snapstore.ids import Id
from snapstore.repository.repository import Repository
from snapstore.snapshot.manifest import Snapshot
from snapstore.snapshot.selection import SnapshotFilter
from tests.conftest import assert_repository_ok

START = datetime(2026, 12, 1, 3, tzinfo=UTC)


def snap(host: str = "web1", tags: tuple[str, ...] = (), paths: tuple[str, ...] = ("/etc",)) -> Snapshot:
    return Snapshot(
        time=START, host=host, user="root", tags=list(tags), source="files", paths=list(paths),
        tree=Id(bytes(32)), id=Id(hashlib.blake2b(f"{host}{tags}{paths}".encode(), digest_size=32).digest()),
    )


def test_hosts_any_tag_lists_any_with_every_tag_paths_all() -> None:
    a = snap("a", ("daily", "db"), ("/etc", "/home"))
    b = snap("b", ("daily",), ("/etc/",))
    c = snap("b", (), ("mastodon.dump",))
    every = [a, b, c]
    assert SnapshotFilter().select(every) == every and not SnapshotFilter()
    assert SnapshotFilter(hosts=["b"]).select(every) == [b, c]
    assert SnapshotFilter(hosts=["a", "b"]).select(every) == every
    assert SnapshotFilter(tags=["daily,db"]).select(every) == [a]
    assert SnapshotFilter(tags=["db", "daily"]).select(every) == [a, b]
    assert SnapshotFilter(tags=[""]).select(every) == [c]  # restic: '' means untagged
    assert SnapshotFilter(paths=["/etc"]).select(every) == [a, b]  # "/etc/" is "/etc"
    assert SnapshotFilter(paths=["//etc/./"]).select(every) == [a, b]
    assert SnapshotFilter(paths=["/etc", "/home"]).select(every) == [a]  # all of them
    assert SnapshotFilter(paths=["mastodon.dump"]).select(every) == [c]
    assert SnapshotFilter(hosts=["b"], tags=["daily"], paths=["/etc"]).select(every) == [b]
    assert SnapshotFilter(hosts=["a"], paths=["/var"]).select(every) == []


def test_describe_names_every_filter() -> None:
    text = SnapshotFilter(hosts=["web1"], tags=["a,b", ""], paths=["/etc/", "/srv"]).describe()
    assert text == "of host web1, tagged a,b or (none), with paths /etc, /srv"


@pytest.fixture
def trees(tmp_path: Path) -> dict[str, Path]:
    etc = tmp_path / "etc"
    (etc / "nginx").mkdir(parents=True)
    (etc / "nginx" / "nginx.conf").write_text("worker_processes 2;\n")
    home = tmp_path / "home"
    home.mkdir()
    (home / "notes").write_text("hello\n")
    return {"etc": etc, "home": home}


def _take(repo: Repository, path: Path, hours: int, host: str = "web1",
          tags: tuple[str, ...] = ()) -> Snapshot:
    options = snapstore.SnapshotOptions(time=START + timedelta(hours=hours), host=host, tags=list(tags))
    return snapstore.take_snapshot(repo, snapstore.FileSource([str(path)]), options).snapshot


def _take_stream(repo: Repository, hours: int) -> Snapshot:
    options = snapstore.SnapshotOptions(time=START + timedelta(hours=hours), host="web1")
    source = snapstore.StreamSource(io.BytesIO(b"-- a pg_dump\n"), "mastodon.dump")
    return snapstore.take_snapshot(repo, source, options).snapshot


def test_latest_is_the_newest_matching_and_holding(repo: Repository, trees: dict[str, Path]) -> None:
    etc = _take(repo, trees["etc"], 1, tags=("config",))
    home = _take(repo, trees["home"], 2, host="web2")
    dump = _take_stream(repo, 3)
    etc_path = str(trees["etc"])
    conf = f"{etc_path}/nginx/nginx.conf"

    assert snapstore.find_snapshot(repo, "latest").id == dump.id  # the whole repository's newest
    assert snapstore.find_snapshot(repo, "latest", SnapshotFilter(hosts=["web2"])).id == home.id
    assert snapstore.find_snapshot(repo, "latest", SnapshotFilter(tags=["config"])).id == etc.id
    assert snapstore.find_snapshot(repo, "latest", SnapshotFilter(paths=[etc_path + "/"])).id == etc.id
    # the newest snapshot holding the path, passing over the newer dump and home snapshots
    assert snapstore.find_snapshot(repo, "latest", holding=[conf]).id == etc.id
    assert snapstore.find_snapshot(repo, "latest", holding=["/mastodon.dump"]).id == dump.id
    with pytest.raises(SnapshotNotFound, match=r"no complete snapshot of host web2 holds"):
        snapstore.find_snapshot(repo, "latest", SnapshotFilter(hosts=["web2"]), holding=[conf])
    with pytest.raises(SnapshotNotFound, match="no snapshots of host db9"):
        snapstore.find_snapshot(repo, "latest", SnapshotFilter(hosts=["db9"]))
    # an id names its snapshot whatever the filter says
    assert dump.id is not None
    assert snapstore.find_snapshot(repo, dump.id.hex()[:8], SnapshotFilter(hosts=["web2"])).id == dump.id
    assert_repository_ok(repo)


def test_select_snapshots_names_or_every_match(repo: Repository, trees: dict[str, Path]) -> None:
    first = _take(repo, trees["etc"], 1)
    second = _take(repo, trees["home"], 2, host="web2")
    third = _take(repo, trees["etc"], 3)
    assert first.id and second.id and third.id
    web1 = SnapshotFilter(hosts=["web1"])
    assert [s.id for s in snapstore.select_snapshots(repo, [], web1)] == [first.id, third.id]
    assert [s.id for s in snapstore.select_snapshots(repo, [])] == [first.id, second.id, third.id]
    named = snapstore.select_snapshots(repo, ["latest", second.id.hex()[:8], third.id.hex()], web1)
    assert [s.id for s in named] == [third.id, second.id]  # each once, in the order named
    assert_repository_ok(repo)
