"""The one request function: limiter, token, send, retry decision, error mapping.

Every call of every resource goes through :meth:`Transport.send`.  It knows routes and
HTTP, never the models: it hands back the parsed JSON and the response's metadata, or
raises one of :mod:`spapi_services.errors`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any
from urllib.parse import quote

import aiohttp
import attrs
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from . import _serde
from ._auth import TokenSource
from ._ratelimit import Bucket, RateLimits
from ._retry import Failure, RetryPolicy, classify, parse_retry_after, retry_delay, should_retry
from ._routes import Route
from .errors import (
    ApiConnectionError,
    ApiTimeoutError,
    OperationFailedError,
    ResponseDecodeError,
    status_error_class,
)
from .models.common import Error
from .models.enums import ErrorLevel

__all__ = ["ApiResponse", "CallOptions", "Transport", "encode_query"]

_log = logging.getLogger("spapi_services")

#: Bodies larger than this are refused rather than read into memory.
MAX_BODY_BYTES = 16 * 1024 * 1024

#: The most an attempt waits for a socket to connect (half its timeout when that is less).
MAX_CONNECT_SECONDS = 10.0

_TOKEN_PROBLEM_WORDS = ("token", "expired", "signature")
_TOKEN_HEADER = "x-amz-access-token"

_MAY_HAVE_RUN = (
    "An earlier attempt of this call got no clear answer (a timeout, a lost connection or "
    "a 5xx) and may have taken effect: this error may describe the state it left behind."
)


@attrs.frozen(kw_only=True)
class CallOptions:
    """Per-call settings that :meth:`ServicesClient.with_options` can change."""

    retry: RetryPolicy
    timeout: float


@attrs.frozen(kw_only=True)
class ApiResponse:
    """A successful answer: its parsed JSON (``None`` when empty) and metadata."""

    status: int
    data: Any
    headers: Mapping[str, str] = attrs.field(repr=False)
    request_id: str | None
    rate_limit: float | None


def encode_query(params: Mapping[str, Any]) -> dict[str, str]:
    """Query parameters as the API expects them.

    ``None`` is left out; lists are comma-joined (the model's default ``csv`` format);
    booleans are ``true``/``false``; datetimes are UTC with ``Z``; everything else,
    page tokens included, is passed as its string and left to aiohttp to percent-encode
    exactly once.
    """
    query: dict[str, str] = {}
    for name, value in params.items():
        if value is None:
            continue
        if isinstance(value, list | tuple):
            query[name] = ",".join(_scalar(v) for v in value)
        else:
            query[name] = _scalar(value)
    return query


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return _serde.format_datetime(value)
    return str(value)


class Transport:
    """Sends requests for one client (and its ``with_options`` copies)."""

    def __init__(
        self,
        *,
        base_url: str,
        tokens: TokenSource,
        limits: RateLimits | None,
        user_agent: str,
        session: Callable[[], Awaitable[aiohttp.ClientSession]],
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._tokens = tokens
        self._limits = limits
        self._user_agent = user_agent
        self._session = session
        self._gate: AbstractAsyncContextManager[Any] | None = None

    @property
    def tokens(self) -> TokenSource:
        """The token source (shared with the document upload)."""
        return self._tokens

    def url(self, route: Route, path_params: Mapping[str, str]) -> URL:
        """The URL of a route, each path parameter percent-encoded as one segment.

        ``.`` and ``..`` are refused: no id is either, and as a path segment they would
        be resolved away by the servers and proxies on the way, sending the request to
        another path.
        """
        path = route.path
        for name in route.path_params():
            value = path_params[name]
            if value in (".", ".."):
                raise ValueError(f"{_snake(name)}: {value!r} is not an id")
            path = path.replace("{" + name + "}", quote(value, safe=""))
        return URL(self._base_url + path, encoded=True)

    async def send(
        self,
        route: Route,
        options: CallOptions,
        *,
        path_params: Mapping[str, str] | None = None,
        query: Mapping[str, str] | None = None,
        json_body: Any = None,
    ) -> ApiResponse:
        """Send one operation, retrying as the policy allows; raise on failure."""
        url = self.url(route, path_params or {})
        data = None if json_body is None else _serde.dumps(json_body).encode()
        bucket = self._limits.bucket(route.operation_id) if self._limits is not None else None
        policy = options.retry
        retries = 0
        refreshed = False
        uncertain = False  # an earlier attempt got no clear answer: it may have run
        attempt = 0  # every request sent, the one after a token refresh included
        while True:
            attempt += 1
            session = await self._session()
            # The token first: a bucket's refill is counted from when its tokens are taken,
            # so the request must go out right after, not after a token exchange.
            token = self._tokens.cached()
            if token is None:
                await self._tokens.prepare(session)
            waited = 0.0 if bucket is None else await _acquire(bucket)
            if token is None or waited:
                token = await self._tokens.get(session)  # cached by now, unless it expired
            started = time.monotonic()
            try:
                async with self._gate or self._gate_for(session):
                    status, headers, raw = await self._attempt(
                        session, route, url, query, data, token, options.timeout
                    )
            except (aiohttp.ClientError, TimeoutError) as exc:
                failure, error = _connection_failure(exc, route)
                _log.debug(
                    "%s %s -> %s elapsed=%.3fs attempt=%d waited=%.3fs",
                    route.method,
                    route.path,
                    type(exc).__name__,
                    time.monotonic() - started,
                    attempt,
                    waited,
                )
                if not should_retry(
                    policy, failure, retries_done=retries, idempotent=route.idempotent
                ):
                    raise error from _without_token(exc)
                uncertain = uncertain or failure is Failure.AMBIGUOUS
                await asyncio.sleep(retry_delay(policy, failure, retries_done=retries))
                retries += 1
                continue

            request_id = headers.get("x-amzn-RequestId")
            rate_limit = _rate_limit(headers)
            if rate_limit is not None and bucket is not None:
                bucket.follow_header(rate_limit)
            _log.debug(
                "%s %s -> %d request_id=%s elapsed=%.3fs attempt=%d waited=%.3fs",
                route.method,
                route.path,
                status,
                request_id,
                time.monotonic() - started,
                attempt,
                waited,
            )
            if 200 <= status < 300:
                return _success(route, status, headers, raw, request_id, rate_limit)

            text = raw.decode("utf-8", errors="replace")
            errors = _serde.parse_errors(_try_json(text))
            if status == 403 and not refreshed and _token_rejected(errors):
                # The token may have been revoked or expired early: get a fresh one, once.
                self._tokens.invalidate(token)
                refreshed = True
                continue
            failure = classify(status)
            retry_after = parse_retry_after(headers.get("Retry-After"))
            if failure is Failure.THROTTLED and bucket is not None:
                bucket.drain()
            if not should_retry(
                policy,
                failure,
                retries_done=retries,
                idempotent=route.idempotent,
                retry_after=retry_after,
            ):
                refused = status_error_class(status)(
                    status_code=status,
                    errors=errors,
                    request_id=request_id,
                    rate_limit=rate_limit,
                    headers=headers,
                    body=text,
                    operation=route.operation_id,
                )
                if uncertain:
                    # A cancel whose answer was lost, retried, meets a job already cancelled.
                    refused.add_note(_MAY_HAVE_RUN)
                raise refused
            uncertain = uncertain or failure is Failure.SERVER
            delay = retry_delay(
                policy,
                failure,
                retries_done=retries,
                retry_after=retry_after,
                paced=bucket is not None,
            )
            if delay:
                await asyncio.sleep(delay)
            retries += 1

    def _gate_for(self, session: aiohttp.ClientSession) -> AbstractAsyncContextManager[Any]:
        """A fair queue in front of the session's connection pool.

        aiohttp gives a connection that comes free to whichever request asks first, and
        under sustained load new requests keep overtaking those already waiting there: one
        can wait until it times out, never sent.  Requests queue here instead, first come
        first served, no more at a time than the pool holds.
        """
        connector = session.connector
        sizes = [n for n in (connector.limit, connector.limit_per_host) if n] if connector else []
        self._gate = asyncio.Semaphore(min(sizes)) if sizes else contextlib.nullcontext()
        return self._gate

    async def _attempt(
        self,
        session: aiohttp.ClientSession,
        route: Route,
        url: URL,
        query: Mapping[str, str] | None,
        data: bytes | None,
        token: str,
        seconds: float,
    ) -> tuple[int, CIMultiDictProxy[str], bytes]:
        headers = {
            "x-amz-access-token": token,
            "User-Agent": self._user_agent,
            "Accept": "application/json",
        }
        if data is not None:
            headers["Content-Type"] = "application/json"
        async with session.request(
            route.method,
            url,
            params=query or None,
            data=data,
            headers=headers,
            timeout=_timeout(seconds),
            # A redirect would carry the access token to wherever it points (aiohttp
            # strips only Authorization); the API never redirects, so it is an error.
            allow_redirects=False,
        ) as resp:
            raw = await _read_body(resp, route.operation_id)
            # Case-insensitive, and it outlives the response.
            return resp.status, resp.headers, raw


@functools.lru_cache(maxsize=16)
def _timeout(seconds: float) -> aiohttp.ClientTimeout:
    # Opening a socket gets a budget of its own, shorter than the attempt's: only a
    # connect that runs out of *its* time is reported as a ConnectionTimeoutError, a
    # request that never left, which any operation may retry.  Under ``total`` alone it is
    # a bare TimeoutError: "sent, maybe processed".  The wait for a free connection of the
    # pool is not in it (``sock_connect``, not ``connect``): a busy client queueing for its
    # own connections is no reason to give up sooner, or to spend its retries.
    return aiohttp.ClientTimeout(total=seconds, sock_connect=min(seconds / 2, MAX_CONNECT_SECONDS))


async def _acquire(bucket: Bucket) -> float:
    # The loop's clock is the one the limiter schedules by.
    loop = asyncio.get_running_loop()
    started = loop.time()
    await bucket.acquire()
    return loop.time() - started


async def _read_body(resp: aiohttp.ClientResponse, operation: str) -> bytes:
    declared = resp.content_length
    if declared is not None and declared > MAX_BODY_BYTES:
        raise _too_large(resp, operation, f"response body of {declared} bytes exceeds")
    if declared is not None:
        return await resp.read()
    # No length given (a chunked answer): read it in pieces, counting.
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_chunked(65536):
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _too_large(resp, operation, "response body exceeds")
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(resp: aiohttp.ClientResponse, operation: str, what: str) -> ResponseDecodeError:
    # With the request id, as every answer's error has: it is what Amazon's support asks for.
    return ResponseDecodeError(
        f"{what} the {MAX_BODY_BYTES}-byte limit",
        request_id=resp.headers.get("x-amzn-RequestId"),
        operation=operation,
    )


def _success(
    route: Route,
    status: int,
    headers: Mapping[str, str],
    raw: bytes,
    request_id: str | None,
    rate_limit: float | None,
) -> ApiResponse:
    data: Any = None
    if raw.strip():
        try:
            data = _serde.loads(raw)
        except ValueError as exc:
            raise ResponseDecodeError(
                f"HTTP {status} body is not JSON",
                request_id=request_id,
                operation=route.operation_id,
            ) from exc
    if isinstance(data, dict):
        errors = _serde.parse_errors(data) if data.get("errors") else ()
        # Entries the API itself marks as warnings do not make the call a failure.
        if any(e.error_level is not ErrorLevel.WARNING for e in errors):
            raise OperationFailedError(
                status_code=status,
                errors=errors,
                request_id=request_id,
                operation=route.operation_id,
            )
        _log_warnings(route, data, errors, request_id)
    return ApiResponse(
        status=status, data=data, headers=headers, request_id=request_id, rate_limit=rate_limit
    )


def _log_warnings(
    route: Route, data: dict[str, Any], errors: tuple[Error, ...], request_id: str | None
) -> None:
    """Say at WARNING what a successful answer warned about (codes and messages only)."""
    notes = [f"{e.code}: {e.message}" for e in errors]
    payload = data.get("payload")
    for holder in (data, payload, *(payload if isinstance(payload, list) else ())):
        if isinstance(holder, dict) and isinstance(holder.get("warnings"), list):
            notes.extend(
                f"{w.get('code')}: {w.get('message')}"
                for w in holder["warnings"]
                if isinstance(w, dict)
            )
    if notes:
        _log.warning(
            "%s answered with warnings (request id %s): %s",
            route.operation_id,
            request_id,
            "; ".join(notes),
        )


def _try_json(text: str) -> Any:
    try:
        return _serde.loads(text) if text.strip() else None
    except ValueError:
        return None


def _rate_limit(headers: Mapping[str, str]) -> float | None:
    value = headers.get("x-amzn-RateLimit-Limit")
    if not value:
        return None
    try:
        rate = float(value)
    except ValueError:
        return None
    return rate if math.isfinite(rate) and rate > 0 else None


def _token_rejected(errors: tuple[Error, ...]) -> bool:
    for error in errors:
        text = f"{error.code} {error.message} {error.details or ''}".lower()
        if error.code in ("Unauthorized", "InvalidAccessToken", "AccessDenied") and any(
            word in text for word in _TOKEN_PROBLEM_WORDS
        ):
            return True
    return False


def _snake(name: str) -> str:
    """``serviceJobId`` -> ``service_job_id``: the argument a path parameter came from."""
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


def _without_token(exc: BaseException) -> BaseException:
    """``exc``, to chain to our error, with the access token taken out.

    aiohttp's ClientResponseError (raised for a malformed answer, for one) keeps the
    request's headers, token included, and shows them in its repr and its args.
    """
    if isinstance(exc, aiohttp.ClientResponseError):
        info = exc.request_info
        headers = CIMultiDict(info.headers)
        if _TOKEN_HEADER in headers:
            headers[_TOKEN_HEADER] = "<redacted>"
            exc.request_info = aiohttp.RequestInfo(
                info.url, info.method, CIMultiDictProxy(headers), info.real_url
            )
            exc.args = (exc.request_info, *exc.args[1:])
    return exc


def _connection_failure(exc: BaseException, route: Route) -> tuple[Failure, ApiConnectionError]:
    where = f"{route.operation_id}: "
    if isinstance(exc, aiohttp.ClientSSLError):
        # A certificate or TLS failure will fail the same way again.
        return Failure.FINAL, ApiConnectionError(f"{where}TLS failed ({exc})")
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return Failure.NOT_SENT, ApiTimeoutError(f"{where}timed out connecting")
    if isinstance(exc, TimeoutError):
        return Failure.AMBIGUOUS, ApiTimeoutError(f"{where}timed out waiting for the answer")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return Failure.NOT_SENT, ApiConnectionError(f"{where}could not connect ({exc.os_error})")
    if isinstance(exc, aiohttp.ClientPayloadError):
        return Failure.AMBIGUOUS, ApiConnectionError(f"{where}the answer was cut short")
    return Failure.AMBIGUOUS, ApiConnectionError(f"{where}connection lost ({type(exc).__name__})")
