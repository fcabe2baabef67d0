"""OpenTelemetry traces and metrics of the SDK's calls (the ``otel`` extra: the API only).

A client whose ``instrument`` is on (the default) and that finds ``opentelemetry-api``
installed builds one :class:`Instrumentation` when it is made: a tracer and the
instruments below, from the providers it was given or the global ones.  Nothing here
imports OpenTelemetry before that, so ``import spapi_services`` stays cheap, and a client
without the API (or with ``instrument=False``) has no instrumentation at all: the request
pipeline then skips this module's layer entirely.

What is recorded is named in :data:`SPAN_ATTRIBUTES` and :data:`METRICS`.  Never an
access token, a secret, a body or a buyer's data: attribute values are our own words,
numbers, ids Amazon assigns, and server text cut short through
:func:`spapi_services._text.printable`.
"""

from __future__ import annotations

import asyncio
import contextlib
import traceback
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from yarl import URL

from . import __version__
from ._text import printable
from .errors import (
    ApiStatusError,
    AuthenticationError,
    OperationFailedError,
    ResponseDecodeError,
    SpApiError,
    UploadError,
)

if TYPE_CHECKING:
    from ._client import ServicesClient
    from ._retry import RetryNote
    from ._routes import Route
    from ._transport import CallRecord

__all__ = [
    "INSTRUMENTATION_NAME",
    "METRICS",
    "SPAN_ATTRIBUTES",
    "Activity",
    "Instrumentation",
    "activity",
    "command_providers",
    "instrumentation",
]

#: The instrumentation scope's name (the tracer's and the meter's).
INSTRUMENTATION_NAME = "spapi_services"

#: Providers for the clients a command line run makes when they are given none (set by
#: ``spapi-services --otel-console`` for the length of a command; ``None``: the globals).
command_providers: ContextVar[tuple[Any, Any] | None] = ContextVar(
    "spapi_services.command_providers", default=None
)

#: Every span attribute the SDK sets, and what it holds.
SPAN_ATTRIBUTES: Mapping[str, str] = {
    "rpc.system": '"spapi"',
    "rpc.service": '"services"',
    "rpc.method": "the operation id (the span's name too)",
    "server.address": "the API's host name",
    "server.port": "the API's port",
    "http.request.method": "GET, POST, PUT or DELETE",
    "http.response.status_code": "the status of the last attempt's answer (none if none came)",
    "spapi.request_id": "Amazon's request id of the last answer",
    "spapi.attempts": "HTTP requests the call sent",
    "spapi.rate_limit.wait": "seconds waited for the usage plan's tokens",
    "spapi.queue.wait": "seconds waited for a place in the session's request queue",
    "spapi.rate_limit.limit": "the rate the x-amzn-RateLimit-Limit header gave, per second",
    "spapi.throttled": "429 answers drawn (only when there were any)",
    "spapi.auth.wait": "seconds waited for an access token (only when one was fetched)",
    "spapi.auth.refreshed": "true when the API refused the token and it was renewed",
    "spapi.page": "a paginated operation's page number: 1 without a page token, then "
    "one more than the page whose answer gave the token (absent for a token this client "
    "did not hand out, as when resuming)",
    "error.type": "the exception's class name, when the call failed",
}

#: Every metric: name -> (instrument, unit, attributes).
METRICS: Mapping[str, tuple[str, str, str]] = {
    "spapi.client.call.duration": (
        "histogram",
        "s",
        "rpc.method, spapi.outcome (ok, error, cancelled), error.type",
    ),
    "spapi.client.calls": ("counter", "{call}", "rpc.method, spapi.outcome, error.type"),
    "spapi.client.throttled": ("counter", "{response}", "rpc.method"),
    "spapi.client.retries": ("counter", "{retry}", "rpc.method, spapi.retry.reason"),
    "spapi.client.rate_limit.wait": ("histogram", "s", "rpc.method"),
    "spapi.lwa.exchanges": ("counter", "{request}", "spapi.outcome (ok, error), error.type"),
}

# Seconds: the API's calls take from milliseconds to a minute (waits for the plan included).
_DURATION_BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
)
_MAX_DESCRIPTION = 500
_MAX_REASON = 200
_MAX_ID = 100
#: The paginated operations, and the query parameter that carries their page token.
_PAGE_TOKENS = {
    "getServiceJobs": "pageToken",
    "getRangeSlotCapacity": "nextPageToken",
    "getFixedSlotCapacity": "nextPageToken",
}
#: How many page tokens are remembered with the number of the page they lead to: enough
#: for every window of a large sync at once, bounded for a process that runs for months.
_REMEMBERED_PAGES = 4096
_TRACEBACK_HEAD = "Traceback (most recent call last):\n"

_api: tuple[Any, Any, Any] | None = None  # (trace, metrics, context), once imported


def _load_api() -> tuple[Any, Any, Any] | None:
    """OpenTelemetry's API modules, or ``None`` when it is not installed."""
    global _api
    if _api is None:
        try:
            from opentelemetry import context, metrics, trace
        except ImportError:
            return None
        _api = (trace, metrics, context)
    return _api


def instrumentation(
    *,
    enabled: bool,
    tracer_provider: Any,
    meter_provider: Any,
    host: str,
    port: int | None,
    paced: bool,
) -> Instrumentation | None:
    """The instrumentation of one client, or ``None`` when it is off or cannot be had.

    ``None`` providers mean the ones a command line run set (:data:`command_providers`),
    else OpenTelemetry's global ones, looked up when the first span or measurement is
    made: a provider the application sets after making the client is still used.
    """
    if not enabled:
        return None
    api = _load_api()
    if api is None:
        given = [
            name
            for name, provider in (
                ("tracer_provider", tracer_provider),
                ("meter_provider", meter_provider),
            )
            if provider is not None
        ]
        if given:
            from ._extras import install_command  # only on this error path

            # The command that adds the extra where this SDK is installed (it is not on
            # the public index), as the other extras' messages say it.
            raise ValueError(
                f"{', '.join(given)}: given, but opentelemetry-api (the otel extra) is not "
                f"installed: {install_command('otel')}"
            )
        return None
    chosen = command_providers.get()
    if chosen is not None:
        tracer_provider = tracer_provider if tracer_provider is not None else chosen[0]
        meter_provider = meter_provider if meter_provider is not None else chosen[1]
    return Instrumentation(api, tracer_provider, meter_provider, host=host, port=port, paced=paced)


class Instrumentation:
    """The tracer and instruments of one client (and of its ``with_options`` copies)."""

    def __init__(
        self,
        api: tuple[Any, Any, Any],
        tracer_provider: Any,
        meter_provider: Any,
        *,
        host: str,
        port: int | None,
        paced: bool,
    ) -> None:
        trace, metrics, context = api
        self._trace = trace
        self._attach = context.attach
        self._detach = context.detach
        self._in_context = trace.set_span_in_context
        self._client_kind = trace.SpanKind.CLIENT
        self._internal_kind = trace.SpanKind.INTERNAL
        self.tracer = trace.get_tracer(
            INSTRUMENTATION_NAME, __version__, tracer_provider=tracer_provider
        )
        self._proxy = _unresolved_proxy(trace, self.tracer)
        meter = metrics.get_meter(INSTRUMENTATION_NAME, __version__, meter_provider=meter_provider)
        self._duration = _histogram(
            meter,
            "spapi.client.call.duration",
            "How long SDK calls took, waits and retries included",
        )
        self._calls = meter.create_counter(
            "spapi.client.calls", unit="{call}", description="SDK calls, by outcome"
        )
        self._throttled = meter.create_counter(
            "spapi.client.throttled",
            unit="{response}",
            description="429 answers drawn from the API",
        )
        self._retries = meter.create_counter(
            "spapi.client.retries", unit="{retry}", description="Attempts made again, by reason"
        )
        self._plan_wait = _histogram(
            meter,
            "spapi.client.rate_limit.wait",
            "Time calls waited for the usage plan's tokens",
        )
        self._exchanges = meter.create_counter(
            "spapi.lwa.exchanges",
            unit="{request}",
            description="Requests to the Login with Amazon token endpoint, by outcome",
        )
        self._paced = paced
        self._base: dict[str, str | int] = {
            "rpc.system": "spapi",
            "rpc.service": "services",
            "server.address": host,
        }
        if port is not None:
            self._base["server.port"] = port
        # Built once per operation: a call's start and a success allocate nothing new.
        self._span_attributes: dict[str, dict[str, Any]] = {}
        self._ok: dict[str, dict[str, str]] = {}
        self._method: dict[str, dict[str, str]] = {}
        self._next_pages: OrderedDict[tuple[str, str], int] = OrderedDict()

    # --- one call of the API ---------------------------------------------------------

    def start(self, route: Route, url: URL, record: CallRecord) -> ActiveCall:
        """Open the span of one call and make it the current one."""
        operation = route.operation_id
        attributes = self._span_attributes.get(operation)
        if attributes is None:
            attributes = self._span_attributes[operation] = {
                **self._base,
                "rpc.method": operation,
                "http.request.method": route.method,
            }
        page = None
        if operation in _PAGE_TOKENS:
            page = self._page_number(operation, url)
            if page is not None:
                attributes = {**attributes, "spapi.page": page}
        proxy = self._proxy
        if (
            proxy is not None
            and proxy._real_tracer is None
            and self._trace._TRACER_PROVIDER is None
        ):
            # The global tracer while no provider is set: its span would be a no-op one.
            return ActiveCall(self, None, None, record, page)
        span = self.tracer.start_span(operation, kind=self._client_kind, attributes=attributes)
        # A span that records nothing (no SDK, or sampled out) need not be made current:
        # what is current already says the same to any span started inside the call.
        token = self._attach(self._in_context(span)) if span.is_recording() else None
        return ActiveCall(self, span, token, record, page)

    def finish(
        self,
        active: ActiveCall,
        seconds: float,
        error: BaseException | None,
        answer: Any = None,
    ) -> None:
        """Close a call's span (with what its record holds) and count the call.

        ``answer`` is the parsed body of a successful call (for the next page's number).
        """
        recording = active.token is not None  # made current only when it records
        if recording:
            self._detach(active.token)
        record = active.record
        operation = record.operation
        if active.page is not None and answer is not None:
            self._remember_next_page(operation, active.page, answer)
        span = active.span
        if recording:
            _describe_call(span, record)
            if error is not None:
                self._fail(span, error)
        if span is not None:
            span.end()
        if error is None:
            attributes = self._ok.get(operation)
            if attributes is None:
                attributes = self._ok[operation] = {"rpc.method": operation, "spapi.outcome": "ok"}
        else:
            attributes = _outcome(operation, error)
        self._calls.add(1, attributes)
        self._duration.record(seconds, attributes)
        if record.throttled:
            self._throttled.add(record.throttled, self._of(operation))
        if self._paced:
            self._plan_wait.record(record.plan_wait, self._of(operation))

    def retried(self, active: ActiveCall, note: RetryNote) -> None:
        """A retry about to be made: a span event and a count."""
        reason = printable(note.reason, _MAX_REASON)
        if active.token is not None:  # the span records
            active.span.add_event(
                "retry",
                {
                    "spapi.retry.attempt": note.attempt,
                    "spapi.retry.reason": reason,
                    "spapi.retry.delay": note.delay,
                },
            )
        self._retries.add(
            1, {"rpc.method": active.record.operation, "spapi.retry.reason": _reason_kind(reason)}
        )

    def _page_number(self, operation: str, url: URL) -> int | None:
        token = url.query.get(_PAGE_TOKENS[operation])
        if not token:
            return 1
        return self._next_pages.get((operation, token))

    def _remember_next_page(self, operation: str, page: int, answer: Any) -> None:
        token = _next_page_token(answer)
        if token is None:
            return
        self._next_pages[(operation, token)] = page + 1
        if len(self._next_pages) > _REMEMBERED_PAGES:
            self._next_pages.popitem(last=False)

    def _of(self, operation: str) -> dict[str, str]:
        attributes = self._method.get(operation)
        if attributes is None:
            attributes = self._method[operation] = {"rpc.method": operation}
        return attributes

    def _fail(self, span: Any, error: BaseException) -> None:
        if isinstance(error, asyncio.CancelledError):
            # Not a failure of the call: its caller stopped waiting (a sibling failed,
            # a timeout of the caller's own, Ctrl-C).
            span.set_attribute("spapi.cancelled", True)
            return
        span.set_attribute("error.type", type(error).__qualname__)
        description = describe_error(error)
        span.set_status(self._trace.Status(self._trace.StatusCode.ERROR, description))
        span.add_event("exception", _exception_event(error, description))

    # --- the Login with Amazon exchange ------------------------------------------------

    def exchanged(self, error: BaseException | None) -> None:
        """One request to the token endpoint ended (``error`` ``None``: a token came)."""
        if error is None:
            self._exchanges.add(1, {"spapi.outcome": "ok"})
        else:
            self._exchanges.add(
                1, {"spapi.outcome": "error", "error.type": type(error).__qualname__}
            )

    # --- spans around work of the SDK's own -----------------------------------------

    @contextlib.contextmanager
    def activity(
        self, name: str, attributes: Mapping[str, Any] | None = None, *, client_kind: bool = False
    ) -> Iterator[Activity]:
        """A span around a piece of work (a sync run, a document upload), current inside it.

        A failure inside sets its error status and records the exception the same safe
        way as a call's; a cancellation only marks it cancelled.
        """
        kind = self._client_kind if client_kind else self._internal_kind
        span = self.tracer.start_span(name, kind=kind, attributes=dict(attributes or {}))
        token = self._attach(self._in_context(span))
        try:
            yield Activity(span)
        except BaseException as exc:
            if span.is_recording():
                self._fail(span, exc)
            raise
        finally:
            self._detach(token)
            span.end()


def _unresolved_proxy(trace: Any, tracer: Any) -> Any:
    """``tracer`` if it is the API's global proxy, which makes no-op spans until a provider
    is set (its ``_real_tracer`` and the API's ``_TRACER_PROVIDER`` say when one is), else
    None.  Asking it for a span costs more than a whole call's metrics; knowing it would
    make a no-op one, the call makes none.  An API without those names gets None: spans
    are then always asked for."""
    if type(tracer) is not getattr(trace, "ProxyTracer", None):
        return None
    if not hasattr(tracer, "_real_tracer") or not hasattr(trace, "_TRACER_PROVIDER"):
        return None
    return tracer


class ActiveCall:
    """A call in progress: its span (None when it would be a no-op one), the context it
    was made current in, its record."""

    __slots__ = ("_otel", "page", "record", "span", "token")

    def __init__(
        self, otel: Instrumentation, span: Any, token: Any, record: CallRecord, page: int | None
    ) -> None:
        self._otel = otel
        self.span = span
        self.token = token
        self.record = record
        self.page = page

    def retried(self, note: RetryNote) -> None:
        """The retry loop's ``on_retry``: kept in the record, and traced."""
        self.record.retries.append(note)
        self._otel.retried(self, note)


class Activity:
    """The span of a piece of work, for what is learnt along the way."""

    __slots__ = ("_span",)

    def __init__(self, span: Any) -> None:
        self._span = span

    def set(self, name: str, value: str | bool | int | float) -> None:
        """Set an attribute (strings are cut to 200 printable characters)."""
        if isinstance(value, str):
            value = printable(value, _MAX_REASON)
        if self._span is not None and self._span.is_recording():
            self._span.set_attribute(name, value)


_NO_ACTIVITY = Activity(None)


@contextlib.contextmanager
def activity(
    client: ServicesClient, name: str, attributes: Mapping[str, Any] | None = None
) -> Iterator[Activity]:
    """A span named ``name`` around some work done with ``client`` (none when the
    client's instrumentation is off), under which the client's calls nest::

        with activity(client, "sync_jobs", {"spapi.sync.marketplaces": 2}) as run:
            ...
            run.set("spapi.sync.pages", pages)
    """
    otel = client._core.otel
    if otel is None:
        yield _NO_ACTIVITY
        return
    with otel.activity(name, attributes) as found:
        yield found


# --- what goes into a span -------------------------------------------------------------


def _describe_call(span: Any, record: CallRecord) -> None:
    # One call of set_attributes: the SDK takes its lock and checks the values once.
    attributes: dict[str, Any] = {}
    if record.status is not None:
        attributes["http.response.status_code"] = record.status
    if record.request_id is not None:
        attributes["spapi.request_id"] = printable(record.request_id, _MAX_ID)
    attributes["spapi.attempts"] = record.attempts
    attributes["spapi.rate_limit.wait"] = record.plan_wait
    attributes["spapi.queue.wait"] = record.queue_wait
    if record.rate_limit is not None:
        attributes["spapi.rate_limit.limit"] = record.rate_limit
    if record.throttled:
        attributes["spapi.throttled"] = record.throttled
    if record.token_wait:
        attributes["spapi.auth.wait"] = record.token_wait
    if record.refreshed:
        attributes["spapi.auth.refreshed"] = True
    span.set_attributes(attributes)


def describe_error(error: BaseException) -> str:
    """What a failed call's span says of its error: our words, codes and Amazon's short
    messages, never a body (an error page may echo what was sent), never a secret."""
    if isinstance(error, ApiStatusError | OperationFailedError):
        where = f"{error.operation}: " if error.operation else ""
        codes = "; ".join(
            f"{printable(e.code, 100)}: {printable(e.message, 200)}" for e in error.errors
        )
        if not codes:
            codes = "no error details" if isinstance(error, ApiStatusError) else "errors"
        text = f"{where}HTTP {error.status_code}: {codes}"
    elif isinstance(error, ResponseDecodeError):
        where = f"{error.operation}: " if error.operation else ""
        # The problems name JSON paths and types, never the values found there.
        text = f"{where}the answer does not fit the model ({len(error.problems)} problems)"
    elif isinstance(error, AuthenticationError):
        text = f"Login with Amazon: {error.error or error.status_code or 'no answer'}"
    elif isinstance(error, UploadError):
        text = f"document upload refused: HTTP {error.status_code} {error.code or ''}".rstrip()
    elif isinstance(error, SpApiError):
        # Connection errors and timeouts: our own sentences (host, stage, what failed).
        text = str(error)
    else:
        # Someone else's exception (a token provider's, a bug): its message could hold
        # anything, so only its class is named.
        text = type(error).__qualname__
    return printable(text, _MAX_DESCRIPTION)


def _exception_event(error: BaseException, description: str) -> dict[str, Any]:
    """The attributes of OpenTelemetry's ``exception`` event, the message made safe.

    The stack trace is the frames alone, with the safe description in the last line: a
    formatted exception would repeat its message, and its notes and causes.
    """
    kind = type(error)
    module = kind.__module__
    name = f"{module}.{kind.__qualname__}" if module and module != "builtins" else kind.__qualname__
    frames = "".join(traceback.format_tb(error.__traceback__))
    return {
        "exception.type": name,
        "exception.message": description,
        "exception.stacktrace": f"{_TRACEBACK_HEAD}{frames}{name}: {description}",
        "exception.escaped": "True",
    }


def _next_page_token(answer: Any) -> str | None:
    """The token of the page after this one: at the top of a capacity answer, in the
    ``payload`` of a job search's."""
    if not isinstance(answer, dict):
        return None
    token = answer.get("nextPageToken")
    payload = answer.get("payload")
    if token is None and isinstance(payload, dict):
        token = payload.get("nextPageToken")
    return token if isinstance(token, str) and token else None


def _outcome(operation: str, error: BaseException) -> dict[str, str]:
    if isinstance(error, asyncio.CancelledError):
        return {"rpc.method": operation, "spapi.outcome": "cancelled"}
    return {
        "rpc.method": operation,
        "spapi.outcome": "error",
        "error.type": type(error).__qualname__,
    }


def _reason_kind(reason: str) -> str:
    """A retry's reason without what varies (an OS error's text): a metric attribute."""
    if reason.startswith("HTTP "):
        return reason
    return reason.split(" (", 1)[0]


def _histogram(meter: Any, name: str, description: str) -> Any:
    try:
        return meter.create_histogram(
            name,
            unit="s",
            description=description,
            explicit_bucket_boundaries_advisory=_DURATION_BUCKETS,
        )
    except TypeError:  # an API older than the advisory (it is only a hint)
        return meter.create_histogram(name, unit="s", description=description)
