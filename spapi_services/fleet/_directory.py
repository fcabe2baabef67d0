"""Who the sellers are: a seller id mapped to its refresh token and marketplaces.

The fleet asks a :class:`SellerDirectory` for the ids to schedule and, when a sync
starts, for the seller's :class:`Seller` record.  Plug in your own store by writing the
two methods; :class:`MemorySellerDirectory` serves tests, :class:`PostgresSellerDirectory`
keeps sellers in the fleet's database with their refresh tokens sealed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol, runtime_checkable

import attrs

from .._client import Region
from .._validation import check_id
from ..sync._postgres import DEFAULT_SCHEMA, Pool, Reconnecting, check_schema, connect_pool
from ._schema import migrate_all
from ._secrets import DirectoryKey, DirectoryKeyError

__all__ = ["MemorySellerDirectory", "PostgresSellerDirectory", "Seller", "SellerDirectory"]


def _marketplaces(value: Iterable[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        raise TypeError("marketplace_ids: expected a list of marketplace ids, not one string")
    ids = tuple(value)
    if not ids:
        raise ValueError("marketplace_ids: give at least one marketplace id")
    for index, item in enumerate(ids):
        check_id(f"marketplace_ids[{index}]", item)
    if len(set(ids)) != len(ids):
        raise ValueError("marketplace_ids: a marketplace is listed twice")
    return ids


def _region(value: Region | str) -> Region:
    if isinstance(value, Region):
        return value
    try:
        return Region[str(value).upper()]
    except KeyError:
        raise ValueError(f"region: must be one of NA, EU, FE, got {value!r}") from None


def _token(value: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("refresh_token: must be a non-empty string")
    return value.strip()


@attrs.frozen(kw_only=True)
class Seller:
    """A selling partner the fleet syncs: its id, refresh token and marketplaces.

    ``seller_id`` is yours to choose (Amazon's merchant id is a good one): it keys the
    seller's rows in the mirror, its usage plans in Redis and its status.  ``region``
    picks the SP-API endpoint.  A seller with ``enabled=False`` is kept but not synced.
    The refresh token never appears in a repr.
    """

    seller_id: str = attrs.field(validator=lambda _, __, v: check_id("seller_id", v))
    refresh_token: str = attrs.field(converter=_token, repr=False)
    marketplace_ids: tuple[str, ...] = attrs.field(converter=_marketplaces)
    region: Region = attrs.field(default=Region.NA, converter=_region)
    enabled: bool = True


@runtime_checkable
class SellerDirectory(Protocol):
    """Where the fleet finds its sellers.  Both methods may be called from many tasks."""

    async def seller_ids(self) -> list[str]:
        """The ids of the sellers to sync (enabled ones only)."""
        ...

    async def get(self, seller_id: str) -> Seller | None:
        """The seller with this id, or ``None`` if there is none."""
        ...


class MemorySellerDirectory:
    """Sellers held in this process (tests, or a fleet configured from code)."""

    def __init__(self, sellers: Iterable[Seller] = ()) -> None:
        self._sellers = {s.seller_id: s for s in sellers}

    def __repr__(self) -> str:
        return f"MemorySellerDirectory({len(self._sellers)} sellers)"

    async def seller_ids(self) -> list[str]:
        """The ids of the enabled sellers, sorted."""
        return sorted(s.seller_id for s in self._sellers.values() if s.enabled)

    async def get(self, seller_id: str) -> Seller | None:
        """The seller put under this id (enabled or not), or ``None``."""
        return self._sellers.get(seller_id)

    async def put(self, seller: Seller) -> None:
        """Add a seller, or replace the one with its id."""
        self._sellers[seller.seller_id] = seller

    async def remove(self, seller_id: str) -> bool:
        """Forget a seller; whether it was there."""
        return self._sellers.pop(seller_id, None) is not None


class PostgresSellerDirectory:
    """Sellers in the fleet's PostgreSQL (table ``fleet_sellers``), tokens sealed.

    Each refresh token is sealed with AES-256-GCM under ``key`` (a :class:`DirectoryKey`
    or its text) before it is written, bound to its seller; the database never holds one
    in clear.  With a ring of keys the first seals and all open: put a new key first,
    then :meth:`reseal` to move every token to it.

    :param database: a ``postgresql://`` URL (a small pool is opened on first use and
        closed by :meth:`aclose`) or an asyncpg pool of yours.
    :param key: the directory key; ``None`` lists the sellers (:meth:`seller_ids`, enough
        to read the fleet's status) but opens and seals no token: :meth:`get`,
        :meth:`put` and :meth:`reseal` then raise ``DirectoryKeyError``.
    :param reconnect_timeout: how long a read (or :meth:`put`) is tried again on a new
        connection while the database is away (restarting, failing over) before its
        error is raised.
    """

    def __init__(
        self,
        database: str | Pool,
        *,
        key: DirectoryKey | str | bytes | Sequence[str | bytes] | None,
        schema: str = DEFAULT_SCHEMA,
        reconnect_timeout: float = 30.0,
    ) -> None:
        if (
            isinstance(reconnect_timeout, bool)
            or not isinstance(reconnect_timeout, int | float)
            or not 0 <= reconnect_timeout < float("inf")
        ):
            raise ValueError(
                f"reconnect_timeout: must be a number of seconds, got {reconnect_timeout!r}"
            )
        self.reconnect_timeout = float(reconnect_timeout)
        self._key_: DirectoryKey | None
        if key is None or isinstance(key, DirectoryKey):
            self._key_ = key
        elif isinstance(key, str | bytes):
            self._key_ = DirectoryKey(key)
        else:
            self._key_ = DirectoryKey(*key)
        self.schema = check_schema(schema)
        self._database = database
        self._pool: Pool | None = None
        self._ready = False

    def __repr__(self) -> str:
        return f"PostgresSellerDirectory(schema={self.schema!r}, key={self._key_!r})"

    @property
    def _key(self) -> DirectoryKey:
        if self._key_ is None:
            raise DirectoryKeyError(
                "directory_key: needed to open or seal the sellers' refresh tokens (set "
                "SPAPI_FLEET_DIRECTORY_KEY); without it the directory only lists sellers"
            )
        return self._key_

    async def _db(self) -> Reconnecting:
        if self._pool is None:
            if isinstance(self._database, str):
                # No floor: asyncpg would keep restoring it, a traceback in the log each
                # time, for as long as the database is away.
                self._pool = await connect_pool(self._database, min_size=0, max_size=2)
            else:
                self._pool = self._database
        pool = self._pool
        db = Reconnecting(pool, self.reconnect_timeout, what="the seller directory")
        if not self._ready:
            await db.retry(lambda: migrate_all(pool, self.schema))
            self._ready = True
        return db

    async def aclose(self) -> None:
        """Close the pool if the directory opened it."""
        pool, self._pool = self._pool, None
        self._ready = False
        if pool is not None and pool is not self._database:
            await pool.close()

    async def seller_ids(self) -> list[str]:
        """The ids of the enabled sellers in the table, sorted."""
        db = await self._db()
        rows = await db.fetch(
            f"SELECT seller_id FROM {self.schema}.fleet_sellers WHERE enabled ORDER BY seller_id"
        )
        return [row[0] for row in rows]

    async def get(self, seller_id: str) -> Seller | None:
        """The seller with this id, its refresh token opened, or ``None``.

        A token sealed under a key no longer in the ring, or bound to another seller
        id, raises ``DirectoryKeyError`` rather than give a wrong token.
        """
        key = self._key
        db = await self._db()
        row = await db.run(
            lambda conn: conn.fetchrow(
                f"SELECT seller_id, refresh_token, marketplace_ids, region, enabled"
                f" FROM {self.schema}.fleet_sellers WHERE seller_id = $1",
                seller_id,
            )
        )
        if row is None:
            return None
        return Seller(
            seller_id=row["seller_id"],
            refresh_token=key.open(row["seller_id"], row["refresh_token"]),
            marketplace_ids=row["marketplace_ids"],
            region=row["region"],
            enabled=row["enabled"],
        )

    async def put(self, seller: Seller) -> None:
        """Add a seller, or replace the one with its id (its token sealed first)."""
        sealed = self._key.seal(seller.seller_id, seller.refresh_token)
        db = await self._db()
        await db.execute(  # the same row whether it lands once or twice: safe to try again
            f"INSERT INTO {self.schema}.fleet_sellers"
            " (seller_id, refresh_token, marketplace_ids, region, enabled)"
            " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (seller_id) DO UPDATE SET"
            " refresh_token = excluded.refresh_token, marketplace_ids = excluded.marketplace_ids,"
            " region = excluded.region, enabled = excluded.enabled, updated_at = now()",
            seller.seller_id,
            sealed,
            list(seller.marketplace_ids),
            seller.region.name,
            seller.enabled,
        )

    async def remove(self, seller_id: str) -> bool:
        """Forget a seller (its mirrored jobs stay); whether it was there."""
        pool = (await self._db()).pool
        gone = await pool.fetchval(
            f"WITH gone AS (DELETE FROM {self.schema}.fleet_sellers WHERE seller_id = $1"
            " RETURNING 1) SELECT count(*) FROM gone",
            seller_id,
        )
        return bool(gone)

    async def reseal(self) -> int:
        """Seal every token again with the ring's first key; how many were resealed."""
        key = self._key
        pool = (await self._db()).pool
        moved = 0
        async with pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                f"SELECT seller_id, refresh_token FROM {self.schema}.fleet_sellers FOR UPDATE"
            )
            for row in rows:
                if key.sealed_with_current(row["refresh_token"]):
                    continue
                token = key.open(row["seller_id"], row["refresh_token"])
                await conn.execute(
                    f"UPDATE {self.schema}.fleet_sellers SET refresh_token = $2,"
                    " updated_at = now() WHERE seller_id = $1",
                    row["seller_id"],
                    key.seal(row["seller_id"], token),
                )
                moved += 1
        return moved
