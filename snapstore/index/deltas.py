"""The delta rules (SPEC.md sections 6 and 11), in one place.

- Only data blobs may be stored as deltas; trees are always whole.
- A base must be a data blob stored whole: chains are one level deep, so reading any blob
  costs at most two blob reads.
- A delta names its base by id inside its envelope; the index keeps the first 8 bytes of that
  id (`base_key`), enough to find the base's candidates among the indexed ids.
- A live delta keeps its base alive: prune counts the base of every delta it keeps as used.

The packer, the blob reader, the checker, prune and the archiver ask these functions instead of
spelling the rules out again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from snapstore.ids import Id
from snapstore.pack import BlobType

if TYPE_CHECKING:
    from snapstore.index.index import BlobIndex, BlobLocation

#: How many deltas deep a chain may go: a base is always whole.
MAX_DEPTH = 1


def may_be_delta(blob_type: BlobType) -> bool:
    """Whether a blob of this type may be stored as a delta."""
    return blob_type is BlobType.DATA


def serves_as_base(blob_type: BlobType, is_delta: bool) -> bool:
    """Whether a stored copy can be a delta's base: a data blob stored whole."""
    return blob_type is BlobType.DATA and not is_delta


def base_key(base_id: bytes) -> int:
    """The index's short name for a base: the first 8 bytes of its id, big-endian."""
    return int.from_bytes(base_id[:8], "big")


def whole_copies(index: BlobIndex, blob_id: bytes) -> list[BlobLocation]:
    """The indexed copies of a blob that can serve as a base."""
    return [c for c in index.lookup_all(blob_id) if serves_as_base(c.type, c.is_delta)]


def base_candidates(index: BlobIndex, delta: BlobLocation) -> list[Id]:
    """The indexed ids a delta's base key can stand for (almost always exactly one)."""
    return index.ids_with_key(delta.base_key)


def bases_of(index: BlobIndex, locations: list[BlobLocation]) -> dict[int, list[Id]]:
    """The candidate base ids of many deltas at once, by base key."""
    return index.ids_with_keys([loc.base_key for loc in locations if loc.is_delta])
