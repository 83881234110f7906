"""The master key and the key files that wrap it under a password.

A key file is the only object on the backend that is not inside an envelope: its KDF header
must be readable before any key is known. Layout (msgpack map, SPEC.md section 4):

    {"v": 1, "kdf": "argon2id", "time_cost": int, "memory_kib": int, "lanes": int,
     "salt": bin(16), "created": str, "host": str, "user": str,
     "nonce": bin(12), "wrapped": bin}

`wrapped` is AES-256-GCM(key = Argon2id(password, salt), nonce, associated data
b"snapstore key file v1") of the msgpack map {"encryption": bin(32), "id": bin(32),
"chunker_seed": bin(32)}. The nonce is random; each wrapping key is used once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import msgpack
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from snapstore.crypto.kdf import KdfParams, derive_wrapping_key
from snapstore.errors import IntegrityError, UnsupportedVersion, WrongPassword

KEY_FILE_VERSION = 1
KEY_FILE_AAD = b"snapstore key file v1"
SALT_SIZE = 16


@dataclass(frozen=True)
class MasterKey:
    encryption: bytes
    id_key: bytes
    chunker_seed: bytes

    @classmethod
    def generate(cls) -> MasterKey:
        return cls(os.urandom(32), os.urandom(32), os.urandom(32))

    def __repr__(self) -> str:
        return "MasterKey(<secret>)"


@dataclass(frozen=True)
class KeyFileInfo:
    created: str
    host: str
    user: str


def wrap_master_key(
    master: MasterKey, password: bytes, params: KdfParams, info: KeyFileInfo
) -> bytes:
    salt = os.urandom(SALT_SIZE)
    nonce = os.urandom(12)
    secret = msgpack.packb(
        {"encryption": master.encryption, "id": master.id_key, "chunker_seed": master.chunker_seed}
    )
    wrapped = AESGCM(derive_wrapping_key(password, salt, params)).encrypt(
        nonce, secret, KEY_FILE_AAD
    )
    return msgpack.packb(
        {
            "v": KEY_FILE_VERSION,
            "kdf": "argon2id",
            "time_cost": params.time_cost,
            "memory_kib": params.memory_kib,
            "lanes": params.lanes,
            "salt": salt,
            "created": info.created,
            "host": info.host,
            "user": info.user,
            "nonce": nonce,
            "wrapped": wrapped,
        }
    )


def _parse_key_file(blob: bytes) -> dict[str, object]:
    try:
        doc = msgpack.unpackb(blob, raw=False)
    except Exception as exc:
        raise IntegrityError(f"key file is not readable: {exc}") from None
    if not isinstance(doc, dict):
        raise IntegrityError("key file is not a map")
    if doc.get("v") != KEY_FILE_VERSION or doc.get("kdf") != "argon2id":
        raise UnsupportedVersion(f"key file version {doc.get('v')!r} is not supported")
    return doc


def unwrap_master_key(blob: bytes, password: bytes) -> MasterKey:
    """Opens one key file; raises WrongPassword if the password does not fit it."""
    doc = _parse_key_file(blob)
    try:
        params = KdfParams(
            time_cost=int(doc["time_cost"]),  # type: ignore[call-overload]
            memory_kib=int(doc["memory_kib"]),  # type: ignore[call-overload]
            lanes=int(doc["lanes"]),  # type: ignore[call-overload]
        )
        salt, nonce, wrapped = doc["salt"], doc["nonce"], doc["wrapped"]
        assert isinstance(salt, bytes) and isinstance(nonce, bytes) and isinstance(wrapped, bytes)
    except (KeyError, TypeError, ValueError, AssertionError):
        raise IntegrityError("key file is missing fields") from None
    try:
        secret = AESGCM(derive_wrapping_key(password, salt, params)).decrypt(
            nonce, wrapped, KEY_FILE_AAD
        )
    except InvalidTag:
        raise WrongPassword("wrong password or no key file for it") from None
    fields = msgpack.unpackb(secret, raw=False)
    return MasterKey(fields["encryption"], fields["id"], fields["chunker_seed"])


def key_file_info(blob: bytes) -> KeyFileInfo:
    doc = _parse_key_file(blob)
    return KeyFileInfo(str(doc.get("created", "")), str(doc.get("host", "")), str(doc.get("user", "")))
