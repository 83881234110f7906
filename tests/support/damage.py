"""Damaging stored objects in place, as a disk or a hostile backend would: one bit of one
byte of an object, or of one blob inside its pack."""

from __future__ import annotations

from snapstore.backend.base import Backend, FileType, Handle
from snapstore.repository.repository import Repository


def flip_byte(backend: Backend, handle: Handle, position: int | None = None, bit: int = 0x01) -> None:
    """Flips `bit` of the object's byte at `position` (its middle byte when None)."""
    data = bytearray(backend.load(handle))
    data[len(data) // 2 if position is None else position] ^= bit
    backend.save(handle, bytes(data))


def flip_blob(repo: Repository, blob_id: bytes, at: int | None = 40, bit: int = 0x10) -> Handle:
    """Flips `bit` of the byte `at` bytes into the blob's first indexed copy (the middle of its
    envelope when None); returns its pack."""
    where = repo.lookup(blob_id)
    assert where is not None
    handle = Handle(FileType.PACK, where.pack_id.hex())
    flip_byte(repo.backend, handle, where.offset + (where.length // 2 if at is None else at), bit)
    return handle
