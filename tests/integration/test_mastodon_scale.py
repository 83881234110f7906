"""The benchmark-sized Mastodon database (tests/support/mastodon_scale.py) at a tiny scale:
the rows it promises, and a day of churn in the proportions benchmarks/bench_dedup.py states."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.mastodon_scale import ScaleCounts, apply_day_churn, create_scaled_db
from tests.support.postgres import PostgresServer


@pytest.fixture
def scaled_db(postgres_server: PostgresServer) -> Iterator[str]:
    postgres_server.createdb("scaled")
    try:
        yield "scaled"
    finally:
        postgres_server.dropdb("scaled")


def test_scaled_database_and_a_day_of_churn(
    postgres_server: PostgresServer, scaled_db: str
) -> None:
    pg = postgres_server
    counts = create_scaled_db(pg, scaled_db, 0.002)
    assert counts == ScaleCounts.for_scale(0.002)
    assert pg.row_count("accounts", scaled_db) == counts.accounts
    assert pg.row_count("statuses", scaled_db) == counts.statuses
    favourites = pg.row_count("favourites", scaled_db)
    assert 0.95 * counts.favourites <= favourites <= counts.favourites  # duplicates dropped
    assert pg.row_count("notifications", scaled_db) == favourites
    orphans = "SELECT count(*) FROM favourites f LEFT JOIN statuses s ON s.id = f.status_id"
    assert pg.psql(orphans + " WHERE s.id IS NULL", scaled_db) == "0"

    churn = apply_day_churn(pg, scaled_db, day=1)
    assert churn.statuses_added == round(counts.statuses * 0.02)
    assert churn.statuses_deleted == round(counts.statuses * 0.003)
    assert churn.accounts_updated == round(counts.accounts * 0.05)
    statuses = pg.row_count("statuses", scaled_db)
    assert statuses == counts.statuses + churn.statuses_added - churn.statuses_deleted
    # Favourites of deleted statuses go with them, so the net growth is a little under 2%.
    assert 0.01 * favourites < churn.favourites_added <= 0.02 * favourites
    assert churn.notifications_added > 0
    updated = "SELECT count(*) FROM account_stats WHERE statuses_count > 0 AND last_status_at >= "
    assert int(pg.psql(updated + "'2024-01-03'", scaled_db)) == churn.accounts_updated
    # The same day again on the same state is deterministic in its shape, not a no-op.
    again = apply_day_churn(pg, scaled_db, day=2)
    assert again.statuses_added == round(statuses * 0.02)
