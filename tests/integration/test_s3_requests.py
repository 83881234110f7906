"""How many HTTP requests each command sends to S3 (moto's server on loopback, counted by a
middleware in front of it), through the installed command: no request per chunk, and
metadata comes from the local cache the second time.

The bounds are what the commands need today plus a little room; a change that adds requests
per file, per chunk or per index file breaks them. The counts are printed (pytest -s).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import required_server
from tests.support.cli import Cli
from tests.support.remote_cli import bucket_of, s3_cli
from tests.support.s3server import S3Endpoint, running_s3_server
from tests.support.trees import tree_state

MiB = 1 << 20

#: command -> upper bound on requests of each kind (and in total)
BOUNDS: dict[str, dict[str, int]] = {
    # bucket check and creation, config check, key listing, key and config upload
    "init": {"total": 10, "GET": 1, "PUT": 3},
    # config, key, lock; listings of keys, locks (twice), index (twice), packs; one pack
    # (4 MiB < 16 MiB pack size), its index file, the snapshot; lock release
    "snapshot 1": {"total": 18, "GET": 3, "PUT": 5, "LIST": 7},
    # the same, minus the data: the index written by the first run comes from the cache
    "snapshot 2": {"total": 18, "GET": 3, "PUT": 5, "LIST": 7},
    # config and key (read before the cache can be keyed by the repository id); listings
    "snapshots": {"total": 4, "GET": 2, "LIST": 2},
    # config, key, lock (stored, listed, read back, released: HEAD and DELETE), listings of
    # keys, locks, index, snapshots; the trees come from the cache the snapshot filled
    "ls": {"total": 11, "GET": 3, "PUT": 1},
    # the same, and one ranged GET of the one data pack: its four files' blobs in one read
    "restore": {"total": 12, "GET": 3 + 1, "PUT": 1},
}


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[S3Endpoint]:
    with required_server(running_s3_server(), "S3 endpoint") as endpoint:
        yield endpoint


@pytest.fixture
def cli(s3_endpoint: S3Endpoint, tmp_path: Path) -> Iterator[Cli]:
    with s3_cli(s3_endpoint, tmp_path) as made:
        yield made


def make_files(root: Path) -> None:
    """A few MB in a few files and folders."""
    rng = random.Random(7)
    for i in range(4):
        folder = root / f"dir{i}"
        folder.mkdir(parents=True)
        (folder / "data.bin").write_bytes(rng.randbytes(MiB))
        (folder / "note.txt").write_text(f"note {i}\n" * 50)


def test_request_counts(cli: Cli, s3_endpoint: S3Endpoint, tmp_path: Path) -> None:
    source = tmp_path / "src"
    make_files(source)
    counts: dict[str, dict[str, int]] = {}
    client = s3_endpoint.boto3_client()
    assert bucket_of(cli) not in [b["Name"] for b in client.list_buckets()["Buckets"]]

    uploaded: dict[str, int] = {}

    def run(label: str, *args: str) -> list[str]:
        s3_endpoint.requests.reset()
        done = cli(*args)
        assert done.code == 0, done.err
        counts[label] = s3_endpoint.requests.counts()
        uploaded[label] = s3_endpoint.requests.bytes_uploaded()
        return s3_endpoint.requests.log()

    run("init", "init")
    assert bucket_of(cli) in [b["Name"] for b in client.list_buckets()["Buckets"]]
    first = run("snapshot 1", "snapshot", "files", str(source))
    second = run("snapshot 2", "snapshot", "files", str(source))
    listing = run("snapshots", "snapshots")
    run("ls", "ls", "latest")
    restore = run("restore", "restore", "latest", "--target", str(tmp_path / "out"))

    print("\nrequests per command (S3 on loopback):")
    for label, by_kind in counts.items():
        print(f"  {label:<11} {by_kind}, {uploaded[label]} bytes up")
    for label, bounds in BOUNDS.items():
        for kind, bound in bounds.items():
            assert counts[label].get(kind, 0) <= bound, (label, kind, counts[label])

    assert sum(1 for r in first if r.startswith("PUT") and "/data/" in r) == 2  # a data and a tree pack
    assert uploaded["snapshot 1"] > 4 * MiB
    assert uploaded["snapshot 2"] < 64 * 1024  # unchanged: a few new trees at most
    for log in (second, listing, restore):  # metadata is read from the cache
        assert not [r for r in log if r.startswith("GET") and ("/index/" in r or "/snapshots/" in r)]
    data_reads = [r for r in restore if r.startswith("GET") and "/data/" in r]
    assert len(data_reads) == 1, data_reads  # the one data pack, read once for every file
    restored = tmp_path / "out" / str(source).lstrip("/")
    assert tree_state(restored) == tree_state(source)
