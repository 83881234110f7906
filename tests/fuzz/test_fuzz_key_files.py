"""Fuzzing key files (SPEC.md section 4), the one object outside an envelope: any bytes
under `keys/` are refused with an IntegrityError or UnsupportedVersion, never derive a key
past the KDF bounds, and never make opening the repository fail with anything but "wrong
password". The wrapped secret's plaintext is fuzzed too, sealed under a known password."""

from __future__ import annotations

import msgpack
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import example, given

from snapstore.crypto.kdf import MAX_COST, MAX_LANES, MAX_MEMORY_KIB, TEST_KDF, derive_wrapping_key
from snapstore.crypto.keys import (
    KEY_FILE_AAD,
    KeyFile,
    KeyRing,
    key_file_info,
    read_key_file,
)
from snapstore.errors import IntegrityError, UnsupportedVersion, WrongPassword
from tests.fuzz.fuzzing import Seeds, decoded, documents, fuzz, hostile, with_field
from tests.fuzz.seeds import KEY_FILES, MASTER, PASSWORD
from tests.fuzz.wellformed import check_master

KEY_FILE_ERRORS = (IntegrityError, UnsupportedVersion)
#: Key files at most this costly are also unwrapped (Argon2id of 1 MiB takes milliseconds).
CHEAP = 1024


KEY_FILE = KEY_FILES[1]


def test_key_file_reader(fuzz_cases: int) -> None:
    @given(hostile(KEY_FILES, documents(KEY_FILES)))
    # Found by this test: int() of an infinite KDF parameter raised OverflowError; a salt
    # under 8 bytes or a nonce outside 8..128 bytes made unwrapping (so opening the
    # repository, whichever key file the password fits) raise ValueError.
    @example(with_field(KEY_FILE, ["time_cost"], float("inf")))
    @example(with_field(KEY_FILE, ["memory_kib"], float("-inf")))
    @example(with_field(KEY_FILE, ["salt"], b"short"))
    @example(with_field(KEY_FILE, ["nonce"], b""))
    @example(with_field(KEY_FILE, ["nonce"], bytes(129)))
    def case(blob: bytes) -> None:
        key_file = decoded(read_key_file, blob, "fuzzed", allowed=KEY_FILE_ERRORS)
        decoded(key_file_info, blob, allowed=KEY_FILE_ERRORS)
        ring = KeyRing()
        ring.add("fuzzed", len(blob), lambda: blob)
        if key_file is None:
            assert ring.refused and not ring.key_files
            return
        params = key_file.params
        assert params.memory_kib <= MAX_MEMORY_KIB and params.cost <= MAX_COST
        assert params.lanes <= MAX_LANES
        assert all(type(v) is bytes for v in (key_file.salt, key_file.nonce, key_file.wrapped))
        if params.cost <= CHEAP:
            errors = (WrongPassword, IntegrityError)
            master = decoded(key_file.unwrap, PASSWORD, allowed=errors, size=len(blob))
            if master is not None:
                check_master(master)
            for password in (PASSWORD, b"wrong"):
                opened = decoded(ring.unwrap, password, allowed=(WrongPassword,), size=len(blob))
                if opened is not None:
                    check_master(opened)

    fuzz(fuzz_cases, case)


SALT, NONCE = bytes(range(16)), bytes(range(12))
WRAPPING_KEY = derive_wrapping_key(PASSWORD, SALT, TEST_KDF)
SECRETS = Seeds(
    "wrapped secrets",
    [msgpack.packb(
        {"encryption": MASTER.encryption, "id": MASTER.id_key, "chunker_seed": MASTER.chunker_seed}
    )],
)


def test_wrapped_secret(fuzz_cases: int) -> None:
    """The msgpack map inside `wrapped`, as only the password's holder can write it."""

    @given(hostile(SECRETS, documents(SECRETS)))
    # Found by this test: keys of the wrong type or size were returned as a master key.
    @example(with_field(SECRETS[0], ["id"], None))
    @example(with_field(SECRETS[0], ["encryption"], bytes(31)))
    def case(secret: bytes) -> None:
        wrapped = AESGCM(WRAPPING_KEY).encrypt(NONCE, secret, KEY_FILE_AAD)
        key_file = KeyFile("fuzzed", TEST_KDF, SALT, NONCE, wrapped)
        master = decoded(key_file.unwrap, PASSWORD, size=len(secret))
        if master is not None:
            check_master(master)

    fuzz(fuzz_cases, case)
