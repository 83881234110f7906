"""Fields no filesystem can hold, refused where they are read (issue 10, item 9): a uid or gid
outside chown's range, NUL in a symlink target, a snapshot time without a UTC offset or too
near the ends of the calendar. Each used to reach the restorer or a listing and end in a
traceback (OverflowError from fchown, ValueError from symlink, TypeError or OverflowError
from comparing and showing times)."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import msgpack
import pytest

from snapstore.errors import IntegrityError
from snapstore.ids import Id
from snapstore.restorer.file_writer import apply_link_metadata, apply_metadata
from snapstore.snapshot.manifest import Snapshot, decode_snapshot, encode_snapshot
from snapstore.snapshot.tree import Node, NodeType, decode_tree
from tests.support.raw_trees import raw_node


def _tree(*nodes: dict[str, Any]) -> bytes:
    return msgpack.packb({"v": 1, "nodes": list(nodes)}, use_bin_type=True)


@pytest.mark.parametrize("field", ["uid", "gid"])
@pytest.mark.parametrize("value", [2**40, 2**32, -5, -1])
def test_owner_ids_outside_chowns_range_are_refused(field: str, value: int) -> None:
    hostile = _tree(raw_node(b"fine", content=[]), raw_node(b"evil", content=[], **{field: value}))
    with pytest.raises(IntegrityError, match=rf"node b'evil': {field} {value} is out of range"):
        decode_tree(hostile)


def test_owner_ids_at_the_ends_of_the_range_are_accepted() -> None:
    nodes = decode_tree(_tree(raw_node(b"a", content=[], uid=0, gid=2**32 - 1)))
    assert (nodes[0].uid, nodes[0].gid) == (0, 2**32 - 1)


@pytest.mark.parametrize("target", [b"a\0b", b"\0", b"/etc/passwd\0"])
def test_nul_in_a_symlink_target_is_refused(target: bytes) -> None:
    with pytest.raises(IntegrityError, match="node b'link': symlink target .* contains NUL"):
        decode_tree(_tree(raw_node(b"link", "symlink", target=target)))


def test_apply_metadata_leaves_an_impossible_owner_alone(tmp_path: Path) -> None:
    """Behind the decoder: a node made in code with a uid chown cannot take (OverflowError)
    still gets its mode and time."""
    node = Node(b"f", NodeType.FILE, mode=0o640, uid=2**40, gid=-5, mtime_ns=10**18)
    fd = os.open(tmp_path / "f", os.O_CREAT | os.O_WRONLY, 0o600)
    try:
        apply_metadata(fd, node, owners=True)
        st = os.fstat(fd)
    finally:
        os.close(fd)
    assert (st.st_mode & 0o7777, st.st_mtime_ns) == (0o640, 10**18)
    os.symlink("f", tmp_path / "l")
    dir_fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        apply_link_metadata(dir_fd, Node(b"l", NodeType.SYMLINK, uid=-5, target=b"f"), owners=True)
    finally:
        os.close(dir_fd)


# -- snapshot times ----------------------------------------------------------------------------

def _snapshot_with_time(time: str) -> bytes:
    good = Snapshot(datetime(2024, 1, 1, tzinfo=UTC), "h", "u", [], "files", ["/"], Id(bytes(32)))
    doc = msgpack.unpackb(encode_snapshot(good), raw=False)
    doc["time"] = time
    return msgpack.packb(doc, use_bin_type=True)


@pytest.mark.parametrize("time, why", [
    ("2024-01-01T12:00:00", "has no UTC offset"),
    ("0001-01-01T00:00:00+01:00", "is outside"),
    ("0001-01-01T12:00:00+00:00", "is outside"),
    ("9999-12-31T23:59:59-05:00", "is outside"),
    ("9999-12-31T00:00:00+00:00", "is outside"),
])
def test_snapshot_times_that_cannot_be_shown_or_compared_are_refused(time: str, why: str) -> None:
    with pytest.raises(IntegrityError, match=why):
        decode_snapshot(_snapshot_with_time(time))


def test_snapshot_times_well_inside_the_calendar_decode() -> None:
    for time in ("0001-01-02T00:00:00+00:00", "9999-12-30T00:00:00+00:00", "2024-06-01T12:00:00+14:00"):
        snap = decode_snapshot(_snapshot_with_time(time))
        snap.time.astimezone(timezone(timedelta(hours=-14)))  # shown anywhere without overflow
        snap.time.astimezone(timezone(timedelta(hours=14)))


@pytest.mark.parametrize("time", [
    datetime(2024, 1, 1),
    datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1))),
    datetime(9999, 12, 31, tzinfo=UTC),
])
def test_the_encoder_refuses_what_the_decoder_would(time: datetime) -> None:
    with pytest.raises(ValueError):
        Snapshot.check_time(time)
    with pytest.raises(ValueError):
        encode_snapshot(Snapshot(time, "h", "u", [], "files", ["/"], Id(bytes(32))))
