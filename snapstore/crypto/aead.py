"""The authenticated envelope around every stored object and blob.

Layout (SPEC.md section 6):

    0   1   envelope version (1)
    1   1   suite (1 = AES-256-GCM with a session key)
    2   16  session id
    18  8   message counter, big-endian; the GCM nonce is 4 zero bytes + these 8
    26  n   ciphertext
    26+n 16 GCM tag

The associated data is the 26 header bytes followed by one byte naming the object kind, so a
tree cannot be passed off as a data blob, nor an index as a snapshot. A writer makes a fresh
random session id whenever it starts and after 2**32 messages; the session key is
BLAKE3-derive-key(encryption key || session id). Nonces are therefore never reused.
"""

from __future__ import annotations

import enum
import os
import threading

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from snapstore.crypto.idhash import derive_key
from snapstore.errors import AuthenticationFailed, Truncated

ENVELOPE_VERSION = 1
SUITE_AES256GCM_SESSION = 1
HEADER_SIZE = 26
TAG_SIZE = 16
OVERHEAD = HEADER_SIZE + TAG_SIZE
SESSION_ID_SIZE = 16
#: Messages per session key before a new session starts (well inside GCM's limits).
MAX_MESSAGES_PER_SESSION = 1 << 32
SESSION_KEY_CONTEXT = "snapstore 2026-11-22 session key v1"


class Kind(enum.IntEnum):
    """Domain separation for the associated data: what the plaintext is."""

    DATA_BLOB = 1
    TREE_BLOB = 2
    PACK_HEADER = 3
    INDEX = 4
    SNAPSHOT = 5
    CONFIG = 6
    LOCK = 7


def session_key(encryption_key: bytes, session_id: bytes) -> bytes:
    return derive_key(SESSION_KEY_CONTEXT, encryption_key + session_id)


class Sealer:
    """Encrypts with counter nonces under one session key at a time; thread-safe."""

    def __init__(self, encryption_key: bytes, *, session_id: bytes | None = None) -> None:
        self._encryption_key = encryption_key
        self._lock = threading.Lock()
        self._start_session(session_id or os.urandom(SESSION_ID_SIZE))

    def _start_session(self, session_id: bytes) -> None:
        self._session_id = session_id
        self._aead = AESGCM(session_key(self._encryption_key, session_id))
        self._counter = 0

    def seal(self, kind: Kind, plaintext: bytes | bytearray | memoryview) -> bytes:
        with self._lock:
            if self._counter >= MAX_MESSAGES_PER_SESSION:
                self._start_session(os.urandom(SESSION_ID_SIZE))
            counter = self._counter
            self._counter += 1
            aead, session_id = self._aead, self._session_id
        header = (
            bytes((ENVELOPE_VERSION, SUITE_AES256GCM_SESSION))
            + session_id
            + counter.to_bytes(8, "big")
        )
        nonce = b"\0\0\0\0" + header[18:26]
        return header + aead.encrypt(nonce, bytes(plaintext), header + bytes((kind,)))


class Opener:
    """Decrypts envelopes from any session; caches session keys."""

    def __init__(self, encryption_key: bytes) -> None:
        self._encryption_key = encryption_key
        self._cache: dict[bytes, AESGCM] = {}
        self._lock = threading.Lock()

    def _aead(self, session_id: bytes) -> AESGCM:
        with self._lock:
            aead = self._cache.get(session_id)
            if aead is None:
                if len(self._cache) > 4096:
                    self._cache.clear()
                aead = AESGCM(session_key(self._encryption_key, session_id))
                self._cache[session_id] = aead
            return aead

    def open(self, kind: Kind, envelope: bytes | bytearray | memoryview) -> bytes:
        view = memoryview(envelope)  # a slice of a larger read: no copy of the ciphertext
        if len(view) < OVERHEAD:
            raise Truncated(f"envelope of {len(view)} bytes is shorter than its framing")
        if view[0] != ENVELOPE_VERSION or view[1] != SUITE_AES256GCM_SESSION:
            # The config gates the format version, so inside a version-1 repository an
            # unknown envelope header is damage, not a newer writer.
            raise AuthenticationFailed(
                f"envelope header is damaged (version {view[0]}, suite {view[1]})"
            )
        header = bytes(view[:HEADER_SIZE])
        nonce = b"\0\0\0\0" + header[18:26]
        try:
            return self._aead(header[2:18]).decrypt(
                nonce, view[HEADER_SIZE:], header + bytes((kind,))
            )
        except InvalidTag:
            raise AuthenticationFailed("ciphertext failed authentication") from None
