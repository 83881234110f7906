"""The authenticated envelope: every stored byte is covered, and kinds cannot be swapped."""

from __future__ import annotations

import threading

import pytest

from snapstore.crypto import aead
from snapstore.crypto.aead import (
    HEADER_SIZE,
    OVERHEAD,
    SESSION_ID_SIZE,
    Kind,
    Opener,
    Sealer,
    session_key,
)
from snapstore.errors import AuthenticationFailed, IntegrityError, Truncated

KEY = bytes(range(32))
PLAINTEXT = b"the quick brown fox jumps over the lazy dog" * 3


def test_round_trip_every_kind() -> None:
    sealer, opener = Sealer(KEY), Opener(KEY)
    for kind in Kind:
        envelope = sealer.seal(kind, PLAINTEXT)
        assert len(envelope) == len(PLAINTEXT) + OVERHEAD
        assert opener.open(kind, envelope) == PLAINTEXT


def test_round_trip_empty_and_buffer_types() -> None:
    sealer, opener = Sealer(KEY), Opener(KEY)
    assert opener.open(Kind.DATA_BLOB, sealer.seal(Kind.DATA_BLOB, b"")) == b""
    for buffer in (bytearray(PLAINTEXT), memoryview(PLAINTEXT)):
        envelope = sealer.seal(Kind.TREE_BLOB, buffer)
        assert opener.open(Kind.TREE_BLOB, memoryview(envelope)) == PLAINTEXT


def test_ciphertext_hides_the_plaintext() -> None:
    envelope = Sealer(KEY).seal(Kind.DATA_BLOB, PLAINTEXT)
    assert PLAINTEXT[:16] not in envelope


def test_every_flipped_bit_is_detected() -> None:
    envelope = Sealer(KEY).seal(Kind.SNAPSHOT, b"snapshot body")
    opener = Opener(KEY)
    for position in range(len(envelope)):
        for bit in (0x01, 0x80):
            damaged = bytearray(envelope)
            damaged[position] ^= bit
            # Version and suite bytes too: the config gates the format version, so an
            # unknown envelope header inside a repository is damage, not a newer writer.
            with pytest.raises(AuthenticationFailed):
                opener.open(Kind.SNAPSHOT, bytes(damaged))


def test_unknown_version_or_suite_is_an_integrity_error() -> None:
    envelope = Sealer(KEY).seal(Kind.CONFIG, b"config")
    for header in (b"\x02\x01", b"\x01\x02", b"\x00\x00", b"\xff\xff"):
        with pytest.raises(IntegrityError):
            Opener(KEY).open(Kind.CONFIG, header + envelope[2:])


def test_wrong_kind_fails_authentication() -> None:
    sealer, opener = Sealer(KEY), Opener(KEY)
    for kind in Kind:
        envelope = sealer.seal(kind, PLAINTEXT)
        for other in Kind:
            if other is not kind:
                with pytest.raises(AuthenticationFailed):
                    opener.open(other, envelope)


def test_wrong_key_fails_authentication() -> None:
    envelope = Sealer(KEY).seal(Kind.INDEX, PLAINTEXT)
    with pytest.raises(AuthenticationFailed):
        Opener(bytes(32)).open(Kind.INDEX, envelope)


def test_truncation() -> None:
    envelope = Sealer(KEY).seal(Kind.DATA_BLOB, PLAINTEXT)
    opener = Opener(KEY)
    for length in (0, 1, HEADER_SIZE, OVERHEAD - 1):
        with pytest.raises(Truncated):
            opener.open(Kind.DATA_BLOB, envelope[:length])
    # Long enough for the framing but missing ciphertext or tag bytes: the tag cannot match.
    for length in (OVERHEAD, len(envelope) - 1):
        with pytest.raises(AuthenticationFailed):
            opener.open(Kind.DATA_BLOB, envelope[:length])
    with pytest.raises(AuthenticationFailed):
        opener.open(Kind.DATA_BLOB, envelope + b"\0")


def test_header_layout_and_counter() -> None:
    session = bytes(range(100, 100 + SESSION_ID_SIZE))
    sealer = Sealer(KEY, session_id=session)
    envelopes = [sealer.seal(Kind.DATA_BLOB, b"x") for _ in range(3)]
    for counter, envelope in enumerate(envelopes):
        assert envelope[0] == 1 and envelope[1] == 1
        assert envelope[2:18] == session
        assert int.from_bytes(envelope[18:26], "big") == counter
    assert len(set(envelopes)) == 3  # same plaintext, fresh nonce each time


def test_counter_is_unique_across_threads() -> None:
    sealer = Sealer(KEY)
    seen: list[int] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(200):
            envelope = sealer.seal(Kind.DATA_BLOB, b"")
            with lock:
                seen.append(int.from_bytes(envelope[18:26], "big"))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(seen) == list(range(800))


def test_two_sealers_have_different_sessions() -> None:
    a = Sealer(KEY).seal(Kind.DATA_BLOB, b"")
    b = Sealer(KEY).seal(Kind.DATA_BLOB, b"")
    assert a[2:18] != b[2:18]
    opener = Opener(KEY)
    assert opener.open(Kind.DATA_BLOB, a) == opener.open(Kind.DATA_BLOB, b) == b""


def test_session_rolls_over_at_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aead, "MAX_MESSAGES_PER_SESSION", 2)
    sealer = Sealer(KEY, session_id=bytes(16))
    first = [sealer.seal(Kind.DATA_BLOB, b"m") for _ in range(3)]
    assert first[0][2:18] == first[1][2:18] == bytes(16)
    assert first[2][2:18] != bytes(16)
    assert int.from_bytes(first[2][18:26], "big") == 0
    opener = Opener(KEY)
    assert all(opener.open(Kind.DATA_BLOB, e) == b"m" for e in first)


def test_session_key_depends_on_both_inputs() -> None:
    base = session_key(KEY, bytes(16))
    assert len(base) == 32
    assert session_key(KEY, bytes(15) + b"\1") != base
    assert session_key(bytes(32), bytes(16)) != base
    assert session_key(KEY, bytes(16)) == base
