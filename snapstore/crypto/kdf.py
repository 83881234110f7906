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

    @property
    def cost(self) -> int:
        """time_cost x memory_kib: the work of one derivation, in KiB processed."""
        return self.time_cost * self.memory_kib


DEFAULT_KDF = KdfParams()
#: Cheap parameters for tests only; never use for a real repository.
TEST_KDF = KdfParams(time_cost=1, memory_kib=64, lanes=1)

# The most a key file may ask of a reader (SPEC.md section 4). `init` writes DEFAULT_KDF; the
# bounds leave room to raise its memory fourfold and its cost twofold. A key file asking more
# is refused unread, so one planted on the backend can neither exhaust memory nor hang a
# command. The cost bound is also what keeps a command interruptible: the derivation runs in
# C without releasing the interpreter (so not even a worker thread would let the main thread
# handle a signal), and Ctrl-C or SIGTERM takes effect when the derivation under way returns.
MAX_MEMORY_KIB = 4 * DEFAULT_KDF.memory_kib  # 256 MiB
MAX_COST = 2 * DEFAULT_KDF.cost  # time_cost x memory_kib: about 0.3 s on a small server
MAX_LANES = 16


def exceeded_bound(params: KdfParams) -> str | None:
    """Which bound `params` exceed, or None when a reader accepts them."""
    if params.memory_kib > MAX_MEMORY_KIB:
        return f"Argon2id memory {params.memory_kib} KiB is over the bound of {MAX_MEMORY_KIB} KiB"
    if params.cost > MAX_COST:
        return (
            f"Argon2id cost {params.time_cost} x {params.memory_kib} KiB is over the bound "
            f"of {MAX_COST} KiB"
        )
    if params.lanes > MAX_LANES:
        return f"Argon2id lanes {params.lanes} is over the bound of {MAX_LANES}"
    return None


def derive_wrapping_key(password: bytes, salt: bytes, params: KdfParams) -> bytes:
    return Argon2id(
        salt=salt,
        length=32,
        iterations=params.time_cost,
        lanes=params.lanes,
        memory_cost=params.memory_kib,
    ).derive(password)
