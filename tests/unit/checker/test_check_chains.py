"""`check --read-data` on chains of deltas (feature delta-chains): every delta is rebuilt once,
on its base's plaintext, chain by chain, not each base again from the bottom of its chain; and
damage in the middle of a chain is its pack's, with every delta above it named."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import pytest

from snapstore.checker import findings as F
from snapstore.checker import read_data
from snapstore.checker.checker import CheckOptions, CheckReport, check_repository
from snapstore.ids import Id
from snapstore.index import deltas
from snapstore.pack import BlobType
from snapstore.repository.blob_reader import BlobRead, BlobReader
from snapstore.repository.repository import Repository
from snapstore.snapshot.manifest import Snapshot
from snapstore.snapshot.tree import Node, NodeType
from tests.conftest import reopen
from tests.support import damage
from tests.support.deltas import edited, snapshot_of, varied

NIGHTS = 12
CHUNKS = 3


@dataclass
class Nights:
    snapshots: list[Snapshot]
    versions: list[list[Id]]  # versions[chunk][night]


@pytest.fixture
def nights(repo: Repository) -> Nights:
    """Twelve nights of a file of three chunks, each chunk edited every night and stored
    against the base its previous version offers (skip-deltas: chains several deep), each
    night flushed to packs of its own."""
    data = [varied(40_000, 90 + c) for c in range(CHUNKS)]
    versions = [[repo.save_blob(BlobType.DATA, d).id] for d in data]
    repo.flush()
    snapshots = [snapshot_of(repo, {"db": Node(b"db", NodeType.FILE, content=[v[0] for v in versions])})]
    for night in range(1, NIGHTS):
        for chunk in range(CHUNKS):
            data[chunk] = edited(data[chunk], 1000 * chunk + night)
            offer = repo.delta_offer(versions[chunk][-1])
            assert offer is not None
            saved = repo.save_blob(BlobType.DATA, data[chunk], bases=[offer])
            assert saved.delta
            versions[chunk].append(saved.id)
        repo.flush()
        snapshots.append(snapshot_of(repo, {"db": Node(b"db", NodeType.FILE, content=[v[-1] for v in versions])}))
    fresh = reopen(repo)
    assert max(deltas.depth(fresh.index, v) or 0 for chain in versions for v in chain) >= 3
    return Nights(snapshots, versions)


def check(repo: Repository) -> CheckReport:
    return check_repository(reopen(repo, load_index=False), CheckOptions(read_data=True))


@pytest.fixture(params=[read_data._BATCH_DELTAS, 1, 4], ids=["one-batch", "batches-of-1", "batches-of-4"])
def batch(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    """Deltas verified together: all at once, or cut so that chains cross batches (a base in
    an earlier batch is read through the blob reader, rebuilt along its chain)."""
    monkeypatch.setattr(read_data, "_BATCH_DELTAS", request.param)
    return int(request.param)


def test_every_delta_is_rebuilt_once_on_its_checked_base(
    repo: Repository, nights: Nights, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A clean check rebuilds each delta exactly once, given its base's plaintext, and reads
    through the blob reader only the whole blobs at the bottom of the chains: never a base on
    its own, never a base that is itself a delta (that rebuilt every base's chain from its
    bottom for every delta on it: a month's repository took twenty times a restore)."""
    rebuilt: Counter[bytes] = Counter()
    asked: Counter[bytes] = Counter()
    decode, read = BlobReader.decode, BlobReader.read

    def counting(self: BlobReader, blob_type: BlobType, wanted: Id, *args: object, **kwargs: object) -> bytes:
        if kwargs.get("base") is not None:
            rebuilt[bytes(wanted)] += 1
        return decode(self, blob_type, wanted, *args, **kwargs)  # type: ignore[arg-type]

    def asking(self: BlobReader, requests: Iterable[tuple[BlobType, Id]], *args: object, **kwargs: object) -> Iterator[BlobRead]:
        listed = list(requests)
        asked.update(bytes(blob) for _, blob in listed)
        return read(self, listed, *args, **kwargs)  # type: ignore[arg-type]

    def refused(*_: object, **__: object) -> object:
        raise AssertionError("a base was read on its own")

    monkeypatch.setattr(BlobReader, "decode", counting)
    monkeypatch.setattr(BlobReader, "read", asking)
    monkeypatch.setattr(BlobReader, "read_each", refused)
    monkeypatch.setattr(BlobReader, "base", refused)
    report = check(repo)
    assert report.ok and report.findings == [], [str(f) for f in report.findings]
    assert rebuilt == Counter({bytes(v): 1 for chain in nights.versions for v in chain[1:]})
    assert asked == Counter({bytes(chain[0]): 1 for chain in nights.versions})


def test_chains_cut_into_batches_check_clean(repo: Repository, nights: Nights, batch: int) -> None:
    report = check(repo)
    assert report.ok and report.findings == [], [str(f) for f in report.findings]
    assert report.packs_read == report.packs_selected == report.packs


def test_damage_in_the_middle_of_a_chain_is_its_packs_and_names_every_delta_above(
    repo: Repository, nights: Nights, batch: int
) -> None:
    """The delta of chunk 0 that most later versions rest on is damaged (which one depends on
    where the chain's generations start, drawn from the root's id): its pack is damaged, the
    versions resting on it (directly or through others) each get a blob finding naming their
    base, and nothing else is reported: the other chunks' chains, in the same packs, are
    whole."""
    fresh = reopen(repo)
    under = {bytes(v): chain_under(fresh, v) for v in nights.versions[0]}
    damaged = max(nights.versions[0][1:], key=lambda d: sum(bytes(d) in below for below in under.values()))
    above = {v for v, below in under.items() if bytes(damaged) in below}
    assert len(above) >= 2  # a chain at least two deltas above the damage
    pack = damage.flip_blob(fresh, damaged)
    report = check(repo)
    (pack_finding,) = [f for f in report.findings if f.kind == F.PACK_DAMAGED]
    assert pack_finding.subject == pack.name and pack_finding.error and "1 of" in pack_finding.message
    blobs = {f.subject: f for f in report.findings if f.kind == F.BLOB_DAMAGED}
    assert set(blobs) == {b.hex() for b in above}
    for blob, finding in blobs.items():
        base = fresh.delta_base_of(bytes.fromhex(blob))
        assert base is not None and base.hex() in finding.message and finding.error
    assert len(report.findings) == 1 + len(above)


def chain_under(repo: Repository, blob_id: Id) -> set[bytes]:
    """The bases a blob rests on, down to its whole one."""
    found = set()
    base = repo.delta_base_of(blob_id)
    while base is not None:
        found.add(bytes(base))
        base = repo.delta_base_of(base)
    return found


def test_every_slice_of_the_packs_checks_clean_and_together_they_cover_all(repo: Repository, nights: Nights) -> None:
    """`--read-data-subset n/3`: a slice's deltas rest on bases in packs of other slices, read
    through the blob reader along their chains."""
    read: list[Id] = []
    for n in (1, 2, 3):
        report = check_repository(reopen(repo, load_index=False), CheckOptions(read_data=True, subset=(n, 3)))
        assert report.ok and report.findings == [], [str(f) for f in report.findings]
        read += report.verified
    assert len(read) == len(set(read)) == check(repo).packs
