"""Fuzzing the envelope (Opener.open) and every encrypted object's whole read path: the
bytes of `config`, an index file, a snapshot or a lock as the backend returns them are
opened, decompressed and decoded, and give a value or a clean error.

Only the key's holder can make an envelope that opens, so mutated envelopes test the
framing and the tag check; envelopes sealed around mutated frames and plaintexts (with the
vectors' key) test everything behind it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from snapstore import compression
from snapstore.crypto.aead import Kind
from snapstore.errors import IntegrityError, UnsupportedVersion
from snapstore.index.codec import decode_index
from snapstore.repository.config import RepositoryConfig
from snapstore.repository.lock import LockInfo
from snapstore.snapshot.manifest import decode_snapshot
from tests.fuzz.fuzzing import Seeds, decoded, documents, fuzz, hostile, mutated
from tests.fuzz.seeds import CONFIGS, ENVELOPES, INDEX_FILES, LOCKS, OPENER, SNAPSHOTS, seal
from tests.fuzz.wellformed import check_config, check_index, check_lock, check_snapshot

ENVELOPE_SET = set(ENVELOPES)


def test_envelope_opener(fuzz_cases: int) -> None:
    @given(st.sampled_from(Kind), hostile(ENVELOPES))
    def case(kind: Kind, envelope: bytes) -> None:
        for value in (envelope, bytearray(envelope), memoryview(b"\x00" + envelope)[1:]):
            if decoded(OPENER.open, kind, value, size=len(envelope)) is not None:
                assert envelope in ENVELOPE_SET  # nothing else opens: a forgery otherwise

    fuzz(fuzz_cases, case)


Decoder = Callable[[bytes], Any]
OBJECTS: list[tuple[Kind, Seeds, Decoder, Callable[[Any], None]]] = [
    (Kind.CONFIG, CONFIGS, RepositoryConfig.decode, check_config),
    (Kind.INDEX, INDEX_FILES, decode_index, check_index),
    (Kind.SNAPSHOT, SNAPSHOTS, decode_snapshot, check_snapshot),
    (Kind.LOCK, LOCKS, LockInfo.decode, check_lock),
]


PLAINTEXTS = [hostile(seeds, documents(seeds)) for _, seeds, _, _ in OBJECTS]


def load(kind: Kind, decode: Decoder, stored: bytes) -> Any:
    """What Repository.load_object and a decoder do with an object's bytes."""
    return decode(compression.decompress(OPENER.open(kind, stored)))


@st.composite
def stored_objects(draw: st.DrawFn) -> tuple[int, bytes]:
    which = draw(st.sampled_from(range(len(OBJECTS))))
    kind = OBJECTS[which][0]
    plaintext = draw(PLAINTEXTS[which])
    frames = Seeds("frames", [compression.compress(plaintext), compression.compress(plaintext, 0)])
    frame = draw(st.sampled_from(frames) | mutated(frames))
    stored = seal(kind, frame)
    if draw(st.integers(0, 3)) == 0:
        stored = draw(mutated([stored]))
    return which, stored


def test_stored_objects(fuzz_cases: int) -> None:
    @given(stored_objects())
    def case(stored: tuple[int, bytes]) -> None:
        which, data = stored
        kind, _, decode, check = OBJECTS[which]
        errors = (IntegrityError, UnsupportedVersion)
        value = decoded(load, kind, decode, data, allowed=errors, size=len(data))
        if value is not None:
            check(value)

    fuzz(fuzz_cases, case)
