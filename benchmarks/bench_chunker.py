"""Throughput of the chunker, next to BLAKE3 and zstd on the same data.

The chunker should never be the slowest stage of a backup: compare its MB/s
with the hashing and compression every chunk goes through afterwards.
Prints plain text lines; MB is 10**6 bytes; each figure is the best of
--repeat runs. Random data does not compress, so zstd runs its fast path here.

    PYTHONPATH=. python benchmarks/bench_chunker.py [--mib 256] [--repeat 3]
"""

from __future__ import annotations

import argparse
import io
import os
import time
from collections.abc import Callable

import blake3
import zstandard

from snapstore._chunker import GearChunker
from snapstore.chunker import PROFILES, Chunker, ChunkerParams, gear_table

SEED = bytes(range(32))


def best_of(repeat: int, run: Callable[[], object]) -> float:
    """Fastest wall time of `repeat` runs, in seconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def scan_only(params: ChunkerParams, data: bytes) -> int:
    """Find every cut without copying a chunk; returns the chunk count."""
    p = params
    core = GearChunker(gear_table(SEED), p.min_size, p.avg_size, p.max_size, p.normalization)
    view = memoryview(data)
    count, start = 0, 0
    while start < len(view):
        cut = core.scan(view, start)
        start = len(view) if cut < 0 else cut
        count += 1
    return count


def line(label: str, size: int, seconds: float, extra: str = "") -> None:
    print(f"{label:<40} {size / seconds / 1e6:9.1f} MB/s  {extra}".rstrip())


def bench_profile(name: str, params: ChunkerParams, data: bytes, repeat: int) -> None:
    size = len(data)
    chunker = Chunker(params, SEED)
    count = scan_only(params, data)
    line(
        f"chunker {name} scan",
        size,
        best_of(repeat, lambda: scan_only(params, data)),
        f"{count} chunks, mean {size / count / 1024:.1f} KiB",
    )
    line(
        f"chunker {name} split (keeps all)",
        size,
        best_of(repeat, lambda: chunker.split(data)),
    )
    line(
        f"chunker {name} iter_chunks(BytesIO)",
        size,
        best_of(repeat, lambda: sum(1 for _ in chunker.iter_chunks(io.BytesIO(data)))),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="Chunker, BLAKE3 and zstd throughput.")
    parser.add_argument("--mib", type=int, default=256, help="size of the random data")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure; best is shown")
    args = parser.parse_args()

    data = os.urandom(args.mib << 20)
    size = len(data)
    print(f"data: {args.mib} MiB of os.urandom, best of {args.repeat}, cpus: {os.cpu_count()}")

    for name, params in PROFILES.items():
        bench_profile(name, params, data, args.repeat)

    line("blake3 1 thread", size, best_of(args.repeat, lambda: blake3.blake3(data).digest()))
    line(
        "blake3 all threads",
        size,
        best_of(args.repeat, lambda: blake3.blake3(data, max_threads=blake3.blake3.AUTO).digest()),
    )
    compressor = zstandard.ZstdCompressor(level=3)
    line("zstd level 3 (one frame)", size, best_of(args.repeat, lambda: compressor.compress(data)))
    chunks = Chunker(PROFILES["database"], SEED).split(data)
    line(
        "zstd level 3 (per database chunk)",
        size,
        best_of(args.repeat, lambda: [compressor.compress(c) for c in chunks]),
    )


if __name__ == "__main__":
    main()
