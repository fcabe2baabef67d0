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

Needs redis-py, which the ``redis`` extra installs (without it, importing this module
says the command that adds the extra where the SDK is installed), and Redis 5 or later.
Should Redis fail, calls go on with this process's own buckets and token memory until
it answers again.

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
    from .._extras import missing_extra_message

    raise ImportError(missing_extra_message("redis", "spapi_services.redis (redis-py)")) from exc

from ._plan import RedisRateLimits
from ._tokens import RedisTokenCache

__all__ = ["RedisRateLimits", "RedisTokenCache"]
