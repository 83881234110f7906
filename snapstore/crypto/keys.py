"""The master key and the key files that wrap it under a password.

A key file is the only object on the backend that is not inside an envelope: its KDF header
must be readable before any key is known. Layout (msgpack map, SPEC.md section 4):

    {"v": 1, "kdf": "argon2id", "time_cost": int, "memory_kib": int, "lanes": int,
     "salt": bin(16), "created": str, "host": str, "user": str,
     "nonce": bin(12), "wrapped": bin}

`wrapped` is AES-256-GCM(key = Argon2id(password, salt), nonce, associated data
b"snapstore key file v1") of the msgpack map {"encryption": bin(32), "id": bin(32),
"chunker_seed": bin(32)}. The nonce is random; each wrapping key is used once.

A reader never derives a key for a key file that asks more of the KDF than the bounds in
kdf.py (see `KeyRing`): anyone who can write to the backend can add key files.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

import msgpack
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from snapstore.crypto.kdf import KdfParams, derive_wrapping_key, exceeded_bound
from snapstore.errors import IntegrityError, UnsupportedVersion, UsageError, WrongPassword

KEY_FILE_VERSION = 1
KEY_FILE_AAD = b"snapstore key file v1"
SALT_SIZE = 16
NONCE_SIZE = 12
TAG_SIZE = 16
#: A key file is a few hundred bytes; a larger one is refused without being read.
MAX_KEY_FILE_SIZE = 64 * 1024


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
    """A new key file for `password`; refuses an empty password (as restic does) and KDF
    parameters no reader would accept."""
    if not password:
        raise UsageError("an empty password is not allowed")
    too_much = exceeded_bound(params)
    if too_much is not None:
        raise UsageError(f"no reader would open this key file: {too_much}")
    salt = os.urandom(SALT_SIZE)
    nonce = os.urandom(NONCE_SIZE)
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


def _parse_key_file(blob: bytes, label: str = "key file") -> dict[str, object]:
    try:
        doc = msgpack.unpackb(blob, raw=False)
    except Exception as exc:
        raise IntegrityError(f"{label} is not readable: {exc}") from None
    if not isinstance(doc, dict):
        raise IntegrityError(f"{label} is not a map")
    if doc.get("v") != KEY_FILE_VERSION or doc.get("kdf") != "argon2id":
        raise UnsupportedVersion(f"{label}: version {doc.get('v')!r} is not supported")
    return doc


@dataclass(frozen=True)
class KeyFile:
    """A key file as read without the password: its KDF header and the wrapped secret."""

    name: str
    params: KdfParams
    salt: bytes
    nonce: bytes
    wrapped: bytes
    info: KeyFileInfo = KeyFileInfo("", "", "")

    def unwrap(self, password: bytes) -> MasterKey:
        """The master key; WrongPassword if the password does not fit this key file."""
        try:
            secret = AESGCM(derive_wrapping_key(password, self.salt, self.params)).decrypt(
                self.nonce, self.wrapped, KEY_FILE_AAD
            )
        except InvalidTag:
            raise WrongPassword("wrong password or no key file for it") from None
        try:
            fields = msgpack.unpackb(secret, raw=False)
            master = MasterKey(fields["encryption"], fields["id"], fields["chunker_seed"])
        except Exception:
            raise IntegrityError(f"key file {self.name}: the wrapped key is malformed") from None
        keys = (master.encryption, master.id_key, master.chunker_seed)
        if any(type(k) is not bytes or len(k) != 32 for k in keys):
            raise IntegrityError(f"key file {self.name}: the wrapped keys are not 32 bytes each")
        return master


def read_key_file(blob: bytes, name: str = "") -> KeyFile:
    """Parses a key file; refuses (IntegrityError naming it) one whose KDF parameters exceed
    the bounds in kdf.py, before any key is derived."""
    label = f"key file {name}" if name else "key file"
    if len(blob) > MAX_KEY_FILE_SIZE:
        raise IntegrityError(f"{label} is {len(blob)} bytes, more than any key file")
    doc = _parse_key_file(blob, label)
    try:
        time_cost, memory_kib, lanes = doc["time_cost"], doc["memory_kib"], doc["lanes"]
        salt, nonce, wrapped = doc["salt"], doc["nonce"], doc["wrapped"]
    except KeyError:
        raise IntegrityError(f"{label} is missing fields") from None
    # The types and sizes wrap_master_key writes: Argon2id and AES-GCM refuse a salt under 8
    # bytes or a nonce outside 8..128 with a ValueError, which must not reach the caller.
    if not (
        type(time_cost) is int and type(memory_kib) is int and type(lanes) is int
        and type(salt) is bytes and len(salt) == SALT_SIZE
        and type(nonce) is bytes and len(nonce) == NONCE_SIZE
        and type(wrapped) is bytes and len(wrapped) >= TAG_SIZE
    ):
        raise IntegrityError(f"{label} has fields of the wrong type or size")
    try:
        params = KdfParams(time_cost=time_cost, memory_kib=memory_kib, lanes=lanes)
    except UnsupportedVersion as exc:
        raise UnsupportedVersion(f"{label}: {exc}") from None
    too_much = exceeded_bound(params)
    if too_much is not None:
        raise IntegrityError(f"{label}: {too_much}")
    return KeyFile(name, params, salt, nonce, wrapped, _info(doc))


def unwrap_master_key(blob: bytes, password: bytes) -> MasterKey:
    """Opens one key file; raises WrongPassword if the password does not fit it."""
    return read_key_file(blob).unwrap(password)


@dataclass
class KeyRing:
    """A repository's key files, read without the password and tried cheapest first.

    The key file a password most likely opens is the one `init` wrote, with the default
    parameters; an added key file that asks more of the KDF than the others is tried after
    them, and one past the bounds in kdf.py never. Equal costs go in name order, so every
    reader tries the same key files in the same order.
    """

    key_files: list[KeyFile] = field(default_factory=list)
    #: One line for each key file refused: too large, damaged, or past the bounds.
    refused: list[str] = field(default_factory=list)

    def add(self, name: str, size: int, load: Callable[[], bytes]) -> None:
        """Reads one key file (`load` is called only when `size` is plausible)."""
        try:
            if size > MAX_KEY_FILE_SIZE:
                raise IntegrityError(f"key file {name} is {size} bytes, more than any key file")
            self.key_files.append(read_key_file(load(), name))
        except (IntegrityError, UnsupportedVersion) as exc:
            self.refused.append(str(exc))

    def unwrap(self, password: bytes) -> MasterKey:
        """The master key from the first key file the password opens, else WrongPassword
        naming the key files refused."""
        return self.open(password)[1]

    def open(self, password: bytes) -> tuple[str, MasterKey]:
        """As `unwrap`, with the name of the key file that opened."""
        for key_file in sorted(self.key_files, key=lambda k: (k.params.cost, k.name)):
            try:
                return key_file.name, key_file.unwrap(password)
            except WrongPassword:
                continue
            except IntegrityError as exc:
                self.refused.append(str(exc))
        note = f" (refused: {'; '.join(self.refused)})" if self.refused else ""
        raise WrongPassword(f"wrong password, or no key file opens with it{note}")


def key_file_info(blob: bytes) -> KeyFileInfo:
    doc = _parse_key_file(blob)
    return _info(doc)


def _info(doc: dict[str, object]) -> KeyFileInfo:
    return KeyFileInfo(str(doc.get("created", "")), str(doc.get("host", "")), str(doc.get("user", "")))
