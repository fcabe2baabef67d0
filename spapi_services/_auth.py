"""Login with Amazon: the app's credentials and the access-token cache.

One token exchange at a time, however many requests start at once; the token is reused
until a minute before it expires.  Refusals (``invalid_grant``, ``invalid_client``) fail
at once; an unreachable or failing token endpoint is retried first, through the same
retry loop and under the same policy as the API call that needed the token.  Neither
the client secret, the refresh token nor an access token ever reaches a log line, a repr
or an exception message.
"""

from __future__ import annotations

import asyncio
import copy as _copy
import hashlib
import json
import logging
import math
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlencode

import aiohttp
import attrs
from yarl import URL

from ._retry import (
    AttemptFailed,
    Deadline,
    Failure,
    RetryNote,
    RetryPolicy,
    classify_exception,
    parse_retry_after,
    run_attempts,
)
from ._sender import BodyTooLarge, RawResponse, Sender
from ._text import printable
from ._timing import Timer
from .errors import AuthenticationError, TokenEndpointUnreachableError

__all__ = [
    "DEFAULT_TOKEN_URL",
    "AccessToken",
    "AccessTokenProvider",
    "LwaCredentials",
    "MemoryTokenCache",
    "TokenCache",
    "TokenSource",
    "token_key",
]

DEFAULT_TOKEN_URL = "https://api.amazon.com/auth/o2/token"

#: An async callable returning an access token (or a restricted data token).
AccessTokenProvider = Callable[[], Awaitable[str]]

_log = logging.getLogger("spapi_services")

_ENV = ("SPAPI_CLIENT_ID", "SPAPI_CLIENT_SECRET", "SPAPI_REFRESH_TOKEN")
_EXPIRY_MARGIN = 60.0
#: Token-endpoint answers below 500 that are worth another try (throttled, timed out).
_TRANSIENT_STATUSES = frozenset({408, 429})
_DEFAULT_EXPIRES_IN = 3600.0


@attrs.frozen(repr=False)
class LwaCredentials:
    """An LWA application's client id and secret, and a selling partner's refresh token."""

    #: Your Login with Amazon application's client id (``amzn1.application-oa2-client...``).
    client_id: str = attrs.field(validator=attrs.validators.instance_of(str))
    #: That application's client secret; never shown in a repr or a log.
    client_secret: str = attrs.field(validator=attrs.validators.instance_of(str))
    #: The refresh token the selling partner gave your application when they authorised it
    #: (``Atzr|...``); never shown in a repr or a log.
    refresh_token: str = attrs.field(validator=attrs.validators.instance_of(str))

    def __attrs_post_init__(self) -> None:
        for name in ("client_id", "client_secret", "refresh_token"):
            if not getattr(self, name).strip():
                raise ValueError(f"LwaCredentials.{name}: must not be empty")

    def __repr__(self) -> str:
        return f"LwaCredentials(client_id={self.client_id!r}, client_secret=***, refresh_token=***)"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> LwaCredentials:
        """Read ``SPAPI_CLIENT_ID``, ``SPAPI_CLIENT_SECRET`` and ``SPAPI_REFRESH_TOKEN``."""
        env = os.environ if environ is None else environ
        missing = [name for name in _ENV if not env.get(name, "").strip()]
        if missing:
            raise ValueError(
                "LWA credentials not found: set the environment variable"
                f"{'s' if len(missing) > 1 else ''} {', '.join(missing)}"
            )
        return cls(*(env[name].strip() for name in _ENV))


@attrs.frozen
class AccessToken:
    """An LWA access token and how many seconds it may still be used for.

    ``expires_in`` already leaves the safety margin out: a token is handed out only while
    it has a good while to live (a minute, or half its life when that is shorter).
    """

    #: The token sent in the ``x-amz-access-token`` header; not in the repr.
    value: str = attrs.field(repr=False)
    #: Seconds it may still be used for, the safety margin already taken off.
    expires_in: float


@runtime_checkable
class TokenCache(Protocol):
    """Where a client keeps access tokens, so that one exchange serves many requests.

    ``key`` names one application and refresh token (a hash: the secret itself is never
    a key).  A store shared by several processes makes one exchange serve all of them.
    """

    async def get_or_exchange(
        self, key: str, exchange: Callable[[], Awaitable[AccessToken]]
    ) -> AccessToken:
        """The token stored under ``key``, or the result of calling ``exchange`` once for
        every caller that asks while it runs (and storing it for ``expires_in`` seconds)."""
        ...

    async def invalidate(self, key: str, token: str) -> None:
        """Forget ``token`` if it is still the one stored under ``key`` (the API refused it)."""
        ...


class MemoryTokenCache:
    """Access tokens in this process's memory: one exchange at a time per key.

    Callers waiting on an exchange that fails share its failure rather than each asking
    (and being refused) in turn.  One instance may serve several clients of the same
    event loop.  ``clock`` is a monotonic clock (default :func:`time.monotonic`).
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._tokens: dict[str, tuple[str, float]] = {}  # key -> (token, usable until)
        self._locks: dict[str, asyncio.Lock] = {}
        self._finished: dict[str, int] = {}  # exchanges ended per key, well or badly
        self._failures: dict[str, AuthenticationError] = {}  # the last one's, if it failed

    def __repr__(self) -> str:
        return f"MemoryTokenCache({len(self._tokens)} tokens)"

    async def get_or_exchange(
        self, key: str, exchange: Callable[[], Awaitable[AccessToken]]
    ) -> AccessToken:
        """See :meth:`TokenCache.get_or_exchange`."""
        found = self._usable(key)
        if found is not None:
            return found
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        finished_before = self._finished.get(key, 0)
        async with lock:
            found = self._usable(key)  # another task may have exchanged while we waited
            if found is not None:
                return found
            failure = self._failures.get(key)
            if failure is not None and self._finished.get(key, 0) != finished_before:
                # The exchange we queued behind has just failed: share its answer.
                raise _shared(failure)
            try:
                token = await exchange()
            except AuthenticationError as exc:
                self._failures[key] = exc
                self._finished[key] = self._finished.get(key, 0) + 1
                raise
            self._failures.pop(key, None)
            self._finished[key] = self._finished.get(key, 0) + 1
            self._tokens[key] = (token.value, self._clock() + token.expires_in)
            return token

    async def invalidate(self, key: str, token: str) -> None:
        """See :meth:`TokenCache.invalidate`."""
        stored = self._tokens.get(key)
        if stored is not None and stored[0] == token:
            del self._tokens[key]

    def _usable(self, key: str) -> AccessToken | None:
        stored = self._tokens.get(key)
        if stored is None:
            return None
        left = stored[1] - self._clock()
        return AccessToken(stored[0], left) if left > 0 else None


def token_key(credentials: LwaCredentials) -> str:
    """The cache key of an application's token for one seller: a hash, never the secret."""
    material = f"{credentials.client_id}\0{credentials.refresh_token}".encode()
    return "lwa:" + hashlib.sha256(material).hexdigest()


class TokenSource:
    """Hands out a valid access token, exchanging the refresh token when needed.

    The exchange goes out through the client's sender and retries through the same loop
    as API calls, under the calling request's :class:`RetryPolicy`, timeout and deadline.
    Tokens are kept in a :class:`TokenCache` (this process's memory unless the client was
    given another) and, once had, in this object until their time is up.  Expiry is read
    on the timer's monotonic clock: a change of the wall clock cannot revive a token.
    """

    def __init__(
        self,
        credentials: LwaCredentials | None,
        *,
        token_url: str = DEFAULT_TOKEN_URL,
        provider: AccessTokenProvider | None = None,
        sender: Sender,
        timer: Timer,
        user_agent: str | None = None,
        cache: TokenCache | None = None,
    ) -> None:
        if credentials is None and provider is None:
            raise ValueError("credentials: required unless access_token_provider is given")
        self._credentials = credentials
        self._token_url = URL(token_url)
        self._provider = provider
        self._sender = sender
        self._timer = timer
        self._cache: TokenCache = MemoryTokenCache(clock=timer.now) if cache is None else cache
        self._key = token_key(credentials) if credentials is not None else ""
        self._headers = {
            "Content-Type": "application/x-www-form-urlencoded;charset=UTF-8",
            "Accept": "application/json",
        }
        if user_agent:
            self._headers["User-Agent"] = user_agent
        self._token: str | None = None
        self._expires_at = 0.0
        self.exchanges = 0
        """How many token requests have been sent (for tests and diagnostics)."""
        self.on_exchange: Callable[[BaseException | None], None] | None = None
        """Told the end of every token request: ``None`` when it gave a token, else the
        error (for metrics)."""

    def __repr__(self) -> str:
        return f"TokenSource(token_url={str(self._token_url)!r}, cached={self._token is not None})"

    async def get(
        self,
        policy: RetryPolicy,
        *,
        attempt_seconds: float = 30.0,
        deadline: Deadline | None = None,
    ) -> str:
        """A token valid for a while yet (exchanging, or waiting on an exchange, if needed)."""
        if self._provider is not None:
            # A caller-managed token is asked for on every call: the caller owns its
            # lifetime (and may cache it, or hand out a restricted data token).
            return await self._provider()
        token = self._valid()
        if token is not None:
            return token
        had = await self._cache.get_or_exchange(
            self._key, lambda: self._exchange(policy, attempt_seconds, deadline)
        )
        self._token = had.value
        self._expires_at = self._timer.now() + had.expires_in
        return had.value

    def cached(self) -> str | None:
        """The token had already if it is still good, without waiting (``None`` otherwise,
        and always ``None`` with a caller's provider, which is asked on every request)."""
        return None if self._provider is not None else self._valid()

    async def invalidate(self, token: str) -> None:
        """Forget ``token`` here and in the cache (the API said it is no good)."""
        if self._token == token:
            self._token = None
            self._expires_at = 0.0
        if self._provider is None:
            await self._cache.invalidate(self._key, token)

    def _valid(self) -> str | None:
        if self._token is not None and self._timer.now() < self._expires_at:
            return self._token
        return None

    async def _exchange(
        self, policy: RetryPolicy, attempt_seconds: float, deadline: Deadline | None
    ) -> AccessToken:
        creds = self._credentials
        if creds is None:  # only a provider's client has none, and it never exchanges
            raise RuntimeError("no LWA credentials to exchange")
        form = urlencode(
            {
                "grant_type": "refresh_token",
                "refresh_token": creds.refresh_token,
                "client_id": creds.client_id,
                "client_secret": creds.client_secret,
            }
        ).encode()

        async def attempt() -> AccessToken:
            try:
                token = self._accept(await self._post(form, attempt_seconds, deadline))
            except AttemptFailed as failed:
                self._exchanged(failed.error)
                raise
            except AuthenticationError as exc:
                self._exchanged(exc)
                raise
            self._exchanged(None)
            return token

        return await run_attempts(
            attempt,
            policy=policy,
            # Asking for a token again is harmless: the refresh token stays valid.
            idempotent=True,
            timer=self._timer,
            deadline=deadline,
            on_retry=_log_retry,
        )

    async def _post(
        self, form: bytes, attempt_seconds: float, deadline: Deadline | None
    ) -> RawResponse:
        self.exchanges += 1
        remaining = None if deadline is None else deadline.remaining(self._timer)
        seconds = attempt_seconds
        if remaining is not None:
            seconds = max(min(attempt_seconds, remaining), 1e-3)
        try:
            raw = await self._sender("POST", self._token_url, self._headers, form, seconds)
        except (aiohttp.ClientError, TimeoutError, BodyTooLarge) as exc:
            if isinstance(exc, BodyTooLarge):
                raise AttemptFailed(
                    Failure.SERVER,
                    AuthenticationError("Login with Amazon answered with an oversized body"),
                    reason="oversized answer",
                ) from None
            failure, what, _ = classify_exception(exc)
            error = TokenEndpointUnreachableError(
                f"Login with Amazon failed: could not reach {self._host()} ({what})",
                host=self._host(),
            )
            # The network, never the secret: aiohttp's errors do not carry the form.
            error.__cause__ = exc
            raise AttemptFailed(failure, error, reason=what) from exc
        if raw.status != 200:
            data = _json_or_none(raw.body)
            if raw.status < 500 and raw.status not in _TRANSIENT_STATUSES:
                raise AttemptFailed(Failure.FINAL, _refusal(raw.status, data), reason="refused")
            raise AttemptFailed(
                Failure.SERVER,
                AuthenticationError(
                    f"Login with Amazon failed: {self._host()} answered HTTP {raw.status}",
                    status_code=raw.status,
                ),
                reason=f"HTTP {raw.status}",
                retry_after=parse_retry_after(raw.headers.get("Retry-After")),
            )
        return raw

    def _exchanged(self, error: BaseException | None) -> None:
        if self.on_exchange is not None:
            self.on_exchange(error)

    def _host(self) -> str:
        return self._token_url.host or str(self._token_url)

    def _accept(self, raw: RawResponse) -> AccessToken:
        data = _json_or_none(raw.body)
        if not isinstance(data, dict) or not isinstance(data.get("access_token"), str):
            raise AuthenticationError("Login with Amazon answered 200 without an access token")
        try:
            expires_in = float(data.get("expires_in", _DEFAULT_EXPIRES_IN))
        except (TypeError, ValueError):
            expires_in = _DEFAULT_EXPIRES_IN
        if not math.isfinite(expires_in) or expires_in <= 0:
            expires_in = _DEFAULT_EXPIRES_IN
        _log.debug("LWA access token obtained, valid for %.0fs", expires_in)
        # Used until a minute short of expiry; a token that lives a minute or less is
        # still kept for half its life rather than exchanged again on every request.
        return AccessToken(data["access_token"], expires_in - min(_EXPIRY_MARGIN, expires_in / 2))


def _json_or_none(body: bytes) -> Any:
    # An error page may be in any encoding (or none): undecodable bytes are not a crash.
    text = body.decode("utf-8", errors="replace")
    try:
        return json.loads(text) if text.strip() else None
    except ValueError:
        return None


def _log_retry(note: RetryNote) -> None:
    _log.debug("LWA exchange failed (%s); retrying in %.2fs", note.reason, note.delay)


def _shared(failure: AuthenticationError) -> AuthenticationError:
    """A copy of another request's failure, for a request that waited on the same exchange."""
    copy = _copy.copy(failure)  # same class and attributes (errors know how to be copied)
    copy.__cause__ = failure
    copy.__traceback__ = None
    return copy


def _refusal(status: int, data: Any) -> AuthenticationError:
    error = data.get("error") if isinstance(data, dict) else None
    description = data.get("error_description") if isinstance(data, dict) else None
    error = error if isinstance(error, str) else None
    description = description if isinstance(description, str) else None
    shown = f"{error}: {description}" if error and description else error
    detail = printable(shown, 300) if shown else f"HTTP {status}"
    return AuthenticationError(
        f"Login with Amazon refused the token exchange ({detail})",
        error=error,
        error_description=description,
        status_code=status,
    )
