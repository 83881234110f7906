"""Builds and compares small file trees for the command-line tests."""

from __future__ import annotations

import os
import random
from pathlib import Path


def make_tree(root: Path, seed: int = 1) -> None:
    rng = random.Random(seed)
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "empty-dir").mkdir()
    (root / "big.bin").write_bytes(rng.randbytes(3 << 20))
    (root / "small.txt").write_text("hello\n")
    (root / "empty.txt").write_bytes(b"")
    (root / "sub" / "nested.txt").write_text("nested\n" * 1000)
    (root / "sub" / "deeper" / "x.bin").write_bytes(rng.randbytes(70_000))
    (root / "sub" / "link").symlink_to("../small.txt")
    (root / "script.sh").write_text("#!/bin/sh\n")
    (root / "script.sh").chmod(0o750)
    os.utime(root / "small.txt", ns=(1_600_000_000_123_456_789, 1_600_000_000_123_456_789))


def tree_state(root: Path) -> dict[str, tuple[object, ...]]:
    """Everything restore promises to keep: type, mode, mtime, content or link target."""
    state: dict[str, tuple[object, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            st = path.lstat()
            rel = str(path.relative_to(root))
            if path.is_symlink():
                state[rel] = ("link", os.readlink(path))
            elif path.is_dir():
                state[rel] = ("dir", st.st_mode & 0o7777)
            else:
                state[rel] = ("file", st.st_mode & 0o7777, st.st_mtime_ns, path.read_bytes())
    return state
