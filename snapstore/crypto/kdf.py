"""Password to key: Argon2id, memory-hard, with its parameters stored beside the salt."""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

from snapstore.errors import UnsupportedVersion


@dataclass(frozen=True)
class KdfParams:
    """Argon2id cost. The default takes about 0.15 s and 64 MiB on a small server."""

    time_cost: int = 3
    memory_kib: int = 64 * 1024
    lanes: int = 4

    def __post_init__(self) -> None:
        if self.time_cost < 1 or self.lanes < 1 or self.memory_kib < 8 * self.lanes:
            raise UnsupportedVersion(f"unusable Argon2id parameters {self}")


DEFAULT_KDF = KdfParams()
#: Cheap parameters for tests only; never use for a real repository.
TEST_KDF = KdfParams(time_cost=1, memory_kib=64, lanes=1)


def derive_wrapping_key(password: bytes, salt: bytes, params: KdfParams) -> bytes:
    return Argon2id(
        salt=salt,
        length=32,
        iterations=params.time_cost,
        lanes=params.lanes,
        memory_cost=params.memory_kib,
    ).derive(password)
