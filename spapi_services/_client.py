"""ServicesClient: configuration, lifecycle, and the resources hung off it."""

from __future__ import annotations

import asyncio
import enum
import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import cached_property
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import aiohttp
import attrs
from yarl import URL

from . import _otel
from ._auth import DEFAULT_TOKEN_URL, AccessTokenProvider, LwaCredentials, TokenCache, TokenSource
from ._config import (
    DEFAULT_DEADLINE,
    DEFAULT_TIMEOUT,
    ClientConfig,
    Region,
    build_user_agent,
    make_plan,
)
from ._env import connection_settings
from ._marketplaces import check_marketplace_id, check_region
from ._ratelimit import UsagePlan
from ._retry import RetryPolicy
from ._routes import route
from ._sender import AiohttpSender, Sender
from ._text import printable
from ._timing import LoopTimer, Timer
from ._transport import ApiResponse, CallOptions, CallRecord, Transport, encode_query
from ._upload import put_document, upload_headers, url_lifetime
from .models.enums import ContentType

if TYPE_CHECKING:
    from .resources.appointments import Appointments
    from .resources.documents import Documents
    from .resources.reservations import Reservations
    from .resources.schedules import Schedules
    from .resources.service_jobs import ServiceJobs

__all__ = ["Region", "ServicesClient", "build_user_agent"]

_UNSET: Any = object()


class _State(enum.Enum):
    UNOPENED = "unopened"
    OPENED = "opened"
    CLOSED = "closed"


class _Core:
    """What a client and its ``with_options`` copies share: session, tokens, plan, pipeline."""

    def __init__(self, config: ClientConfig) -> None:
        self.marketplace_source = "argument"
        self.session = config.session
        self.owns_session = config.session is None
        self.state = _State.UNOPENED
        self.loop: asyncio.AbstractEventLoop | None = None
        self._timeout = config.timeout
        self._trace_configs = config.trace_configs
        sender: Sender = AiohttpSender(self.get_session) if config.sender is None else config.sender
        timer: Timer = LoopTimer() if config.timer is None else config.timer
        user_agent = build_user_agent(config.user_agent)
        self.scope = _scope(config)
        tokens = TokenSource(
            config.credentials,
            token_url=config.token_url or DEFAULT_TOKEN_URL,
            provider=config.access_token_provider,
            sender=sender,
            timer=timer,
            user_agent=user_agent,
            cache=config.token_cache,
        )
        plan = make_plan(config.rate_limits)
        api = URL(config.base_url)
        self.otel = _otel.instrumentation(
            enabled=config.instrument,
            tracer_provider=config.tracer_provider,
            meter_provider=config.meter_provider,
            host=api.host or config.base_url,
            port=api.port,
            paced=plan is not None,
        )
        if self.otel is not None:
            tokens.on_exchange = self.otel.exchanged
        self.transport = Transport(
            base_url=config.base_url,
            tokens=tokens,
            plan=plan,
            scope=self.scope,
            user_agent=user_agent,
            sender=sender,
            timer=timer,
            otel=self.otel,
        )

    def check_open(self) -> None:
        """Refuse a closed client, or one used from an event loop other than its own."""
        if self.state is _State.CLOSED:
            raise RuntimeError("this ServicesClient is closed; create a new one")
        loop = asyncio.get_running_loop()
        if self.loop is None:
            self.loop = loop
        elif loop is not self.loop:
            raise RuntimeError(
                "this ServicesClient belongs to another event loop (the one it was first "
                "used in): its connections, locks and buckets cannot be used from this one. "
                "Create one client per event loop, inside it (for example in the coroutine "
                "that asyncio.run runs), and close it there."
            )

    async def get_session(self) -> aiohttp.ClientSession:
        session = self.session
        if session is not None and self.state is _State.OPENED:
            return session  # the call's entry point has checked the state and the loop
        self.check_open()
        if self.session is None:
            # Made here, inside the running loop: aiohttp binds a session to its loop.
            self.session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self._timeout),
                connector=aiohttp.TCPConnector(limit=100, limit_per_host=100),
                trace_configs=list(self._trace_configs) or None,
            )
            self.owns_session = True
        if self.state is _State.UNOPENED:
            self.state = _State.OPENED
        return self.session

    async def close(self) -> None:
        if self.state is _State.CLOSED:
            return
        self.state = _State.CLOSED
        if self.owns_session and self.session is not None:
            await self.session.close()


def _scope(config: ClientConfig) -> str:
    """The application and selling partner whose usage plan a client spends.

    Amazon meters per application and seller.  ``seller=`` names the seller when given;
    otherwise the refresh token stands for it, hashed, so that the scope can be stored and
    shown without giving it away.
    """
    credentials = config.credentials
    application = credentials.client_id if credentials is not None else "app"
    if config.seller is not None:
        return f"{application}/seller:{config.seller}"
    if credentials is None:
        return f"{application}/access-token-provider"
    seller = hashlib.sha256(credentials.refresh_token.encode()).hexdigest()[:32]
    return f"{application}/{seller}"


class ServicesClient:
    """An async client for the Selling Partner API's Services API v1.

    Use it as ``async with ServicesClient(...) as client:``, or call :meth:`aclose`
    when done.  Every operation lives on a resource: :attr:`service_jobs`,
    :attr:`appointments`, :attr:`schedules`, :attr:`reservations` and
    :attr:`documents`.

    The connection settings come from the arguments, else from the ``SPAPI_*``
    environment variables, else the defaults (the configuration guide has the table), so
    ``ServicesClient()`` alone, in a shell that sourced the emulator's ``export`` lines,
    talks to the emulator, and the same program talks to Amazon where they are unset.

    :param credentials: the LWA app and refresh token; ``None`` reads them from
        ``SPAPI_CLIENT_ID``, ``SPAPI_CLIENT_SECRET`` and ``SPAPI_REFRESH_TOKEN``
        (not needed with ``access_token_provider``).
    :param region: ``Region.NA``, ``EU`` or ``FE``; ``None`` reads ``SPAPI_REGION``, else NA.
    :param sandbox: ``True`` uses the region's static sandbox host; ``None`` reads
        ``SPAPI_SANDBOX``, else ``False``.  Refused together with an endpoint.
    :param endpoint: any other API base URL (a proxy, the local emulator), in place of the
        region's host; ``None`` reads ``SPAPI_ENDPOINT``.
    :param token_url: any other LWA token URL; ``None`` reads ``SPAPI_TOKEN_URL``, else
        Login with Amazon's.
    :param marketplace_id: the default for operations that take a marketplace; ``None``
        reads ``SPAPI_MARKETPLACE_ID``.  Checked before anything is sent: a malformed id
        (lower case, a country code) is a ``ValueError`` naming the right one, an id of
        another region than the client's Amazon host too, and a well-formed id that is
        not among Amazon's known marketplaces is sent with an
        :class:`~spapi_services.errors.UnknownMarketplaceWarning`.
    :param access_token_provider: an async callable returning the token to send,
        replacing the LWA exchange (for tokens managed elsewhere).
    :param session: an ``aiohttp.ClientSession`` of the caller's, used and never closed.
    :param timeout: seconds for one HTTP attempt.
    :param deadline: seconds for a whole call: waiting for the usage plan and for a
        connection, every attempt and every back-off (``None``: no bound beyond each
        attempt's timeout).  When it runs out the call raises
        :class:`~spapi_services.errors.ApiTimeoutError` naming what it was waiting for.
    :param retry: the :class:`RetryPolicy`.
    :param rate_limits: ``None`` for Amazon's published usage plans, ``False`` for no
        client-side limiting, or a :class:`RateLimits` (or another
        :class:`~spapi_services.UsagePlan`), shareable between clients.
    :param seller: names the selling partner whose usage plan this client spends, for
        plans shared with other clients or processes (``rate_limits``); by default the
        refresh token stands for it (hashed).  Give it with ``access_token_provider``,
        where there is no refresh token to go by.
    :param token_cache: where access tokens are kept: ``None`` for this client's memory,
        or a :class:`~spapi_services.TokenCache` shared by several clients (a
        :class:`~spapi_services.MemoryTokenCache` in one process; a
        ``spapi_services.redis.RedisTokenCache`` across processes and hosts).
    :param user_agent: your application's name and version, put before ours.
    :param sender: replaces the HTTP layer: an async callable
        ``(method, url, headers, body, timeout) -> RawResponse`` making one attempt (for
        tests, or another HTTP stack).  Default: aiohttp.
    :param timer: replaces the clock and sleep the pipeline waits with (for tests).
    :param instrument: OpenTelemetry traces and metrics of every call, when
        ``opentelemetry-api`` is installed (the ``otel`` extra): on by default, through
        the global providers unless the two below are given; ``False`` turns them off.
    :param tracer_provider: the OpenTelemetry ``TracerProvider`` for the calls' spans.
    :param meter_provider: the OpenTelemetry ``MeterProvider`` for the SDK's metrics.
    :param trace_configs: ``aiohttp.TraceConfig`` objects for the session the client
        makes (such as opentelemetry-instrumentation-aiohttp-client's, whose HTTP spans
        then nest under the calls' spans).  With ``session=``, give them to that session
        instead: passing both is a ``ValueError``.
    """

    def __init__(
        self,
        credentials: LwaCredentials | None = None,
        *,
        region: Region | None = None,
        sandbox: bool | None = None,
        endpoint: str | None = None,
        token_url: str | None = None,
        marketplace_id: str | None = None,
        access_token_provider: AccessTokenProvider | None = None,
        session: aiohttp.ClientSession | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        deadline: float | None = DEFAULT_DEADLINE,
        retry: RetryPolicy | None = None,
        rate_limits: UsagePlan | bool | None = None,
        seller: str | None = None,
        token_cache: TokenCache | None = None,
        user_agent: str | None = None,
        sender: Sender | None = None,
        timer: Timer | None = None,
        instrument: bool = True,
        tracer_provider: Any = None,
        meter_provider: Any = None,
        trace_configs: Sequence[aiohttp.TraceConfig] | None = None,
    ) -> None:
        if credentials is None and access_token_provider is None:
            credentials = LwaCredentials.from_env()
        where = connection_settings(
            region=region,
            sandbox=sandbox,
            endpoint=endpoint,
            token_url=token_url,
            marketplace_id=marketplace_id,
        )
        config = ClientConfig(
            credentials=credentials,
            region=Region[where.region],
            sandbox=where.sandbox,
            endpoint=where.endpoint,
            token_url=where.token_url,
            marketplace_id=where.marketplace_id,
            access_token_provider=access_token_provider,
            session=session,
            timeout=timeout,
            deadline=deadline,
            retry=RetryPolicy() if retry is None else retry,
            rate_limits=rate_limits,
            seller=seller,
            token_cache=token_cache,
            user_agent=user_agent,
            sender=sender,
            timer=timer,
            instrument=instrument,
            tracer_provider=tracer_provider,
            meter_provider=meter_provider,
            trace_configs=trace_configs,
        )
        core = _Core(config)
        # Where the default marketplace came from, for messages about it.
        core.marketplace_source = where.sources["marketplace_id"]
        self._setup(config, core)

    def _setup(self, config: ClientConfig, core: _Core) -> None:
        self._config = config
        self._core = core
        self._options = CallOptions(
            retry=config.retry, timeout=float(config.timeout), deadline=config.deadline
        )

    @property
    def config(self) -> ClientConfig:
        """What this client was configured with (frozen)."""
        return self._config

    @property
    def region(self) -> Region:
        """The SP-API region."""
        return self._config.region

    @property
    def marketplace_id(self) -> str | None:
        """The default marketplace for operations that take one."""
        return self._config.marketplace_id

    @property
    def base_url(self) -> str:
        """The API's base URL."""
        return self._config.base_url

    @property
    def plan_scope(self) -> str:
        """The key this client's usage-plan tokens are spent under: the application's
        client id and a hash of the refresh token (never the token itself)."""
        return self._core.scope

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(endpoint={self.base_url!r}, "
            f"marketplace_id={self.marketplace_id!r}, state={self._core.state.value})"
        )

    # --- lifecycle ---------------------------------------------------------------

    async def __aenter__(self) -> Self:
        self._core.check_open()
        if self._config.sender is None:
            await self._core.get_session()
        elif self._core.state is _State.UNOPENED:
            self._core.state = _State.OPENED
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP session if this client made it.  Calling it again does nothing."""
        await self._core.close()

    @property
    def is_closed(self) -> bool:
        """Whether :meth:`aclose` has been called."""
        return self._core.state is _State.CLOSED

    def with_options(
        self,
        *,
        retry: RetryPolicy | None = None,
        timeout: float | None = None,
        deadline: float | None = _UNSET,
    ) -> Self:
        """A view of this client with another retry policy, timeout or deadline.

        It is of the same class, with resources of its own, and shares the session, the
        token and the usage plan's buckets; closing either closes both::

            await client.with_options(retry=RetryPolicy(max_retries=0)).service_jobs.get(job_id)
        """
        changes: dict[str, Any] = {}
        if retry is not None:
            changes["retry"] = retry
        if timeout is not None:
            changes["timeout"] = timeout
        if deadline is not _UNSET:
            changes["deadline"] = deadline
        copy = type(self).__new__(type(self))
        copy._setup(attrs.evolve(self._config, **changes), self._core)
        return copy

    # --- resources ---------------------------------------------------------------

    @cached_property
    def service_jobs(self) -> ServiceJobs:
        """Get, list, cancel and complete service jobs."""
        from .resources.service_jobs import ServiceJobs

        return ServiceJobs(self)

    @cached_property
    def appointments(self) -> Appointments:
        """Book, reschedule and staff appointments; record fulfilment; find free slots."""
        from .resources.appointments import Appointments

        return Appointments(self)

    @cached_property
    def schedules(self) -> Schedules:
        """Set a resource's working hours and read its capacity."""
        from .resources.schedules import Schedules

        return Schedules(self)

    @cached_property
    def reservations(self) -> Reservations:
        """Reserve a resource's time, and change or cancel reservations."""
        from .resources.reservations import Reservations

        return Reservations(self)

    @cached_property
    def documents(self) -> Documents:
        """Upload fulfilment documents (proof of appointment)."""
        from .resources.documents import Documents

        return Documents(self)

    # --- for the resources -------------------------------------------------------

    async def _call(
        self,
        operation_id: str,
        *,
        path: dict[str, str] | None = None,
        query: dict[str, Any] | None = None,
        body: Any = None,
        record: CallRecord | None = None,
    ) -> ApiResponse:
        """Send one operation (the resources' way out)."""
        self._core.check_open()
        return await self._core.transport.send(
            route(operation_id),
            self._options,
            path_params=path,
            query=encode_query(query) if query else None,
            json_body=body,
            record=record,
        )

    def _now(self) -> float:
        """A reading of the pipeline's clock."""
        return self._core.transport.timer.now()

    def _utcnow(self) -> datetime:
        """The wall-clock time, aware, in UTC: what checks of "not in the future" compare
        with (one place, so that tests can set it)."""
        return datetime.now(UTC)

    async def _put_document(
        self,
        url: str,
        body: bytes,
        content_type: ContentType,
        headers: dict[str, str] | None,
        *,
        asked_at: float,
        destination_id: str,
    ) -> None:
        """PUT a document to its presigned URL (see :func:`spapi_services._upload.put_document`)."""
        self._core.check_open()
        transport = self._core.transport

        async def put() -> None:
            await put_document(
                transport.sender,
                transport.timer,
                url,
                body,
                upload_headers(headers, content_type),
                policy=self._options.retry,
                attempt_seconds=self._options.timeout,
                expires_at=asked_at + url_lifetime(url),
                destination_id=destination_id,
            )

        otel = self._core.otel
        if otel is None:
            await put()
            return
        # The URL's query is its signature: only the host is named.
        attributes = {
            "http.request.method": "PUT",
            "server.address": URL(url).host or "",
            "spapi.document.size": len(body),
            "spapi.document.content_type": str(content_type.value),
            "spapi.upload_destination_id": printable(destination_id, 300),
        }
        with otel.activity("document upload", attributes, client_kind=True):
            await put()

    def _marketplace(self, marketplace_id: str | None) -> str:
        """The marketplace an operation is sent for: the one given, else the client's
        default, checked as the client checks its own (see its docstring)."""
        name = "marketplace_id"
        if marketplace_id is None:
            if self.marketplace_id is None:
                raise ValueError(
                    "marketplace_id: required for this operation; pass marketplace_id=, "
                    "set ServicesClient(marketplace_id=...) or SPAPI_MARKETPLACE_ID"
                )
            chosen = self.marketplace_id
            source = self._core.marketplace_source
            name = source if source.startswith("SPAPI_") else name
        else:
            chosen = check_marketplace_id(name, marketplace_id)
        if self._config.endpoint is None:
            check_region(name, chosen, self.region.name)
        return chosen
