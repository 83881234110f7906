"""What the in-memory index costs per blob at 1 M and 10 M blobs (issue 13, item 7).

A repository of tens of millions of chunks must fit a small server. Each size is measured in
processes of their own, two ways, with synthetic blobs (random ids, packs of 1,000 blobs, one
in ten a delta as a database repository has them):

- `open`: what opening a repository does. A repository on a local folder is given index files
  (64 packs each, as a backup writes them) holding that many blobs; a fresh process opens it
  and times `Repository.load_index` (reading, decrypting and decoding the index files, and
  building the index from them).
- `add`: what a backup does with the packs it writes: `BlobIndex.add_pack` per pack, then
  `compact`.

For each it prints the bytes per blob the index's arrays hold (target: at most 64), the
resident memory the built index adds per blob, the peak while building (transient copies
included), the time taken, and look-ups per second, one id at a time and a run of 100,000 at
once.

    python benchmarks/bench_index.py                 # 1 M and 10 M blobs, about 3 minutes
    python benchmarks/bench_index.py --sizes 1000000 --paths open

Figures on 2026-12-07, 2 cores shared with other work (bytes per blob: arrays / resident /
peak; time; look-ups a second one by one / in a run):

    blobs  path  before (index files decoded into PackEntry lists, add_pack per pack)
    1 M    open  58 / 466 / 574,  7.8 s, 253,000 / 2,790,000
    1 M    add   58 /  92 / 228,  4.4 s, 312,000 / 2,440,000
    10 M   open  58 / 440 / 540,  102 s, 172,000 /   451,000
    10 M   add   58 /  88 / 202,   84 s, 147,000 /   498,000
           after (records read by numpy, added at once; runs of columns, sparse base keys)
    1 M    open  50.9 / 54-72 / 120-142, 0.5 s, 440,000 / 2,200,000
    1 M    add   50.9 /    53 /     128, 3.1 s, 477,000 / 2,830,000
    10 M   open  50.9 /  51.4 /     123, 6-9 s, 216,000-408,000 / 674,000
    10 M   add   50.9 /  51.2 /     125,  51 s, 252,000 / 589,000

The add path's time is mostly the benchmark making a PackEntry per blob. Opening at 1 M
varies with what glibc keeps in the arenas of the eight threads that read index files: its
trim threshold grows with the buffers they free (3 to 21 MB here, a constant, not per blob);
with MALLOC_TRIM_THRESHOLD_=131072 the same run holds 52.7 bytes per blob.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

TARGET = 64  # bytes per blob
PACK_BLOBS = 1000
PACKS_PER_FILE = 64  # as a backup writes them (repository.PACKS_PER_INDEX_FILE)
PASSWORD = b"bench"
def _rss() -> int:
    """Resident bytes now, after handing freed heap back (what the index itself holds)."""
    import ctypes
    import gc

    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _array_bytes(index: Any) -> int:
    """What the index's columns hold."""
    return int(index.memory_bytes())


def _lookups(index: Any) -> dict[str, float]:
    sample = [os.urandom(32) for _ in range(100_000)]
    started = time.perf_counter()
    for blob_id in sample[:20_000]:
        index.lookup(blob_id)
    one_by_one = 20_000 / (time.perf_counter() - started)
    started = time.perf_counter()
    index.lookup_run(b"".join(sample))
    return {
        "lookups_per_s_one": one_by_one,
        "lookups_per_s_run": len(sample) / (time.perf_counter() - started),
    }


def _pack_rows(count: int) -> Any:
    """(pack id, 46-byte records, base ids) per pack of synthetic blobs, built by numpy."""
    import numpy as np

    from snapstore.pack import FLAG_DELTA, BlobType

    record = np.dtype([("type", "u1"), ("flags", "u1"), ("offset", "<u4"), ("length", "<u4"),
                       ("plain", "<u4"), ("id", "V32")])  # fmt: skip
    for first in range(0, count, PACK_BLOBS):
        n = min(PACK_BLOBS, count - first)
        ids = np.frombuffer(os.urandom(32 * n), dtype="V32")
        records = np.zeros(n, dtype=record)
        records["type"] = int(BlobType.DATA)
        records["flags"][9::10] = FLAG_DELTA
        records["offset"] = np.arange(n, dtype=np.uint32) * 20_000
        records["length"] = 20_000
        records["plain"] = 65_536
        records["id"] = ids
        yield (
            os.urandom(32),
            records.tobytes(),
            ids[8::10].tobytes(),
        )  # a delta's base: the blob before


def write_repository(path: str, count: int) -> None:
    """A repository at `path` whose index files name `count` blobs (no packs: only the index
    is read)."""
    import msgpack

    from snapstore.backend.base import FileType
    from snapstore.backend.local import LocalBackend
    from snapstore.crypto.kdf import KdfParams
    from snapstore.repository.repository import Repository

    repo = Repository.init(LocalBackend(path, fsync=False), PASSWORD, kdf=KdfParams(1, 8, 1))
    rows = list[list[bytes]]()

    def flush() -> None:
        doc = {"v": 2, "supersedes": [], "packs": rows}
        repo.save_object(FileType.INDEX, msgpack.packb(doc, use_bin_type=True))
        rows.clear()

    for pack_id, records, bases in _pack_rows(count):
        rows.append([pack_id, records, bases])
        if len(rows) == PACKS_PER_FILE:
            flush()
    if rows:
        flush()
    repo.close()


def measure_open(path: str, count: int) -> dict[str, float]:
    """Opens the repository at `path` in this process and loads its index."""
    from snapstore.backend.local import LocalBackend
    from snapstore.repository.repository import Repository

    repo = Repository.open(LocalBackend(path, fsync=False), PASSWORD)
    index = repo.index  # numpy imported, an empty index
    before = _rss()
    started = time.perf_counter()
    repo.load_index()
    took = time.perf_counter() - started
    assert len(index) == count, (len(index), count)
    return _figures(index, count, before, took)


def _figures(index: Any, count: int, before: int, took: float) -> dict[str, float]:
    """What an index of `count` blobs built in `took` seconds costs, from the RSS `before`."""
    resident = _rss() - before
    return {
        "array_bytes_per_blob": _array_bytes(index) / count,
        "resident_bytes_per_blob": resident / count,
        "peak_bytes_per_blob": (_peak() - before) / count,
        "seconds": took,
        **_lookups(index),
    }


def measure_add(count: int) -> dict[str, float]:
    """Builds an index of `count` synthetic blobs with add_pack, in this process."""
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
    took = time.perf_counter() - started
    del ids, entries
    return _figures(index, count, before, took)


def _child(*args: str) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", *args], capture_output=True, text=True
    )
    if done.returncode:
        sys.exit(f"{' '.join(args)} failed:\n{done.stderr}")
    result: dict[str, float] = json.loads(done.stdout or "{}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="1000000,10000000", help="blob counts, comma-separated")
    parser.add_argument(
        "--paths", default="open,add", help="open (load_index), add (add_pack), or both"
    )
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        what, count, *path = args.child
        if what == "write":
            write_repository(path[0], int(count))
            print("{}")
        else:
            figures = (
                measure_open(path[0], int(count)) if what == "open" else measure_add(int(count))
            )
            print(json.dumps(figures))
        return
    print(
        "| blobs | path | index arrays, bytes/blob | resident, bytes/blob | peak while building, "
        "bytes/blob | time | lookups/s one by one | lookups/s in a run | target |"
    )
    print("|---:|---|---:|---:|---:|---:|---:|---:|---|")
    for size in (int(s) for s in args.sizes.split(",")):
        for path in args.paths.split(","):
            with tempfile.TemporaryDirectory(prefix="bench_index.") as folder:
                if path == "open":
                    _child("write", str(size), folder)
                r = _child(path, str(size), folder)
            met = "met" if r["resident_bytes_per_blob"] <= TARGET else "NOT met"
            print(f"| {size:,} | {path} | {r['array_bytes_per_blob']:.1f} | {r['resident_bytes_per_blob']:.1f} "
                  f"| {r['peak_bytes_per_blob']:.1f} | {r['seconds']:.1f} s | {r['lookups_per_s_one']:,.0f} "
                  f"| {r['lookups_per_s_run']:,.0f} | <= {TARGET} resident: {met} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
