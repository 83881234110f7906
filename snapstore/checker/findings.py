"""What the checker can find, as values rather than exceptions."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Finding:
    """One problem. `error` findings make the check fail; others are reported only."""

    kind: str
    subject: str
    message: str
    error: bool = True
    snapshots: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        hurt = f" (affects snapshots {', '.join(self.snapshots)})" if self.snapshots else ""
        return f"{self.kind} {self.subject}: {self.message}{hurt}"


PACK_MISSING = "pack missing"
PACK_DAMAGED = "pack damaged"
PACK_UNINDEXED = "pack not in index"
INDEX_DAMAGED = "index damaged"
SNAPSHOT_DAMAGED = "snapshot damaged"
TREE_DAMAGED = "tree damaged"
BLOB_MISSING = "blob missing"
BLOB_DAMAGED = "blob damaged"
CHUNK_LIST_DAMAGED = "chunk list damaged"
DELTA_BASE_MISSING = "delta base missing"
DELTA_CHAIN = "delta chain"
