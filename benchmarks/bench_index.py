"""What the in-memory index costs per blob at 1 M and 10 M blobs (issue 13, item 7).

A repository of tens of millions of chunks must fit a small server. This builds snapstore's
`BlobIndex` from synthetic pack entries (random ids, packs of 1,000 blobs, one in ten a delta
as a database repository has them), the way opening a repository does (`add_pack` per
pack, then `compact`), each size in a process of its own, and prints:

- the bytes per blob the index's arrays hold (target: at most 64);
- the resident memory the built index adds, per blob, and the peak while building (the
  merges of pending entries are transient);
- the build time and lookups per second, one id at a time and a run of 100,000 at once.

    python benchmarks/bench_index.py                 # 1 M and 10 M blobs, about 2 minutes
    python benchmarks/bench_index.py --sizes 1000000

Figures on 2026-12-07 (2 cores shared with other work): see the closing note of issue 13.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

TARGET = 64  # bytes per blob
PACK_BLOBS = 1000


def _rss() -> int:
    """Resident bytes now, after handing freed heap back (what the index itself holds)."""
    import ctypes
    import gc

    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def measure(count: int) -> dict[str, float]:
    """Builds an index of `count` synthetic blobs in this process; the figures as a dict."""
    from snapstore.ids import Id
    from snapstore.index.index import BlobIndex
    from snapstore.pack import FLAG_DELTA, BlobType, PackEntry

    index = BlobIndex()
    before = _rss()
    started = time.perf_counter()
    ids = os.urandom(32 * count)
    for first in range(0, count, PACK_BLOBS):
        entries = []
        for i in range(first, min(first + PACK_BLOBS, count)):
            blob_id = Id(ids[32 * i : 32 * i + 32])
            delta = i % 10 == 9
            entries.append(PackEntry(
                BlobType.DATA, blob_id, (i - first) * 20_000, 20_000, 65_536,
                FLAG_DELTA if delta else 0, Id(ids[32 * (i - 1) : 32 * i]) if delta else None,
            ))  # fmt: skip
        index.add_pack(Id(os.urandom(32)), entries)
    index.compact()
    built = time.perf_counter() - started
    del ids
    arrays = sum(
        getattr(index, name).nbytes
        for name in ("_keys", "_rest", "_pack", "_offset", "_length", "_plain", "_type", "_flags", "_base")
    )
    resident = _rss() - before
    sample = [os.urandom(32) for _ in range(100_000)]
    started = time.perf_counter()
    for blob_id in sample[:20_000]:
        index.lookup(blob_id)
    one_by_one = 20_000 / (time.perf_counter() - started)
    started = time.perf_counter()
    index.lookup_run(b"".join(sample))
    in_a_run = len(sample) / (time.perf_counter() - started)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
    return {
        "blobs": count,
        "array_bytes_per_blob": arrays / count,
        "resident_bytes_per_blob": resident / count,
        "peak_bytes_per_blob": peak / count,
        "build_s": built,
        "lookups_per_s_one": one_by_one,
        "lookups_per_s_run": in_a_run,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000000,10000000", help="blob counts, comma-separated")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child)))
        return
    print("| blobs | index arrays, bytes/blob | resident, bytes/blob | peak while building, bytes/blob "
          "| build | lookups/s one by one | lookups/s in a run | target |")
    print("|---:|---:|---:|---:|---:|---:|---:|---|")
    for size in (int(s) for s in args.sizes.split(",")):
        done = subprocess.run(
            [sys.executable, __file__, "--child", str(size)], capture_output=True, text=True, check=True
        )
        r = json.loads(done.stdout)
        met = "met" if r["resident_bytes_per_blob"] <= TARGET else "NOT met"
        print(f"| {size:,} | {r['array_bytes_per_blob']:.1f} | {r['resident_bytes_per_blob']:.1f} "
              f"| {r['peak_bytes_per_blob']:.1f} | {r['build_s']:.1f} s | {r['lookups_per_s_one']:,.0f} "
              f"| {r['lookups_per_s_run']:,.0f} | <= {TARGET} resident: {met} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
