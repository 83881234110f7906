"""Fixed chunker vectors (tests/vectors/chunker.json), cited by SPEC.md "Chunker".

The file pins the gear derivation and the cut points for each profile. Both
the C chunker and the pure-Python reference must reproduce it. Regenerate it
only for a deliberate format change, together with SPEC.md:

    python tests/vectors/test_chunker_vectors.py
"""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path
from typing import Any

import blake3
import pytest

HERE = Path(__file__).resolve().parent
if __name__ == "__main__":  # run as a script: make snapstore and chunker_reference importable
    sys.path[:0] = [str(HERE.parents[1]), str(HERE.parent)]

from chunker_reference import GEAR_CONTEXT, reference_gear, reference_lengths

from snapstore.chunker import DATABASE, FILES, Chunker, ChunkerParams, gear_table

VECTORS = HERE / "chunker.json"
SEED = bytes(range(32))
XOF_INPUT = b"snapstore chunker test vectors"
SMALL = ChunkerParams(64, 256, 1024, 2)

# name, params, data kind, data length
CASES: list[tuple[str, ChunkerParams, str, int]] = [
    ("files", FILES, "xof", 8 << 20),
    ("database", DATABASE, "xof", 8 << 20),
    ("small", SMALL, "xof", 64 << 10),
    ("small-normalization-0", ChunkerParams(64, 256, 1024, 0), "xof", 64 << 10),
    ("small-zeros", SMALL, "zeros", 16 << 10),
]


def case_data(kind: str, length: int) -> bytes:
    if kind == "xof":
        return blake3.blake3(XOF_INPUT).digest(length=length)
    if kind == "zeros":
        return bytes(length)
    raise ValueError(f"unknown data kind {kind!r}")


def c_lengths(params: ChunkerParams, data: bytes) -> list[int]:
    return [len(chunk) for chunk in Chunker(params, SEED).split(data)]


def ref_lengths(params: ChunkerParams, data: bytes) -> list[int]:
    p = params
    return reference_lengths(data, SEED, p.min_size, p.avg_size, p.max_size, p.normalization)


def generate() -> dict[str, Any]:
    """Build the vectors, refusing unless the C core and the reference agree."""
    table = gear_table(SEED)
    assert list(struct.unpack("<256Q", table)) == reference_gear(SEED)
    cases = []
    for name, params, kind, length in CASES:
        data = case_data(kind, length)
        lengths = c_lengths(params, data)
        assert lengths == ref_lengths(params, data), name
        cases.append(
            {
                "name": name,
                "params": {
                    "min_size": params.min_size,
                    "avg_size": params.avg_size,
                    "max_size": params.max_size,
                    "normalization": params.normalization,
                },
                "data": {"kind": kind, "length": length, "blake3": blake3.blake3(data).hexdigest()},
                "chunk_count": len(lengths),
                "chunk_lengths": lengths,
            }
        )
    return {
        "about": (
            "Chunker test vectors, see SPEC.md 'Chunker'. The gear table is "
            "BLAKE3 derive_key(context=gear_context, key_material=seed) with 2048 bytes "
            "of output, read as 256 little-endian u64; gear_first4 are gear[0..3] as "
            "16-digit hex numbers. Data of kind 'xof' is the first `length` bytes of the "
            "extended output of unkeyed BLAKE3(xof_input); kind 'zeros' is `length` zero "
            "bytes. data.blake3 is the plain BLAKE3-256 of the data, to check it was "
            "generated right."
        ),
        "seed_hex": SEED.hex(),
        "gear_context": GEAR_CONTEXT,
        "gear_first4": [f"{v:016x}" for v in struct.unpack_from("<4Q", table)],
        "gear_table_blake3": blake3.blake3(table).hexdigest(),
        "xof_input": XOF_INPUT.decode("ascii"),
        "cases": cases,
    }


@pytest.fixture(scope="module")
def vectors() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(VECTORS.read_text())
    return loaded


def test_gear_table(vectors: dict[str, Any]) -> None:
    seed = bytes.fromhex(vectors["seed_hex"])
    assert vectors["gear_context"] == GEAR_CONTEXT
    table = gear_table(seed)
    assert [f"{v:016x}" for v in struct.unpack_from("<4Q", table)] == vectors["gear_first4"]
    assert blake3.blake3(table).hexdigest() == vectors["gear_table_blake3"]
    assert [f"{v:016x}" for v in reference_gear(seed)[:4]] == vectors["gear_first4"]


def test_cases_cover_the_profiles(vectors: dict[str, Any]) -> None:
    names = {case["name"] for case in vectors["cases"]}
    assert {"files", "database"} <= names


@pytest.mark.parametrize("name", [case[0] for case in CASES])
def test_chunk_lengths(vectors: dict[str, Any], name: str) -> None:
    (case,) = [c for c in vectors["cases"] if c["name"] == name]
    assert bytes.fromhex(vectors["seed_hex"]) == SEED
    assert vectors["xof_input"].encode("ascii") == XOF_INPUT
    params = ChunkerParams(**case["params"])
    data = case_data(case["data"]["kind"], case["data"]["length"])
    assert blake3.blake3(data).hexdigest() == case["data"]["blake3"]
    expected = case["chunk_lengths"]
    assert sum(expected) == len(data) and len(expected) == case["chunk_count"]
    assert c_lengths(params, data) == expected
    assert ref_lengths(params, data) == expected


if __name__ == "__main__":
    VECTORS.write_text(json.dumps(generate(), indent=1) + "\n")
    print(f"wrote {VECTORS}")
