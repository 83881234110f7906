"""KDF bounds: a key file that asks more than `init` would ever write is refused before any
key is derived (issue 10, item 4); no key file is written for an empty password (item 9)."""

from __future__ import annotations

import pytest

from snapstore.crypto import keys
from snapstore.crypto.kdf import DEFAULT_KDF, TEST_KDF, KdfParams
from snapstore.crypto.keys import KeyFileInfo, MasterKey, unwrap_master_key, wrap_master_key
from snapstore.errors import IntegrityError, UsageError, WrongPassword
from tests.support.key_files import AT_THE_BOUND, HOSTILE, forged_key_file

MASTER = MasterKey(bytes(32), bytes(32), bytes(32))
INFO = KeyFileInfo("", "", "")

REFUSED = [
    HOSTILE,
    {"time_cost": 1, "memory_kib": 8 * 1024 * 1024, "lanes": 4},  # memory alone
    {"time_cost": 10_000_000, "memory_kib": 64, "lanes": 1},  # passes alone
    {"time_cost": 2, "memory_kib": 256 * 1024, "lanes": 4},  # memory allowed, cost not
    {"time_cost": 7, "memory_kib": 64 * 1024, "lanes": 4},  # passes a little over
    {"time_cost": 3, "memory_kib": 64 * 1024, "lanes": 1000},
]
ACCEPTED = [
    {"time_cost": p.time_cost, "memory_kib": p.memory_kib, "lanes": p.lanes}
    for p in (DEFAULT_KDF, TEST_KDF)
] + [
    AT_THE_BOUND,
    {"time_cost": 6, "memory_kib": 64 * 1024, "lanes": 4},
    {"time_cost": 1, "memory_kib": 256 * 1024, "lanes": 16},
]


class Derived(Exception):
    pass


def never_derive(password: bytes, salt: bytes, params: KdfParams) -> bytes:
    raise Derived(params)


def test_out_of_bounds_key_files_are_refused_before_any_derivation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(keys, "derive_wrapping_key", never_derive)
    for params in REFUSED:
        with pytest.raises(IntegrityError, match="over the bound"):
            unwrap_master_key(forged_key_file(**params), b"password")
    for params in ACCEPTED:  # these are derived (and then the forged wrapping fails)
        with pytest.raises(Derived):
            unwrap_master_key(forged_key_file(**params), b"password")


def test_the_refusal_names_the_key_file() -> None:
    with pytest.raises(IntegrityError) as caught:
        keys.read_key_file(forged_key_file(**HOSTILE), "0123abcd")
    assert str(caught.value) == (
        "key file 0123abcd: Argon2id memory 8388608 KiB is over the bound of 262144 KiB"
    )


def test_no_key_file_for_an_empty_password_or_out_of_bounds_parameters(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(keys, "derive_wrapping_key", never_derive)
    with pytest.raises(UsageError, match="empty password"):
        wrap_master_key(MASTER, b"", TEST_KDF, INFO)
    with pytest.raises(UsageError, match="over the bound"):
        wrap_master_key(MASTER, b"password", KdfParams(time_cost=16), INFO)


def test_a_key_file_past_the_size_bound_is_refused() -> None:
    blob = wrap_master_key(MASTER, b"password", TEST_KDF, INFO)
    assert unwrap_master_key(blob, b"password") == MASTER
    with pytest.raises(IntegrityError, match="more than any key file"):
        unwrap_master_key(blob + bytes(keys.MAX_KEY_FILE_SIZE), b"password")
    with pytest.raises(WrongPassword):
        unwrap_master_key(blob, b"other")
