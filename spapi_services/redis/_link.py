"""One Redis connection, a short timeout on everything sent through it, and what to do
when it does not answer.

Redis is a helper here, never a dependency of a call: every command is bounded by a short
timeout, and a command that fails or times out marks the link down.  While it is down the
callers use their in-process stand-ins at once, without asking Redis, and one caller tries
Redis again every ``retry_interval`` seconds.  The first failure of an outage is logged
once at WARNING and the return at INFO, never a line per call.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeout

from .._text import printable

__all__ = ["DEFAULT_TIMEOUT", "RedisLink", "Unavailable", "check_seconds", "text"]

T = TypeVar("T")

_log = logging.getLogger("spapi_services.redis")


#: Seconds any one Redis command may take before the store counts as down (a round trip
#: on a local network takes well under a millisecond; this leaves room for a busy host).
DEFAULT_TIMEOUT = 0.25


class Unavailable(Exception):
    """Redis did not answer in time (or is resting after it did not): use the stand-in."""


def check_seconds(owner: str, name: str, value: float) -> float:
    """``value`` as a positive, finite number of seconds, or a ValueError naming it."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf:
        raise ValueError(f"{owner}: {name} must be a positive number of seconds, got {value!r}")
    return float(value)


def check_prefix(owner: str, prefix: str) -> str:
    """A key prefix: printable, without spaces, not empty."""
    if not isinstance(prefix, str) or not prefix or not prefix.isprintable() or " " in prefix:
        raise ValueError(
            f"{owner}: key_prefix must be a non-empty string without spaces, got {prefix!r}"
        )
    return prefix


def text(value: Any) -> str:
    """A Redis reply as text, whether the client decodes responses or not."""
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisLink:
    """A Redis client with a timeout on every command and a memory of whether it answers.

    ``redis`` is a URL (the link makes the client and closes it) or a
    :class:`redis.asyncio.Redis` (the caller's to close).  ``what`` names, in the log
    lines, what falls back to the process while Redis is away.
    """

    def __init__(
        self,
        redis: str | Redis,
        *,
        owner: str,
        what: str,
        timeout: float | None,
        retry_interval: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if timeout is None:
            timeout = DEFAULT_TIMEOUT
        self.timeout = check_seconds(owner, "timeout", timeout)
        self.retry_interval = check_seconds(owner, "retry_interval", retry_interval)
        if isinstance(redis, str):
            self.client = Redis.from_url(
                redis,
                socket_timeout=self.timeout,
                socket_connect_timeout=self.timeout,
                # The link decides when to try again; redis-py's own retries would only
                # make a dead server take longer to notice.
                retry=Retry(NoBackoff(), 0),
            )
            self._owns_client = True
        elif isinstance(redis, Redis):
            self.client = redis
            self._owns_client = False
        else:
            raise TypeError(
                f"{owner}: redis must be a redis:// URL or a redis.asyncio.Redis, "
                f"got {type(redis).__name__}"
            )
        self.where = _where(self.client)
        self._what = what
        self._clock = clock
        self._down_since: float | None = None
        self._retry_at = 0.0

    def __repr__(self) -> str:
        return f"redis at {self.where}"

    @property
    def answering(self) -> bool:
        """Whether Redis answered the last command sent (``False`` during an outage)."""
        return self._down_since is None

    def script(self, source: str) -> AsyncScript:
        """A Lua script run by its SHA (loaded again by redis-py if Redis lost it)."""
        return self.client.register_script(source)

    async def run(self, command: Callable[[], Awaitable[T]]) -> T:
        """``command``'s answer, or :class:`Unavailable` within the timeout.

        During an outage this raises at once, but for one caller every ``retry_interval``
        seconds, who tries Redis again.
        """
        if self._down_since is not None:
            now = self._clock()
            if now < self._retry_at:
                raise Unavailable
            self._retry_at = now + self.retry_interval  # the others wait for this one's try
        try:
            async with asyncio.timeout(self.timeout):
                answer = await command()
        except (RedisError, OSError, TimeoutError) as exc:
            self._failed(exc)
            raise Unavailable from exc
        if self._down_since is not None:
            self._down_since = None
            _log.info(
                "Redis at %s answers again: %s are shared through it again", self.where, self._what
            )
        return answer

    async def aclose(self) -> None:
        """Close the client if the link made it."""
        if self._owns_client:
            close = getattr(self.client, "aclose", None) or self.client.close  # redis-py 5.0.0
            await close()

    def _failed(self, exc: BaseException) -> None:
        now = self._clock()
        self._retry_at = now + self.retry_interval
        if self._down_since is not None:
            return
        self._down_since = now
        if isinstance(exc, TimeoutError | RedisTimeout):
            reason = f"no answer within {self.timeout:g}s"
        else:
            reason = type(exc).__name__
        _log.warning(
            "Redis at %s failed (%s): %s fall back to this process until it answers again "
            "(tried every %gs)",
            self.where,
            printable(reason, 200),
            self._what,
            self.retry_interval,
        )


def _where(client: Redis) -> str:
    """host:port/db (or the socket path) of a client: never its password."""
    kwargs = client.connection_pool.connection_kwargs
    if "path" in kwargs:
        place = str(kwargs["path"])
    else:
        place = f"{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}"
    return f"{place}/{kwargs.get('db', 0)}"
