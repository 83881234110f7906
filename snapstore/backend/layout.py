"""How objects are addressed on a backend: names, relative paths and byte ranges.

Every path-based backend (local, fsspec) stores an object at the path this module gives, so a
repository copied between them with plain tools stays readable. Packs are sharded into 256
folders by the first two characters of their name, which keeps directory listings short on
filesystems and gives object stores distinct key prefixes:

    config
    keys/<name>
    data/<name[:2]>/<name>
    index/<name>
    snapshots/<name>
    locks/<name>

Names are restricted to a portable alphabet so the same object has the same path on every
filesystem and object store, and so no name can collide with a temporary file: writers create
`.tmp-*` files next to the final name, and listings skip anything starting with a dot.
"""

from __future__ import annotations

import re
import secrets

from snapstore.backend.base import FileType, Handle
from snapstore.errors import RangeError

TEMP_PREFIX = ".tmp-"
"""Names of files a writer has not finished; listings never report them."""

MAX_NAME_LENGTH = 200
"""Leaves room under the usual 255-byte file name limit for the temporary-file prefix."""

SHARD_LENGTH = 2

_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")


def check_name(handle: Handle) -> None:
    """Refuse names that some backend could not store faithfully (ValueError: a caller bug)."""
    if handle.type is FileType.CONFIG:
        return
    name = handle.name
    if not _NAME.fullmatch(name) or len(name) > MAX_NAME_LENGTH:
        raise ValueError(
            f"invalid object name {name!r}: use letters, digits, '.', '_' or '-', "
            f"not starting with '.', at most {MAX_NAME_LENGTH} characters"
        )
    if handle.type is FileType.PACK and len(name) < SHARD_LENGTH:
        raise ValueError(f"pack name {name!r} is shorter than its {SHARD_LENGTH}-character shard")


def directory(file_type: FileType) -> str:
    """The folder holding objects of one type, relative to the root ('' for the config)."""
    return "" if file_type is FileType.CONFIG else file_type.value


def object_path(handle: Handle) -> str:
    """The '/'-separated path of an object relative to the repository root."""
    check_name(handle)
    if handle.type is FileType.CONFIG:
        return FileType.CONFIG.value
    if handle.type is FileType.PACK:
        return f"{handle.type.value}/{handle.name[:SHARD_LENGTH]}/{handle.name}"
    return f"{handle.type.value}/{handle.name}"


def handle_from_path(relative_path: str) -> Handle | None:
    """The object stored at a relative path, or None for temporary files and strays.

    A pack in the wrong shard is a stray too: `load` could never find it by name.
    """
    parts = relative_path.strip("/").split("/")
    if parts == [FileType.CONFIG.value]:
        return Handle(FileType.CONFIG)
    try:
        file_type = FileType(parts[0])
    except ValueError:
        return None
    if file_type is FileType.CONFIG:
        return None
    expected_depth = 3 if file_type is FileType.PACK else 2
    if len(parts) != expected_depth:
        return None
    name = parts[-1]
    if file_type is FileType.PACK and parts[1] != name[:SHARD_LENGTH]:
        return None
    try:
        handle = Handle(file_type, name)
        check_name(handle)
    except ValueError:
        return None
    return handle


def temp_name() -> str:
    """A fresh temporary file name; unique enough for concurrent writers in many processes."""
    return TEMP_PREFIX + secrets.token_hex(12)


def check_range(offset: int, length: int | None) -> None:
    """Refuse negative ranges (ValueError: a caller bug, not a storage failure)."""
    if offset < 0:
        raise ValueError(f"negative offset {offset}")
    if length is not None and length < 0:
        raise ValueError(f"negative length {length}")


def range_end(size: int, offset: int, length: int | None, what: object) -> int:
    """The exclusive end of a read of `length` bytes at `offset` in an object of `size` bytes.

    Reading up to the very end is allowed, including an empty read at `offset == size`;
    anything past the end raises RangeError rather than returning fewer bytes.
    """
    check_range(offset, length)
    end = size if length is None else offset + length
    if offset > size or end > size:
        raise RangeError(
            f"{what}: range {offset}..{end} reaches past the end of the object ({size} bytes)"
        )
    return end
