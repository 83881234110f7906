"""FileSource: layout, order, symlinks, excludes and errors on a real temporary tree."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest

from snapstore.archiver.source import EntryKind, SourceEntry
from snapstore.errors import UsageError
from snapstore.sources.files import FileSource, to_components
from tests.support import require_root

Errors = list[tuple[tuple[bytes, ...], Exception]]


def walk(source: FileSource) -> tuple[list[SourceEntry], Errors]:
    errors: Errors = []
    entries = list(source.entries(lambda path, exc: errors.append((path, exc))))
    return entries, errors


def relative(entries: list[SourceEntry], root: Path) -> list[str]:
    """Entry paths under `root`, as "a/b" strings, in the order yielded."""
    prefix = to_components(root)
    return [
        b"/".join(e.path[len(prefix) :]).decode(errors="surrogateescape")
        for e in entries
        if e.path[: len(prefix)] == prefix and len(e.path) > len(prefix)
    ]


def assert_depth_first(entries: list[SourceEntry]) -> None:
    """Each parent comes before its children and a directory's contents are contiguous."""
    seen: set[tuple[bytes, ...]] = set()
    closed: set[tuple[bytes, ...]] = set()
    stack: list[tuple[bytes, ...]] = []
    for entry in entries:
        assert entry.path not in seen, f"{entry.path} yielded twice"
        while stack and entry.path[: len(stack[-1])] != stack[-1]:
            closed.add(stack.pop())
        assert entry.path[:-1] not in closed, f"{entry.path} after its directory was closed"
        assert len(entry.path) == 1 or entry.path[:-1] in seen, f"{entry.path} before parent"
        seen.add(entry.path)
        if entry.kind is EntryKind.DIR:
            stack.append(entry.path)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "live"
    (root / "app" / "models").mkdir(parents=True)
    (root / "public" / "system" / "cache").mkdir(parents=True)
    (root / "app" / "models" / "status.rb").write_text("class Status; end\n")
    (root / "app" / "a.rb").write_bytes(b"x" * 5000)
    (root / "Gemfile").write_text("source 'https://rubygems.org'\n")
    (root / "log.log").write_text("noise\n")
    (root / "public" / "system" / "cache" / "remote.png").write_bytes(b"\x89PNG")
    (root / "public" / "system" / "avatar.png").write_bytes(b"\x89PNG" + b"a" * 100)
    (root / "current").symlink_to("app")  # a symlink to a directory: not followed
    (root / "dangling").symlink_to("/nonexistent/target")
    os.chmod(root / "Gemfile", 0o640)
    return root


def test_walk_order_kinds_and_metadata(tree: Path) -> None:
    entries, errors = walk(FileSource([tree]))
    assert errors == []
    assert relative(entries, tree) == [
        "Gemfile",
        "app",
        "app/a.rb",
        "app/models",
        "app/models/status.rb",
        "current",
        "dangling",
        "log.log",
        "public",
        "public/system",
        "public/system/avatar.png",
        "public/system/cache",
        "public/system/cache/remote.png",
    ]
    assert_depth_first(entries)
    by_path = {e.path: e for e in entries}
    base = to_components(tree)
    gemfile = by_path[base + (b"Gemfile",)]
    assert gemfile.kind is EntryKind.FILE
    assert gemfile.mode == 0o640  # permission bits only, no type bits
    info = os.lstat(tree / "Gemfile")
    assert (gemfile.uid, gemfile.gid, gemfile.mtime_ns) == (
        info.st_uid,
        info.st_gid,
        info.st_mtime_ns,
    )
    assert gemfile.user == "root" if os.geteuid() == 0 else gemfile.user != ""
    assert by_path[base + (b"app", b"a.rb")].size == 5000
    current = by_path[base + (b"current",)]
    assert current.kind is EntryKind.SYMLINK and current.link_target == b"app"
    assert current.open_content is None
    assert by_path[base + (b"dangling",)].link_target == b"/nonexistent/target"
    assert by_path[base + (b"app",)].kind is EntryKind.DIR
    assert all(stat.S_IFMT(e.mode) == 0 for e in entries)


def test_parents_are_yielded_with_their_real_metadata(tree: Path) -> None:
    target = tree / "app" / "models"
    entries, _ = walk(FileSource([target]))
    components = to_components(target)
    parents = [e for e in entries if len(e.path) < len(components)]
    assert [e.path for e in parents] == [components[:n] for n in range(1, len(components))]
    assert all(e.kind is EntryKind.DIR for e in parents)
    app = next(e for e in parents if e.path == to_components(tree / "app"))
    assert app.mtime_ns == os.stat(tree / "app").st_mtime_ns
    assert entries[len(parents)].path == components
    assert FileSource([target]).describe() == [str(target)]


def test_file_content_is_read_through_open_content(tree: Path) -> None:
    entries, _ = walk(FileSource([tree / "app" / "a.rb"]))
    (entry,) = [e for e in entries if e.kind is EntryKind.FILE]
    assert entry.open_content is not None
    with entry.open_content() as stream:
        assert stream.read() == b"x" * 5000


def test_several_paths_merge_into_one_depth_first_walk(tree: Path) -> None:
    source = FileSource(
        [tree / "public", tree / "app" / "models", tree / "app", tree / "public" / "system"]
    )
    entries, errors = walk(source)
    assert errors == []
    assert_depth_first(entries)
    assert relative(entries, tree) == [
        "app",
        "app/a.rb",
        "app/models",
        "app/models/status.rb",
        "public",
        "public/system",
        "public/system/avatar.png",
        "public/system/cache",
        "public/system/cache/remote.png",
    ]
    assert source.describe() == [str(tree / "app"), str(tree / "public")]


def test_relative_paths_become_absolute(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tree)
    entries, _ = walk(FileSource(["app/../app/models"]))
    assert entries[-1].path == to_components(tree / "app" / "models" / "status.rb")


def test_excludes_match_basename_or_full_path(tree: Path) -> None:
    source = FileSource([tree], excludes=["*.log", str(tree / "public" / "system" / "cache")])
    entries, _ = walk(source)
    names = relative(entries, tree)
    assert "log.log" not in names
    assert "public/system/cache" not in names
    assert "public/system/cache/remote.png" not in names
    assert "public/system/avatar.png" in names
    assert source.metadata()["files"]["excluded"] == 2  # type: ignore[index]


def test_exclude_glob_across_directories(tree: Path) -> None:
    entries, _ = walk(FileSource([tree], excludes=["*/public/system/cache", "models"]))
    names = relative(entries, tree)
    assert "public/system/cache" not in names and "app/models" not in names
    assert "app/models/status.rb" not in names


def test_names_sort_by_bytes_and_need_not_be_utf8(tmp_path: Path) -> None:
    root = os.fsencode(tmp_path)
    for name in (b"b", b"\xff-latin1", b"B", b"a", b"\xc3\xa9"):
        with open(os.path.join(root, name), "wb") as handle:
            handle.write(name)
    entries, errors = walk(FileSource([tmp_path]))
    assert errors == []
    assert [e.path[-1] for e in entries[-5:]] == [b"B", b"a", b"b", b"\xc3\xa9", b"\xff-latin1"]


def test_special_files_are_entries_of_their_own_kind_never_opened(tmp_path: Path) -> None:
    """FIFOs, sockets and device nodes are entries with their metadata and no content (issue
    13, item 4); an excluded one is neither yielded nor counted. Opening the FIFO would block
    this test: nothing may."""
    os.mkfifo(tmp_path / "fifo", 0o640)
    os.mkfifo(tmp_path / "skip.fifo")
    os.utime(tmp_path / "fifo", ns=(1, 1_700_000_000_123_456_789))
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(tmp_path / "sock"))
        (tmp_path / "plain").write_text("x")
        source = FileSource([tmp_path], excludes=["skip.*"])
        entries, errors = walk(source)
    assert errors == []
    kinds = {e.path[-1]: e for e in entries if e.path[:-1] == to_components(tmp_path)}
    assert {name: e.kind for name, e in kinds.items()} == {
        b"fifo": EntryKind.FIFO, b"sock": EntryKind.SOCKET, b"plain": EntryKind.FILE
    }
    fifo = kinds[b"fifo"]
    assert fifo.mode == 0o640 and fifo.mtime_ns == 1_700_000_000_123_456_789
    assert fifo.open_content is None and fifo.size == 0 and fifo.rdev is None
    assert fifo.extra["inode"] == os.lstat(tmp_path / "fifo").st_ino
    assert kinds[b"sock"].open_content is None
    counts = source.metadata()["files"]
    assert counts["special"] == 2 and counts["special_skipped"] == 0  # type: ignore[index]
    assert counts["excluded"] == 1  # type: ignore[index]


def test_device_nodes_carry_their_device_number(tmp_path: Path) -> None:
    require_root("mknod")
    os.mknod(tmp_path / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    os.mknod(tmp_path / "loop", 0o660 | stat.S_IFBLK, os.makedev(7, 1 << 12))
    os.chmod(tmp_path / "loop", 0o660)  # whatever the umask
    entries, errors = walk(FileSource([tmp_path / "null", tmp_path / "loop"]))
    assert errors == []
    by_name = {e.path[-1]: e for e in entries}
    assert by_name[b"null"].kind is EntryKind.CHARDEV and by_name[b"null"].rdev == (1, 3)
    assert by_name[b"loop"].kind is EntryKind.BLOCKDEV and by_name[b"loop"].rdev == (7, 1 << 12)
    assert by_name[b"loop"].mode == 0o660 and by_name[b"null"].open_content is None


def test_one_file_system_keeps_special_files_of_the_same_filesystem(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    entries, errors = walk(FileSource([tmp_path], one_file_system=True))
    assert errors == [] and any(e.kind is EntryKind.FIFO for e in entries)


def test_file_removed_before_opening_raises_oserror(tree: Path) -> None:
    entries, errors = walk(FileSource([tree / "app"]))
    entry = next(e for e in entries if e.path[-1] == b"a.rb")
    (tree / "app" / "a.rb").unlink()
    assert errors == [] and entry.open_content is not None
    with pytest.raises(FileNotFoundError):
        entry.open_content()


def test_file_replaced_by_fifo_or_symlink_neither_blocks_nor_redirects(tree: Path) -> None:
    entries, _ = walk(FileSource([tree]))
    gemfile = next(e for e in entries if e.path[-1] == b"Gemfile")
    status = next(e for e in entries if e.path[-1] == b"status.rb")
    (tree / "Gemfile").unlink()
    os.mkfifo(tree / "Gemfile")  # opening it for reading would block without O_NONBLOCK
    (tree / "app" / "models" / "status.rb").unlink()
    (tree / "app" / "models" / "status.rb").symlink_to("/etc/passwd")
    assert gemfile.open_content is not None and status.open_content is not None
    with pytest.raises(OSError, match="no longer a regular file"):
        gemfile.open_content()
    with pytest.raises(OSError):  # ELOOP from O_NOFOLLOW
        status.open_content()


def test_unlistable_directory_is_reported_and_the_walk_goes_on(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Root reads everything, so make one directory unreadable by failing its listing.
    blocked = os.fsencode(tree / "app")
    real_listdir = os.listdir

    def listdir(path: bytes) -> list[bytes]:
        if path == blocked:
            raise PermissionError(13, "Permission denied", os.fsdecode(path))
        return real_listdir(path)

    monkeypatch.setattr(os, "listdir", listdir)
    source = FileSource([tree])
    entries, errors = walk(source)
    assert [(path, type(exc)) for path, exc in errors] == [
        (to_components(tree / "app"), PermissionError)
    ]
    names = relative(entries, tree)
    assert "app" in names and "app/a.rb" not in names
    assert "public/system/avatar.png" in names
    assert source.metadata()["files"]["errors"] == 1  # type: ignore[index]


def test_entry_vanishing_before_lstat_is_reported(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_listdir = os.listdir

    def listdir(path: bytes) -> list[bytes]:
        return real_listdir(path) + ([b"ghost"] if path == os.fsencode(tree) else [])

    monkeypatch.setattr(os, "listdir", listdir)
    entries, errors = walk(FileSource([tree]))
    assert [(p[-1], type(e)) for p, e in errors] == [(b"ghost", FileNotFoundError)]
    assert "Gemfile" in relative(entries, tree)


def test_missing_argument_is_reported(tmp_path: Path) -> None:
    (tmp_path / "there").write_text("x")
    entries, errors = walk(FileSource([tmp_path / "nope", tmp_path / "there"]))
    assert [(p, type(e)) for p, e in errors] == [
        (to_components(tmp_path / "nope"), FileNotFoundError)
    ]
    assert entries[-1].path == to_components(tmp_path / "there")


def test_needs_a_path() -> None:
    with pytest.raises(UsageError):
        FileSource([])
    assert FileSource(["/tmp"]).kind == "files"
