"""The fleet's tables, beside the mirror's in the same PostgreSQL schema.

``fleet_sellers``
    The default seller directory (:class:`PostgresSellerDirectory`): each seller's
    sealed refresh token, marketplaces, region and whether it is synced.
``fleet_status``
    What the fleet knows of each seller's syncs: its state, when it last started,
    finished and succeeded, what the last run fetched and how often it was throttled,
    the last error, the mark of credentials Amazon refused, and the fencing token its
    latest run took (the tokens themselves are the mirror's: ``sync_fences``).
``webhook_endpoints``
    Where the changes go (component ``webhooks``): each endpoint's URL, its signing
    secret sealed under the directory key, the seller it takes (``NULL``: every
    seller), the event types, what it gets of buyers' data, whether it is enabled (a
    410 disables it) and until when it is held back (after a "slow down").
``webhook_deliveries``
    One row per change of the mirror's ``change_outbox`` and endpoint that takes it:
    ``pending`` (with ``next_attempt_at``, and a lease while a worker attempts it),
    ``delivered`` or ``dead``; the attempts made, the last status and error.
"""

from __future__ import annotations

from ..sync._postgres import MIRROR_MIGRATIONS, Migration, Pool, migrate

__all__ = ["FLEET_MIGRATIONS", "WEBHOOK_MIGRATIONS", "migrate_all"]

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


WEBHOOK_MIGRATIONS = (
    Migration(
        1,
        "webhook endpoints and deliveries",
        """
CREATE TABLE {schema}.webhook_endpoints (
    endpoint_id text PRIMARY KEY,
    url text NOT NULL,
    secret text NOT NULL,
    seller_id text,
    event_types text[],
    buyer_data text NOT NULL DEFAULT 'keep',
    enabled boolean NOT NULL DEFAULT true,
    disabled_reason text,
    paused_until timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE {schema}.webhook_deliveries (
    outbox_id bigint NOT NULL REFERENCES {schema}.change_outbox (id) ON DELETE CASCADE,
    endpoint_id text NOT NULL REFERENCES {schema}.webhook_endpoints ON DELETE CASCADE,
    state text NOT NULL DEFAULT 'pending',
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    lease_until timestamptz,
    leased_by text,
    claim uuid,
    last_status integer,
    last_error text,
    last_attempt_at timestamptz,
    delivered_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (outbox_id, endpoint_id)
);
CREATE INDEX webhook_deliveries_due ON {schema}.webhook_deliveries (next_attempt_at)
    WHERE state = 'pending';
CREATE INDEX webhook_deliveries_endpoint ON {schema}.webhook_deliveries (endpoint_id, state);
""",
    ),
)


async def migrate_all(pool: Pool, schema: str) -> None:
    """The mirror's migrations, then the fleet's, then its webhooks'."""
    await migrate(pool, schema, "mirror", MIRROR_MIGRATIONS)
    await migrate(pool, schema, "fleet", FLEET_MIGRATIONS)
    await migrate(pool, schema, "webhooks", WEBHOOK_MIGRATIONS)
