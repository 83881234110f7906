"""`snapstore restore` of a node claiming 10^18 bytes for 6 bytes of content (issue 10, item
9): no huge sparse file, no silent exit 0. The file is restored with its content's length and
named as an error (exit 1); the others are restored."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import msgpack

from snapstore.backend.local import LocalBackend
from snapstore.pack import BlobType
from snapstore.repository.repository import Repository
from snapstore.snapshot.manifest import Snapshot
from snapstore.snapshot.store import save_snapshot
from tests.support.cli import PASSWORD, Cli
from tests.support.raw_trees import raw_node


def test_a_node_claiming_an_exabyte_restores_its_six_bytes_and_exits_1(initialised: Cli, tmp_path: Path) -> None:
    repo = Repository.open(LocalBackend(str(initialised.repo)), PASSWORD.encode())
    repo.load_index()
    six = bytes(repo.save_blob(BlobType.DATA, b"sixsix").id)
    good = bytes(repo.save_blob(BlobType.DATA, b"good\n").id)
    tree = repo.save_blob(BlobType.TREE, msgpack.packb({"v": 1, "nodes": [
        raw_node(b"big", content=[six], size=10**18),
        raw_node(b"good.txt", content=[good], size=5),
    ]}, use_bin_type=True)).id
    repo.flush()
    snap = Snapshot(datetime.now(UTC), "evil", "evil", [], "files", ["/"], tree)
    save_snapshot(repo, snap)
    repo.close()

    target = tmp_path / "out"
    done = initialised("restore", "latest", "--target", str(target))
    assert done.code == 1, done.err
    assert ("/big: its node says 1000000000000000000 bytes but its content is 6 bytes; "
            "restored with the content's length") in done.err
    big = (target / "big").stat()
    assert big.st_size == 6 and big.st_blocks <= 16
    assert (target / "big").read_bytes() == b"sixsix"
    assert (target / "good.txt").read_bytes() == b"good\n"
