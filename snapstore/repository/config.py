"""The repository config object: format version, repository id, chunker and pack settings.

Stored at `config` inside an envelope (kind CONFIG). Plaintext msgpack map:

    {"v": 1, "id": bin(16), "created": str, "pack_size": int,
     "chunker": {"files": [min, avg, max, normalization], "database": [...]},
     "compression_level": int, "features": [str, ...]}

A reader refuses a config whose "v" or any entry of "features" it does not know.

Features:
    "delta-v1"  blobs may be stored as deltas (compression flag 0x02, pack header and index
                file version 2; SPEC.md sections 6 to 8). New repositories have it; writers
                store deltas only where it is present, so older readers are never surprised.
    "delta-chains"  a delta's base may itself be a delta, up to a bounded depth, and delta
                entries carry a generation (SPEC.md section 6). Only with "delta-v1".
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import msgpack

from snapstore.errors import IntegrityError, UnsupportedVersion
from snapstore.pack import MAX_PACK_SIZE

REPOSITORY_VERSION = 1
FEATURE_DELTAS = "delta-v1"
FEATURE_CHAINS = "delta-chains"
KNOWN_FEATURES: frozenset[str] = frozenset({FEATURE_DELTAS, FEATURE_CHAINS})
DEFAULT_PACK_SIZE = 16 * 1024 * 1024


@dataclass(frozen=True)
class RepositoryConfig:
    repository_id: bytes
    created: str
    pack_size: int = DEFAULT_PACK_SIZE
    chunker: dict[str, tuple[int, int, int, int]] = field(default_factory=dict)
    compression_level: int = 3
    features: tuple[str, ...] = ()
    version: int = REPOSITORY_VERSION

    @classmethod
    def new(
        cls, created: str, chunker: dict[str, tuple[int, int, int, int]], pack_size: int
    ) -> RepositoryConfig:
        return cls(os.urandom(16), created, pack_size, dict(chunker), features=(FEATURE_DELTAS, FEATURE_CHAINS))

    @property
    def deltas(self) -> bool:
        """Whether writers may store delta blobs here."""
        return FEATURE_DELTAS in self.features

    @property
    def delta_chains(self) -> bool:
        """Whether writers may store a delta against a base that is itself a delta."""
        return self.deltas and FEATURE_CHAINS in self.features

    def encode(self) -> bytes:
        return msgpack.packb(
            {
                "v": self.version,
                "id": self.repository_id,
                "created": self.created,
                "pack_size": self.pack_size,
                "chunker": {k: list(v) for k, v in sorted(self.chunker.items())},
                "compression_level": self.compression_level,
                "features": list(self.features),
            },
            use_bin_type=True,
        )

    @classmethod
    def decode(cls, plaintext: bytes) -> RepositoryConfig:
        """Refuses (IntegrityError) any field not of the type (and the pack size not in the
        range) `encode` writes. The chunker parameters' rules (SPEC.md section 5) are the
        chunker's to check, when a writer uses them."""
        try:
            doc = msgpack.unpackb(plaintext, raw=False)
            version = doc["v"]
        except Exception as exc:
            raise IntegrityError(f"config is malformed: {exc}") from None
        if version != REPOSITORY_VERSION:
            raise UnsupportedVersion(
                f"repository format version {version!r} is newer than this snapstore understands"
            )
        features = doc.get("features", [])
        if type(features) is not list or any(type(f) is not str for f in features):
            raise IntegrityError("config features are malformed")
        unknown = set(features) - KNOWN_FEATURES
        if unknown:
            raise UnsupportedVersion(f"repository uses unknown features: {', '.join(sorted(unknown))}")
        try:
            config = cls(
                repository_id=doc["id"],
                created=doc["created"],
                pack_size=doc["pack_size"],
                chunker={k: tuple(v) for k, v in doc["chunker"].items()},
                compression_level=doc["compression_level"],
                features=tuple(features),
            )
            _check_types(config)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise IntegrityError(f"config is malformed: {exc}") from None
        return config


def _check_types(config: RepositoryConfig) -> None:
    if type(config.repository_id) is not bytes or len(config.repository_id) != 16:
        raise ValueError("the repository id is not 16 bytes")
    if type(config.created) is not str:
        raise TypeError("created is not a string")
    if type(config.pack_size) is not int or not 0 < config.pack_size <= MAX_PACK_SIZE:
        raise ValueError(f"pack size {config.pack_size!r} is out of range")
    if type(config.compression_level) is not int:
        raise TypeError("the compression level is not an int")
    for profile, params in config.chunker.items():
        if type(profile) is not str or len(params) != 4 or any(type(p) is not int for p in params):
            raise ValueError(f"chunker profile {profile!r} is not four integers")
