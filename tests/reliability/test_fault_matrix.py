"""Every operation against every fault users of SP-API clients run into, over real sockets.

Each cell of the two tables below is one test: the emulator (or a socket that misbehaves) injects
the column's fault into the row's operation, the SDK makes the call with three retries,
and the cell says what must come of it:

* ``ok<N>``: the call succeeded, after N attempts of the SDK;
* ``okr<N>``: it succeeded after N attempts, the last refused, because reading the job
  back showed that an earlier attempt had done what was asked;
* ``<ERR><N>``: it raised exactly that class (no subclass) after N attempts; ``1`` means
  the request was never sent twice.

Beyond the cell, every test checks the emulator's side: how many requests it saw (one per
attempt, plus aiohttp's own silent re-send of a GET, PUT or DELETE whose connection
dropped) and, for the operations that create something, how many things were created,
counted in the emulator's store (appointments on the job, reservations, upload
destinations): exactly one if the operation ran at all, never two.

Faults, by column:

=========  ==========================================================================
429x3      three 429 ``QuotaExceeded`` answers, then the operation runs
429+       429 on every attempt (the burst outlasts the retries)
500/500h   two 500s (JSON / an HTML page), then the operation runs
502, 504   two HTML 502s / 504s from a load balancer, then the operation runs
503/503h   two 503s (JSON / HTML), then the operation runs; 503+: 503 every time
refused    nothing listens on the port (connection refused)
connect    the port accepts no connection in time (a full listen backlog): a connect
           timeout, with the client's timeout at 0.1 s and one retry
read       the server takes 0.5 s to answer the first attempt; the client waits 0.2 s
drop       the connection closes before the operation runs, without an answer
lose       the operation runs, then the connection closes without an answer
reset      the operation runs; the status, headers and half the body arrive, then the
           connection closes
trunc      the operation runs; half its JSON body arrives as if it were all of it
html       the operation runs; a proxy's HTML page comes back with status 200
empty      the operation runs; a 200 comes back with no body at all
big        the body is over the size limit (``MAX_BODY_BYTES`` patched down to 1 byte)
=========  ==========================================================================

Two faults no socket here can produce, a TLS certificate that fails verification (never
retried: it would fail the same way) and a reset while the request is written (retried
only for idempotent operations), are mocked with aioresponses for every operation.

Error codes: RL RateLimitError, ISE InternalServerError, SE ServerError (502, 504),
SU ServiceUnavailableError, CE ApiConnectionError, TO ApiTimeoutError, DE
ResponseDecodeError, UE UnprocessableEntityError, NF NotFoundError.

Reading the odd cells: a cut-off answer to cancel/complete/cancelReservation is retried
(they are idempotent), and the retry meets a job already cancelled (422) or a reservation
already gone (404).  cancel and complete then read the job back, find it in the state
they asked for, and succeed (``okr2``).  No operation reads a reservation back, so
cancelReservation raises the 404 with a note that an earlier attempt may have run.
aiohttp's own silent re-send of a GET, PUT or DELETE whose answer was lost is invisible
to the SDK (the ``lose`` cells: one attempt as far as it knows, no note); the ``ok1`` in
the drop/lose columns of those operations are that same re-send, which the emulator
counts and the SDK does not.  An empty 200 to a search or a slot query is an empty page
or an empty report (the payload is optional), so those ``empty`` cells succeed.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

import aiohttp
import attrs
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from aioresponses import aioresponses

from spapi_services import (
    ApiConnectionError,
    ApiStatusError,
    ApiTimeoutError,
    InternalServerError,
    NotFoundError,
    RateLimitError,
    ResponseDecodeError,
    RetryPolicy,
    ServerError,
    ServiceUnavailableError,
    SpApiError,
    UnprocessableEntityError,
    _sender,
)
from spapi_services._routes import ROUTES
from spapi_services.emulator import FaultInjector, ServicesEmulator

from ._scenarios import SCENARIOS
from .conftest import MakeClient, Wire, settle

# Short names for the rows; the operationIds are in OPERATIONS below.
STATUS_FAULTS = """
operation    429x3 429+  500   500h  502   503   503h  503+  504
get          ok4   RL4   ok3   ok3   ok3   ok3   ok3   SU4   ok3
cancel       ok4   RL4   ok3   ok3   ok3   ok3   ok3   SU4   ok3
complete     ok4   RL4   ok3   ok3   ok3   ok3   ok3   SU4   ok3
list         ok4   RL4   ok3   ok3   ok3   ok3   ok3   SU4   ok3
add          ok4   RL4   ISE1  ISE1  SE1   SU1   SU1   SU1   SE1
reschedule   ok4   RL4   ISE1  ISE1  SE1   SU1   SU1   SU1   SE1
assign       ok4   RL4   ok3   ok3   ok3   ok3   ok3   SU4   ok3
fulfil       ok4   RL4   ok3   ok3   ok3   ok3   ok3   SU4   ok3
range        ok4   RL4   ok3   ok3   ok3   ok3   ok3   SU4   ok3
fixed        ok4   RL4   ok3   ok3   ok3   ok3   ok3   SU4   ok3
schedule     ok4   RL4   ok3   ok3   ok3   ok3   ok3   SU4   ok3
reserve      ok4   RL4   ISE1  ISE1  SE1   SU1   SU1   SU1   SE1
re-reserve   ok4   RL4   ok3   ok3   ok3   ok3   ok3   SU4   ok3
unreserve    ok4   RL4   ok3   ok3   ok3   ok3   ok3   SU4   ok3
job-slots    ok4   RL4   ok3   ok3   ok3   ok3   ok3   SU4   ok3
slots        ok4   RL4   ok3   ok3   ok3   ok3   ok3   SU4   ok3
document     ok4   RL4   ISE1  ISE1  SE1   SU1   SU1   SU1   SE1
"""

WIRE_FAULTS = """
operation    refused connect read  drop  lose  reset trunc html  empty big
get          CE4     TO2     ok2   ok1   ok1   ok2   DE1   DE1   DE1   DE1
cancel       CE4     TO2     ok2   ok1   UE1   okr2  DE1   DE1   ok1   DE1
complete     CE4     TO2     ok2   ok1   UE1   okr2  DE1   DE1   ok1   DE1
list         CE4     TO2     ok2   ok1   ok1   ok2   DE1   DE1   ok1   DE1
add          CE4     TO2     TO1   CE1   CE1   CE1   DE1   DE1   DE1   DE1
reschedule   CE4     TO2     TO1   CE1   CE1   CE1   DE1   DE1   DE1   DE1
assign       CE4     TO2     ok2   ok1   ok1   ok2   DE1   DE1   ok1   DE1
fulfil       CE4     TO2     ok2   ok1   ok1   ok2   ok1   DE1   ok1   ok1
range        CE4     TO2     ok2   ok2   ok2   ok2   DE1   DE1   DE1   DE1
fixed        CE4     TO2     ok2   ok2   ok2   ok2   DE1   DE1   DE1   DE1
schedule     CE4     TO2     ok2   ok1   ok1   ok2   DE1   DE1   ok1   DE1
reserve      CE4     TO2     TO1   CE1   CE1   CE1   DE1   DE1   DE1   DE1
re-reserve   CE4     TO2     ok2   ok1   ok1   ok2   DE1   DE1   DE1   DE1
unreserve    CE4     TO2     ok2   ok1   NF1   NF2   ok1   DE1   ok1   ok1
job-slots    CE4     TO2     ok2   ok1   ok1   ok2   DE1   DE1   ok1   DE1
slots        CE4     TO2     ok2   ok1   ok1   ok2   DE1   DE1   ok1   DE1
document     CE4     TO2     TO1   CE1   CE1   CE1   DE1   DE1   DE1   DE1
"""

OPERATIONS = {
    "get": "getServiceJobByServiceJobId",
    "cancel": "cancelServiceJobByServiceJobId",
    "complete": "completeServiceJobByServiceJobId",
    "list": "getServiceJobs",
    "add": "addAppointmentForServiceJobByServiceJobId",
    "reschedule": "rescheduleAppointmentForServiceJobByServiceJobId",
    "assign": "assignAppointmentResources",
    "fulfil": "setAppointmentFulfillmentData",
    "range": "getRangeSlotCapacity",
    "fixed": "getFixedSlotCapacity",
    "schedule": "updateSchedule",
    "reserve": "createReservation",
    "re-reserve": "updateReservation",
    "unreserve": "cancelReservation",
    "job-slots": "getAppointmmentSlotsByJobId",
    "slots": "getAppointmentSlots",
    "document": "createServiceDocumentUploadDestination",
}

ERRORS: dict[str, type[SpApiError]] = {
    "RL": RateLimitError,
    "ISE": InternalServerError,
    "SE": ServerError,
    "SU": ServiceUnavailableError,
    "CE": ApiConnectionError,
    "TO": ApiTimeoutError,
    "DE": ResponseDecodeError,
    "UE": UnprocessableEntityError,
    "NF": NotFoundError,
}


@attrs.frozen
class Column:
    """A fault: what to set on the emulator, and what the client's options become."""

    fault: dict[str, Any] = attrs.Factory(dict)
    endpoint: str | None = None  # "refused" or "blackhole": a socket of our own
    timeout: float = 5.0
    max_retries: int = 3
    ran: bool = False
    """Whether the operation runs on the server although the call fails."""
    oversized: bool = False


def _errors(status: int, *, html: bool = False, count: int | None = 2) -> Column:
    return Column({"error_rate": 1.0, "error_status": status, "html": html, "count": count})


COLUMNS: dict[str, Column] = {
    "429x3": _errors(429, count=3),
    "429+": _errors(429, count=None),
    "500": _errors(500),
    "500h": _errors(500, html=True),
    "502": _errors(502, html=True),
    "503": _errors(503),
    "503h": _errors(503, html=True),
    "503+": _errors(503, count=None),
    "504": _errors(504, html=True),
    "refused": Column(endpoint="refused"),
    "connect": Column(endpoint="blackhole", timeout=0.1, max_retries=1),
    "read": Column({"latency": 0.5, "count": 1}, timeout=0.2, ran=True),
    "drop": Column({"drop_rate": 1.0, "count": 1}),
    "lose": Column({"mangle": "lose", "count": 1}, ran=True),
    "reset": Column({"mangle": "reset", "count": 1}, ran=True),
    "trunc": Column({"mangle": "truncate", "count": 1}, ran=True),
    "html": Column({"mangle": "html", "count": 1}, ran=True),
    "empty": Column({"mangle": "empty", "count": 1}, ran=True),
    "big": Column(oversized=True, ran=True),
}


@attrs.frozen
class Cell:
    row: str
    column: str
    error: type[SpApiError] | None
    attempts: int
    read_back: bool = False

    @property
    def operation(self) -> str:
        return OPERATIONS[self.row]

    @property
    def id(self) -> str:
        return f"{self.row}-{self.column}"


def _parse(table: str) -> list[Cell]:
    header, *rows = [line.split() for line in table.strip().splitlines()]
    cells = []
    for row in rows:
        name, *outcomes = row
        for column, outcome in zip(header[1:], outcomes, strict=True):
            match = re.fullmatch(r"([A-Za-z]+)(\d+)", outcome)
            assert match is not None, outcome
            code, attempts = match.groups()
            error = None if code in ("ok", "okr") else ERRORS[code]
            cells.append(Cell(name, column, error, int(attempts), read_back=code == "okr"))
    return cells


CELLS = _parse(STATUS_FAULTS) + _parse(WIRE_FAULTS)


def test_the_matrix_covers_every_operation_and_fault() -> None:
    assert {c.operation for c in CELLS} == set(ROUTES)
    assert {c.column for c in CELLS} == set(COLUMNS)
    assert len(CELLS) == len(ROUTES) * len(COLUMNS)


def test_operations_that_create_things_are_posts() -> None:
    # aiohttp re-sends a GET, PUT or DELETE by itself when its connection drops, before
    # any retry policy sees an error.  Only a POST is safe from that, so an operation
    # that must never run twice has to be one.
    for route in ROUTES.values():
        if not route.idempotent:
            assert route.method == "POST", route.operation_id


@pytest.fixture
def refused_url() -> str:
    """A port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def blackhole_url() -> Iterator[str]:
    """A port whose listen backlog is full: connecting to it hangs until the timeout."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            filler.connect(("127.0.0.1", port))
        fillers.append(filler)
    yield f"http://127.0.0.1:{port}"
    for filler in fillers:
        filler.close()
    listener.close()


def _issued_token(emu: ServicesEmulator) -> str:
    creds = emu.credentials
    status, answer = emu.auth.exchange(
        {
            "grant_type": "refresh_token",
            "refresh_token": creds.refresh_token,
            "client_id": creds.client_id,
            "client_secret": creds.client_secret,
        }
    )
    assert status == 200
    token = answer["access_token"]
    assert isinstance(token, str)
    return token


async def _provide(token: str) -> str:
    return token


@pytest.mark.parametrize("cell", CELLS, ids=lambda c: c.id)
async def test_fault(
    cell: Cell,
    emu: ServicesEmulator,
    make_client: MakeClient,
    wire: Wire,
    sdk_sleeps: list[float],
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    scenario = SCENARIOS[cell.operation]
    column = COLUMNS[cell.column]
    op = cell.operation
    route = ROUTES[op]
    state = scenario.prepare(emu)

    endpoint = emu.url
    if column.endpoint is not None:
        endpoint = request.getfixturevalue(f"{column.endpoint}_url")
    if column.fault:
        emu.faults.set(op, **column.fault)
    if column.oversized:
        monkeypatch.setattr(_sender, "MAX_BODY_BYTES", 1)
    options: dict[str, Any] = {}
    if column.timeout < 1 or column.oversized:
        # The short timeout (the small body limit) is for the API: the token comes from the
        # emulator beforehand, so that the token exchange is not what times out (too big).
        token = _issued_token(emu)
        options["access_token_provider"] = lambda: _provide(token)
    client = make_client(
        emu,
        endpoint=endpoint,
        session=wire.session,
        timeout=column.timeout,
        retry=RetryPolicy(max_retries=column.max_retries),
        # Without a deadline 429s count against max_retries too: the table counts attempts.
        # (With one, they are retried while it lasts: tests/client/test_retry.py.)
        deadline=None,
        **options,
    )

    outcome: BaseException | None = None
    try:
        await scenario.call(client, state)
    except Exception as exc:
        outcome = exc

    # The outcome the table says, exactly.
    if cell.error is None:
        assert outcome is None, f"{cell.id}: expected success, got {outcome!r}"
    else:
        assert type(outcome) is cell.error, f"{cell.id}: expected {cell.error}, got {outcome!r}"
    assert wire.api_attempts == cell.attempts + cell.read_back, cell.id
    assert len(sdk_sleeps) == cell.attempts - 1  # one back-off before each retry

    # What the emulator saw: one request per attempt, plus aiohttp's own re-send.
    if column.endpoint is not None:
        assert emu.count(op) == 0
        return
    resent_by_aiohttp = cell.column in ("drop", "lose") and route.method != "POST"
    seen = cell.attempts + (1 if resent_by_aiohttp else 0)
    await settle(lambda: emu.count(op) >= seen)  # a slow first attempt is logged late
    assert emu.count(op) == seen, cell.id

    # An answer's error carries Amazon's request id, for the support case.
    if isinstance(outcome, ApiStatusError | ResponseDecodeError):
        answered = [r for r in emu.requests if r.operation == op and r.status]
        assert outcome.request_id == answered[-1].request_id, cell.id
        assert op in str(outcome)
    # ... and says so when an earlier attempt may have run (a lost answer, a 5xx): the
    # 422 of a retried cancel is then about the job the first attempt cancelled.
    uncertain = cell.attempts > 1 and not cell.column.startswith("429")
    if isinstance(outcome, ApiStatusError):
        notes = getattr(outcome, "__notes__", [])
        assert any("may have taken effect" in n for n in notes) == uncertain, cell.id

    # Operations that create things: created once if the operation ran at all, never twice.
    if scenario.effects is not None:
        ran = cell.error is None or column.ran
        assert scenario.effects(emu, state) == (1 if ran else 0), cell.id


async def test_an_oversized_body_without_a_length_is_refused_as_it_streams(
    make_client: MakeClient, emu: ServicesEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The "big" column has a Content-Length to refuse up front; a chunked answer has none,
    # and must be cut off while it is read, not buffered whole first.
    async def chunked(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"x-amzn-RequestId": "req-chunked"})
        response.content_type = "application/json"
        await response.prepare(request)
        for _ in range(50):
            await response.write(b" " * 1000)
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", chunked)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        monkeypatch.setattr(_sender, "MAX_BODY_BYTES", 4096)
        client = make_client(emu, endpoint=str(server.make_url("")).rstrip("/"))
        with pytest.raises(ResponseDecodeError) as caught:
            await client.service_jobs.get("job-1")
    finally:
        await server.close()
    assert caught.value.request_id == "req-chunked"
    assert "4096-byte limit" in str(caught.value)


# --- what no socket here can produce, by aioresponses --------------------------------------

MOCK_API = "https://api.reliability.test"

#: (fault, what aiohttp raises, attempts for idempotent operations, for the others)
MOCKED: dict[str, tuple[Callable[[], BaseException], int, int]] = {
    # A certificate that fails verification fails the same way every time: never retried.
    "tls": (
        lambda: aiohttp.ClientConnectorCertificateError(
            mock.Mock(host="api.reliability.test", port=443, ssl=True),
            ValueError("certificate verify failed: self-signed certificate"),
        ),
        1,
        1,
    ),
    # A reset while the request was being written: it may have arrived.
    "write-reset": (lambda: aiohttp.ClientOSError(104, "Connection reset by peer"), 4, 1),
}


async def _provided_token() -> str:
    return "Atza|mocked"


@pytest.mark.parametrize("fault", MOCKED)
@pytest.mark.parametrize("operation", sorted(ROUTES))
async def test_fault_below_the_socket(
    operation: str,
    fault: str,
    mock_api: aioresponses,
    make_client: MakeClient,
    emu: ServicesEmulator,
    sdk_sleeps: list[float],
) -> None:
    make_error, idempotent_attempts, other_attempts = MOCKED[fault]
    route = ROUTES[operation]
    sent: list[str] = []

    def fail(url: Any, **_: Any) -> None:
        sent.append(str(url))
        raise make_error()

    mock_api.add(
        re.compile(r"^https://api\.reliability\.test/"), route.method, callback=fail, repeat=True
    )
    scenario = SCENARIOS[operation]
    client = make_client(
        emu, endpoint=MOCK_API, access_token_provider=_provided_token, rate_limits=False
    )
    with pytest.raises(ApiConnectionError) as caught:
        await scenario.call(client, scenario.prepare(emu))
    assert type(caught.value) is ApiConnectionError
    assert len(sent) == (idempotent_attempts if route.idempotent else other_attempts)
    assert operation in str(caught.value)


async def test_opting_in_to_resending_creates_twice(
    emu: ServicesEmulator, make_client: MakeClient, sdk_sleeps: list[float]
) -> None:
    # Why the default refuses: with retry_non_idempotent, a lost answer is re-sent, and
    # the emulator's store shows the reservation made twice for one successful call.
    scenario = SCENARIOS["createReservation"]
    state = scenario.prepare(emu)
    emu.faults.set("createReservation", mangle="lose", count=1)
    client = make_client(emu, retry=RetryPolicy(max_retries=3, retry_non_idempotent=True))
    await scenario.call(client, state)
    assert scenario.effects is not None
    assert scenario.effects(emu, state) == 2
    assert emu.count("createReservation", 200) == 2


def test_a_partial_mangle_rate_is_seeded() -> None:
    def fates(seed: int) -> list[str | None]:
        injector = FaultInjector(seed)
        injector.set("createReservation", mangle="lose", mangle_rate=0.3)
        return [
            plan.mangle if (plan := injector.plan("createReservation")) else None for _ in range(60)
        ]

    assert fates(3) == fates(3)
    assert 5 < fates(3).count("lose") < 35
    assert FaultInjector(3).set("x", mangle="lose").mangle_rate == 1.0


async def test_waiting_for_a_free_connection_is_not_a_connect_timeout(
    emu: ServicesEmulator, make_client: MakeClient, sdk_sleeps: list[float]
) -> None:
    # One connection in the pool, held 1.3 s by a slow answer; the next call queues for it
    # longer than the 1 s a socket may take to connect, but well within its 2 s attempt.
    # The queue is the client's own: no connect timeout, no retry spent on it.
    wire = Wire(limit=1)
    try:
        client = make_client(emu, session=wire.session, timeout=2.0)
        job = next(iter(emu.store.jobs))
        await client.service_jobs.get(job)  # the token, and the one connection
        emu.faults.set("getServiceJobByServiceJobId", latency=1.3, count=1)
        slow = asyncio.create_task(client.service_jobs.get(job))
        await settle(lambda: wire.sent[f"/service/v1/serviceJobs/{job}"] == 2)
        queued = await client.service_jobs.get(job)
        assert queued.service_job_id == job
        await slow
        assert wire.attempts[f"/service/v1/serviceJobs/{job}"] == 3
        assert sdk_sleeps == []
        assert wire.connections_made == 1
    finally:
        await wire.session.close()
