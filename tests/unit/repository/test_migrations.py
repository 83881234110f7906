"""Migrations add a format feature to an older repository's config, and nothing else."""

from __future__ import annotations

import pytest

from snapstore.backend.memory import MemoryBackend
from snapstore.errors import UsageError
from snapstore.pack import BlobType
from snapstore.repository.migrations import MIGRATIONS, apply_migrations, migration_states
from snapstore.repository.repository import Repository
from tests.conftest import PASSWORD, assert_repository_ok, reopen
from tests.support.deltas import edited, repository_with_features, varied


def test_a_new_repository_has_every_migration() -> None:
    repo = Repository.init(MemoryBackend(), PASSWORD)
    assert all(applied for _, applied in migration_states(repo))
    assert apply_migrations(repo, [m.name for m in MIGRATIONS]) == []


def test_an_old_repository_takes_on_chains_and_then_stores_them(backend: MemoryBackend) -> None:
    repo = repository_with_features(backend, ("delta-v1",), PASSWORD)
    assert [(m.name, applied) for m, applied in migration_states(repo)] == [
        ("delta-v1", True),
        ("delta-chains", False),
    ]
    versions = [varied(150_000, 1)]
    for night in range(2, 5):
        versions.append(edited(versions[-1], night))
    ids = [repo.save_blob(BlobType.DATA, versions[0]).id]
    repo.flush()
    second = repo.save_blob(BlobType.DATA, versions[1], bases=[repo.delta_offer(ids[0])])  # type: ignore[list-item]
    repo.flush()
    assert second.delta and repo.delta_offer(second.id) is not None
    assert repo.delta_offer(second.id).base == ids[0]  # type: ignore[union-attr]  # depth 1 only
    assert apply_migrations(repo, ["delta-chains"]) == ["delta-chains"]
    again = reopen(repo)
    assert again.config.features == ("delta-v1", "delta-chains") and again.config.delta_chains
    offer = again.delta_offer(second.id)  # generation 2: against generation 0, the root
    assert offer is not None and offer.base == ids[0] and offer.generation == 2
    third = again.save_blob(BlobType.DATA, versions[2], bases=[offer])
    again.flush()
    offer = again.delta_offer(third.id)  # generation 3: against 2, yesterday's, itself a delta
    assert offer is not None and offer.base == third.id and offer.generation == 3
    fourth = again.save_blob(BlobType.DATA, versions[3], bases=[offer])
    again.flush()
    assert third.delta and fourth.delta and fourth.base == third.id
    fresh = reopen(repo)
    assert [fresh.load_blob(BlobType.DATA, i) for i in (ids[0], second.id, third.id, fourth.id)] == versions
    assert_repository_ok(repo)


def test_a_feature_needs_its_prerequisite_and_unknown_names_are_refused(backend: MemoryBackend) -> None:
    repo = repository_with_features(backend, (), PASSWORD)
    with pytest.raises(UsageError, match="delta-chains needs delta-v1 first"):
        apply_migrations(repo, ["delta-chains"])
    with pytest.raises(UsageError, match="no migration named 'delta-v2'"):
        apply_migrations(repo, ["delta-v1", "delta-v2"])
    assert reopen(repo).config.features == ()  # nothing written
    assert apply_migrations(repo, ["delta-v1", "delta-chains"]) == ["delta-v1", "delta-chains"]
    assert reopen(repo).config.features == ("delta-v1", "delta-chains")
