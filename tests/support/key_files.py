"""Key files forged the way someone who can write to the backend would: any KDF header,
random wrapped bytes that no password opens. Forging one costs nothing; opening it costs
whatever its header asks."""

from __future__ import annotations

import os

import msgpack

#: The key file of issue 10, item 4: 8 GiB and 100,000 passes (> 10 minutes, deaf to SIGTERM).
HOSTILE = {"time_cost": 100_000, "memory_kib": 8 * 1024 * 1024, "lanes": 4}
#: As costly as a reader accepts (snapstore.crypto.kdf): 192 MiB, about 0.3 s per try.
AT_THE_BOUND = {"time_cost": 2, "memory_kib": 192 * 1024, "lanes": 4}
#: Sorts before any key file named by its hex object id.
FIRST_NAME = "0" * 64


def forged_key_file(time_cost: int, memory_kib: int, lanes: int) -> bytes:
    return msgpack.packb(
        {
            "v": 1,
            "kdf": "argon2id",
            "time_cost": time_cost,
            "memory_kib": memory_kib,
            "lanes": lanes,
            "salt": os.urandom(16),
            "created": "2026-01-01T00:00:00+00:00",
            "host": "attacker",
            "user": "mallory",
            "nonce": os.urandom(12),
            "wrapped": os.urandom(96 + 16),
        }
    )
