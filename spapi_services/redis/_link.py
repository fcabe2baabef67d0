"""One Redis connection, a short timeout on everything sent through it, and what to do
when it does not answer.

Every command sent through a :class:`RedisLink` is bounded, one way: a timeout on the
whole command (``asyncio.timeout``) over a client whose sockets time out too and which
never retries by itself.  A command that fails or times out marks the link down; the
first failure of an outage is logged once at WARNING and the return at INFO, never a
line per call.  Callers then take one of two paths:

* :meth:`RedisLink.run`, for helpers that have an in-process stand-in (usage plans,
  access tokens): while the link is down they use the stand-in at once, without asking
  Redis, and one caller tries Redis again every ``retry_interval`` seconds;
* :meth:`RedisLink.call`, for what has no stand-in (a seller's lock, the task queue, the
  fleet's marks): every call goes to Redis, bounded, and a failure raises a
  :class:`~redis.exceptions.RedisError` the caller handles (a lease keeper retries
  until its deadline; the queue's listener backs off and reconnects).
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
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeout

from .._text import printable

__all__ = [
    "DEFAULT_TIMEOUT",
    "RedisLink",
    "Unavailable",
    "bounded_options",
    "check_seconds",
    "text",
]

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


def bounded_options(timeout: float, *, read_timeout: float | None = None) -> dict[str, Any]:
    """redis-py connection options that bound every socket operation.

    ``timeout`` bounds connecting and each write; ``read_timeout`` (default: ``timeout``)
    each read, which for a blocking command (``XREADGROUP BLOCK``) must outlast its block.
    redis-py's own retries are off: the caller decides when to try again, and a dead
    server is noticed within one timeout instead of several.
    """
    return {
        "socket_timeout": read_timeout if read_timeout is not None else timeout,
        "socket_connect_timeout": timeout,
        "socket_keepalive": True,
        "retry": Retry(NoBackoff(), 0),
    }


def text(value: Any) -> str:
    """A Redis reply as text, whether the client decodes responses or not."""
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisLink:
    """A Redis client with a timeout on every command and a memory of whether it answers.

    ``redis`` is a URL (the link makes the client, its sockets bounded by ``timeout``,
    and closes it) or a :class:`redis.asyncio.Redis` (the caller's to close; each command
    is still bounded by ``timeout``).  ``what`` names, in the log lines, what is served
    through the link, and ``on_outage`` what becomes of it while Redis is away (default:
    it falls back to this process).
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
        on_outage: str | None = None,
    ) -> None:
        if timeout is None:
            timeout = DEFAULT_TIMEOUT
        self.timeout = check_seconds(owner, "timeout", timeout)
        self.retry_interval = check_seconds(owner, "retry_interval", retry_interval)
        if isinstance(redis, str):
            self.client = Redis.from_url(redis, **bounded_options(self.timeout))
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
        self._on_outage = on_outage or (
            "fall back to this process until it answers again "
            f"(tried every {self.retry_interval:g}s)"
        )
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
        seconds, who tries Redis again.  A cancellation of the caller that redis-py lost
        while the command ran is raised once it is over, as in :meth:`call`.
        """
        if self._down_since is not None:
            now = self._clock()
            if now < self._retry_at:
                raise Unavailable
            self._retry_at = now + self.retry_interval  # the others wait for this one's try
        task = asyncio.current_task()
        cancelling = task.cancelling() if task is not None else 0
        try:
            async with asyncio.timeout(self.timeout):
                answer = await command()
        except (RedisError, OSError, TimeoutError) as exc:
            _raise_if_cancelled(task, cancelling)
            self._failed(exc)
            raise Unavailable from exc
        _raise_if_cancelled(task, cancelling)
        self._answered()
        return answer

    async def call(self, command: Callable[[], Awaitable[T]], *, within: float | None = None) -> T:
        """``command``'s answer, within ``within`` seconds (default: the link's timeout), or
        a RedisError.

        Unlike :meth:`run` it always asks Redis, outage or not: for what has no stand-in.
        No answer in time raises :class:`redis.exceptions.TimeoutError`; a refused or
        dropped connection :class:`redis.exceptions.ConnectionError`; Redis's own error
        replies (``NOGROUP``...) come through as they are and say nothing of the link.
        """
        bound = self.timeout if within is None else within
        task = asyncio.current_task()
        cancelling = task.cancelling() if task is not None else 0
        try:
            async with asyncio.timeout(max(bound, 0.001)):
                answer = await command()
        except ResponseError:
            _raise_if_cancelled(task, cancelling)
            self._answered()  # Redis answered, with an error of its own
            raise
        except (RedisError, OSError, TimeoutError) as exc:
            _raise_if_cancelled(task, cancelling)
            self._failed(exc)
            if isinstance(exc, RedisError):
                raise
            if isinstance(exc, TimeoutError):
                raise RedisTimeout(
                    f"Redis at {self.where} did not answer within {bound:g}s"
                ) from exc
            raise RedisConnectionError(
                f"Redis at {self.where} could not be reached ({type(exc).__name__})"
            ) from exc
        _raise_if_cancelled(task, cancelling)
        self._answered()
        return answer

    async def aclose(self) -> None:
        """Close the client if the link made it."""
        if self._owns_client:
            close = getattr(self.client, "aclose", None) or self.client.close  # redis-py 5.0.0
            await close()

    def _answered(self) -> None:
        if self._down_since is not None:
            outage = self._clock() - self._down_since
            self._down_since = None
            _log.info(
                "Redis at %s answers again after %.1fs: %s go through it again",
                self.where,
                outage,
                self._what,
            )

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
            "Redis at %s failed (%s): %s %s",
            self.where,
            printable(reason, 200),
            self._what,
            self._on_outage,
        )


def _raise_if_cancelled(task: asyncio.Task[Any] | None, before: int) -> None:
    """Raise CancelledError if ``task`` was asked to stop since (``before`` requests).

    A cancellation that lands just as a command's write completes can be lost inside
    redis-py (its ``wait_for`` on Python 3.11, CPython issue 86296: the command goes on,
    and returns or times out); the task's own count of requests says it was made, and
    it is honoured here, by :meth:`RedisLink.run` and :meth:`RedisLink.call` alike.
    """
    if task is not None and task.cancelling() > before:
        raise asyncio.CancelledError


def _where(client: Redis) -> str:
    """host:port/db (or the socket path) of a client: never its password."""
    kwargs = client.connection_pool.connection_kwargs
    if "path" in kwargs:
        place = str(kwargs["path"])
    else:
        place = f"{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}"
    return f"{place}/{kwargs.get('db', 0)}"
