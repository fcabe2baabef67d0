"""Usage plans and access tokens shared through Redis by every process calling for a seller.

Amazon meters each operation per application and selling partner, whichever process or
host the calls come from, and one access token serves them all.  Give every client of
every process the same Redis::

    from spapi_services.redis import RedisRateLimits, RedisTokenCache

    plans = RedisRateLimits("redis://cache.internal:6379/0")
    tokens = RedisTokenCache("redis://cache.internal:6379/0", encryption_key=key)
    async with ServicesClient(credentials, rate_limits=plans, token_cache=tokens) as client:
        ...
    await plans.aclose()
    await tokens.aclose()

Needs redis-py (``pip install "spapi-services[redis]"``) and Redis 5 or later.  Should
Redis fail, calls go on with this process's own buckets and token memory until it
answers again.

Another store plugs in the same way: any object with the methods of
:class:`~spapi_services.UsagePlan` can be ``rate_limits``, and any with those of
:class:`~spapi_services.TokenCache` can be ``token_cache``.
"""

from __future__ import annotations

try:
    import redis.asyncio  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised in a subprocess
    if not (exc.name or "").startswith("redis"):
        raise
    raise ImportError(
        'spapi_services.redis needs redis-py: pip install "spapi-services[redis]"'
    ) from exc

from ._plan import RedisRateLimits
from ._tokens import RedisTokenCache

__all__ = ["RedisRateLimits", "RedisTokenCache"]
