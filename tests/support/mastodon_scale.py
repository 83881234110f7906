"""The Mastodon-like database at benchmark size, and a day of churn as a real instance has it.

`tests.support.mastodon` builds a few hundred rows from Python (exact, for assertions);
this module builds hundreds of thousands to millions inside the server with
`generate_series` and a seeded `random()`, on the same schema plus Mastodon's
`notifications`, so that a 1.5 GB `pg_dump -Fc -Z0` takes minutes, not hours.

A day of churn (`apply_day_churn`) is what makes database dumps hard to deduplicate:
+2% statuses, favourites and notifications; 0.3% of statuses deleted (their favourites
and notifications go with them); the counters of 5% of accounts updated (each update
writes a new row version elsewhere in the heap); then VACUUM, as autovacuum would, so the
next day's inserts reuse the freed space. `pg_dump` writes rows in heap order, so the
changes land thinly all over the dump rather than at its end.

Scale 1.0 is the issue's fixture (a ~1.5 GB dump); sizes grow linearly with it.
"""

from __future__ import annotations

from dataclasses import dataclass

from tests.support.mastodon import BASE_MS, DAY_MS, SCHEMA_SQL, WORDS, SqlRunner

# Mastodon's notifications, and the indexes Mastodon has that a day of deletions needs.
EXTRA_SCHEMA_SQL = """
CREATE TABLE notifications (
    id bigserial PRIMARY KEY,
    activity_id bigint NOT NULL,
    activity_type varchar NOT NULL,
    created_at timestamp NOT NULL,
    updated_at timestamp NOT NULL,
    account_id bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    from_account_id bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    type varchar
);
CREATE INDEX index_notifications_on_account_id ON notifications (account_id, id DESC);
CREATE INDEX index_notifications_on_activity ON notifications (activity_id, activity_type);
CREATE INDEX index_favourites_on_status_id ON favourites (status_id);
"""

# Rows at scale 1.0: about 1.5 GB as `pg_dump -Fc -Z0` (measured: scale 0.01 dumps 15 MB).
FULL_ACCOUNTS = 70_000
FULL_STATUSES = 2_100_000
FULL_FAVOURITES = 4_200_000
FULL_NOTIFICATIONS = 4_200_000
FULL_FOLLOWS = 700_000


@dataclass(frozen=True)
class ScaleCounts:
    """How many rows of each kind a scale seeds."""

    accounts: int
    statuses: int
    favourites: int
    notifications: int
    follows: int

    @classmethod
    def for_scale(cls, scale: float) -> ScaleCounts:
        def n(full: int, least: int) -> int:
            return max(least, round(full * scale))

        return cls(
            accounts=n(FULL_ACCOUNTS, 10),
            statuses=n(FULL_STATUSES, 100),
            favourites=n(FULL_FAVOURITES, 100),
            notifications=n(FULL_NOTIFICATIONS, 100),
            follows=n(FULL_FOLLOWS, 10),
        )


@dataclass(frozen=True)
class DayChurn:
    """What one `apply_day_churn` changed, in rows."""

    day: int
    statuses_added: int
    statuses_deleted: int
    favourites_added: int
    notifications_added: int
    accounts_updated: int


_WORDS_ARRAY = "ARRAY[" + ", ".join(f"'{w}'" for w in WORDS) + "]"


def _text_sql(row: str) -> str:
    """SQL for a 3-40 word status text; references `row` so it is evaluated per row."""
    return (
        f"array_to_string(ARRAY(SELECT ({_WORDS_ARRAY})[1 + floor(random() * {len(WORDS)})::int]"
        f" FROM generate_series(1, 3 + ({row} * 0 + floor(random() * 38))::int)), ' ')"
    )


def _snowflake_sql(ms: str, seq: str) -> str:
    return f"((({BASE_MS}::bigint + ({ms})::bigint) << 16) | (({seq})::bigint & 65535))"


def _ts_sql(ms: str) -> str:
    return f"(to_timestamp(({BASE_MS}::bigint + ({ms})::bigint) / 1000.0) AT TIME ZONE 'UTC')"


def create_scaled_db(
    server: SqlRunner, db: str, scale: float, *, seed: float = 0.42
) -> ScaleCounts:
    """Create the schema in an existing (empty) database and fill it at `scale`."""
    counts = ScaleCounts.for_scale(scale)
    server.psql(SCHEMA_SQL + EXTRA_SCHEMA_SQL, db)
    account_id = _snowflake_sql("g * 60000", "1")
    status_ms = f"{DAY_MS // 2} + g * 1000"
    # Ids are computed from row numbers (accounts a minute apart, statuses a second apart
    # from day 0.5 on), so picking a random account or status needs no Python round trip.
    pick_account = _snowflake_sql(f"floor(random() * {counts.accounts})::bigint * 60000", "1")
    sql = f"""
SELECT setseed({seed});
INSERT INTO accounts
SELECT {account_id}, 'user' || g, CASE WHEN g % 3 = 2 THEN 'remote' || (g % 5) || '.example' END,
       'User ' || g, {_text_sql("g")}, CASE WHEN g % 3 <> 2 THEN 'avatar' || g || '.png' END,
       {_ts_sql("g * 60000")}, {_ts_sql("g * 60000")}
FROM generate_series(0::bigint, {counts.accounts - 1}) g;
INSERT INTO account_stats (account_id) SELECT id FROM accounts ORDER BY id;
INSERT INTO statuses
SELECT {_snowflake_sql(status_ms, "g")}, 'https://snapstore.test/users/x/statuses/' ||
       {_snowflake_sql(status_ms, "g")}, {_text_sql("g")}, {pick_account},
       NULL, (ARRAY[0, 0, 0, 1, 2, 3])[1 + floor(random() * 6)::int],
       (ARRAY['en', 'de', 'fr', NULL])[1 + floor(random() * 4)::int],
       {_ts_sql(status_ms)}, {_ts_sql(status_ms)}
FROM generate_series(0::bigint, {counts.statuses - 1}) g;
INSERT INTO follows (account_id, target_account_id, created_at)
SELECT {pick_account}, {pick_account}, {_ts_sql(str(DAY_MS // 4))}
FROM generate_series(1::bigint, {counts.follows}) g
ON CONFLICT DO NOTHING;
INSERT INTO favourites (account_id, status_id, created_at)
SELECT {pick_account}, {_snowflake_sql(f"{DAY_MS // 2} + s * 1000", "s")}, {_ts_sql(f"{DAY_MS} + g")}
FROM (SELECT g, floor(random() * {counts.statuses})::bigint AS s
      FROM generate_series(1::bigint, {counts.favourites}) g) picks
ON CONFLICT DO NOTHING;
INSERT INTO notifications (activity_id, activity_type, created_at, updated_at, account_id,
                           from_account_id, type)
SELECT f.id, 'Favourite', f.created_at, f.created_at, s.account_id, f.account_id, 'favourite'
FROM favourites f JOIN statuses s ON s.id = f.status_id
ORDER BY f.id LIMIT {counts.notifications};
UPDATE account_stats st SET statuses_count = c.n, last_status_at = c.last
FROM (SELECT account_id, count(*) AS n, max(created_at) AS last FROM statuses GROUP BY account_id) c
WHERE c.account_id = st.account_id;
VACUUM ANALYZE;
"""
    server.psql(sql, db)
    return counts


def apply_day_churn(
    server: SqlRunner, db: str, day: int, *, seed: float = 0.5,
    grow: float = 0.02, delete: float = 0.003, update_accounts: float = 0.05,
) -> DayChurn:  # fmt: skip
    """One day of activity (see the module docstring); `day` numbers start at 1."""
    statuses = int(server.psql("SELECT count(*) FROM statuses", db))
    favourites = int(server.psql("SELECT count(*) FROM favourites", db))
    notifications = int(server.psql("SELECT count(*) FROM notifications", db))
    accounts = int(server.psql("SELECT count(*) FROM accounts", db))
    new_statuses = max(1, round(statuses * grow))
    new_favourites = max(1, round(favourites * grow))
    new_notifications = max(1, round(notifications * grow))
    doomed = max(1, round(statuses * delete))
    touched = max(1, round(accounts * update_accounts))
    status_ms = f"{(day + 1) * DAY_MS} + g * 1000"
    sql = f"""
SELECT setseed({seed} / {day + 1});
BEGIN;
CREATE TEMP TABLE day_accounts AS SELECT id, row_number() OVER (ORDER BY id) - 1 AS n FROM accounts;
ALTER TABLE day_accounts ADD PRIMARY KEY (n);
CREATE TEMP TABLE doomed AS
    SELECT id FROM statuses ORDER BY random() LIMIT {doomed};
ANALYZE day_accounts, doomed;
DELETE FROM notifications n USING favourites f, doomed d
    WHERE n.activity_type = 'Favourite' AND n.activity_id = f.id AND f.status_id = d.id;
DELETE FROM statuses WHERE id IN (SELECT id FROM doomed);
INSERT INTO statuses
SELECT {_snowflake_sql(status_ms, "g")}, 'https://snapstore.test/users/x/statuses/' ||
       {_snowflake_sql(status_ms, "g")}, {_text_sql("g")}, a.id, NULL, 0, 'en',
       {_ts_sql(status_ms)}, {_ts_sql(status_ms)}
FROM (SELECT g, floor(random() * {accounts})::bigint AS pick
      FROM generate_series(1::bigint, {new_statuses}) g) p
JOIN day_accounts a ON a.n = p.pick;
CREATE TEMP TABLE live_statuses AS
    SELECT id, account_id, row_number() OVER (ORDER BY id) - 1 AS n FROM statuses;
ALTER TABLE live_statuses ADD PRIMARY KEY (n);
ANALYZE live_statuses;
INSERT INTO favourites (account_id, status_id, created_at)
SELECT a.id, s.id, {_ts_sql(f"{(day + 1) * DAY_MS} + p.g")}
FROM (SELECT g, floor(random() * {accounts})::bigint AS pa,
             floor(random() * {statuses - doomed + new_statuses})::bigint AS ps
      FROM generate_series(1::bigint, {new_favourites}) g) p
JOIN day_accounts a ON a.n = p.pa JOIN live_statuses s ON s.n = p.ps
ON CONFLICT DO NOTHING;
INSERT INTO notifications (activity_id, activity_type, created_at, updated_at, account_id,
                           from_account_id, type)
SELECT f.id, 'Favourite', f.created_at, f.created_at, s.account_id, f.account_id, 'favourite'
FROM favourites f JOIN statuses s ON s.id = f.status_id
ORDER BY f.id DESC LIMIT {new_notifications};
UPDATE account_stats SET
    statuses_count = statuses_count + 1 + floor(random() * 5)::int,
    followers_count = followers_count + floor(random() * 3)::int,
    last_status_at = {_ts_sql(f"{(day + 1) * DAY_MS}")}
WHERE account_id IN (SELECT id FROM accounts ORDER BY random() LIMIT {touched});
COMMIT;
VACUUM ANALYZE;
"""
    server.psql(sql, db)
    favourites_after = int(server.psql("SELECT count(*) FROM favourites", db))
    notifications_after = int(server.psql("SELECT count(*) FROM notifications", db))
    return DayChurn(
        day=day,
        statuses_added=new_statuses,
        statuses_deleted=doomed,
        favourites_added=favourites_after - favourites,  # net of cascaded deletions
        notifications_added=notifications_after - notifications,
        accounts_updated=touched,
    )
