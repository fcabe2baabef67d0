"""The fleet's tables, beside the mirror's in the same PostgreSQL schema.

``fleet_sellers``
    The default seller directory (:class:`PostgresSellerDirectory`): each seller's
    sealed refresh token, marketplaces, region and whether it is synced.
``fleet_status``
    What the fleet knows of each seller's syncs: its state, when it last started,
    finished and succeeded, what the last run fetched and how often it was throttled,
    the last error, the mark of credentials Amazon refused, and the fencing token its
    latest run took (the tokens themselves are the mirror's: ``sync_fences``).
"""

from __future__ import annotations

from ..sync._postgres import MIRROR_MIGRATIONS, Migration, Pool, migrate

__all__ = ["FLEET_MIGRATIONS", "migrate_all"]

FLEET_MIGRATIONS = (
    Migration(
        1,
        "sellers and their status",
        """
CREATE TABLE {schema}.fleet_sellers (
    seller_id text PRIMARY KEY,
    refresh_token text NOT NULL,
    marketplace_ids text[] NOT NULL,
    region text NOT NULL DEFAULT 'NA',
    enabled boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE {schema}.fleet_status (
    seller_id text PRIMARY KEY,
    state text NOT NULL,
    worker text,
    started_at timestamptz,
    finished_at timestamptz,
    last_success_at timestamptz,
    runs integer NOT NULL DEFAULT 0,
    failures integer NOT NULL DEFAULT 0,
    jobs_last integer,
    requests_last integer,
    throttled_last integer,
    jobs_total bigint NOT NULL DEFAULT 0,
    throttled_total bigint NOT NULL DEFAULT 0,
    last_error text,
    last_error_at timestamptz,
    refused_token text,
    updated_at timestamptz NOT NULL DEFAULT now()
);
""",
    ),
    Migration(
        2,
        "the fencing token of each seller's latest run",
        "ALTER TABLE {schema}.fleet_status ADD COLUMN fencing_token bigint;",
    ),
)


async def migrate_all(pool: Pool, schema: str) -> None:
    """The mirror's migrations, then the fleet's."""
    await migrate(pool, schema, "mirror", MIRROR_MIGRATIONS)
    await migrate(pool, schema, "fleet", FLEET_MIGRATIONS)
