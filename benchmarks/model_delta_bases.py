"""A model of delta-base rules over nightly dumps: bytes per night against read depth (issue 16).

Not snapstore itself: a quick offline model to choose how delta bases should be picked before
the format changes. It cuts each night's dump (from `bench_month.py`'s fixtures) with the
database chunking profile, follows the new stream along the previous night's chunks as
`snapstore/archiver/parent.py` does (simplified: no re-alignment on kept deltas), and for
every new chunk tries the candidate bases each rule allows (zstd level 3 with the base as a
raw-content dictionary, kept below 0.8x of the plain frame, as the packer does). It prints,
per night and rule, the bytes of the frames stored (no envelopes, headers or index) and the
mean and maximum chain depth of the night's chunks: reading a chunk costs depth + 1 decodes.

Rules:
- `depth1`: today's snapstore (SPEC section 6): a base is always whole, so every delta is taken
  against the chunk's first whole version, however old;
- `linear`: against yesterday's version whatever its depth (the lower bound on bytes; reads
  grow one decode a night);
- `capped-D`: linear while yesterday's version is shallower than D, else its deepest ancestor
  that is;
- `skip`: skip-deltas (as Subversion's): version g of a chunk is taken against version
  g & (g - 1) of its chain, so depth is at most log2(g) + 1; a whole chunk starts its chain at
  a generation drawn from its id (0..7) so the long spans fall on different nights.

    python benchmarks/model_delta_bases.py --fixtures DIR --nights 30 --cap 4

About 30 s a night at scale 0.2 on 2 cores. Figures on 2026-12-07 (scale 0.2, nights 2-13,
MB of frames): depth1 2.0 -> 7.6, linear 2.0 -> 2.8 (depth 8.7 on night 13), capped-4
2.0 -> 6.3, skip 2.0 -> 3.8 (mean depth 2.2, max 5).
"""

from __future__ import annotations

import argparse
import bisect
import hashlib
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import zstandard

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from snapstore import compression
from snapstore.chunker import DATABASE, Chunker

KEEP = 0.8  # a delta is kept below this fraction of the plain frame (packer.DELTA_KEEP_RATIO)
STAGGER = 8  # skip rule: whole chunks start at generations 0..STAGGER-1


@dataclass
class Rule:
    name: str
    #: candidate ids (yesterday's chunks at the aligned place) -> the bases to try
    choose: Callable[[Rule, list[bytes]], list[bytes]]
    base: dict[bytes, bytes | None] = field(default_factory=dict)
    generation: dict[bytes, int] = field(default_factory=dict)

    def chain(self, blob: bytes) -> list[bytes]:
        """The blob, its base, its base's base, ... down to a whole blob."""
        out = [blob]
        while (parent := self.base.get(out[-1])) is not None:
            out.append(parent)
        return out

    def depth(self, blob: bytes) -> int:
        return len(self.chain(blob)) - 1


def depth1(rule: Rule, candidates: list[bytes]) -> list[bytes]:
    return list(dict.fromkeys(rule.chain(c)[-1] for c in candidates))


def linear(rule: Rule, candidates: list[bytes]) -> list[bytes]:
    return candidates


def capped(cap: int) -> Callable[[Rule, list[bytes]], list[bytes]]:
    def choose(rule: Rule, candidates: list[bytes]) -> list[bytes]:
        out = []
        for c in candidates:
            chain = rule.chain(c)
            out.append(next(a for a in chain if len(rule.chain(a)) - 1 < cap))
        return list(dict.fromkeys(out))

    return choose


def capped_skip(cap: int) -> Callable[[Rule, list[bytes]], list[bytes]]:
    """Skip-deltas whose chains stay within `cap` deltas: a version that would sit deeper
    takes the newest ancestor shallow enough (as snapstore does at its MAX_DEPTH of 8)."""

    def choose(rule: Rule, candidates: list[bytes]) -> list[bytes]:
        out = []
        for c in candidates:
            g = rule.generation.get(c, 0) + 1
            target = g & (g - 1)
            chain = rule.chain(c)
            fits = [a for a in chain if len(rule.chain(a)) - 1 < cap]
            out.append(next((a for a in fits if rule.generation[a] <= target), chain[-1]))
        return list(dict.fromkeys(out))

    return choose


skip = capped_skip(sys.maxsize)  # skip-deltas, chains as deep as they come


def delta_size(data: bytes, base: bytes) -> int:
    dictionary = zstandard.ZstdCompressionDict(base, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
    frame = zstandard.ZstdCompressor(level=3, dict_data=dictionary, write_content_size=True).compress(data)
    return 1 + 32 + len(frame)  # flag and base id, as compression.compress_delta frames it


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fixtures", type=Path, required=True, help="bench_month.py's --fixtures folder")
    parser.add_argument("--scale", type=float, default=0.2)
    parser.add_argument("--nights", type=int, default=30)
    parser.add_argument("--cap", type=int, default=4, help="depth of the capped rule")
    parser.add_argument("--rules", default="depth1,linear,capped,skip",
                        help="rules to model, comma-separated: depth1, linear, capped, skip, skip-capN")
    args = parser.parse_args()
    dumps = [args.fixtures / f"night{n:02d}-scale{args.scale}.dump" for n in range(1, args.nights + 1)]
    missing = [p for p in dumps if not p.exists()]
    if missing:
        raise SystemExit(f"{missing[0]} is missing: run bench_month.py --fixtures {args.fixtures} first")

    chunker = Chunker(DATABASE, b"\x07" * 32)
    plain: dict[bytes, bytes] = {}  # every chunk seen, by id
    whole: dict[bytes, int] = {}  # its plain frame's size
    known = {"depth1": depth1, "linear": linear, "capped": capped(args.cap), "skip": skip}
    rules = []
    for name in args.rules.split(","):
        if name.startswith("skip-cap"):
            rules.append(Rule(name, capped_skip(int(name.removeprefix("skip-cap")))))
        else:
            rules.append(Rule(name if name != "capped" else f"capped-{args.cap}", known[name]))
    previous: list[bytes] = []
    starts = [0]
    for night, dump in enumerate(dumps, start=1):
        started = time.perf_counter()
        chunks = chunker.split(dump.read_bytes())
        ids = [hashlib.blake2b(c, digest_size=16).digest() for c in chunks]
        where: dict[bytes, list[int]] = {}
        for i, blob in enumerate(previous):
            where.setdefault(blob, []).append(i)
        cost = dict.fromkeys((r.name for r in rules), 0)
        gap_start = gap_old = gap_new = offset = new = 0
        for blob, data in zip(ids, chunks, strict=True):
            start, offset = offset, offset + len(data)
            if blob in plain:  # stored already: re-align after it when yesterday had it
                if places := where.get(blob):
                    at = next((p for p in places if p >= gap_start), places[0])
                    gap_start, gap_old, gap_new = at + 1, starts[at + 1], offset
                continue
            new += 1
            plain[blob] = data
            whole[blob] = len(compression.compress(data, 3))
            candidates: list[bytes] = []
            if previous:
                target = gap_old + (start - gap_new) + len(data) // 2
                guess = min(max(bisect.bisect_right(starts, target) - 1, gap_start - 1, 0), len(previous) - 1)
                candidates = [previous[k] for k in (guess, guess + 1, guess - 1) if 0 <= k < len(previous)]
            for rule in rules:
                best, best_base = whole[blob], None
                for base in rule.choose(rule, candidates):
                    size = delta_size(data, plain[base])
                    if size < KEEP * whole[blob] and size < best:
                        best, best_base = size, base
                rule.base[blob] = best_base
                rule.generation[blob] = (
                    blob[0] % STAGGER if best_base is None else rule.generation.get(candidates[0], 0) + 1
                )
                cost[rule.name] += best
        line = []
        for rule in rules:
            depths = [rule.depth(b) for b in ids]
            line.append(f"{rule.name} {cost[rule.name] / 1e6:6.2f} MB depth {sum(depths) / len(depths):.2f}"
                        f"/{max(depths)}")  # fmt: skip
        print(f"night {night:2d} ({new:5d} new chunks): " + "  ".join(line) +
              f"  [{time.perf_counter() - started:.0f} s]", flush=True)  # fmt: skip
        previous = ids
        starts = [0]
        for data in chunks:
            starts.append(starts[-1] + len(data))


if __name__ == "__main__":
    main()
