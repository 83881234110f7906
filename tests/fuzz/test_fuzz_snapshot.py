"""Fuzzing the snapshot codec: any plaintext of a `snapshots/` object decodes to a
well-typed Snapshot (what listings, retention and restore then rely on) or raises a clean
error."""

from __future__ import annotations

from hypothesis import example, given

from snapstore.errors import IntegrityError, UnsupportedVersion
from snapstore.snapshot.manifest import decode_snapshot
from tests.fuzz.fuzzing import decoded, documents, fuzz, hostile, with_field
from tests.fuzz.seeds import SNAPSHOTS
from tests.fuzz.wellformed import check_snapshot

SNAPSHOT_ERRORS = (IntegrityError, UnsupportedVersion)


SNAPSHOT = SNAPSHOTS[2]


def test_snapshot_decoder(fuzz_cases: int) -> None:
    @given(hostile(SNAPSHOTS, documents(SNAPSHOTS)))
    # Found by this test: fields of the wrong type were accepted, for `snapshots` and
    # `forget` to fail on later (",".join of a tag that is an int, a path that is None).
    @example(with_field(SNAPSHOT, ["tags"], [1]))
    @example(with_field(SNAPSHOT, ["paths"], "/etc"))
    @example(with_field(SNAPSHOT, ["host"], None))
    @example(with_field(SNAPSHOT, ["program_version"], None))
    @example(with_field(SNAPSHOT, ["summary", "files"], "3"))
    def case(plaintext: bytes) -> None:
        snap = decoded(decode_snapshot, plaintext, allowed=SNAPSHOT_ERRORS)
        if snap is not None:
            check_snapshot(snap)

    fuzz(fuzz_cases, case)
