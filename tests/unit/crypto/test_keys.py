"""Key files: the master key wrapped under a password, and what tampering does to them."""

from __future__ import annotations

import msgpack
import pytest

from snapstore.crypto.kdf import TEST_KDF, KdfParams, derive_wrapping_key
from snapstore.crypto.keys import (
    KeyFileInfo,
    MasterKey,
    key_file_info,
    unwrap_master_key,
    wrap_master_key,
)
from snapstore.errors import IntegrityError, SnapstoreError, UnsupportedVersion, WrongPassword

PASSWORD = b"hunter2"
INFO = KeyFileInfo("2026-01-02T03:04:05+00:00", "backup-host", "mastodon")
MASTER = MasterKey(bytes(range(32)), bytes(range(32, 64)), bytes(range(64, 96)))


@pytest.fixture(scope="module")
def key_file() -> bytes:
    return wrap_master_key(MASTER, PASSWORD, TEST_KDF, INFO)


def test_wrap_unwrap_round_trip(key_file: bytes) -> None:
    assert unwrap_master_key(key_file, PASSWORD) == MASTER
    assert key_file_info(key_file) == INFO


def test_key_file_holds_no_secret_in_clear(key_file: bytes) -> None:
    for secret in (MASTER.encryption, MASTER.id_key, MASTER.chunker_seed, PASSWORD):
        assert secret not in key_file


def test_each_wrap_uses_fresh_salt_and_nonce() -> None:
    a = msgpack.unpackb(wrap_master_key(MASTER, PASSWORD, TEST_KDF, INFO))
    b = msgpack.unpackb(wrap_master_key(MASTER, PASSWORD, TEST_KDF, INFO))
    assert a["salt"] != b["salt"] and a["nonce"] != b["nonce"]
    assert len(a["salt"]) == 16 and len(a["nonce"]) == 12


def test_kdf_parameters_are_recorded(key_file: bytes) -> None:
    doc = msgpack.unpackb(key_file)
    assert (doc["time_cost"], doc["memory_kib"], doc["lanes"]) == (1, 64, 1)
    assert doc["v"] == 1 and doc["kdf"] == "argon2id"


def test_wrong_password(key_file: bytes) -> None:
    for wrong in (b"", b"hunter3", PASSWORD + b" ", PASSWORD.upper()):
        with pytest.raises(WrongPassword):
            unwrap_master_key(key_file, wrong)


def test_master_key_repr_hides_secrets() -> None:
    assert MASTER.encryption.hex() not in repr(MASTER)
    assert "secret" in repr(MASTER)


def test_generated_master_keys_differ() -> None:
    a, b = MasterKey.generate(), MasterKey.generate()
    assert (
        a.encryption != b.encryption and a.id_key != b.id_key and a.chunker_seed != b.chunker_seed
    )
    assert len(a.encryption) == len(a.id_key) == len(a.chunker_seed) == 32


def _rewrite(key_file: bytes, **changes: object) -> bytes:
    doc = msgpack.unpackb(key_file)
    doc.update(changes)
    return msgpack.packb(doc)


@pytest.mark.parametrize("field", ["salt", "nonce", "wrapped"])
def test_tampered_secret_fields_fail(key_file: bytes, field: str) -> None:
    doc = msgpack.unpackb(key_file)
    value = bytearray(doc[field])
    for position in range(len(value)):
        value[position] ^= 0x01
        with pytest.raises(WrongPassword):
            unwrap_master_key(_rewrite(key_file, **{field: bytes(value)}), PASSWORD)
        value[position] ^= 0x01


@pytest.mark.parametrize(
    "changes",
    [{"time_cost": 2}, {"memory_kib": 128}, {"lanes": 2}],
)
def test_changed_kdf_parameters_fail(key_file: bytes, changes: dict[str, int]) -> None:
    with pytest.raises(WrongPassword):
        unwrap_master_key(_rewrite(key_file, **changes), PASSWORD)


@pytest.mark.parametrize(
    "changes",
    [{"time_cost": 0}, {"lanes": 0}, {"memory_kib": 1}, {"v": 2}, {"kdf": "scrypt"}],
)
def test_unusable_or_newer_key_files(key_file: bytes, changes: dict[str, object]) -> None:
    with pytest.raises(UnsupportedVersion):
        unwrap_master_key(_rewrite(key_file, **changes), PASSWORD)


@pytest.mark.parametrize(
    "blob",
    [b"", b"\xc1", msgpack.packb([1, 2, 3]), msgpack.packb({"v": 1, "kdf": "argon2id"})],
)
def test_malformed_key_files(blob: bytes) -> None:
    with pytest.raises(IntegrityError):
        unwrap_master_key(blob, PASSWORD)


def test_missing_or_mistyped_fields(key_file: bytes) -> None:
    for changes in ({"salt": "text"}, {"nonce": None}, {"time_cost": "x"}):
        with pytest.raises(IntegrityError):
            unwrap_master_key(_rewrite(key_file, **changes), PASSWORD)


def test_no_bit_flip_yields_a_different_key(key_file: bytes) -> None:
    """Any single flipped bit either fails or (in the unauthenticated labels) changes nothing."""
    for position in range(len(key_file)):
        for bit in (0x01, 0x40):
            damaged = bytearray(key_file)
            damaged[position] ^= bit
            try:
                opened = unwrap_master_key(bytes(damaged), PASSWORD)
            except SnapstoreError:
                continue
            assert opened == MASTER, f"flip at byte {position} opened a different key"


def test_wrapping_key_depends_on_every_input() -> None:
    salt = bytes(16)
    base = derive_wrapping_key(PASSWORD, salt, TEST_KDF)
    assert len(base) == 32
    assert derive_wrapping_key(PASSWORD, salt, TEST_KDF) == base
    assert derive_wrapping_key(PASSWORD + b"!", salt, TEST_KDF) != base
    assert derive_wrapping_key(PASSWORD, b"\1" + salt[1:], TEST_KDF) != base
    assert derive_wrapping_key(PASSWORD, salt, KdfParams(2, 64, 1)) != base
