"""The request pipeline: every call of every resource goes through :meth:`Transport.send`.

It is built in layers, each a short method with one job, as httpx's ``send`` is::

    send                 the call's deadline; the URL and body
      _traced            the call's span and metrics (only when instrumentation is on)
      _authorized        the access token; an expired-token 403 refreshes it once
        _retrying        the one retry loop (:func:`spapi_services._retry.run_attempts`)
          _attempt       one attempt:
            _take_place    a place in the session's request queue, then a token of the
                           usage plan (in that order: a token is spent when the request
                           leaves, never while it waits for a connection)
            sender         (method, url, headers, body, timeout) -> status, headers, body
            _answer        the status read: a result, or the failure to retry or raise

It knows routes and HTTP, never the models: it hands back the parsed JSON and the
answer's metadata, or raises one of :mod:`spapi_services.errors`.  The sender, the
usage plan, the token source and the timer are passed in, so each can be replaced.

A call may be cancelled at any await (by its caller, a ``wait_for``, a task group
whose sibling failed) and leaves nothing behind.  Its place in the request queue is a
:class:`~spapi_services._queue.Place` held in a ``with`` block and its turn in an
operation's lane an ``async with``, so each is given back however the call ends; a
reported rate the plan did not take in is passed on again by the next answer; and
``CancelledError`` passes through unchanged (only the call's own deadline becomes an
:class:`ApiTimeoutError`).  A token the plan had already handed out or reserved for a
cancelled call is spent, not given back (see
:class:`~spapi_services._ratelimit.ReservingPlan`): the plan lets one request fewer
through, never one more.

The ``spapi_services.wire`` logger, when its own level is set to DEBUG, logs each
request's line and headers and each answer's status and headers, the access token
redacted and no body.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import quote

import aiohttp
import attrs
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from . import _serde
from ._auth import TokenSource
from ._otel import Instrumentation
from ._queue import Place, RequestQueue
from ._ratelimit import LearningPlan, ReservingPlan, UsagePlan
from ._retry import (
    AttemptFailed,
    Deadline,
    Failure,
    RetryNote,
    RetryPolicy,
    classify,
    classify_exception,
    parse_retry_after,
    run_attempts,
)
from ._routes import Route
from ._sender import BodyTooLarge, RawResponse, Sender
from ._text import printable
from ._timing import LoopTimer, Timer
from .errors import (
    ApiConnectionError,
    ForbiddenError,
    OperationFailedError,
    ResponseDecodeError,
    status_error_class,
)
from .models.common import Error
from .models.enums import ErrorLevel

__all__ = ["ApiResponse", "CallOptions", "CallRecord", "Transport", "encode_query"]

_log = logging.getLogger("spapi_services")
# Not only a child of the one above: it speaks only when its own level is DEBUG, so that
# turning the SDK's DEBUG lines on does not also print every header.
_wire = logging.getLogger("spapi_services.wire")

T = TypeVar("T")

_TOKEN_PROBLEM_WORDS = ("token", "expired", "signature")
_TOKEN_HEADER = "x-amz-access-token"
_SECRET_HEADERS = frozenset(
    {
        _TOKEN_HEADER,
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "x-amz-security-token",
    }
)
_NO_QUEUE = RequestQueue(None)


@attrs.frozen(kw_only=True)
class CallOptions:
    """Per-call settings that :meth:`ServicesClient.with_options` can change."""

    retry: RetryPolicy
    timeout: float
    """Seconds for one HTTP attempt."""
    deadline: float | None
    """Seconds for the whole call: waits, attempts and back-offs (``None``: unbounded)."""


@attrs.frozen(kw_only=True)
class ApiResponse:
    """A successful answer: its parsed JSON (``None`` when empty) and metadata."""

    status: int
    data: Any
    headers: Mapping[str, str] = attrs.field(repr=False)
    request_id: str | None
    rate_limit: float | None


@attrs.define
class CallRecord:
    """What one call came to, filled in by the layers as it goes (for logs and traces)."""

    operation: str
    attempts: int = 0
    status: int | None = None
    request_id: str | None = None
    rate_limit: float | None = None
    plan_wait: float = 0.0
    """Seconds spent waiting for the usage plan's tokens."""
    queue_wait: float = 0.0
    """Seconds spent waiting for a place in the request queue."""
    retries: list[RetryNote] = attrs.Factory(list)
    refreshed: bool = False
    """Whether the access token was refreshed after the API refused it."""
    throttled: int = 0
    """429 answers drawn."""
    token_wait: float = 0.0
    """Seconds spent waiting for an access token (0 when one was at hand)."""


class _LoopClock:
    """:class:`LoopTimer` bound to one loop: its clock, its sleep."""

    __slots__ = ("now",)

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.now: Callable[[], float] = loop.time

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class _Call:
    """One call on its way through the layers (a plain class: made for every call)."""

    __slots__ = (
        "body",
        "clock",
        "deadline",
        "headers",
        "on_retry",
        "options",
        "record",
        "route",
        "url",
    )

    def __init__(
        self,
        route: Route,
        url: URL,
        headers: dict[str, str],
        body: bytes | None,
        options: CallOptions,
        deadline: Deadline,
        record: CallRecord,
        clock: Timer,
    ) -> None:
        self.route = route
        self.url = url
        self.headers = headers
        self.body = body
        self.options = options
        self.deadline = deadline
        self.record = record
        self.clock = clock
        """The timer its deadline and waits are measured with."""
        self.on_retry: Callable[[RetryNote], None] | None = None


def encode_query(params: Mapping[str, Any]) -> dict[str, str]:
    """Query parameters as the API expects them.

    ``None`` is left out; lists are comma-joined (the model's default ``csv`` format);
    booleans are ``true``/``false``; datetimes are UTC with ``Z``; everything else,
    page tokens included, is passed as its string and percent-encoded exactly once.
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
    """Sends the calls of one client (and of its ``with_options`` copies)."""

    def __init__(
        self,
        *,
        base_url: str,
        tokens: TokenSource,
        plan: UsagePlan | None,
        scope: str,
        user_agent: str,
        sender: Sender,
        timer: Timer,
        otel: Instrumentation | None = None,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._tokens = tokens
        self._plan = plan
        # A plan out of process reserves (one round trip per request); one in memory is
        # asked, and waited for, by one request of each operation at a time.
        self._reserving = plan if isinstance(plan, ReservingPlan) else None
        # A plan that ramps up as answers come back hears of each one (a slow start).
        self._learning = plan if isinstance(plan, LearningPlan) else None
        self._scope = scope
        self._sender = sender
        self._timer = timer
        self._otel = otel
        self._headers = {
            "User-Agent": user_agent,
            "Accept": "application/json",
            "Accept-Encoding": "gzip, deflate",
        }
        self._queue: RequestQueue | None = None
        # One request of each operation at a time asks the plan: the others wait in line
        # behind it instead of all polling the bucket (and all holding queue places).
        self._lanes: dict[str, _Lane] = {}
        self._rates: dict[str, float] = {}  # the last rate each operation's header gave
        self._paths: dict[str, tuple[str, ...]] = {}  # route path -> _path_pieces
        self._deadline_names: dict[float | None, str] = {}  # how a deadline is named
        # The timer the calls' deadlines and waits are measured with: ``timer``, or for the
        # default one the loop's own clock read directly (see _start_clock).
        self._clock: Timer | None = None
        self._token_headers: tuple[str, dict[str, str]] | None = None

    @property
    def tokens(self) -> TokenSource:
        """The token source."""
        return self._tokens

    @property
    def sender(self) -> Sender:
        """The sender every request goes out through (the document PUT's too)."""
        return self._sender

    @property
    def timer(self) -> Timer:
        """The timer the pipeline sleeps and measures with."""
        return self._timer

    @property
    def otel(self) -> Instrumentation | None:
        """The client's OpenTelemetry instrumentation (``None``: off)."""
        return self._otel

    def _start_clock(self) -> Timer:
        """The clock of this transport's calls, chosen at the first one (in the loop).

        The default timer asks asyncio for the running loop at each reading, which on
        Python 3.11 is a system call (``getpid``); a client lives in one loop (the client
        refuses a call from another), so its transport reads that loop's clock directly.
        Any other timer (a test's) is used as it is.
        """
        timer = self._timer
        if type(timer) is LoopTimer:
            timer = _LoopClock(asyncio.get_running_loop())
        self._clock = timer
        return timer

    def url(self, route: Route, path_params: Mapping[str, str]) -> URL:
        """The URL of a route, each path parameter percent-encoded as one segment.

        ``.`` and ``..`` are refused: no id is either, and as a path segment they would
        be resolved away by the servers and proxies on the way, sending the request to
        another path.
        """
        pieces = self._paths.get(route.path)
        if pieces is None:
            pieces = self._paths[route.path] = _path_pieces(self._base_url + route.path)
        if len(pieces) == 1:
            return URL(pieces[0], encoded=True)
        parts = list(pieces)
        for index in range(1, len(parts), 2):
            name = parts[index]
            value = path_params[name]
            if _UNRESERVED.fullmatch(value) is None:  # most ids need no quoting
                if value in (".", ".."):
                    raise ValueError(f"{_snake(name)}: {value!r} is not an id")
                value = quote(value, safe="")
            parts[index] = value
        return URL("".join(parts), encoded=True)

    # --- the layers ----------------------------------------------------------------

    async def send(
        self,
        route: Route,
        options: CallOptions,
        *,
        path_params: Mapping[str, str] | None = None,
        query: Mapping[str, str] | None = None,
        json_body: Any = None,
        record: CallRecord | None = None,
    ) -> ApiResponse:
        """Send one operation within its deadline, retrying as the policy allows."""
        url = self.url(route, path_params or {})
        if query:
            url = url.extend_query(query)
        headers = self._headers
        body = None
        if json_body is not None:
            body = _serde.dumps(json_body).encode()
            headers = {**headers, "Content-Type": "application/json"}
        clock = self._clock or self._start_clock()
        seconds = options.deadline
        named = self._deadline_names.get(seconds)
        if named is None:
            named = self._deadline_names[seconds] = Deadline(seconds, clock).what
        call = _Call(
            route,
            url,
            headers,
            body,
            options,
            Deadline(seconds, clock, what=named),
            record or CallRecord(route.operation_id),
            clock,
        )
        if self._otel is None:
            return await self._authorized(call)
        return await self._traced(call, self._otel)

    async def _traced(self, call: _Call, otel: Instrumentation) -> ApiResponse:
        started = time.perf_counter()
        active = otel.start(call.route, call.url, call.record)
        call.on_retry = active.retried
        try:
            response = await self._authorized(call)
        except BaseException as exc:
            otel.finish(active, time.perf_counter() - started, exc)
            raise
        otel.finish(active, time.perf_counter() - started, None, response.data)
        return response

    async def _authorized(self, call: _Call) -> ApiResponse:
        token = self._tokens.cached()
        if token is None:
            token = await self._token(call)
        try:
            # The first attempt is made here: most calls need no other.  Should it fail,
            # the retry loop takes over from its failure, as if it had made it itself.
            try:
                return await self._attempt(call, token)
            except AttemptFailed as failed:
                return await self._retrying(call, token, failed)
        except ForbiddenError as exc:
            if call.record.refreshed or not _token_rejected(exc.errors):
                raise
            # The token may have been revoked or expired early: get a fresh one, once.
            await self._tokens.invalidate(token)
            call.record.refreshed = True
            return await self._retrying(call, await self._token(call))

    async def _token(self, call: _Call) -> str:
        token = self._tokens.cached()
        if token is not None:
            return token
        fetch = self._tokens.get(
            call.options.retry, attempt_seconds=call.options.timeout, deadline=call.deadline
        )
        started = call.clock.now()
        try:
            return await self._within(call, "waiting for the access token", fetch)
        finally:
            call.record.token_wait += call.clock.now() - started

    async def _retrying(
        self, call: _Call, token: str, first: AttemptFailed | None = None
    ) -> ApiResponse:
        """Attempts until one succeeds or a failure is not retried (``first``: the failure
        of an attempt already made)."""

        def attempt() -> Awaitable[ApiResponse]:
            nonlocal first
            if first is not None:
                failed, first = first, None
                raise failed
            return self._attempt(call, token)

        return await run_attempts(
            attempt,
            policy=call.options.retry,
            idempotent=call.route.idempotent,
            timer=call.clock,
            deadline=call.deadline,
            throttled_within_deadline=True,
            on_retry=call.record.retries.append if call.on_retry is None else call.on_retry,
        )

    async def _attempt(self, call: _Call, token: str) -> ApiResponse:
        queue = self._queue or await self._request_queue()
        # The place is given back when the request is done, or wherever the attempt stops.
        with Place(queue) as place:
            if self._plan is None and place.take_now():
                waited = 0.0  # no plan, and a place was free: nothing to wait for
            else:
                waited = await self._take_place(call, place)
            record = call.record
            record.attempts += 1
            headers = {**call.headers, _TOKEN_HEADER: token}
            if _wire.level and _wire.isEnabledFor(logging.DEBUG):
                _log_request(call, headers)
            started = time.monotonic()
            try:
                raw = await self._sender(
                    call.route.method, call.url, headers, call.body, self._attempt_seconds(call)
                )
            except (aiohttp.ClientError, TimeoutError) as exc:
                self._log_attempt(call, type(exc).__name__, None, started, waited)
                raise self._no_answer(call, exc) from None
            except BodyTooLarge as exc:
                # With the request id, as every answer's error has: Amazon's support asks.
                if _wire.level and _wire.isEnabledFor(logging.DEBUG):
                    _log_answer(call, exc.status, exc.headers, None)
                raise ResponseDecodeError(
                    str(exc),
                    request_id=exc.headers.get("x-amzn-RequestId"),
                    operation=call.route.operation_id,
                ) from None
        rate_limit = self._note_answer(call, raw)
        if self._learning is not None and raw.status != 429:
            # Every answer but a 429, the fast path's successes too: a slow start goes by them.
            self._learning.answered(self._scope, call.route.operation_id)
        if 200 <= raw.status < 300 and (
            rate_limit is None
            or self._plan is None
            or self._rates.get(call.route.operation_id) == rate_limit
        ):
            # A success with nothing to tell the plan: no await on the way out.
            self._log_attempt(call, str(raw.status), call.record.request_id, started, waited)
            return _success(call.route, raw, call.record.request_id, rate_limit, call.url.host)
        return await self._answer(call, raw, rate_limit, started, waited)

    # --- the parts of an attempt ---------------------------------------------------

    async def _request_queue(self) -> RequestQueue:
        make = getattr(self._sender, "request_queue", None)
        self._queue = await make() if make is not None else _NO_QUEUE
        return self._queue

    async def _take_place(self, call: _Call, place: Place) -> float:
        """A place in the queue, then a token of the plan; returns seconds waited for the plan.

        Returns holding the place; raises holding it or not (the caller's ``with`` gives
        it back).
        """
        plan = self._plan
        if plan is None:
            await self._enter(call, place)
            return 0.0
        started = call.clock.now()
        queued = call.record.queue_wait
        if self._reserving is not None:
            await self._reserved_token(call, place, self._reserving)
        else:
            await self._polled_token(call, place, plan)
        waited = call.clock.now() - started - (call.record.queue_wait - queued)
        call.record.plan_wait += waited
        return waited

    async def _polled_token(self, call: _Call, place: Place, plan: UsagePlan) -> None:
        """Ask the plan for a token now, or wait until one is due and ask again.

        One request of each operation asks at a time (its lane); the others wait in line
        behind it instead of all polling the bucket, and holding queue places meanwhile.
        """
        operation = call.route.operation_id
        lane = self._lanes.get(operation)
        if lane is None:
            lane = self._lanes[operation] = _Lane()
        async with _Turn(self, call, lane):
            while True:
                await self._enter(call, place)
                due = await plan.try_acquire(self._scope, operation)
                if due <= 0:
                    return
                place.give_back()  # nobody waits on us for a place while we wait for a token
                await self._sleep_for_plan(call, due)

    async def _reserved_token(self, call: _Call, place: Place, plan: ReservingPlan) -> None:
        """Reserve the next token (one question to the plan, however long the wait); sleep
        until it is due, without a place in the queue, then take a place and go.

        Cancelled after the plan reserved it, the token is spent unused (the plan's
        documented promise): nothing here holds it, so nothing is left to undo.
        """
        operation = call.route.operation_id
        while True:
            await self._enter(call, place)
            remaining = call.deadline.remaining(call.clock)
            reserved, wait = await plan.reserve(self._scope, operation, max_wait=remaining)
            if wait <= 0:
                return
            place.give_back()
            await self._sleep_for_plan(call, wait)
            if reserved:
                await self._enter(call, place)
                return
            # Not reserved: too late for the deadline (the sleep raised), or the plan could
            # not reserve just now (its store is down): ask again when it is due.

    async def _sleep_for_plan(self, call: _Call, due: float) -> None:
        remaining = call.deadline.remaining(call.clock)
        if remaining is not None and due >= remaining:
            raise call.deadline.ran_out(call.route.operation_id, "waiting for the usage plan")
        await call.clock.sleep(due)

    async def _enter(self, call: _Call, place: Place) -> None:
        if place.take_now():
            return  # a place was free: no wait to bound, no timer to set
        started = call.clock.now()
        await self._within(call, "waiting in the request queue", place.take())
        call.record.queue_wait += call.clock.now() - started

    async def _within(self, call: _Call, stage: str, waiting: Awaitable[T]) -> T:
        """``waiting``, bounded by what is left of the call's deadline."""
        remaining = call.deadline.remaining(call.clock)
        if remaining is None:
            return await waiting
        try:
            async with asyncio.timeout(remaining) as scope:
                return await waiting
        except TimeoutError:
            if scope.expired():
                raise call.deadline.ran_out(call.route.operation_id, stage) from None
            raise

    def _attempt_seconds(self, call: _Call) -> float:
        remaining = call.deadline.remaining(call.clock)
        if remaining is None:
            return call.options.timeout
        return max(min(call.options.timeout, remaining), 1e-3)

    def _no_answer(self, call: _Call, exc: BaseException) -> AttemptFailed:
        failure, what, error_class = classify_exception(exc)
        operation = call.route.operation_id
        remaining = call.deadline.remaining(call.clock)
        error: ApiConnectionError
        if isinstance(exc, TimeoutError) and remaining is not None and remaining <= 0:
            error = call.deadline.ran_out(operation, "waiting for the answer")
        else:
            error = error_class(f"{operation}: {what}")
        error.host = call.url.host
        error.__cause__ = _without_token(exc)
        return AttemptFailed(failure, error, reason=what)

    def _note_answer(self, call: _Call, raw: RawResponse) -> float | None:
        """Put what an answer says in the call's record (and the wire log); its rate."""
        headers = raw.headers
        record = call.record
        record.status = raw.status
        record.request_id = headers.get("x-amzn-RequestId")
        record.rate_limit = rate_limit = _rate_limit(headers)
        if _wire.level and _wire.isEnabledFor(logging.DEBUG):
            _log_answer(call, raw.status, headers, len(raw.body))
        return rate_limit

    async def _answer(
        self,
        call: _Call,
        raw: RawResponse,
        rate_limit: float | None,
        started: float,
        waited: float,
    ) -> ApiResponse:
        """The answer read (once :meth:`_note_answer` noted it): a new rate passed on to
        the plan, then a result, or the failure to retry or raise."""
        status, headers = raw.status, raw.headers
        record = call.record
        request_id = record.request_id
        operation = call.route.operation_id
        if (
            rate_limit is not None
            and self._plan is not None
            and self._rates.get(operation) != rate_limit
        ):
            await self._follow_rate(self._plan, operation, rate_limit)
        self._log_attempt(call, str(status), request_id, started, waited)
        if 200 <= status < 300:
            return _success(call.route, raw, request_id, rate_limit, call.url.host)

        text = raw.body.decode("utf-8", errors="replace")
        error = status_error_class(status)(
            status_code=status,
            errors=_serde.parse_errors(_try_json(text)),
            request_id=request_id,
            rate_limit=rate_limit,
            headers=headers,
            body=text,
            operation=operation,
            host=call.url.host,
        )
        failure = classify(status)
        if failure is Failure.THROTTLED:
            record.throttled += 1
            if self._plan is not None:
                await self._plan.throttled(self._scope, operation)
        raise AttemptFailed(
            failure,
            error,
            reason=f"HTTP {status}",
            retry_after=parse_retry_after(headers.get("Retry-After")),
        )

    async def _follow_rate(self, plan: UsagePlan, operation: str, rate: float) -> None:
        """Pass a newly reported rate on to the plan, once, however many answers carry it."""
        rates = self._rates
        before = rates.get(operation)
        rates[operation] = rate  # noted first: the answers that follow need not pass it on
        try:
            await plan.update_rate(self._scope, operation, rate)
        except BaseException:
            # Not passed on (cancelled, or the plan failed): leave it to the next answer
            # rather than let the plan never hear of it.
            if rates.get(operation) == rate:
                if before is None:
                    del rates[operation]
                else:
                    rates[operation] = before
            raise

    def _log_attempt(
        self,
        call: _Call,
        outcome: str,
        request_id: str | None,
        started: float,
        waited: float,
    ) -> None:
        if not _log.isEnabledFor(logging.DEBUG):
            return
        _log.debug(
            "%s %s -> %s request_id=%s elapsed=%.3fs attempt=%d waited=%.3fs",
            call.route.method,
            call.route.path,
            outcome,
            printable(request_id, 100) if request_id else None,
            time.monotonic() - started,
            call.record.attempts,
            waited,
        )


class _Lane:
    """One operation's line for an in-process plan: one request asks it at a time, the
    others wait their turn (first come, first served) through :class:`_Turn`."""

    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0
        """Requests holding the lane or waiting for it."""


class _Turn:
    """``async with``: a request's turn in its operation's lane, waited for no longer than
    the call's deadline, and let go however the block ends (a cancelled wait holds
    nothing: asyncio's lock passes a turn it had granted on to the next in line)."""

    __slots__ = ("_call", "_lane", "_transport")

    def __init__(self, transport: Transport, call: _Call, lane: _Lane) -> None:
        self._transport = transport
        self._call = call
        self._lane = lane

    async def __aenter__(self) -> None:
        lane = self._lane
        lane.users += 1
        try:
            if lane.users == 1:
                # Nobody holds the lane or waits for it: the lock is had at once, with no
                # wait to bound and so no timer to set.
                await lane.lock.acquire()
            else:
                await self._transport._within(
                    self._call, "waiting for the usage plan", lane.lock.acquire()
                )
        except BaseException:
            lane.users -= 1
            raise

    async def __aexit__(self, *exc: object) -> None:
        lane = self._lane
        lane.users -= 1
        lane.lock.release()


def _success(
    route: Route,
    raw: RawResponse,
    request_id: str | None,
    rate_limit: float | None,
    host: str | None = None,
) -> ApiResponse:
    data: Any = None
    status = raw.status
    body = raw.body
    if body and not body.isspace():
        try:
            data = _serde.loads(raw.body)
        except ValueError as exc:
            raise ResponseDecodeError(
                f"HTTP {status} body is not JSON",
                request_id=request_id,
                operation=route.operation_id,
            ) from exc
    if isinstance(data, dict):
        errors = _serde.parse_errors(data) if data.get("errors") else ()
        # Entries the API itself marks as warnings do not make the call a failure.
        if errors and any(e.error_level is not ErrorLevel.WARNING for e in errors):
            raise OperationFailedError(
                status_code=status,
                errors=errors,
                request_id=request_id,
                operation=route.operation_id,
                payload=data.get("payload"),
                body=raw.body.decode("utf-8", errors="replace"),
                headers=raw.headers,
                host=host,
            )
        _log_warnings(route, data, errors, request_id)
    return ApiResponse(
        status=status, data=data, headers=raw.headers, request_id=request_id, rate_limit=rate_limit
    )


def _log_warnings(
    route: Route, data: dict[str, Any], errors: tuple[Error, ...], request_id: str | None
) -> None:
    """Say at WARNING what a successful answer warned about (codes and messages only)."""
    payload = data.get("payload")
    if not errors and "warnings" not in data:  # the usual answer: nothing to say
        if isinstance(payload, dict):
            if "warnings" not in payload:
                return
        elif not isinstance(payload, list):
            return
    notes = [f"{e.code}: {e.message}" for e in errors]
    for holder in (data, payload, *(payload if isinstance(payload, list) else ())):
        if isinstance(holder, dict) and isinstance(holder.get("warnings"), list):
            notes.extend(
                f"{w.get('code')}: {w.get('message')}"
                for w in holder["warnings"]
                if isinstance(w, dict)
            )
    if notes:
        # Server text, made one printable line: a newline in it must not forge a record.
        _log.warning(
            "%s answered with warnings (request id %s): %s",
            route.operation_id,
            printable(request_id, 100) if request_id else None,
            printable("; ".join(notes), 2000),
            # For handlers that show warnings their own way (the CLI prints each once).
            extra={"spapi_warnings": len(notes), "spapi_operation": route.operation_id},
        )


def _log_request(call: _Call, headers: Mapping[str, str]) -> None:
    size = "no body" if call.body is None else f"{len(call.body)}-byte body"
    _wire.debug(
        "> %s %s attempt=%d headers=%s (%s)",
        call.route.method,
        printable(str(call.url), 2000),
        call.record.attempts,
        _shown_headers(headers),
        size,
    )


def _log_answer(call: _Call, status: int, headers: Mapping[str, str], size: int | None) -> None:
    body = "body over the size limit" if size is None else f"{size}-byte body"
    _wire.debug(
        "< %s %s -> %d headers=%s (%s)",
        call.route.method,
        call.route.operation_id,
        status,
        _shown_headers(headers),
        body,
    )


def _shown_headers(headers: Mapping[str, str]) -> str:
    """Headers as one printable line, secrets replaced by ``<redacted>``."""
    shown = (
        f"{name}: {'<redacted>' if name.lower() in _SECRET_HEADERS else printable(value, 500)}"
        for name, value in headers.items()
    )
    return "{" + ", ".join(shown) + "}"


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


# Characters a path segment carries as they are (RFC 3986's unreserved), bar the dot
# segments "." and "..", which the pattern refuses so that the slow path refuses them.
_UNRESERVED = re.compile(r"(?!\.\.?$)[A-Za-z0-9._~-]+")


def _path_pieces(url: str) -> tuple[str, ...]:
    """A URL template cut at its ``{placeholders}``: text, name, text, name, ..., text."""
    return tuple(re.split(r"\{([^}]+)\}", url))


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
