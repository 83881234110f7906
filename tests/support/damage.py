"""Damaging a stored blob in place, as a disk or a hostile backend would."""

from __future__ import annotations

from snapstore.backend.base import FileType, Handle
from snapstore.repository.repository import Repository


def flip_blob(repo: Repository, blob_id: bytes, at: int = 40, bit: int = 0x10) -> Handle:
    """Flips `bit` of the byte `at` bytes into the blob's first indexed copy; returns its pack."""
    where = repo.lookup(blob_id)
    assert where is not None
    handle = Handle(FileType.PACK, where.pack_id.hex())
    data = bytearray(repo.backend.load(handle))
    data[where.offset + at] ^= bit
    repo.backend.save(handle, bytes(data))
    return handle
