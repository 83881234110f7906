"""Snapshot codec (SPEC.md section 9): a msgpack map stored under `snapshots/`.

    {"v": 1, "time": str (ISO 8601 with UTC offset), "host": str, "user": str,
     "tags": [str], "source": str, "paths": [str], "tree": bin(32), "parent": bin(32) | nil,
     "summary": {"files": int, "files_unchanged": int, "dirs": int, "bytes_read": int,
                 "bytes_added": int, "blobs_added": int, "deltas_added": int, "errors": int,
                 "duration_s": float},
     "chunker": {profile: [min, avg, max, normalization]},
     "program_version": str, "metadata": map}

The snapshot's id is its object name: the BLAKE3 hash of the stored envelope.

A snapshot's time carries a UTC offset and lies between EARLIEST_TIME and LATEST_TIME, a day
inside what Python's datetime can hold, so that showing it in any time zone, converting or
comparing it never overflows; the encoder refuses any other time (ValueError) and the decoder
calls one a malformed snapshot (IntegrityError) instead of handing it on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgpack

from snapstore.errors import IntegrityError, UnsupportedVersion
from snapstore.ids import Id

SNAPSHOT_VERSION = 1
EARLIEST_TIME = datetime(1, 1, 2, tzinfo=UTC)
LATEST_TIME = datetime(9999, 12, 30, tzinfo=UTC)


def check_time(when: datetime) -> None:
    """Raises ValueError unless `when` may be a snapshot's time (see the module docstring)."""
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"time {when.isoformat()} has no UTC offset")
    try:
        in_range = EARLIEST_TIME <= when.astimezone(UTC) <= LATEST_TIME
    except OverflowError:
        in_range = False
    if not in_range:
        raise ValueError(f"time {when.isoformat()} is outside {EARLIEST_TIME.date()} to "
                         f"{LATEST_TIME.date()} UTC")


@dataclass
class Summary:
    files: int = 0
    files_unchanged: int = 0  # of files, how many took the parent's content without being read
    dirs: int = 0
    bytes_read: int = 0
    bytes_added: int = 0
    blobs_added: int = 0
    deltas_added: int = 0  # of blobs_added, how many were stored as deltas
    errors: int = 0
    duration_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Snapshot:
    time: datetime
    host: str
    user: str
    tags: list[str]
    source: str
    paths: list[str]
    tree: Id
    parent: Id | None = None
    summary: Summary = field(default_factory=Summary)
    chunker: dict[str, list[int]] = field(default_factory=dict)
    program_version: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    id: Id | None = None  # known once stored or loaded; not part of the encoding

    #: Raises ValueError unless a time may be recorded (offset, range): for callers that take
    #: a time from a user, before any work is done.
    check_time = staticmethod(check_time)

    @property
    def short_id(self) -> str:
        return self.id.hex()[:8] if self.id else "(unsaved)"

    @property
    def complete(self) -> bool:
        """False when the source reported errors while it was read (a path missing, a file
        unreadable, a Mastodon part failed). An incomplete snapshot is listed as such and never
        stands in for a complete one: not as `latest`, not as a delta parent, not in a
        retention bucket, unless it is named by its id."""
        return self.summary.errors == 0

    @property
    def failed_parts(self) -> list[str]:
        """The parts a `mastodon` snapshot records as failed (metadata "mastodon" -> "parts":
        part -> "ok", "skipped: why" or "failed: why", written by sources/mastodon.py), in
        the order recorded; empty for other sources. What an incomplete snapshot lacks, told
        in the listing."""
        facts = self.metadata.get("mastodon")
        parts = facts.get("parts") if isinstance(facts, dict) else None
        if not isinstance(parts, dict):
            return []
        return [str(name) for name, state in parts.items()
                if isinstance(state, str) and state.startswith("failed")]

    def describe_incomplete(self) -> str:
        """The listing's marker, e.g. `incomplete (redis, media)` or `incomplete (2 errors)`
        when no part is named; empty for a complete snapshot."""
        if self.complete:
            return ""
        failed = self.failed_parts
        if failed:
            return f"incomplete ({', '.join(failed)})"
        errors = self.summary.errors
        return f"incomplete ({errors} error{'s' if errors != 1 else ''})"


def encode_snapshot(snap: Snapshot) -> bytes:
    check_time(snap.time)
    return msgpack.packb(
        {
            "v": SNAPSHOT_VERSION,
            "time": snap.time.isoformat(),
            "host": snap.host,
            "user": snap.user,
            "tags": list(snap.tags),
            "source": snap.source,
            "paths": list(snap.paths),
            "tree": bytes(snap.tree),
            "parent": bytes(snap.parent) if snap.parent else None,
            "summary": snap.summary.to_dict(),
            "chunker": snap.chunker,
            "program_version": snap.program_version,
            "metadata": snap.metadata,
        },
        use_bin_type=True,
    )


def decode_snapshot(plaintext: bytes, snapshot_id: Id | None = None) -> Snapshot:
    try:
        doc = msgpack.unpackb(plaintext, raw=False, strict_map_key=False)
        if not isinstance(doc, dict):
            raise ValueError("not a map")
        if doc.get("v") != SNAPSHOT_VERSION:
            raise UnsupportedVersion(f"snapshot version {doc.get('v')!r} is not supported")
        time = datetime.fromisoformat(doc["time"])
        check_time(time)
        snap = Snapshot(
            time=time,
            host=doc["host"],
            user=doc["user"],
            tags=doc["tags"],
            source=doc["source"],
            paths=doc["paths"],
            tree=Id(doc["tree"]),
            parent=Id(doc["parent"]) if doc.get("parent") else None,
            summary=_decode_summary(doc["summary"]),
            chunker=doc.get("chunker") or {},
            program_version=doc.get("program_version", ""),
            metadata=doc.get("metadata") or {},
            id=snapshot_id,
        )
        _check_types(snap)
        return snap
    except UnsupportedVersion:
        raise
    except (ValueError, KeyError, TypeError, AttributeError, msgpack.UnpackException) as exc:
        raise IntegrityError(f"snapshot is malformed: {exc}") from None


def _decode_summary(raw: dict[str, Any]) -> Summary:
    fields = {k: v for k, v in raw.items() if k in Summary.__dataclass_fields__}
    for name, value in fields.items():
        if type(value) is not int and not (name == "duration_s" and type(value) is float):
            raise TypeError(f"summary field {name!r} is not a number")
    summary = Summary(**fields)
    summary.duration_s = float(summary.duration_s)
    return summary


def _check_types(snap: Snapshot) -> None:
    """The types listings, retention and copy rely on (a tag that is an int would fail a
    join far from here)."""
    for name in ("host", "user", "source", "program_version"):
        if type(getattr(snap, name)) is not str:
            raise TypeError(f"{name} is not a string")
    for name in ("tags", "paths"):
        value = getattr(snap, name)
        if type(value) is not list or any(type(item) is not str for item in value):
            raise TypeError(f"{name} is not a list of strings")
    if type(snap.chunker) is not dict or type(snap.metadata) is not dict:
        raise TypeError("chunker and metadata must be maps")
