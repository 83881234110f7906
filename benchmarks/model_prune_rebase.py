"""A plan-only model of prune's re-basing under retention (issue 16): stored bytes kept.

Not a repository: every night each of `--chunks` chunks gets a new version, stored as
snapstore's archiver would store it (SPEC section 6): a skip-delta against yesterday's chain
(`deltas._offer_on`: version g against the newest version of yesterday's chain whose generation
is at most g & (g - 1), chains at most `deltas.MAX_DEPTH` deep), the delta `--delta` KB plus
`--drift` KB per night between the two versions, or whole (`--whole` KB) where that delta would
not stay below 0.8x of the whole copy, the new whole version starting its generations anew
from its id. Each night's versions sit in a pack of their own. The nights are kept or
forgotten by `snapstore.retention` (one snapshot a night at 03:15 UTC), and `plan_prune` is
asked once, after the last night, with `max_unused` 0, without and with re-basing; the table
gives the stored bytes each plan keeps (`PrunePlan.used_bytes`: the blobs kept plus the whole
copies written), the blobs stored whole and the bases freed, and the plan's time.

    python benchmarks/model_prune_rebase.py                      # the table below
    python benchmarks/model_prune_rebase.py --keep-last 7 --drift 2

Figures on 2026-12-07 (500 chunks, 60 nights, deltas 1.5 KB + drift a night spanned, wholes
60 KB; nights 38, 45 and 52-59 kept by keep-daily 7 keep-weekly 4), MB kept: without re-basing /
re-basing live deltas only (a4254cc) / also dead branch points:

    drift 0.5 KB:  67.7 /  67.7 / 62.8  (293 dead versions stored whole, 293 bases freed)
    drift 1.0 KB:  94.1 /  94.1 / 79.2  (500, 500)
    drift 1.5 KB: 108.1 / 106.6 / 92.1  (376, 376)
    drift 2.0 KB: 108.6 / 107.9 / 105.9 (122 dead and 71 live stored whole, 233 freed)

keep-last 7: 59.8 / 57.9 / 51.4 (0.5 KB), 84.0 / 73.3 / 63.6 (2 KB); keep-last 3: 53.8 / 48.8 /
41.1 (0.5 KB), 55.5 / 46.3 / 42.1 (2 KB). The plan takes 0.2-0.5 s for 30,000 entries.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from snapstore import RetentionPolicy, Snapshot
from snapstore.ids import Id
from snapstore.index import deltas
from snapstore.pack import BlobType, PackEntry, blob_key, delta_flags
from snapstore.prune import PackContents, plan_prune
from snapstore.retention import apply_policy

KEEP = 0.8  # a delta is kept below this fraction of the whole copy (packer.DELTA_KEEP_RATIO)
PLAIN = 200_000  # every version's plaintext length (only ratios of it matter)
HEADER = 100


def version_id(chunk: int, night: int) -> Id:
    return Id(hashlib.sha256(f"chunk {chunk} night {night}".encode()).digest())


def build(chunks: int, nights: int, delta: float, drift: float, whole: float) -> dict[Id, PackContents]:
    """Every night's pack of new versions, stored by the skip-delta rules."""
    base_of: dict[Id, Id | None] = {}
    generation: dict[Id, int] = {}
    night_of: dict[Id, int] = {}
    yesterday: list[Id] = []
    packs: dict[Id, PackContents] = {}
    for night in range(nights):
        entries, offset, today = [], 0, []
        for chunk in range(chunks):
            blob = version_id(chunk, night)
            base = None
            length = int(whole * 1000)
            if yesterday:
                chain = [yesterday[chunk]]
                while (below := base_of[chain[-1]]) is not None:
                    chain.append(below)
                new = generation[chain[0]] + 1
                target = new & (new - 1)
                for place, candidate in enumerate(chain):
                    under = len(chain) - 1 - place
                    if new <= deltas.MAX_GENERATION and under + 1 <= deltas.MAX_DEPTH and (
                        under == 0 or generation[candidate] <= target
                    ):
                        size = int((delta + drift * (night - night_of[candidate])) * 1000)
                        if size < KEEP * length:
                            base, length = candidate, size
                        break
            base_of[blob], night_of[blob] = base, night
            generation[blob] = blob[0] % deltas.STAGGER if base is None else generation[yesterday[chunk]] + 1
            flags = 0 if base is None else delta_flags(generation[blob])
            entries.append(PackEntry(BlobType.DATA, blob, offset, length, PLAIN, flags, base))
            offset += length
            today.append(blob)
        packs[Id(hashlib.sha256(f"pack {night}".encode()).digest())] = PackContents(offset + HEADER, tuple(entries))
        yesterday = today
    return packs


def kept_nights(nights: int, policy: RetentionPolicy) -> list[int]:
    start = datetime(2026, 10, 1, 3, 15, tzinfo=UTC)
    snaps = [
        Snapshot(start + timedelta(days=n), "db", "root", [], "stdin", ["db.dump"], Id(bytes(32)),
                 id=Id(n.to_bytes(32, "big")))
        for n in range(nights)
    ]  # fmt: skip
    decisions = apply_policy(snaps, policy, start + timedelta(days=nights), UTC)
    return sorted(int.from_bytes(d.snapshot.id or b"", "big") for d in decisions if d.keep)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, default=500)
    parser.add_argument("--nights", type=int, default=60)
    parser.add_argument("--delta", type=float, default=1.5, help="KB of a delta between neighbours")
    parser.add_argument("--drift", default="0.5,1,2", help="KB more per night spanned, comma-separated")
    parser.add_argument("--whole", type=float, default=60, help="KB of a whole version")
    parser.add_argument("--keep-last", type=int, default=0)
    parser.add_argument("--keep-daily", type=int, default=7)
    parser.add_argument("--keep-weekly", type=int, default=4)
    args = parser.parse_args()
    policy = RetentionPolicy(keep_last=args.keep_last, keep_daily=args.keep_daily, keep_weekly=args.keep_weekly)
    nights = kept_nights(args.nights, policy)
    print(f"{args.chunks} chunks, {args.nights} nights, {policy.describe()}: nights kept {nights}")
    print(f"{'drift KB':>8} {'stored MB':>9} {'no rebase':>9} {'rebase':>7} {'whole':>6} {'dead':>5} "
          f"{'freed':>6} {'plan s':>6}")  # fmt: skip
    for drift in (float(d) for d in args.drift.split(",")):
        packs = build(args.chunks, args.nights, args.delta, drift, args.whole)
        used = {
            blob_key(BlobType.DATA, version_id(chunk, night)) for night in nights for chunk in range(args.chunks)
        }
        stored = sum(p.size - HEADER for p in packs.values())
        plain = plan_prune(packs, used, 0.0, rebase=False)
        started = time.perf_counter()
        plan = plan_prune(packs, used, 0.0)
        took = time.perf_counter() - started
        dead = len(plan.rebase - used)  # blobs no snapshot uses stored whole at a branch point
        print(f"{drift:8.1f} {stored / 1e6:9.1f} {plain.used_bytes / 1e6:9.1f} {plan.used_bytes / 1e6:7.1f} "
              f"{len(plan.rebase):6d} {dead:5d} {plan.bases_freed:6d} {took:6.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
