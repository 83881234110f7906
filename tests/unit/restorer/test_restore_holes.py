"""Zero runs inside a blob stay holes when written (file_writer.write_keeping_holes)."""

from __future__ import annotations

import os
from pathlib import Path

from snapstore.restorer.file_writer import ZERO_RUN, write_keeping_holes


def test_zero_runs_inside_data_are_not_written(tmp_path: Path) -> None:
    mib = 1024 * 1024
    data = b"head" + bytes(8 * mib) + b"middle" + bytes(ZERO_RUN - 1) + b"x" + bytes(3 * mib) + b"tail"
    path = tmp_path / "sparse"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        os.ftruncate(fd, 100 + len(data))
        write_keeping_holes(fd, data, 100)
    finally:
        os.close(fd)
    content = path.read_bytes()
    assert content[100:] == data and content[:100] == bytes(100)
    assert os.stat(path).st_blocks * 512 < mib  # 11 MiB of zeros left as holes
    plain = tmp_path / "plain"
    fd = os.open(plain, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        write_keeping_holes(fd, b"no zero run here" * 1000, 0)
    finally:
        os.close(fd)
    assert plain.read_bytes() == b"no zero run here" * 1000
