"""The emulator itself: an aiohttp server on 127.0.0.1 with every piece wired in.

Each Services API request runs one fixed sequence, written out once in
:meth:`ServicesEmulator._endpoint` rather than as stacked middlewares (it is the hot path
of every benchmark): injected faults, the access token, the usage plan, the rule check,
the operation, then the response headers (``x-amzn-RequestId`` always,
``x-amzn-RateLimit-Limit`` on 2xx, 400 and 404 only) and an entry in the request log.
The token endpoint and the document upload URL have handlers of their own.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from types import TracebackType
from urllib.parse import parse_qsl, urlencode

import attrs
from aiohttp import web
from multidict import MultiDict

from .._routes import ROUTES, Route
from .activity import Activity, WorldActivity
from .api_appointments import AppointmentsApi
from .api_documents import DocumentsApi
from .api_jobs import JobsApi
from .api_scheduling import SchedulingApi
from .api_slots import SlotsApi
from .auth import (
    AuthFailure,
    LwaCredentials,
    TokenAuthority,
    default_credentials,
    seller_refresh_token,
)
from .clock import Clock, ShiftedClock, SystemClock
from .context import Handler, ServiceContext
from .documents import DocumentVault
from .faults import FAULT_KEYS, FaultInjector, FaultPlan, error_page
from .introspection import DROPPED, REDACTED, TOKEN, UPLOAD, RequestRecord, Traffic, redact_headers
from .limits import UsagePlans
from .replies import ApiError, Reply, error_body, error_entry
from .seed import seed_store, seller_seed
from .static import StaticSandbox
from .store import Store
from .tokens import PageTokens
from .validation import check_request

__all__ = ["EmulatedSeller", "ServicesEmulator"]

_log = logging.getLogger("spapi_services.emulator")

_BARE_ERRORS = frozenset({"setAppointmentFulfillmentData"})
_QUOTA = [error_entry("QuotaExceeded", "You exceeded your quota for the requested resource.")]
_MAX_API_BODY = 1 << 20
_SECRET_FORM_FIELDS = frozenset({"client_secret", "refresh_token"})
_JSON = "application/json"
_PAGINGS = ("keyset", "offset")

#: The addresses the emulator may listen on: this machine's loopback, never further.
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def _check_whole(name: str, value: object, low: int, high: int | None = None) -> None:
    """A whole number from ``low`` to ``high``: a constructor argument's rule, said by name."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name}: expected a whole number, got {type(value).__name__}")
    if value < low or (high is not None and value > high):
        span = f"from {low} to {high}" if high is not None else f"at least {low}"
        raise ValueError(f"{name}: must be {span}, got {value}")


def _check_positive(name: str, value: object) -> None:
    """A number of seconds more than zero."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"{name}: must be a number of seconds more than 0, got {value!r}")


Endpoint = Callable[[web.Request], Awaitable[web.StreamResponse]]


@attrs.define(eq=False)
class EmulatedSeller:
    """A selling partner of the emulator: its refresh token and the world it sees.

    ``credentials`` are the app's client id and secret with this seller's refresh token;
    ``store`` is its world (its own jobs, stores and technicians); ``seller_id`` the id its
    jobs carry.  Calls made with an access token of this seller's read and change this
    world only, and draw on this seller's usage plans.
    """

    #: The seller's place in ``ServicesEmulator.sellers`` (0: the app's own).
    index: int
    #: The app's client id and secret with this seller's refresh token.
    credentials: LwaCredentials
    #: What the seller's operations work with: its world, the document vault, the clock and how
    #: tokens page.
    context: ServiceContext = attrs.field(repr=False)
    #: The seller's operation handlers, by operationId.
    handlers: dict[str, Handler] = attrs.field(repr=False)
    activity: WorldActivity | None = attrs.field(default=None, init=False, repr=False)
    """The changes the emulator's ``activity`` makes to this world (``None`` without one):
    ``activity.log`` holds the latest, ``activity.created``/``updated`` count them."""

    @property
    def refresh_token(self) -> str:
        """The refresh token the emulator's token endpoint accepts for this seller."""
        return self.credentials.refresh_token

    @property
    def store(self) -> Store:
        """The seller's world."""
        return self.context.store

    @property
    def seller_id(self) -> str:
        """The seller id of the seller's jobs."""
        return self.store.seller_id


class ServicesEmulator:
    """A local, stateful Services API with Login with Amazon and document uploads.

    Use it as ``async with ServicesEmulator(jobs=500, seed=1) as emu:`` and point a client
    at ``emu.url`` and ``emu.token_url`` with ``emu.credentials``.

    With ``sellers=N`` (or :meth:`add_seller`) it serves several selling partners of one
    app, each with a refresh token of its own and a world of its own, seeded from the seed
    and the seller's index: ``emu.sellers[i].credentials`` reach the ``i``-th.  The
    first seller is the one of ``emu.credentials`` and ``emu.store``.

    :param jobs: how many service jobs to seed (for each seller).
    :param seed: the seed of the world, of the credentials and of the fault dice.
    :param sellers: how many selling partners, each with its own world and usage plans.
    :param host: the address to listen on; only loopback is allowed.
    :param port: the port; 0 picks a free one.
    :param credentials: the LWA app and refresh token to accept (default: from the seed).
    :param token_ttl: seconds an access token lives.
    :param enforce_limits: throttle requests over the published usage plans.
    :param rate_scale: multiply every usage plan's refill rate.
    :param clock: the clocks to use (a :class:`~spapi_services.emulator.FakeClock` in tests).
    :param at: start the wall clock at this instant and let it run in real time from there
        (a :class:`~spapi_services.emulator.clock.ShiftedClock`): the same world whatever
        the date, with usage plans and tokens on real time.  Not with ``clock``.
    :param reference_time: the "now" the seeded world is built around (default: the
        clock's current day, at midnight UTC).
    :param static_spec: a Swagger model file; replay its sandbox cases instead of the store.
    :param upload_url_ttl: seconds an upload URL accepts a PUT.
    :param document_ttl: seconds an uploaded document may be cited in fulfilment data.
    :param require_encryption: refuse documents that do not decrypt with their key.
    :param strict_slots: appointments must start on a free hourly slot of the store.
    :param request_log_size: how many requests :attr:`requests` keeps.
    :param page_tokens: what getServiceJobs' page tokens hold: ``"keyset"`` (the sort key
        of the page's edge: a job that changes between pages shifts nothing) or
        ``"offset"`` (a position in the result set as it is when the token comes back:
        a job that leaves or enters it between pages shifts every later page, as on
        many list APIs).  Every seller pages the same way.
    :param page_token_ttl: seconds a page token is accepted after it was issued (on the
        clock's monotonic time); later it is refused as a foreign token is, with a 400
        ``InvalidInput``.  ``None`` (the default): tokens never expire.
    :param activity: new jobs and status moves at set rates in every seller's world
        (an :class:`~spapi_services.emulator.Activity`), timed by the clock and drawn
        from the seed; see :meth:`run_activity`.
    """

    def __init__(
        self,
        *,
        jobs: int = 200,
        seed: int = 0,
        sellers: int = 1,
        host: str = "127.0.0.1",
        port: int = 0,
        credentials: LwaCredentials | None = None,
        token_ttl: int = 3600,
        enforce_limits: bool = True,
        rate_scale: float = 1.0,
        clock: Clock | None = None,
        at: datetime | None = None,
        reference_time: datetime | None = None,
        static_spec: str | Path | None = None,
        upload_url_ttl: int = 300,
        document_ttl: int = 86_400,
        require_encryption: bool = True,
        strict_slots: bool = False,
        request_log_size: int = 10_000,
        page_tokens: str = "keyset",
        page_token_ttl: float | None = None,
        activity: Activity | None = None,
    ) -> None:
        if host not in LOOPBACK_HOSTS:
            raise ValueError(
                f"host: {host!r}: the emulator only listens on the loopback interface "
                f"({', '.join(LOOPBACK_HOSTS)})"
            )
        _check_whole("port", port, 0, 65535)
        _check_whole("jobs", jobs, 0)
        _check_positive("token_ttl", token_ttl)
        _check_positive("upload_url_ttl", upload_url_ttl)
        if page_tokens not in _PAGINGS:
            raise ValueError(f"page_tokens: must be 'keyset' or 'offset', got {page_tokens!r}")
        if page_token_ttl is not None and (
            isinstance(page_token_ttl, bool)
            or not isinstance(page_token_ttl, int | float)
            or not 0 < page_token_ttl < float("inf")
        ):
            raise ValueError(
                "page_token_ttl: must be a positive number of seconds (or None: tokens "
                f"never expire), got {page_token_ttl!r}"
            )
        if activity is not None and not isinstance(activity, Activity):
            raise TypeError(
                "activity: expected an Activity(created_per_minute=..., "
                f"updated_per_minute=...), got {type(activity).__name__}"
            )
        if activity is not None and static_spec is not None:
            raise ValueError("activity: a static emulator replays fixed cases and has no world")
        self._paging = page_tokens
        self._page_token_ttl = None if page_token_ttl is None else float(page_token_ttl)
        self._activity = activity
        #: The loopback address it listens on.
        self.host = host
        #: The port it listens on (the one picked, once started with port 0).
        self.port = port
        #: The seed of the worlds, the credentials and the fault dice.
        self.seed = seed
        if at is not None:
            if clock is not None:
                raise ValueError("at: give a clock or a start time, not both")
            clock = ShiftedClock(at)
        #: The clocks of its tokens, usage plans, worlds and activity.
        self.clock: Clock = clock or SystemClock()
        #: The LWA token endpoint: the credentials it accepts and the access tokens it issued.
        self.auth = TokenAuthority(
            credentials or default_credentials(seed), self.clock, ttl=token_ttl
        )
        #: The usage plans, one bucket per operation and seller.
        self.limits = UsagePlans(self.clock, enforce=enforce_limits, rate_scale=rate_scale)
        #: The faults in force: ``emu.faults.set("getServiceJobs", error_rate=0.1)``.
        self.faults = FaultInjector(seed, operations=FAULT_KEYS)
        #: The request log and counters behind :attr:`requests` and :meth:`count`.
        self.traffic = Traffic(request_log_size)
        #: The sandbox cases it replays, with ``static_spec`` (``None``: it serves its worlds).
        self.static = StaticSandbox.from_file(static_spec) if static_spec is not None else None
        self._jobs = jobs
        self._reference = reference_time
        self._runner: web.AppRunner | None = None
        if isinstance(sellers, bool) or not isinstance(sellers, int) or sellers < 1:
            raise ValueError(f"sellers: must be a whole number of at least 1, got {sellers!r}")
        #: The upload destinations and uploaded documents.
        self.vault = DocumentVault(
            self.clock,
            url_ttl=upload_url_ttl,
            document_ttl=document_ttl,
            require_encryption=require_encryption,
        )
        self._page_tokens = PageTokens(random.Random(f"tokens:{seed}").randbytes(32))
        self._strict_slots = strict_slots
        self.sellers: list[EmulatedSeller] = []
        """The selling partners, in the order they were added (the first is the app's own)."""
        self._by_token: dict[str, EmulatedSeller] = {}
        first = self._new_seller(self.auth.credentials.refresh_token)
        #: The first seller's world: its jobs, stores and technicians.
        self.store = first.store
        #: What the first seller's operations work with (its world, the clock, how tokens page).
        self.context = first.context
        self._handlers = first.handlers
        for _ in range(1, sellers):
            self.add_seller()

    # --- lifecycle ------------------------------------------------------------------

    async def start(self) -> ServicesEmulator:
        """Start listening (an emulator starts once)."""
        if self._runner is not None:
            raise RuntimeError("the emulator is already running")
        runner = web.AppRunner(self._build_app(), access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, reuse_address=True)
        await site.start()
        self._runner = runner
        self.port = runner.addresses[0][1]
        for seller in self.sellers:
            seller.context.base_url = self.url
            if seller.activity is not None:
                seller.activity.start()  # the world starts moving as the emulator listens
        _log.info("Services API emulator listening on %s", self.url)
        return self

    async def stop(self) -> None:
        """Stop listening and close every connection (harmless if not running)."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    #: Another name of :meth:`stop`.
    aclose = stop

    async def __aenter__(self) -> ServicesEmulator:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        """The API's base URL (``http://127.0.0.1:<port>``)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def token_url(self) -> str:
        """The LWA token endpoint."""
        return f"{self.url}/auth/o2/token"

    @property
    def credentials(self) -> LwaCredentials:
        """The credentials the token endpoint accepts (the first seller's)."""
        return self.auth.credentials

    # --- sellers --------------------------------------------------------------------

    def add_seller(self, refresh_token: str | None = None) -> EmulatedSeller:
        """Another selling partner, with a world of its own seeded from the seed and its
        index (and its own usage plans, as every refresh token has).

        ``refresh_token`` defaults to one drawn from the seed and the index.
        """
        token = refresh_token or seller_refresh_token(self.seed, len(self.sellers))
        if token in self._by_token:
            raise ValueError("refresh_token: that seller is already added")
        self.auth.add_refresh_token(token)
        return self._new_seller(token)

    def _new_seller(self, refresh_token: str) -> EmulatedSeller:
        index = len(self.sellers)
        store = Store(self.clock, seller_seed(self.seed, index))
        context = ServiceContext(
            store=store,
            vault=self.vault,
            clock=self.clock,
            page_tokens=self._page_tokens,
            strict_slots=self._strict_slots,
            base_url=self.url if self._runner is not None else "",
            paging=self._paging,
            page_token_ttl=self._page_token_ttl,
        )
        handlers: dict[str, Handler] = {}
        for api in (
            JobsApi(context),
            AppointmentsApi(context),
            SchedulingApi(context),
            SlotsApi(context),
            DocumentsApi(context),
        ):
            handlers.update(api.handlers())
        app = self.auth.credentials
        seller = EmulatedSeller(
            index=index,
            credentials=LwaCredentials(app.client_id, app.client_secret, refresh_token),
            context=context,
            handlers=handlers,
        )
        self.sellers.append(seller)
        self._by_token[refresh_token] = seller
        if self.static is None:
            self._seed_world(seller)
            if self._activity is not None:
                seller.activity = self._world_activity(seller)
        return seller

    # --- activity -------------------------------------------------------------------

    @property
    def activity(self) -> Activity | None:
        """The rates at which every seller's world changes (``None``: it stands still)."""
        return self._activity

    def run_activity(self) -> int:
        """Apply the activity's changes due by the clock's now, in every seller's world.

        Each API request does this for its seller's world first; call it before reading
        :attr:`store` directly (after moving a fake clock, say).  Returns how many
        changes were applied.
        """
        return sum(s.activity.run() for s in self.sellers if s.activity is not None)

    def _world_activity(self, seller: EmulatedSeller) -> WorldActivity:
        assert self._activity is not None
        seed = seller_seed(self.seed, seller.index)
        return WorldActivity(self._activity, seller.store, self.clock, seed)

    # --- introspection --------------------------------------------------------------

    @property
    def requests(self) -> list[RequestRecord]:
        """The requests received (newest ``request_log_size``), oldest first."""
        return self.traffic.requests

    @property
    def counts(self) -> Counter[tuple[str | None, int]]:
        """Requests by ``(operation, status)``: 429s included, 0 for dropped connections."""
        return self.traffic.counts

    def count(self, operation: str | None = None, status: int | None = None) -> int:
        """How many requests of ``operation`` were answered with ``status`` (None: any)."""
        return self.traffic.count(operation, status)

    @property
    def lwa_exchanges(self) -> int:
        """Requests to the token endpoint so far, refused ones included."""
        return self.traffic.lwa_exchanges

    @property
    def open_connections(self) -> int:
        """Client connections open right now, idle keep-alive ones included (not those
        the emulator is closing, as after a dropped or lost answer)."""
        server = self._runner.server if self._runner is not None else None
        if server is None:
            return 0
        return sum(
            1
            for handler in server.connections
            if handler.transport is not None and not handler.transport.is_closing()
        )

    def reset(self, *, state: bool = False) -> None:
        """Forget requests, counters, faults and usage; ``state=True`` also reseeds the world
        (and starts its activity again, from now).

        Access tokens already issued stay valid.
        """
        self.traffic.reset()
        self.faults.clear()
        self.limits.reset()
        if state:
            self.vault.forget()
            for seller in self.sellers:
                seller.store.clear()
                if self.static is None:
                    self._seed_world(seller)
                if seller.activity is not None:
                    seller.activity = self._world_activity(seller)

    def _seed_world(self, seller: EmulatedSeller) -> None:
        reference = self._reference
        if reference is None:
            reference = self.clock.now().replace(hour=0, minute=0, second=0, microsecond=0)
        seed = seller_seed(self.seed, seller.index)
        seed_store(seller.store, jobs=self._jobs, seed=seed, reference=reference)

    # --- the application ------------------------------------------------------------

    def _build_app(self) -> web.Application:
        app = web.Application(client_max_size=8 << 20)
        app.router.add_post("/auth/o2/token", self._token)
        app.router.add_put("/__uploads/{key}", self._upload)
        for route in ROUTES.values():
            app.router.add_route(route.method, route.path, self._endpoint(route))
        app.router.add_route("*", "/{tail:.*}", self._unknown)
        return app

    def _new_request_id(self) -> str:
        return str(uuid.uuid4())

    def _endpoint(self, route: Route) -> Endpoint:
        op = route.operation_id
        bare = op in _BARE_ERRORS
        own_world = self._handlers[op]
        worlds = self._by_token
        first = self.sellers[0]
        static = self.static

        async def endpoint(request: web.Request) -> web.StreamResponse:
            request_id = self._new_request_id()
            body = await request.read()
            plan = self.faults.plan(op)
            # Amazon's gateway checks the token and meters the plan as a request arrives,
            # before any time is spent on it: so does the emulator, ahead of the latency.
            gate: Exception | None = None
            handler = own_world
            try:
                owner = self.auth.owner(request.headers.get("x-amz-access-token"))
                if not self.limits.allow(owner, op):
                    gate = ApiError(429, _QUOTA)
                # The world of the seller whose token this is; a refresh token added
                # without a world of its own (add_refresh_token) sees the first seller's.
                seller = worlds.get(owner, first)
                if seller is not first:
                    handler = seller.handlers[op]
                if seller.activity is not None:
                    seller.activity.run()  # the answer sees the world as of now
            except AuthFailure as failure:
                gate = failure
            if plan is not None:
                early = await self._misbehave(request, plan, op, request_id, body, gate is None)
                if early is not None:
                    return early
            try:
                if gate is not None:
                    raise gate
                if len(body) > _MAX_API_BODY:
                    raise ApiError(
                        413, [error_entry("RequestEntityTooLarge", "Request body too large.")]
                    )
                if static is not None:
                    reply = static.answer(
                        op, request.match_info, request.query, _raw_query(request), body
                    )
                else:
                    call = check_request(
                        op, request.match_info, request.query, body, request.content_type
                    )
                    reply = handler(call)
            except AuthFailure as failure:
                reply = Reply(403, error_body(failure.errors(), bare=False))
            except ApiError as error:
                # Throttling and auth happen before the operation: always the wrapped shape.
                wrapped = error.status in (403, 429) or not bare
                reply = Reply(error.status, error_body(error.errors, bare=not wrapped))
            except Exception:
                _log.exception("emulator handler for %s failed", op)
                reply = Reply(
                    500, error_body([error_entry("InternalFailure", "Internal error.")], bare=False)
                )
            headers = {"x-amzn-RequestId": request_id}
            status = reply.status
            if status < 300 or status in (400, 404):
                headers["x-amzn-RateLimit-Limit"] = self.limits.header(op)
            self._record(request, op, request_id, status, body)
            if plan is not None and plan.mangle is not None:
                return await _mangled(request, plan.mangle, status, headers, reply.body)
            if reply.body is None:
                return web.Response(status=status, headers=headers)
            if plan is not None and plan.slow_body > 0:
                return await _trickle(request, status, headers, reply.body, plan.slow_body)
            headers["Content-Type"] = "application/json"
            return web.Response(status=status, body=reply.body, headers=headers)

        return endpoint

    async def _misbehave(
        self,
        request: web.Request,
        plan: FaultPlan,
        operation: str,
        request_id: str,
        body: bytes,
        admitted: bool = True,
    ) -> web.StreamResponse | None:
        """Apply latency; answer for the fault if it drops or fails the request.

        A request the gateway already refused (``admitted=False``) only gets the latency.
        """
        if plan.delay > 0:
            await asyncio.sleep(plan.delay)
        if not admitted:
            return None
        if plan.drop:
            self._record(request, operation, request_id, DROPPED, body)
            transport = request.transport
            if transport is not None:
                transport.close()
            return web.Response(status=500)  # never reaches the client: the socket is gone
        if plan.error_status is not None:
            page, content_type = error_page(plan.error_status, html=plan.html)
            self._record(request, operation, request_id, plan.error_status, body)
            return web.Response(
                status=plan.error_status,
                body=page,
                headers={"x-amzn-RequestId": request_id, "Content-Type": content_type},
            )
        return None

    def _record(
        self, request: web.Request, operation: str | None, request_id: str, status: int, body: bytes
    ) -> None:
        if operation == UPLOAD:
            text = None
        elif operation == TOKEN:
            text = _redacted_form(body)
        else:
            text = body.decode("utf-8", "replace") if body else None
        query = {k: ",".join(request.query.getall(k)) for k in request.query}
        self.traffic.record(
            RequestRecord(
                request_id=request_id,
                method=request.method,
                path=request.path,
                operation=operation,
                query=query,
                headers=redact_headers(request.headers.items()),
                body=text,
                body_size=len(body),
                status=status,
                time=self.clock.monotonic(),
            )
        )
        _log.debug(
            "%s %s -> %s (%s)", request.method, operation or request.path, status, request_id
        )

    # --- LWA, uploads, unknown paths ------------------------------------------------

    async def _token(self, request: web.Request) -> web.StreamResponse:
        request_id = self._new_request_id()
        body = await request.read()
        self.traffic.lwa_exchanges += 1
        plan = self.faults.plan(TOKEN, api=False)
        if plan is not None:
            early = await self._misbehave(request, plan, TOKEN, request_id, body)
            if early is not None:
                return early
        form = await _read_form(request, body)
        answer: dict[str, object]
        if form is None:
            status, answer = (
                400,
                {
                    "error": "invalid_request",
                    "error_description": "The request body could not be read.",
                },
            )
        else:
            status, answer = self.auth.exchange(form)
        if status == 200:
            self.traffic.tokens_issued += 1
        self._record(request, TOKEN, request_id, status, body)
        return web.json_response(answer, status=status, headers={"x-amzn-RequestId": request_id})

    async def _upload(self, request: web.Request) -> web.StreamResponse:
        request_id = self._new_request_id()
        body = await request.read()
        plan = self.faults.plan(UPLOAD, api=False)
        if plan is not None:
            early = await self._misbehave(request, plan, UPLOAD, request_id, body)
            if early is not None:
                return early
        headers = redact_headers(request.headers.items())
        status, answer = self.vault.put(request.match_info["key"], request.query, headers, body)
        self._record(request, UPLOAD, request_id, status, body)
        reply_headers = {"x-amz-request-id": request_id, "x-amzn-RequestId": request_id}
        if status == 200:
            return web.Response(status=200, headers=reply_headers)
        reply_headers["Content-Type"] = "application/xml"
        return web.Response(status=status, body=answer, headers=reply_headers)

    async def _unknown(self, request: web.Request) -> web.StreamResponse:
        request_id = self._new_request_id()
        body = await request.read()
        self._record(request, None, request_id, 404, body)
        errors = [error_entry("NotFound", f"No operation at {request.method} {request.path}")]
        return web.Response(
            status=404,
            body=error_body(errors, bare=False),
            headers={"x-amzn-RequestId": request_id, "Content-Type": "application/json"},
        )


# --- helpers -----------------------------------------------------------------------------


def _raw_query(request: web.Request) -> MultiDict[str]:
    pairs: MultiDict[str] = MultiDict()
    for part in request.rel_url.raw_query_string.split("&"):
        if part:
            key, _, value = part.partition("=")
            pairs.add(key, value)
    return pairs


async def _read_form(request: web.Request, body: bytes) -> dict[str, str] | None:
    """The token request's fields, from a form (the documented way) or a JSON object."""
    if request.content_type == "application/json":
        try:
            data = json.loads(body)
        except ValueError:
            return None
        if not isinstance(data, dict):
            return None
        return {str(k): str(v) for k, v in data.items() if v is not None}
    try:
        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    except UnicodeDecodeError:
        return None


def _redacted_form(body: bytes) -> str:
    """The token request as logged: secrets replaced, whether it came as a form or JSON."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return REDACTED
    if text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            return REDACTED
        if isinstance(data, dict):
            return json.dumps(
                {k: REDACTED if k in _SECRET_FORM_FIELDS else v for k, v in data.items()}
            )
        return REDACTED
    pairs = parse_qsl(text, keep_blank_values=True)
    if not pairs:
        return REDACTED if body else ""
    return urlencode([(k, REDACTED if k in _SECRET_FORM_FIELDS else v) for k, v in pairs])


async def _mangled(
    request: web.Request, how: str, status: int, headers: dict[str, str], body: bytes | None
) -> web.StreamResponse:
    """Spoil an answer whose operation has already run (see :class:`Fault`'s ``mangle``)."""
    body = body or b""
    if how == "html":
        page, _ = error_page(502, html=True)
        return web.Response(status=200, body=page, headers=headers, content_type="text/html")
    if how == "empty":
        return web.Response(status=200, headers=headers)
    if how == "truncate":
        return web.Response(
            status=status, body=body[: len(body) // 2], headers=headers, content_type=_JSON
        )
    transport = request.transport
    if how == "reset" and transport is not None:
        # The status line, the headers and half the body go out; then the connection closes.
        # A 204 has no body to cut short: it is sent as a 200 whose body never ends.
        response = web.StreamResponse(status=status if body else 200, headers=headers)
        response.content_type = _JSON
        response.content_length = max(len(body), 2)
        await response.prepare(request)
        await response.write(body[: len(body) // 2] or b"{")
        transport.close()
        return response
    if transport is not None:
        transport.close()
    return web.Response(status=500)  # never reaches the client: the socket is gone


async def _trickle(
    request: web.Request, status: int, headers: dict[str, str], body: bytes, seconds: float
) -> web.StreamResponse:
    """Send ``body`` in pieces spread over ``seconds`` (a slow network or server)."""
    response = web.StreamResponse(status=status, headers=headers)
    response.content_type = "application/json"
    response.content_length = len(body)
    await response.prepare(request)
    pieces = max(2, min(10, len(body)))
    size = -(-len(body) // pieces)
    chunks = [body[offset : offset + size] for offset in range(0, len(body), size)]
    # The pauses sit between chunks, so the last byte arrives ``seconds`` after the first.
    await response.write(chunks[0])
    for chunk in chunks[1:]:
        await asyncio.sleep(seconds / (len(chunks) - 1))
        await response.write(chunk)
    await response.write_eof()
    return response
