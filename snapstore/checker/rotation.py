"""Rotating verification: which packs `check --read-data` verified, and when, kept between runs.

A nightly `check --read-data-subset 10%` or `--max-duration 1h` reads the packs verified least
recently first, so that night after night the whole repository is read in turn. What was read
is remembered in a small JSON file in the repository's folder of the local cache directory
(`<cache dir>/<repository id>/verified-packs.json`; see snapstore.backend.cache). It is not
part of the repository: losing it only means that every pack counts as never verified.

    {"v": 1,
     "verified": {"<pack id hex>": <unix time of the last read that found it whole>, ...},
     "damaged": {"<pack id hex>": [<unix time it was found damaged>, "<why>"], ...}}

**Damage is never forgotten.** A pack found damaged is recorded as damaged (its old
verification dropped) until a later read finds it whole or it leaves the backend (prune,
repair). Damaged packs are read first, on top of the share asked for, and a run that does not
get to one still reports it as an error.

Two checks running at once may each write the file; the last one wins and the other's reads
are merely forgotten (those packs are read again sooner). The ordering (`order`) and the
coverage sum (`coverage`) are pure; `load` and `save` are the only I/O.
"""

from __future__ import annotations

import json
import math
import os
import random
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from snapstore.ids import Id

RECORD_NAME = "verified-packs.json"
_VERSION = 1


@dataclass(frozen=True)
class Coverage:
    """How much of the repository a whole read verified in the last `days` days."""

    days: float
    packs: int
    packs_total: int
    bytes: int
    bytes_total: int
    never: int  # packs on the backend with no verification on record


@dataclass
class VerificationRecord:
    verified: dict[Id, float] = field(default_factory=dict)
    damaged: dict[Id, tuple[float, str]] = field(default_factory=dict)

    def mark_verified(self, pack_id: Id, when: float) -> None:
        self.verified[pack_id] = when
        self.damaged.pop(pack_id, None)

    def mark_damaged(self, pack_id: Id, when: float, why: str) -> None:
        self.damaged[pack_id] = (when, why)
        self.verified.pop(pack_id, None)

    def keep_only(self, on_backend: Iterable[Id]) -> None:
        """Forget the packs the backend no longer has (pruned, or removed by a repair)."""
        present = set(on_backend)
        self.verified = {p: t for p, t in self.verified.items() if p in present}
        self.damaged = {p: d for p, d in self.damaged.items() if p in present}

    def order(self, packs: Iterable[Id]) -> list[Id]:
        """Damaged packs first, then packs never verified, then the least recently verified;
        ties by pack id."""
        return sorted(
            packs,
            key=lambda p: (p not in self.damaged, self.verified.get(p, -math.inf), bytes(p)),
        )

    def coverage(self, sizes: dict[Id, int], now: float, days: float) -> Coverage:
        since = now - days * 86400
        recent = [p for p in sizes if self.verified.get(p, -math.inf) >= since]
        return Coverage(
            days=days,
            packs=len(recent),
            packs_total=len(sizes),
            bytes=sum(sizes[p] for p in recent),
            bytes_total=sum(sizes.values()),
            never=sum(1 for p in sizes if p not in self.verified),
        )


def select_share(ordered: list[Id], fraction: float, record: VerificationRecord | None) -> list[Id]:
    """The first `fraction` of the packs (rounded up, at least one) in the order given, plus
    every pack on record as damaged. Without a record, a random share: nothing says which
    packs were read before, and a fixed choice would read the same ones every night."""
    count = min(len(ordered), max(1, math.ceil(fraction * len(ordered) - 1e-9))) if ordered else 0
    if record is None:
        return random.sample(ordered, count)
    damaged = [p for p in ordered if p in record.damaged]
    return damaged + [p for p in ordered if p not in record.damaged][:count]


def record_path(cache_dir: str | os.PathLike[str], repository_id: str) -> Path:
    return Path(cache_dir) / repository_id / RECORD_NAME


def load(path: Path) -> VerificationRecord:
    """The record at `path`; an empty one when there is none or it cannot be read (then every
    pack counts as never verified, which only makes them read sooner)."""
    try:
        doc = json.loads(path.read_bytes())
        if not isinstance(doc, dict) or doc.get("v") != _VERSION:
            return VerificationRecord()
        verified = {Id.from_hex(k): float(v) for k, v in doc.get("verified", {}).items()}
        damaged = {Id.from_hex(k): (float(v[0]), str(v[1])) for k, v in doc.get("damaged", {}).items()}
    except (OSError, ValueError, TypeError, AttributeError, IndexError, KeyError):
        return VerificationRecord()
    return VerificationRecord(verified, damaged)


def save(path: Path, record: VerificationRecord) -> None:
    """Writes the record atomically (a temporary file renamed over the old one)."""
    doc = {
        "v": _VERSION,
        "verified": {p.hex(): t for p, t in sorted(record.verified.items())},
        "damaged": {p.hex(): [t, why] for p, (t, why) in sorted(record.damaged.items())},
    }
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f, separators=(",", ":"))
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
