"""Fuzzing the index file codec: any plaintext of an `index/` object decodes to packs of
well-formed entries (which the in-memory index then takes) or raises a clean error, and no
count or length in it allocates more than the bytes that back it."""

from __future__ import annotations

from hypothesis import given

from snapstore.errors import IntegrityError, UnsupportedVersion
from snapstore.index.codec import decode_index
from snapstore.index.index import BlobIndex
from tests.fuzz.fuzzing import decoded, documents, fuzz, hostile
from tests.fuzz.seeds import INDEX_FILES
from tests.fuzz.wellformed import check_index

INDEX_ERRORS = (IntegrityError, UnsupportedVersion)


def test_index_decoder(fuzz_cases: int) -> None:
    @given(hostile(INDEX_FILES, documents(INDEX_FILES)))
    def case(plaintext: bytes) -> None:
        index = decoded(decode_index, plaintext, allowed=INDEX_ERRORS)
        if index is not None:
            check_index(index)
            blobs = BlobIndex()  # what every reader then does with it
            for pack_id, entries in index.packs.items():
                blobs.add_pack(pack_id, entries)
            for entries in index.packs.values():
                for entry in entries:
                    assert blobs.lookup(entry.id) is not None

    fuzz(fuzz_cases, case)
