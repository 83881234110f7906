"""Ids: keyed BLAKE3 for blob contents, plain BLAKE3 for stored object names.

Blob ids are keyed so that someone who reads the backend cannot test whether a known file is
in the repository. Stored objects (packs, index files, snapshots) are named by the unkeyed hash
of their bytes as stored, so anyone can check an object against its name without the key.
"""

from __future__ import annotations

import blake3

from snapstore.ids import Id

_MULTITHREAD_THRESHOLD = 1 << 30


def blob_id(id_key: bytes, data: bytes | bytearray | memoryview) -> Id:
    """The id of a blob's plaintext under the repository's id key."""
    return Id(blake3.blake3(key=id_key).update(data).digest())  # update() releases the GIL


def object_id(stored: bytes | bytearray | memoryview) -> Id:
    """The name of a stored object: the BLAKE3 hash of its bytes as they sit on the backend."""
    return Id(blake3.blake3(stored).digest())


def derive_key(context: str, material: bytes, length: int = 32) -> bytes:
    """BLAKE3's key derivation mode; `context` is a fixed, globally unique string."""
    return blake3.blake3(material, derive_key_context=context).digest(length=length)
