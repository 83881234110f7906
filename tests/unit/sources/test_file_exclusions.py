"""FileSource exclusion options: exclude files, --iexclude, tagged directories, one filesystem."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from snapstore.errors import UsageError
from snapstore.sources.file_filter import CACHEDIR_SIGNATURE
from snapstore.sources.files import FileSource, to_components


def names(source: FileSource, root: Path) -> list[str]:
    errors: list[object] = []
    prefix = to_components(root)
    found = [
        b"/".join(e.path[len(prefix) :]).decode()
        for e in source.entries(lambda path, exc: errors.append((path, exc)))
        if e.path[: len(prefix)] == prefix and len(e.path) > len(prefix)
    ]
    assert not errors
    return found


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    for d in ("cache", "fakecache", "marked", "keep"):
        (root / d).mkdir(parents=True)
    (root / "cache" / "CACHEDIR.TAG").write_bytes(CACHEDIR_SIGNATURE + b"\n# a cache\n")
    (root / "cache" / "blob").write_text("x")
    (root / "fakecache" / "CACHEDIR.TAG").write_bytes(b"Signature: not the right one")
    (root / "fakecache" / "blob").write_text("x")
    (root / "marked" / ".nobackup").write_text("")
    (root / "marked" / "data").write_text("x")
    (root / "keep" / "Photo.JPG").write_text("x")
    (root / "keep" / "notes.txt").write_text("x")
    (root / "keep" / "b.tmp").write_text("x")
    return root


def test_exclude_caches_keeps_the_directory_and_its_tag(tree: Path) -> None:
    found = names(FileSource([tree], exclude_caches=True), tree)
    assert "cache" in found and "cache/CACHEDIR.TAG" in found
    assert "cache/blob" not in found
    assert "fakecache/blob" in found  # a tag without the signature counts for nothing
    assert "cache/blob" in names(FileSource([tree]), tree)


def test_exclude_if_present(tree: Path) -> None:
    found = names(FileSource([tree], exclude_if_present=[".nobackup"]), tree)
    assert "marked" in found and "marked/.nobackup" in found and "marked/data" not in found
    assert "cache/blob" in found


def test_exclude_file_and_iexclude(tree: Path, tmp_path: Path) -> None:
    patterns = tmp_path / "excludes.txt"
    patterns.write_text("# temporary files\n\n  *.tmp  \n*/fakecache\n")
    found = names(FileSource([tree], exclude_files=[patterns]), tree)
    assert "keep/b.tmp" not in found and "fakecache" not in found and "keep/notes.txt" in found
    assert "keep/Photo.JPG" in names(FileSource([tree], ["*.jpg"]), tree)
    assert "keep/Photo.JPG" not in names(FileSource([tree], iexcludes=["*.jpg"]), tree)
    with pytest.raises(UsageError, match="cannot read exclude file"):
        FileSource([tree], exclude_files=[tmp_path / "missing"])


@pytest.fixture
def mounted(tree: Path) -> Iterator[Path]:
    """A tmpfs mounted inside the tree (root only)."""
    point = tree / "mnt"
    point.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "none", str(point)]).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        (point / "inside").write_text("x")
        yield point
    finally:
        subprocess.run(["umount", str(point)], check=True)


def test_one_file_system_keeps_the_mount_point_empty(tree: Path, mounted: Path) -> None:
    assert "mnt/inside" in names(FileSource([tree]), tree)
    found = names(FileSource([tree], one_file_system=True), tree)
    assert "mnt" in found and "mnt/inside" not in found and "keep/notes.txt" in found
    # a mount given as the path is backed up: each path is compared with its own device
    assert "inside" in names(FileSource([mounted], one_file_system=True), mounted)
