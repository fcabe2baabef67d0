"""Access tokens kept in Redis: one Login with Amazon exchange per token lifetime, however
many processes and hosts call for the seller.

A process that finds no token takes a lock with a lease (``SET NX PX``) and exchanges; the
lease is renewed while the exchange runs, so a slow exchange keeps it and a dead process
loses it within one lease.  The others poll for the result, starting at 20 ms and backing
off to 200 ms: an exchange happens once an hour and takes one LWA round trip, so a few
cheap reads per waiting process cost nothing, need no second connection (as pub/sub
would) and cannot miss a wake-up; each read also takes the lock if it has been freed, so
a dead owner's place is taken at once.  Within a process one task per key goes to Redis;
the others wait on it in memory.

Only access tokens are stored, never the refresh token or the client secret; with an
``encryption_key`` they are sealed with AES-GCM first.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import hmac
import math
import os
import random
import secrets
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING

from redis.asyncio import Redis

from .._auth import AccessToken, MemoryTokenCache
from ._link import RedisLink, Unavailable, check_prefix, check_seconds, text

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["RedisTokenCache"]

_FIRST_POLL = 0.02
_LAST_POLL = 0.2

# KEYS[1] the token, KEYS[2] the lock; ARGV[1] the caller's id, ARGV[2] the lease in ms,
# ARGV[3] a stored value the caller could not read (to be treated as none).
# Returns {1, value, ms left} if a token is stored; {2} if the caller now holds the lock;
# {0, ms left on the lock} if another process is exchanging.
_CLAIM = """
local value = redis.call('GET', KEYS[1])
if value and value ~= ARGV[3] then
  return {1, value, redis.call('PTTL', KEYS[1])}
end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return {2} end
return {0, redis.call('PTTL', KEYS[2])}
"""

# The owner stores its token (ARGV[1], for ARGV[2] ms) and lets go of the lock (if still
# its own, ARGV[3]).
_STORE = """
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
if redis.call('GET', KEYS[2]) == ARGV[3] then redis.call('DEL', KEYS[2]) end
return 1
"""

# Delete KEYS[1] only if it still holds ARGV[1] (a lock by its owner, a token refused).
_DELETE_IF = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# Extend the lease of KEYS[1] to ARGV[2] ms if ARGV[1] still holds it.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""


class RedisTokenCache:
    """Access tokens in Redis: one token exchange serves every process of a seller.

    Pass one to each :class:`~spapi_services.ServicesClient` (``token_cache=``) of every
    process and host.  ``redis`` is a URL (the cache makes the client and :meth:`aclose`
    closes it) or a :class:`redis.asyncio.Redis` of yours.  Tokens are stored under
    ``{key_prefix}:token:{<key>}`` (``<key>`` a hash of the application and refresh
    token) until a minute before they expire.

    ``encryption_key`` (16, 24 or 32 random bytes, e.g. ``os.urandom(32)``) seals every
    token with AES-GCM before it leaves the process; processes sharing tokens need the same
    key, and a process with another key neither reads nor overwrites their tokens (it
    keeps its own).  ``lease`` is how long a process may exchange before another takes
    over should it die (it is renewed while the exchange runs).

    Every Redis command is bounded by ``timeout`` seconds (default 0.25).  When Redis fails
    the cache goes on in this process's memory (logged once at WARNING), tries Redis again
    every ``retry_interval`` seconds, and uses it again as soon as it answers (logged at
    INFO).

    Any other store can serve instead: implement :class:`~spapi_services.TokenCache`
    (``get_or_exchange`` runs ``exchange`` once for every caller waiting meanwhile and
    keeps the token ``expires_in`` seconds; ``invalidate`` forgets a refused token).
    """

    def __init__(
        self,
        redis: str | Redis,
        *,
        key_prefix: str = "spapi",
        encryption_key: bytes | None = None,
        timeout: float | None = None,
        retry_interval: float = 5.0,
        lease: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        owner = "RedisTokenCache"
        self._prefix = check_prefix(owner, key_prefix)
        self._sealer = None if encryption_key is None else _Sealer(encryption_key)
        self._lease = check_seconds(owner, "lease", lease)
        self._link = RedisLink(
            redis,
            owner=owner,
            what="access tokens",
            timeout=timeout,
            retry_interval=retry_interval,
            clock=clock,
        )
        # One task per key goes to Redis; the others wait on it here.
        self._local = MemoryTokenCache(clock=clock)
        self._claim = self._link.script(_CLAIM)
        self._store = self._link.script(_STORE)
        self._delete_if = self._link.script(_DELETE_IF)
        self._renew = self._link.script(_RENEW)

    def __repr__(self) -> str:
        sealed = "encrypted" if self._sealer is not None else "not encrypted"
        return f"RedisTokenCache({self._link!r}, key_prefix={self._prefix!r}, {sealed})"

    async def __aenter__(self) -> RedisTokenCache:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the Redis client if the cache made it from a URL."""
        await self._link.aclose()

    @property
    def shared(self) -> bool:
        """``True`` while Redis answers; ``False`` while tokens are kept in this process."""
        return self._link.answering

    def key(self, key: str) -> str:
        """The Redis key a token is stored under (its lock adds ``:lock``)."""
        name = f"{self._prefix}:token:{{{key}}}"
        # Tokens sealed with another key (or none) live apart: neither side reads the
        # other's as a miss and overwrites it, to be overwritten in turn.
        return name if self._sealer is None else f"{name}:{self._sealer.key_id}"

    async def get_or_exchange(
        self, key: str, exchange: Callable[[], Awaitable[AccessToken]]
    ) -> AccessToken:
        """See :meth:`TokenCache.get_or_exchange`: across processes through Redis."""
        return await self._local.get_or_exchange(key, lambda: self._shared(key, exchange))

    async def invalidate(self, key: str, token: str) -> None:
        """See :meth:`TokenCache.invalidate`: here and in Redis."""
        await self._local.invalidate(key, token)
        name = self.key(key)
        with contextlib.suppress(Unavailable):
            stored = await self._link.run(lambda: self._link.client.get(name))
            if stored is not None and self._open(name, text(stored)) == token:
                await self._link.run(lambda: self._delete_if(keys=[name], args=[stored]))

    async def _shared(
        self, key: str, exchange: Callable[[], Awaitable[AccessToken]]
    ) -> AccessToken:
        name = self.key(key)
        lock = name + ":lock"
        me = secrets.token_hex(16)
        lease_ms = math.ceil(self._lease * 1000)
        unreadable = ""
        pause = _FIRST_POLL
        while True:
            claim = partial(self._claim, keys=[name, lock], args=[me, lease_ms, unreadable])
            try:
                answer = await self._link.run(claim)
            except Unavailable:
                return await exchange()
            outcome = int(answer[0])
            if outcome == 1:
                value, left_ms = text(answer[1]), int(answer[2])
                token = self._open(name, value)
                if token is not None and left_ms > 0:
                    return AccessToken(token, left_ms / 1000)
                unreadable = value  # another key's, damaged, or kept forever: a miss
                continue
            if outcome == 2:
                return await self._exchange_holding(name, lock, me, exchange)
            # Another process is exchanging: look again soon, no later than its lease ends.
            lease_left = max(int(answer[1]), 0) / 1000
            await asyncio.sleep(min(pause * random.uniform(0.8, 1.2), lease_left + 0.001))
            pause = min(pause * 2, _LAST_POLL)

    async def _exchange_holding(
        self, name: str, lock: str, me: str, exchange: Callable[[], Awaitable[AccessToken]]
    ) -> AccessToken:
        renewing = asyncio.create_task(self._keep_lease(lock, me))
        try:
            token = await exchange()
        except BaseException:
            await _stopped(renewing)
            # Let the next process try at once rather than after the lease.
            with contextlib.suppress(Unavailable):
                await self._link.run(lambda: self._delete_if(keys=[lock], args=[me]))
            raise
        await _stopped(renewing)
        ttl_ms = math.floor(token.expires_in * 1000)
        if ttl_ms > 0:
            value = self._seal(name, token.value)
            with contextlib.suppress(Unavailable):
                await self._link.run(
                    lambda: self._store(keys=[name, lock], args=[value, ttl_ms, me])
                )
        return token

    async def _keep_lease(self, lock: str, me: str) -> None:
        lease_ms = math.ceil(self._lease * 1000)
        while True:
            await asyncio.sleep(self._lease / 3)
            try:
                held = await self._link.run(lambda: self._renew(keys=[lock], args=[me, lease_ms]))
            except Unavailable:
                continue
            if not int(held):
                return  # lost (Redis restarted, or we were too slow): nothing to keep

    def _seal(self, name: str, token: str) -> str:
        if self._sealer is None:
            return "p1:" + token
        return "e1:" + self._sealer.seal(name, token)

    def _open(self, name: str, value: str) -> str | None:
        kind, _, body = value.partition(":")
        if self._sealer is None:
            return body if kind == "p1" else None
        return self._sealer.open(name, body) if kind == "e1" else None


async def _stopped(task: asyncio.Task[None]) -> None:
    """Cancel ``task`` and wait until it has ended (its ending is not ours to raise; a
    cancellation of the caller meanwhile is)."""
    task.cancel()
    await asyncio.wait([task])


class _Sealer:
    """AES-GCM with a random nonce per value, bound to the key it is stored under."""

    def __init__(self, key: bytes) -> None:
        if not isinstance(key, bytes | bytearray) or len(key) not in (16, 24, 32):
            got = f"{len(key)} bytes" if isinstance(key, bytes | bytearray) else type(key).__name__
            raise ValueError(
                f"RedisTokenCache: encryption_key must be 16, 24 or 32 bytes (AES-GCM), got {got}"
            )
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self._aead: AESGCM = AESGCM(bytes(key))
        # Names the key in Redis without giving anything of it away.
        tag = hmac.new(bytes(key), b"spapi-services token cache", hashlib.sha256)
        self.key_id = tag.hexdigest()[:16]

    def __repr__(self) -> str:
        return "_Sealer(***)"

    def seal(self, name: str, token: str) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, token.encode(), name.encode())
        return base64.b64encode(nonce + sealed).decode()

    def open(self, name: str, body: str) -> str | None:
        from cryptography.exceptions import InvalidTag

        try:
            raw = base64.b64decode(body, validate=True)
            return self._aead.decrypt(raw[:12], raw[12:], name.encode()).decode()
        except (InvalidTag, ValueError, binascii.Error):
            return None
