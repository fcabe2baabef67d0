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
import json
import logging
import math
import os
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
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
    """Hands out a valid access token, exchanging the refresh token when needed.

    The exchange goes out through the client's sender and retries through the same loop
    as API calls, under the calling request's :class:`RetryPolicy`, timeout and deadline.
    Expiry is read on the timer's clock (monotonic: a change of the wall clock cannot
    revive a token or expire one early).
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
    ) -> None:
        if credentials is None and provider is None:
            raise ValueError("credentials: required unless access_token_provider is given")
        self._credentials = credentials
        self._token_url = URL(token_url)
        self._provider = provider
        self._sender = sender
        self._timer = timer
        self._headers = {
            "Content-Type": "application/x-www-form-urlencoded;charset=UTF-8",
            "Accept": "application/json",
        }
        if user_agent:
            self._headers["User-Agent"] = user_agent
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock: asyncio.Lock | None = None
        self._finished = 0  # exchanges ended (each with its retries), well or badly
        self._failure: AuthenticationError | None = None  # how the last one ended, if badly
        self.exchanges = 0
        """How many token requests have been sent (for tests and diagnostics)."""

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
                token = await self._exchange(policy, attempt_seconds, deadline)
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

    def invalidate(self, token: str) -> None:
        """Forget ``token`` if it is still the cached one (the API said it is no good)."""
        if self._token == token:
            self._token = None
            self._expires_at = 0.0

    def _valid(self) -> str | None:
        if self._token is not None and self._timer.now() < self._expires_at:
            return self._token
        return None

    async def _exchange(
        self, policy: RetryPolicy, attempt_seconds: float, deadline: Deadline | None
    ) -> str:
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

        async def attempt() -> str:
            return self._accept(await self._post(form, attempt_seconds, deadline))

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

    def _host(self) -> str:
        return self._token_url.host or str(self._token_url)

    def _accept(self, raw: RawResponse) -> str:
        data = _json_or_none(raw.body)
        if not isinstance(data, dict) or not isinstance(data.get("access_token"), str):
            raise AuthenticationError("Login with Amazon answered 200 without an access token")
        try:
            expires_in = float(data.get("expires_in", _DEFAULT_EXPIRES_IN))
        except (TypeError, ValueError):
            expires_in = _DEFAULT_EXPIRES_IN
        if not math.isfinite(expires_in) or expires_in <= 0:
            expires_in = _DEFAULT_EXPIRES_IN
        token: str = data["access_token"]
        self._token = token
        # A minute short of expiry; a token that lives a minute or less is still kept for
        # half its life rather than exchanged again on every request.
        margin = min(_EXPIRY_MARGIN, expires_in / 2)
        self._expires_at = self._timer.now() + expires_in - margin
        _log.debug("LWA access token obtained, valid for %.0fs", expires_in)
        return token


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
