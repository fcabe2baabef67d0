"""Login with Amazon: the app's credentials and the access-token cache.

One token exchange at a time, however many requests start at once; the token is reused
until a minute before it expires.  Refusals (``invalid_grant``, ``invalid_client``) fail
at once; an unreachable or failing token endpoint is retried a few times first.  Neither
the client secret, the refresh token nor an access token ever reaches a log line, a repr
or an exception message.
"""

from __future__ import annotations

import asyncio
import copy as _copy
import json
import logging
import os
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiohttp
import attrs
from yarl import URL

from .errors import AuthenticationError, TokenEndpointUnreachableError

__all__ = ["DEFAULT_TOKEN_URL", "AccessTokenProvider", "LwaCredentials", "TokenSource"]

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

    client_id: str = attrs.field(validator=attrs.validators.instance_of(str))
    client_secret: str = attrs.field(validator=attrs.validators.instance_of(str))
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


class TokenSource:
    """Hands out a valid access token, exchanging the refresh token when needed."""

    def __init__(
        self,
        credentials: LwaCredentials | None,
        *,
        token_url: str = DEFAULT_TOKEN_URL,
        provider: AccessTokenProvider | None = None,
        max_retries: int = 3,
        timeout: float = 30.0,
        base_delay: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if credentials is None and provider is None:
            raise ValueError("credentials: required unless access_token_provider is given")
        self._credentials = credentials
        self._token_url = token_url
        self._provider = provider
        self._max_retries = max_retries
        self._timeout = timeout
        self._base_delay = base_delay
        self._clock = clock
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock: asyncio.Lock | None = None
        self._finished = 0  # exchanges ended (each with its retries), well or badly
        self._failure: AuthenticationError | None = None  # how the last one ended, if badly
        self.exchanges = 0
        """How many token exchanges have been made (for tests and diagnostics)."""

    def __repr__(self) -> str:
        return f"TokenSource(token_url={self._token_url!r}, cached={self._token is not None})"

    async def get(self, session: aiohttp.ClientSession) -> str:
        """A token valid for at least another minute."""
        if self._provider is not None:
            # A caller-managed token is asked for on every call: the caller owns its
            # lifetime (and may cache it, or hand out a restricted data token).
            return await self._provider()
        token = self._valid()
        if token is not None:
            return token
        if self._lock is None:
            self._lock = asyncio.Lock()
        finished_before = self._finished
        async with self._lock:
            token = self._valid()  # another task may have refreshed while we waited
            if token is not None:
                return token
            failure = self._failure
            if failure is not None and self._finished != finished_before:
                # The exchange we queued behind has just failed: share its answer rather
                # than have every waiting request ask (and be refused) again in turn.
                raise _shared(failure)
            try:
                token = await self._exchange(session)
            except AuthenticationError as exc:
                self._failure = exc
                self._finished += 1
                raise
            self._failure = None
            self._finished += 1
            return token

    def cached(self) -> str | None:
        """The exchanged token if it is still good, without waiting (``None`` otherwise,
        and always ``None`` with a caller's provider, which is asked on every request)."""
        return None if self._provider is not None else self._valid()

    async def prepare(self, session: aiohttp.ClientSession) -> None:
        """Have an exchanged token ready, so that a later :meth:`get` does not wait.

        A caller's provider is not asked here: it is asked once per request, by ``get``.
        """
        if self._provider is None:
            await self.get(session)

    def invalidate(self, token: str) -> None:
        """Forget ``token`` if it is still the cached one (the API said it is no good)."""
        if self._token == token:
            self._token = None
            self._expires_at = 0.0

    def _valid(self) -> str | None:
        if self._token is not None and self._clock() < self._expires_at:
            return self._token
        return None

    async def _exchange(self, session: aiohttp.ClientSession) -> str:
        creds = self._credentials
        assert creds is not None
        form = {
            "grant_type": "refresh_token",
            "refresh_token": creds.refresh_token,
            "client_id": creds.client_id,
            "client_secret": creds.client_secret,
        }
        attempt = 0
        while True:
            status: int | None = None
            unreachable = False
            try:
                status, data = await self._post(session, form)
            except (aiohttp.ClientError, TimeoutError) as exc:
                unreachable = True
                problem = f"could not reach {self._host()} ({type(exc).__name__})"
            else:
                if status == 200:
                    return self._accept(data)
                if status < 500 and status not in _TRANSIENT_STATUSES:
                    raise _refusal(status, data)
                problem = f"token endpoint answered HTTP {status}"
            if attempt >= self._max_retries and unreachable:
                raise TokenEndpointUnreachableError(
                    f"Login with Amazon failed: {problem} after {attempt + 1} attempts",
                    host=self._host(),
                )
            if attempt >= self._max_retries:
                raise AuthenticationError(
                    f"Login with Amazon failed: {problem} after {attempt + 1} attempts",
                    status_code=status,
                )
            delay = self._base_delay * (2**attempt) * (1 - 0.25 * random.random())
            _log.debug("LWA exchange failed (%s); retrying in %.2fs", problem, delay)
            attempt += 1
            await asyncio.sleep(delay)

    async def _post(
        self, session: aiohttp.ClientSession, form: Mapping[str, str]
    ) -> tuple[int, Any]:
        self.exchanges += 1
        # Never follow a redirect: a 307 would re-post the client secret elsewhere.
        async with session.post(
            self._token_url,
            data=dict(form),
            allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=self._timeout),
        ) as resp:
            text = await resp.text()
        try:
            return resp.status, json.loads(text) if text else None
        except ValueError:
            return resp.status, None

    def _host(self) -> str:
        return URL(self._token_url).host or self._token_url

    def _accept(self, data: Any) -> str:
        if not isinstance(data, dict) or not isinstance(data.get("access_token"), str):
            raise AuthenticationError("Login with Amazon answered 200 without an access token")
        try:
            expires_in = float(data.get("expires_in", _DEFAULT_EXPIRES_IN))
        except (TypeError, ValueError):
            expires_in = _DEFAULT_EXPIRES_IN
        token: str = data["access_token"]
        self._token = token
        self._expires_at = self._clock() + max(expires_in - _EXPIRY_MARGIN, 0.0)
        _log.debug("LWA access token obtained, valid for %.0fs", expires_in)
        return token


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
    detail = f"{error}: {description}" if error and description else error or f"HTTP {status}"
    return AuthenticationError(
        f"Login with Amazon refused the token exchange ({detail})",
        error=error,
        error_description=description,
        status_code=status,
    )
