"""Benchmark data, made once and kept between runs with `--fixtures DIR`.

- `make_dumps`: the Mastodon-like database of `tests/support/mastodon_scale.py` in a
  throwaway PostgreSQL cluster, dumped with `pg_dump -Fc -Z0` (day 1), one day of churn,
  dumped again (day 2). Scale 1.0 is a ~1.5 GB dump.
- `make_media_tree`: a Mastodon `public/system` tree of incompressible files in Paperclip's
  layout (`media_attachments/files/<id partition>/original|small/<name>.<ext>`, avatars
  under `accounts/avatars`), with sizes spread like real uploads: mostly 50 KB - 2 MB
  images, each with a small thumbnail, a few 2-40 MB videos. Seeded, so the same arguments
  make the same bytes. Its manifest (relative path -> SHA-256) is written next to it and is
  what a restore is compared with.

Kept files carry their parameters in their names (`day1-scale0.1.dump`, `media-seed1-100000000`),
so one fixtures directory serves every scale and every script.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.support.mastodon import DAY_MS, id_partition, snowflake
from tests.support.mastodon_scale import apply_day_churn, create_scaled_db
from tests.support.postgres import running_postgres

# --- the pg_dump pair -------------------------------------------------------------------------


def make_dumps(work: Path, scale: float) -> tuple[Path, Path]:
    """Day 1 and day 2 `pg_dump -Fc -Z0` of the Mastodon-like database at `scale`, in `work`
    (which must be readable by the PostgreSQL server's user: chmod 755)."""
    first, second = make_nightly_dumps(work, scale, 2)
    return first, second


def reuse(
    keep: Path | None, kind: str, work: Path, make: Callable[[], tuple[Path, Path]]
) -> tuple[Path, Path]:
    """Day 1 and day 2 from `keep` (as `day1-<kind>`, `day2-<kind>`) when an earlier run left
    them there, else made (and kept). Put the parameters in `kind`: "scale0.1.dump"."""
    if keep is None:
        return make()
    kept = keep / f"day1-{kind}", keep / f"day2-{kind}"
    if all(p.exists() for p in kept):
        print(f"reusing {kept[0]} and {kept[1]}")
        return kept
    made = make()
    keep.mkdir(parents=True, exist_ok=True)
    for source, target in zip(made, kept, strict=True):
        shutil.copyfile(source, target)
    return made


def make_nightly_dumps(keep: Path, scale: float, nights: int) -> list[Path]:
    """Nights 1..`nights` of the Mastodon-like database at `scale` as `pg_dump -Fc -Z0`, one day
    of churn between consecutive nights, kept in `keep` as `night01-scale0.2.dump`, ...; an
    earlier run's files are reused (the churn is seeded, so a longer run extends a shorter one
    only by rebuilding: the database is not kept)."""
    wanted = [keep / f"night{n:02d}-scale{scale}.dump" for n in range(1, nights + 1)]
    if all(p.exists() for p in wanted):
        print(f"reusing {nights} nightly dumps in {keep}")
        return wanted
    keep.mkdir(parents=True, exist_ok=True)
    keep.chmod(0o755)
    with running_postgres(keep) as pg:
        pg.createdb("mastodon")
        started = time.perf_counter()
        counts = create_scaled_db(pg, "mastodon", scale)
        print(f"database: {counts} built in {time.perf_counter() - started:.1f} s")
        dump = [pg.bin("pg_dump"), "-Fc", "-Z0", *pg.connection_args("mastodon"), "-f"]
        for night, path in enumerate(wanted, start=1):
            if night > 1:
                apply_day_churn(pg, "mastodon", day=night - 1)
            partial = path.with_suffix(".partial")
            subprocess.run([*dump, str(partial)], check=True)
            partial.replace(path)
            print(f"night {night:2d}: {path.stat().st_size / 1e6:.1f} MB", flush=True)
    return wanted


# --- media trees ------------------------------------------------------------------------------

SYSTEM = Path("public/system")
JPEG, PNG, MP4 = b"\xff\xd8\xff\xe0\x00\x10JFIF", b"\x89PNG\r\n\x1a\n", b"\x00\x00\x00\x20ftypisom"


@dataclass(frozen=True)
class MediaTree:
    """A generated tree: `root` is the directory to back up (it holds `public/system`)."""

    root: Path
    digests: dict[str, str]  # path relative to root -> SHA-256 hex
    size: int  # bytes of file content
    probe: str | None  # the one file of exactly `probe_size` bytes, relative to root

    @property
    def files(self) -> int:
        return len(self.digests)


def _log_uniform(rng: random.Random, low: int, high: int) -> int:
    return round(math.exp(rng.uniform(math.log(low), math.log(high))))


def make_media_tree(root: Path, total: int, seed: int, probe_size: int = 0) -> MediaTree:
    """Write about `total` bytes of media under `root` (see the module docstring); with
    `probe_size`, also one video of exactly that many bytes, for single-file restores."""
    rng = random.Random(seed)
    digests: dict[str, str] = {}
    written = 0

    def write(rel: Path, magic: bytes, size: int) -> str:
        nonlocal written
        data = magic + b"".join(
            rng.randbytes(min(1 << 24, size - len(magic) - at))
            for at in range(0, max(0, size - len(magic)), 1 << 24)
        )
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        digests[rel.as_posix()] = hashlib.sha256(data).hexdigest()
        written += len(data)
        return rel.as_posix()

    media = SYSTEM / "media_attachments/files"
    n = 0
    while written < total:
        part = id_partition(snowflake(DAY_MS + n * 997, n))
        name = f"{rng.getrandbits(64):016x}"
        kind = rng.random()
        if kind < 0.03:  # a video: 2-40 MB, its thumbnail a JPEG
            write(
                media / part / "original" / f"{name}.mp4",
                MP4,
                _log_uniform(rng, 2_000_000, 40_000_000),
            )
            write(media / part / "small" / f"{name}.jpg", JPEG, _log_uniform(rng, 8_000, 64_000))
        else:  # an image: 50 KB - 2 MB, a thumbnail of the same type
            ext, magic = ("png", PNG) if kind < 0.25 else ("jpg", JPEG)
            write(
                media / part / "original" / f"{name}.{ext}",
                magic,
                _log_uniform(rng, 50_000, 2_000_000),
            )
            write(media / part / "small" / f"{name}.{ext}", magic, _log_uniform(rng, 8_000, 64_000))
        if n % 10 == 0:  # the uploader's avatar
            write(
                SYSTEM / "accounts/avatars" / part / "original/avatar.png",
                PNG,
                _log_uniform(rng, 20_000, 400_000),
            )
        n += 1
    probe = None
    if probe_size:
        part = id_partition(snowflake(DAY_MS + n * 997, n))
        probe = write(media / part / "original" / "probe.mp4", MP4, probe_size)
    return MediaTree(root, digests, written, probe)


def kept_media_tree(
    keep: Path | None, work: Path, total: int, seed: int, probe_size: int = 0
) -> MediaTree:
    """`make_media_tree` into `keep` (reused when an earlier run made it with the same
    arguments: its manifest, written last, says it is complete), or into `work`."""
    name = f"media-seed{seed}-{total}" + (f"-probe{probe_size}" if probe_size else "")
    base = keep if keep is not None else work
    root, manifest = base / name, base / f"{name}.json"
    if keep is not None and manifest.exists():
        saved = json.loads(manifest.read_text())
        print(f"reusing {root} ({saved['size'] / 1e6:.1f} MB in {len(saved['digests'])} files)")
        return MediaTree(root, saved["digests"], saved["size"], saved["probe"])
    shutil.rmtree(root, ignore_errors=True)  # a tree an interrupted run left half made
    started = time.perf_counter()
    tree = make_media_tree(root, total, seed, probe_size)
    manifest.parent.mkdir(parents=True, exist_ok=True)
    manifest.write_text(
        json.dumps({"size": tree.size, "probe": tree.probe, "digests": tree.digests})
    )
    print(
        f"media:    {tree.size / 1e6:.1f} MB in {tree.files} files at {root} "
        f"made in {time.perf_counter() - started:.1f} s"
    )
    return tree


def tree_mismatches(restored: Path, expected: dict[str, str]) -> list[str]:
    """How the files under `restored` differ from `expected` (relative path -> SHA-256):
    missing, extra and changed files; empty when they are the same byte for byte."""
    found = {p.relative_to(restored).as_posix(): p for p in restored.rglob("*") if p.is_file()}
    problems = [f"missing {rel}" for rel in sorted(expected.keys() - found.keys())]
    problems += [f"extra {rel}" for rel in sorted(found.keys() - expected.keys())]
    for rel in sorted(expected.keys() & found.keys()):
        with open(found[rel], "rb") as f:
            if hashlib.file_digest(f, "sha256").hexdigest() != expected[rel]:
                problems.append(f"changed {rel}")
    return problems
