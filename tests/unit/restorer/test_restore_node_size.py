"""A file node whose size disagrees with its content (issue 10, item 9). The restorer used to
create each file at the node's size: 10^18 bytes claimed for 6 failed the whole restore with
EFBIG (or, on a filesystem that allows it, made a sparse file of an exabyte), and 2 bytes
claimed for 6 restored 6 with no word. Now the file gets its content's length, its content is
restored (every blob is authenticated and is what was saved) and the disagreement is an error
naming the file; the other files are restored as usual."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgpack
import pytest

from snapstore.pack import BlobType
from snapstore.repository.repository import Repository
from snapstore.restorer.restorer import RestoreOptions, Restorer
from snapstore.snapshot.manifest import Snapshot
from snapstore.snapshot.store import save_snapshot
from tests.conftest import assert_repository_ok, reopen
from tests.support.raw_trees import raw_node


def _snapshot(repo: Repository, nodes: list[dict[str, Any]]) -> Snapshot:
    tree = repo.save_blob(BlobType.TREE, msgpack.packb({"v": 1, "nodes": nodes}, use_bin_type=True)).id
    repo.flush()
    snap = Snapshot(datetime(2026, 5, 1, tzinfo=UTC), "h", "u", [], "files", ["/"], tree)
    save_snapshot(repo, snap)
    return snap


def _blob(repo: Repository, data: bytes) -> bytes:
    return bytes(repo.save_blob(BlobType.DATA, data).id)


@pytest.mark.parametrize("claimed", [10**18, 2**63 - 1, 2, 0, -3])
def test_a_file_gets_its_contents_length_and_the_lie_is_named(
    repo: Repository, tmp_path: Path, claimed: int
) -> None:
    six, good = _blob(repo, b"sixsix"), _blob(repo, b"good content\n")
    snap = _snapshot(repo, [
        raw_node(b"good.txt", content=[good], size=13),
        raw_node(b"liar", content=[six], size=claimed),
    ])
    result = Restorer(reopen(repo), owners=False).restore(snap, tmp_path / "out")
    liar = tmp_path / "out" / "liar"
    assert liar.read_bytes() == b"sixsix"
    assert liar.stat().st_size == 6
    assert result.errors == [
        f"/liar: its node says {claimed} bytes but its content is 6 bytes; restored with the "
        "content's length"
    ]
    assert (tmp_path / "out" / "good.txt").read_bytes() == b"good content\n"
    assert_repository_ok(repo)


def test_a_trailing_zero_blob_is_a_hole_inside_the_contents_length(repo: Repository, tmp_path: Path) -> None:
    head, zeros = _blob(repo, b"head"), _blob(repo, bytes(100_000))
    snap = _snapshot(repo, [raw_node(b"f", content=[head, zeros], size=100_004)])
    result = Restorer(reopen(repo), owners=False).restore(snap, tmp_path / "out")
    assert result.errors == []
    assert (tmp_path / "out" / "f").read_bytes() == b"head" + bytes(100_000)


def test_verify_leaves_the_named_file_alone(repo: Repository, tmp_path: Path) -> None:
    six = _blob(repo, b"sixsix")
    snap = _snapshot(repo, [raw_node(b"liar", content=[six], size=10**18)])
    result = Restorer(reopen(repo), owners=False).restore(
        snap, tmp_path / "out", options=RestoreOptions(verify=True)
    )
    assert len(result.errors) == 1 and result.errors[0].startswith("/liar: its node says")
    assert os.path.getsize(tmp_path / "out" / "liar") == 6
