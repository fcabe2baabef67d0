"""The fleet's webhook endpoints and their deliveries, in PostgreSQL.

:class:`WebhookBook` keeps the endpoints (table ``webhook_endpoints``, each secret sealed
under the directory key, bound to its endpoint), tells how each is doing
(:class:`WebhookStatus`) and sends changes again (:meth:`WebhookBook.redeliver`).  The
deliveries themselves are made by the workers (see :mod:`._relay`).

A message's ``webhook-id`` is ``msg_<mirror id>_<outbox id>``: the row of
``change_outbox`` it carries, so every attempt and every redelivery of one change has the
same id, and two mirrors' messages never share one at a receiver both send to.  The
feed's ``changeId`` (job id and content hash) is in the body, to tell the same change seen
by another publisher.
"""

from __future__ import annotations

import re
import secrets as random_ids
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import attrs

from .._validation import check_id
from ..sync._buyer import BuyerKeyLike, as_keys
from ..sync._postgres import Connection, Pool, Reconnecting
from ..webhooks import WEBHOOK_BUYER_DATA, WebhookEndpoint, WebhookSecretLike
from ..webhooks._signing import as_secrets
from ._secrets import DirectoryKey

__all__ = ["WEBHOOK_CHANNEL_SUFFIX", "WebhookBook", "WebhookStatus", "message_id"]

#: The suffix of the channel that wakes the relays after a redelivery or a new endpoint.
WEBHOOK_CHANNEL_SUFFIX = "_webhooks"

_ENDPOINT_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_MESSAGE_ID = re.compile(r"msg_([0-9a-f]+)_([0-9]+)")


def message_id(mirror_id: str, outbox_id: int) -> str:
    """The ``webhook-id`` of an outbox row's messages."""
    return f"msg_{mirror_id}_{outbox_id}"


def webhook_channel(schema: str) -> str:
    """The channel the relays listen on for redeliveries and endpoint changes."""
    return f"{schema[:50]}{WEBHOOK_CHANNEL_SUFFIX}"


@attrs.frozen(kw_only=True)
class WebhookStatus:
    """One webhook endpoint of the fleet: what it takes, and how its deliveries go.

    ``url`` is shown without its query (which may carry a token).  ``pending`` counts
    the deliveries waiting for an attempt (``in_flight`` of them being attempted now),
    ``delivered`` those delivered and kept (the outbox keeps a change for its retention
    time), ``dead`` those given up (``fleet redeliver`` sends them again).
    ``oldest_pending_at`` is when the oldest pending change was recorded: how far
    behind the endpoint is.  ``last_error`` and ``last_status`` are the latest failed
    attempt's.  ``enabled`` is false once the receiver answered 410 Gone
    (``disabled_reason`` says so); ``paused_until`` is set while the receiver asked to
    slow down.
    """

    endpoint_id: str
    url: str
    seller_id: str | None
    event_types: tuple[str, ...] | None
    buyer_data: str
    enabled: bool
    disabled_reason: str | None = None
    paused_until: datetime | None = None
    pending: int = 0
    in_flight: int = 0
    delivered: int = 0
    dead: int = 0
    oldest_pending_at: datetime | None = None
    last_delivered_at: datetime | None = None
    last_error: str | None = None
    last_status: int | None = None
    last_error_at: datetime | None = None

    def as_json(self) -> dict[str, object]:
        """The endpoint as JSON-ready data (what ``fleet status --json`` shows)."""

        def when(value: datetime | None) -> str | None:
            return None if value is None else value.isoformat()

        return {
            "endpointId": self.endpoint_id,
            "url": self.url,
            "sellerId": self.seller_id,
            "eventTypes": None if self.event_types is None else list(self.event_types),
            "buyerData": self.buyer_data,
            "enabled": self.enabled,
            "disabledReason": self.disabled_reason,
            "pausedUntil": when(self.paused_until),
            "pending": self.pending,
            "inFlight": self.in_flight,
            "delivered": self.delivered,
            "dead": self.dead,
            "oldestPendingAt": when(self.oldest_pending_at),
            "lastDeliveredAt": when(self.last_delivered_at),
            "lastError": self.last_error,
            "lastStatus": self.last_status,
            "lastErrorAt": when(self.last_error_at),
        }


def check_endpoint_id(value: str) -> str:
    """An endpoint id: 1 to 64 letters, digits, ``_``, ``.`` or ``-``."""
    if not isinstance(value, str) or not _ENDPOINT_ID.fullmatch(value):
        raise ValueError(
            f"endpoint_id: must be 1 to 64 letters, digits, '_', '.' or '-', got {value!r}"
        )
    return value


def new_endpoint_id() -> str:
    """A new random endpoint id."""
    return f"ep_{random_ids.token_hex(6)}"


class WebhookBook:
    """The fleet's endpoints and deliveries (tables ``webhook_endpoints`` and
    ``webhook_deliveries``), secrets sealed with ``key``."""

    def __init__(
        self,
        pool: Pool,
        schema: str,
        key: DirectoryKey | None,
        *,
        buyer_key: BuyerKeyLike | None = None,
        reconnect_timeout: float = 30.0,
    ) -> None:
        self._key_ = key
        self._buyer_key = as_keys(buyer_key)
        self.schema = schema
        self._db = Reconnecting(pool, reconnect_timeout, what="the fleet's webhooks")
        self._endpoints = f"{schema}.webhook_endpoints"
        self._deliveries = f"{schema}.webhook_deliveries"
        self._outbox = f"{schema}.change_outbox"
        self.channel = webhook_channel(schema)

    @property
    def key(self) -> DirectoryKey:
        """The directory key, which seals and opens the endpoints' secrets."""
        if self._key_ is None:
            from ._secrets import DirectoryKeyError

            raise DirectoryKeyError(
                "directory_key: needed to seal or open webhook secrets (set "
                "SPAPI_FLEET_DIRECTORY_KEY, the same in every process)"
            )
        return self._key_

    async def mirror_id(self) -> str:
        """This mirror's id (in every ``webhook-id``)."""
        value: str = await self._db.fetchval(
            f"SELECT value FROM {self.schema}.mirror_meta WHERE name = 'mirror_id'"
        )
        return value

    # --- endpoints ------------------------------------------------------------------------

    async def put(
        self,
        url: str,
        secrets: WebhookSecretLike | Iterable[WebhookSecretLike],
        *,
        endpoint_id: str,
        seller_id: str | None = None,
        event_types: Iterable[str] | None = None,
        buyer_data: str = "keep",
    ) -> WebhookEndpoint:
        """Add an endpoint, or replace the one with its id (enabled again); it.

        Everything is checked (the URL, the secret, the seller id) before anything is
        written.  The secret is sealed before it reaches the database.
        """
        check_endpoint_id(endpoint_id)
        if seller_id is not None:
            check_id("seller_id", seller_id)
        chosen = as_secrets(secrets, "secret")
        endpoint = self._make(url, chosen, endpoint_id, seller_id, event_types, buyer_data)
        sealed = self.key.seal_secret(endpoint_id, " ".join(s.export() for s in chosen))
        types = None if endpoint.event_types is None else sorted(endpoint.event_types)
        await self._db.execute(
            f"INSERT INTO {self._endpoints} (endpoint_id, url, secret, seller_id, event_types,"
            " buyer_data) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (endpoint_id) DO UPDATE"
            " SET url = excluded.url, secret = excluded.secret, seller_id = excluded.seller_id,"
            " event_types = excluded.event_types, buyer_data = excluded.buyer_data,"
            " enabled = true, disabled_reason = NULL, paused_until = NULL, updated_at = now()",
            endpoint_id,
            endpoint.url,
            sealed,
            seller_id,
            types,
            buyer_data,
        )
        await self._wake()
        return endpoint

    async def remove(self, endpoint_id: str) -> bool:
        """Remove an endpoint and its deliveries; whether it was there."""
        gone = await self._db.fetchval(
            f"WITH gone AS (DELETE FROM {self._endpoints} WHERE endpoint_id = $1 RETURNING 1)"
            " SELECT count(*) FROM gone",
            endpoint_id,
        )
        return bool(gone)

    async def endpoints(self) -> list[WebhookEndpoint]:
        """Every enabled and disabled endpoint, secrets opened (for sending)."""
        rows = await self._db.fetch(f"SELECT * FROM {self._endpoints} ORDER BY endpoint_id")
        return [self._endpoint(row) for row in rows]

    async def endpoint(self, endpoint_id: str) -> WebhookEndpoint | None:
        """The endpoint with this id, secret opened; ``None`` if there is none."""
        rows = await self._db.fetch(
            f"SELECT * FROM {self._endpoints} WHERE endpoint_id = $1", endpoint_id
        )
        return self._endpoint(rows[0]) if rows else None

    def _endpoint(self, row: Any) -> WebhookEndpoint:
        endpoint_id = row["endpoint_id"]
        opened = self.key.open_secret(endpoint_id, row["secret"]).split()
        return self._make(
            row["url"], opened, endpoint_id, row["seller_id"], row["event_types"], row["buyer_data"]
        )

    def _make(
        self,
        url: str,
        secrets: Sequence[WebhookSecretLike],
        endpoint_id: str,
        seller_id: str | None,
        event_types: Iterable[str] | None,
        buyer_data: str,
    ) -> WebhookEndpoint:
        if buyer_data not in WEBHOOK_BUYER_DATA:
            raise ValueError(
                f"buyer_data: must be one of {', '.join(WEBHOOK_BUYER_DATA)} for a webhook "
                f"endpoint, got {buyer_data!r}"
            )
        if buyer_data == "hash" and self._buyer_key is None:
            raise ValueError(
                "buyer_data: 'hash' needs the fleet's buyer key (buyer_key, or "
                "SPAPI_FLEET_BUYER_KEY), which the hashes are made with"
            )
        return WebhookEndpoint(
            url=url,
            secrets=secrets,
            id=endpoint_id,
            seller_id=seller_id,
            event_types=event_types,
            buyer_data=buyer_data,  # checked above
            buyer_key=self._buyer_key if buyer_data == "hash" else None,
        )

    async def _wake(self) -> None:
        await self._db.execute("SELECT pg_notify($1, 'wake')", self.channel)

    # --- status -------------------------------------------------------------------------

    async def status(self) -> list[WebhookStatus]:
        """Each endpoint and how its deliveries go (no secret is read)."""
        rows = await self._db.fetch(
            f"SELECT e.endpoint_id, e.url, e.seller_id, e.event_types, e.buyer_data,"
            " e.enabled, e.disabled_reason,"
            " CASE WHEN e.paused_until > now() THEN e.paused_until END AS paused_until,"
            " count(d.outbox_id) FILTER (WHERE d.state = 'pending') AS pending,"
            " count(d.outbox_id) FILTER (WHERE d.state = 'pending' AND d.lease_until > now())"
            "  AS in_flight,"
            " count(d.outbox_id) FILTER (WHERE d.state = 'delivered') AS delivered,"
            " count(d.outbox_id) FILTER (WHERE d.state = 'dead') AS dead,"
            " min(d.created_at) FILTER (WHERE d.state = 'pending') AS oldest_pending_at,"
            " max(d.delivered_at) AS last_delivered_at,"
            " (SELECT row(f.last_error, f.last_status, f.last_attempt_at) FROM"
            f"  {self._deliveries} f WHERE f.endpoint_id = e.endpoint_id"
            "  AND f.last_error IS NOT NULL ORDER BY f.last_attempt_at DESC NULLS LAST"
            "  LIMIT 1) AS failure"
            f" FROM {self._endpoints} e LEFT JOIN {self._deliveries} d USING (endpoint_id)"
            " GROUP BY e.endpoint_id ORDER BY e.endpoint_id"
        )
        found = []
        for row in rows:
            failure = row["failure"]
            found.append(
                WebhookStatus(
                    endpoint_id=row["endpoint_id"],
                    url=_origin(row["url"]),
                    seller_id=row["seller_id"],
                    event_types=None if row["event_types"] is None else tuple(row["event_types"]),
                    buyer_data=row["buyer_data"],
                    enabled=row["enabled"],
                    disabled_reason=row["disabled_reason"],
                    paused_until=row["paused_until"],
                    pending=row["pending"],
                    in_flight=row["in_flight"],
                    delivered=row["delivered"],
                    dead=row["dead"],
                    oldest_pending_at=row["oldest_pending_at"],
                    last_delivered_at=row["last_delivered_at"],
                    last_error=None if failure is None else failure[0],
                    last_status=None if failure is None else failure[1],
                    last_error_at=None if failure is None else failure[2],
                )
            )
        return found

    async def backlog(self) -> int:
        """Changes recorded and not yet handed to the endpoints."""
        count: int = await self._db.fetchval(
            f"SELECT count(*) FROM {self._outbox} WHERE relayed_at IS NULL"
        )
        return count

    # --- redelivery -----------------------------------------------------------------------

    async def redeliver(
        self,
        *,
        endpoint_id: str | None = None,
        dead: bool = False,
        message_ids: Sequence[str] = (),
        since: datetime | None = None,
        until: datetime | None = None,
        seller_id: str | None = None,
    ) -> int:
        """Send changes again, each with its ``webhook-id``; how many deliveries.

        ``dead`` sends the dead letters again; ``message_ids`` those changes (by
        ``webhook-id``, delivered or not); ``since`` (and ``until``) every change
        recorded in that time, still in the outbox.  ``endpoint_id`` and ``seller_id``
        narrow it.  An endpoint that takes a change gets it, even one that did not
        exist when the change was recorded; an endpoint disabled by a 410 whose changes
        are sent again is enabled again.  Each delivery starts a fresh schedule.
        """
        if not (dead or message_ids or since is not None):
            raise ValueError("redeliver: say what to send again: dead, message_ids or since")
        if endpoint_id is not None:
            check_endpoint_id(endpoint_id)
            if not await self._db.fetchval(
                f"SELECT count(*) FROM {self._endpoints} WHERE endpoint_id = $1", endpoint_id
            ):
                raise ValueError(f"endpoint_id: no webhook endpoint {endpoint_id!r}")
        outbox_ids = await self._outbox_ids(message_ids) if message_ids else None

        async def work(conn: Connection) -> int:
            execute = conn.fetchval
            count = 0
            if dead:
                count += await execute(
                    f"WITH again AS (UPDATE {self._deliveries} d SET {_AFRESH}"
                    f" FROM {self._outbox} o WHERE o.id = d.outbox_id AND d.state = 'dead'"
                    " AND ($1::text IS NULL OR d.endpoint_id = $1)"
                    " AND ($2::text IS NULL OR o.seller_id = $2) RETURNING d.endpoint_id),"
                    f" enabled AS (UPDATE {self._endpoints} SET enabled = true,"
                    " disabled_reason = NULL, updated_at = now() WHERE NOT enabled"
                    " AND endpoint_id IN (SELECT endpoint_id FROM again) RETURNING 1)"
                    " SELECT count(*) FROM again",
                    endpoint_id,
                    seller_id,
                )
            if outbox_ids is not None or since is not None:
                count += await execute(
                    f"WITH chosen AS (SELECT o.id, e.endpoint_id FROM {self._outbox} o"
                    f" JOIN {self._endpoints} e ON {_TAKES}"
                    " WHERE ($1::text IS NULL OR e.endpoint_id = $1)"
                    " AND ($2::text IS NULL OR o.seller_id = $2)"
                    " AND ($3::bigint[] IS NULL OR o.id = ANY($3))"
                    " AND ($4::timestamptz IS NULL OR o.seen_at >= $4)"
                    " AND ($5::timestamptz IS NULL OR o.seen_at < $5)),"
                    f" again AS (INSERT INTO {self._deliveries} (outbox_id, endpoint_id)"
                    " SELECT id, endpoint_id FROM chosen"
                    f" ON CONFLICT (outbox_id, endpoint_id) DO UPDATE SET {_AFRESH}"
                    " RETURNING endpoint_id),"
                    f" enabled AS (UPDATE {self._endpoints} SET enabled = true,"
                    " disabled_reason = NULL, updated_at = now() WHERE NOT enabled"
                    " AND endpoint_id IN (SELECT endpoint_id FROM again) RETURNING 1)"
                    " SELECT count(*) FROM again",
                    endpoint_id,
                    seller_id,
                    outbox_ids,
                    since,
                    until,
                )
            await conn.execute("SELECT pg_notify($1, 'wake')", self.channel)
            return count

        return await self._db.run(work, transaction=True)

    async def _outbox_ids(self, message_ids: Sequence[str]) -> list[int]:
        mirror = await self.mirror_id()
        ids = []
        for index, text in enumerate(message_ids):
            match = _MESSAGE_ID.fullmatch(text.strip()) if isinstance(text, str) else None
            if match is None:
                raise ValueError(
                    f"message_ids[{index}]: {text!r} is not a webhook-id of the fleet "
                    "(msg_<mirror>_<number>)"
                )
            if match[1] != mirror:
                raise ValueError(
                    f"message_ids[{index}]: {text!r} was sent by another mirror "
                    f"(this one's webhook-ids start msg_{mirror}_)"
                )
            ids.append(int(match[2]))
        return ids


# Which endpoints take an outbox row ``o``: its seller's (or every seller's), its type.
_TAKES = (
    "(e.seller_id IS NULL OR e.seller_id = o.seller_id)"
    " AND (e.event_types IS NULL OR 'service_job.' || o.kind = ANY(e.event_types))"
)
# A delivery sent again: a fresh schedule, no lease, now.
_AFRESH = (
    "state = 'pending', attempts = 0, next_attempt_at = now(), lease_until = NULL,"
    " leased_by = NULL, claim = NULL, delivered_at = NULL"
)


def _origin(url: str) -> str:
    from ..webhooks._endpoint import _redacted

    return _redacted(url)
