"""Fuzzing the lock codec: any plaintext of a `locks/` object decodes to a lock that can be
judged stale or not and described, or raises an IntegrityError (which makes it a lock that
conflicts with everything until removed, SPEC.md section 10)."""

from __future__ import annotations

from hypothesis import example, given

from snapstore.repository.lock import LockInfo
from tests.fuzz.fuzzing import decoded, documents, fuzz, hostile, with_field
from tests.fuzz.seeds import LOCKS
from tests.fuzz.wellformed import check_lock

LOCK = LOCKS[0]


def test_lock_decoder(fuzz_cases: int) -> None:
    @given(hostile(LOCKS, documents(LOCKS)))
    # Found by this test: a nonce given as an int made bytes() allocate that many bytes (2 GiB
    # here; OverflowError for 2**63), int() of an infinite pid raised OverflowError, a pid of
    # 2**40 made os.kill raise it on the lock's host, and so did describing a lock refreshed
    # at a time that is out of range in UTC.
    @example(with_field(LOCK, ["nonce"], 2**31))
    @example(with_field(LOCK, ["nonce"], 2**63))
    @example(with_field(LOCK, ["pid"], float("inf")))
    @example(with_field(LOCK, ["pid"], 2**40))
    @example(with_field(LOCK, ["refreshed"], "0001-01-01T00:00:00+23:59"))
    def case(plaintext: bytes) -> None:
        info = decoded(LockInfo.decode, plaintext)
        if info is not None:
            check_lock(info)

    fuzz(fuzz_cases, case)
