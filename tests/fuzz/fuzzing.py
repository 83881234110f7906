"""What every fuzz test in this folder shares: the contract check, the case count, and the
strategies that make hostile input.

The contract (issue 10): a decoder of anything read from the backend, given any byte string,
returns a value or raises an error of the `IntegrityError` family (or the `UnsupportedVersion`
/ `UnsafePath` it documents). It never raises anything else, never hangs, and never allocates
more than a small multiple of its input: a count field claiming 2**32 entries must not make
2**32 of anything. `decoded()` checks all three: the exception's class, and the peak of Python
allocations during the call (tracemalloc sees bytes, lists and numpy buffers made by C
extensions too); a hang is caught by pytest-timeout.

Input comes in four kinds, mixed by `hostile()`:

- plain random bytes;
- valid encodings (from the vectors and the encoders) with bytes flipped, set to boundary
  values, truncated, extended, cut and spliced (`mutated`), which reach past the first check;
- valid msgpack documents with values replaced by the wrong type, huge or negative integers,
  NaN, wrong-sized ids, deep nesting, keys removed or added (`msgpack_mutated`);
- msgpack headers claiming 2**32 - 1 elements or bytes, and nesting deeper than any decoder
  allows, alone or in place of one value of a valid document (`RAW_HOSTILE`).

The count of cases per decoder is the session fixture `fuzz_cases` (tests/conftest.py): 300 in
CI, 100,000 with `--nightly`, `--fuzz-cases N` for anything else.
"""

from __future__ import annotations

import copy
import os
import tracemalloc
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import msgpack
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from snapstore.errors import IntegrityError

T = TypeVar("T")

#: Every decoder may use this much on top of `ALLOWED_PER_BYTE` x its input (msgpack builds
#: a 64-byte dict from a 1-byte map header, so a linear bound needs a generous factor).
ALLOWED_BASE = 2 * 1024 * 1024
ALLOWED_PER_BYTE = 256


#: (test, cases asked for, cases run): tests/fuzz/conftest.py prints them after the run.
RUNS: list[tuple[str, int, int]] = []


def fuzz(cases: int, test: Callable[[], None]) -> None:
    """Runs a `@given` test for `cases` examples, with no deadline (the machine is shared),
    and records how many cases it ran (explicit examples and shrinking included)."""
    inner = test.hypothesis.inner_test  # type: ignore[attr-defined]
    ran = 0

    def counted(*args: Any, **kwargs: Any) -> None:
        nonlocal ran
        ran += 1
        inner(*args, **kwargs)

    test.hypothesis.inner_test = counted  # type: ignore[attr-defined]
    try:
        settings(
            max_examples=cases,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )(test)()
    finally:
        RUNS.append((os.environ.get("PYTEST_CURRENT_TEST", "?").split(" ")[0], cases, ran))


def decoded(
    decode: Callable[..., T],
    *args: Any,
    allowed: tuple[type[BaseException], ...] = (IntegrityError,),
    size: int | None = None,
    per_byte: int = ALLOWED_PER_BYTE,
) -> T | None:
    """`decode(*args)`, or None when it raised one of the `allowed` errors.

    Fails on any other exception and when the call's peak allocation exceeds
    ALLOWED_BASE + per_byte x `size` (default: the length of the first argument)."""
    if size is None:
        size = len(args[0])
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        try:
            result: T | None = decode(*args)
        except allowed:
            result = None
        except Exception as exc:
            raise AssertionError(
                f"{_name(decode)} raised {type(exc).__name__}: {exc} (not one of "
                f"{', '.join(a.__name__ for a in allowed)}) on {_show(args)}"
            ) from exc
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        if started:
            tracemalloc.stop()
    limit = ALLOWED_BASE + per_byte * size
    assert peak <= limit, (
        f"{_name(decode)} allocated {peak:,} bytes (limit {limit:,}) on {_show(args)}"
    )
    return result


def _name(decode: Callable[..., Any]) -> str:
    return getattr(decode, "__qualname__", repr(decode))


def _show(args: Sequence[Any]) -> str:
    text = ", ".join(repr(a) for a in args)
    return text if len(text) <= 400 else text[:400] + "..."


# -- byte-level mutations of valid encodings --------------------------------------------------

#: Values that sit on the edges of u8/u32/u64 fields and of msgpack's type bytes.
BOUNDARY_BYTES = [0x00, 0x01, 0x02, 0x7F, 0x80, 0x90, 0xC0, 0xC1, 0xC4, 0xDC, 0xDD, 0xDF, 0xFF]
BOUNDARY_INTS = [0, 1, 2, 31, 32, 33, 42, 46, 74, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF]
_boundary_byte = st.sampled_from(BOUNDARY_BYTES) | st.integers(0, 255)
_boundary_int = st.sampled_from(BOUNDARY_INTS)


@st.composite
def mutated(draw: st.DrawFn, seeds: Sequence[bytes], max_steps: int = 4) -> bytes:
    """One of `seeds` after 1 to `max_steps` byte-level edits (or another seed spliced in)."""
    data = bytearray(_pick(draw, seeds))
    for _ in range(draw(st.integers(1, max_steps))):
        data = _pick(draw, _OPS)(draw, data, seeds)
    return bytes(data)


def _pick(draw: st.DrawFn, items: Sequence[T]) -> T:
    """One of `items`: `st.sampled_from` without building a new strategy for every draw
    (validating one is most of a case's cost)."""
    return items[draw(st.integers(0, len(items) - 1))]


def _pos(draw: st.DrawFn, data: bytearray, end: bool = False) -> int:
    return draw(st.integers(0, len(data) if end else max(len(data) - 1, 0)))


def _flip(draw: st.DrawFn, data: bytearray, seeds: Sequence[bytes]) -> bytearray:
    if data:
        data[_pos(draw, data)] ^= 1 << draw(st.integers(0, 7))
    return data


def _set(draw: st.DrawFn, data: bytearray, seeds: Sequence[bytes]) -> bytearray:
    if data:
        data[_pos(draw, data)] = draw(_boundary_byte)
    return data


def _int(draw: st.DrawFn, data: bytearray, seeds: Sequence[bytes]) -> bytearray:
    """Overwrites 4 bytes with a boundary u32 (LE or BE): where the count and length fields are."""
    value = draw(_boundary_int) if draw(st.integers(0, 7)) else len(data)
    raw = value.to_bytes(4, "little" if draw(st.booleans()) else "big")
    at = _pos(draw, data, end=True)
    data[at : at + 4] = raw
    return data


def _truncate(draw: st.DrawFn, data: bytearray, seeds: Sequence[bytes]) -> bytearray:
    at = _pos(draw, data, end=True)
    return data[:at] if draw(st.booleans()) else data[at:]


def _extend(draw: st.DrawFn, data: bytearray, seeds: Sequence[bytes]) -> bytearray:
    at = _pos(draw, data, end=True)
    data[at:at] = draw(st.binary(min_size=1, max_size=64))
    return data


def _delete(draw: st.DrawFn, data: bytearray, seeds: Sequence[bytes]) -> bytearray:
    at = _pos(draw, data, end=True)
    del data[at : at + draw(st.integers(1, 64))]
    return data


def _repeat(draw: st.DrawFn, data: bytearray, seeds: Sequence[bytes]) -> bytearray:
    at = _pos(draw, data, end=True)
    piece = data[at : at + draw(st.integers(1, 64))]
    where = _pos(draw, data, end=True)
    data[where:where] = piece * draw(st.integers(1, 8))
    return data


def _splice(draw: st.DrawFn, data: bytearray, seeds: Sequence[bytes]) -> bytearray:
    other = _pick(draw, seeds)
    return data[: _pos(draw, data, end=True)] + other[draw(st.integers(0, len(other))) :]


_OPS = [_flip, _set, _int, _truncate, _extend, _delete, _repeat, _splice]


# -- structural mutations of msgpack documents ------------------------------------------------


def _nested_lists(depth: int) -> Any:
    value: Any = []
    for _ in range(depth):
        value = [value]
    return value


#: msgpack encodings that claim more than they hold, or nest deeper than anything allows.
RAW_HOSTILE = [
    b"\xdd\xff\xff\xff\xff",  # array32 of 2**32 - 1 elements
    b"\xdf\xff\xff\xff\xff",  # map32 of 2**32 - 1 pairs
    b"\xdb\xff\xff\xff\xff",  # str32 of 2**32 - 1 bytes
    b"\xc6\xff\xff\xff\xff",  # bin32 of 2**32 - 1 bytes
    b"\xc9\xff\xff\xff\xff\x05",  # ext32
    b"\xdc\xff\xff" + b"\xc0" * 8,  # array16 claiming 65535, holding 8
    b"\x91" * 5000 + b"\xc0",  # nesting 5000 deep
    b"\x81\xa1v" * 3000 + b"\x01",  # maps nesting 3000 deep
    b"\xc1",  # the one byte msgpack never uses
    b"\xd4\xff\x00",  # fixext1 of type -1 (the timestamp type) with a wrong length
    b"\xd6\xff\xff\xff\xff\xff",  # timestamp32 at 2**32 - 1 seconds
]

#: Ill-typed, out-of-range and wrong-sized values to put where a decoder expects something else.
NASTY_VALUES: list[Any] = [
    None, True, False, 0, 1, -1, -5, 2**31, 2**32, 2**40, 2**63 - 1, 2**64 - 1, -(2**63),
    0.0, -0.0, 1.5, 1e308, float("inf"), float("-inf"), float("nan"),
    "", "x", "\x00", "caf\u00e9 \U0001f418",
    "2026-12-07T10:00:00", "2026-12-07T10:00:00+00:00", "0001-01-01T00:00:00+23:59",
    "9999-12-31T23:59:59-23:59", "argon2id", "delta-v1", "file", "dir", "symlink",
    b"", b"\x00", b"..", b"a/b", bytes(12), bytes(16), bytes(31), bytes(32), bytes(33),
    bytes(46), bytes(47), [], [[]], {}, {"": None}, {1: 2}, [1, 2, 3, 4],
    msgpack.ExtType(5, b"x"), msgpack.Timestamp(0, 0),
]


def _raw_hostile(n: int) -> bytes:
    return RAW_HOSTILE[n]


raw_hostile = st.sampled_from(range(len(RAW_HOSTILE))).map(_raw_hostile)

def _containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)


#: Documents are changed in place: never hand out NASTY_VALUES' own lists and maps.
_nasty_constant = st.sampled_from(NASTY_VALUES).map(copy.deepcopy)
_leaf = st.one_of(
    _nasty_constant,
    st.integers(-(2**63), 2**64 - 1),
    st.text(max_size=12),
    st.binary(max_size=48),
    st.floats(),
)
_nasty = st.one_of(
    _nasty_constant,
    _leaf,
    st.recursive(_leaf, _containers, max_leaves=8),
    st.integers(100, 400).map(_nested_lists),  # deep, but within what msgpack can pack
)

#: A bin value no document holds: stands in for raw hostile bytes until after packing.
_MARK = b"\xfe\xed\xfa\xce snapstore fuzz"


@st.composite
def msgpack_mutated(draw: st.DrawFn, docs: Sequence[Any], max_steps: int = 3) -> bytes:
    """One of `docs` (Python values, as decoded) with 1 to `max_steps` changes, each at a
    place picked among all the values in it (so mostly deep inside): a value replaced by a
    nasty one, a key removed, renamed or added, a list element removed or repeated; or raw
    hostile bytes put in place of one value after packing."""
    doc = copy.deepcopy(_pick(draw, docs))
    raw: bytes | None = None
    for _ in range(draw(st.integers(1, max_steps))):
        path = _pick(draw, _paths(doc))
        if raw is None and draw(st.integers(0, 7)) == 0:
            raw = draw(raw_hostile)
            doc = _replace(doc, path, _MARK)
        elif not path or draw(st.integers(0, 2)):
            doc = _replace(doc, path, draw(_nasty))
        else:
            _restructure(draw, _at(doc, path[:-1]), path[-1])
    packed = msgpack.packb(doc, use_bin_type=True)
    if raw is not None:
        packed = packed.replace(msgpack.packb(_MARK, use_bin_type=True), raw, 1)
    return packed


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """The path (keys and indexes) of `value` and of everything inside it."""
    found = [prefix]
    if isinstance(value, dict):
        for key in sorted(value, key=repr):
            found += _paths(value[key], (*prefix, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found += _paths(item, (*prefix, i))
    return found


def _at(doc: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        doc = doc[step]
    return doc


def _replace(doc: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    _at(doc, path[:-1])[path[-1]] = new
    return doc


_new_key = st.text(max_size=8) | st.sampled_from([0, b"v", None])


def _restructure(draw: st.DrawFn, parent: Any, key: Any) -> None:
    """Removes `parent[key]`, renames it, adds a sibling, or repeats it."""
    actions = ["drop", "rename", "add"] if isinstance(parent, dict) else ["drop", "repeat"]
    action = _pick(draw, actions)
    if action == "drop":
        del parent[key]
    elif action == "rename":  # the same name as bytes, an int, or a near miss
        new_key = _pick(draw, [key.encode() if isinstance(key, str) else repr(key), 0, f"{key!s}_"])
        parent[new_key] = parent.pop(key)
    elif action == "add":
        parent[draw(_new_key)] = draw(_nasty)
    else:
        parent[key + 1 : key + 1] = [parent[key]] * draw(st.integers(1, 40))  # the same object


def hostile(seeds: Sequence[bytes], docs: Sequence[Any] = ()) -> st.SearchStrategy[bytes]:
    """Every kind of input at once: random bytes, mutated seeds, mutated documents, raw
    msgpack headers that claim too much (the last two only when `docs` are given)."""
    kinds = [st.binary(max_size=512), mutated(seeds)]
    if docs:
        kinds += [msgpack_mutated(docs), msgpack_mutated(docs), raw_hostile]
    return st.one_of(kinds)


class Seeds(list[Any]):
    """Valid encodings (or documents) with a short name, so hypothesis's reports stay readable."""

    def __init__(self, name: str, values: Sequence[Any]) -> None:
        super().__init__(values)
        self.name = name

    def __repr__(self) -> str:
        return f"<{len(self)} {self.name}>"


def documents(seeds: Seeds) -> Seeds:
    """The seeds decoded as msgpack, as the structural mutations start from them."""
    return Seeds(
        f"{seeds.name} documents",
        [msgpack.unpackb(s, raw=False, strict_map_key=False) for s in seeds],
    )


def with_field(seed: bytes, path: Sequence[Any], value: Any) -> bytes:
    """`seed` (a msgpack document) with the value at `path` replaced: a regression example."""
    doc = msgpack.unpackb(seed, raw=False, strict_map_key=False)
    _at(doc, tuple(path[:-1]))[path[-1]] = value
    return msgpack.packb(doc, use_bin_type=True)
