"""The request pipeline's layers, and the defects a review found in them, one test each.

Most tests here replace the HTTP layer with an in-memory sender (the pipeline's seam):
``ServicesClient(sender=...)`` takes ``(method, url, headers, body, timeout)`` and gives
back a :class:`RawResponse`.  The defects that live in aiohttp's handling (a caller's
session that raises for status, a compressed body) run against real local servers.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from _timers import ManualTimer, RecordingTimer
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from spapi_services import (
    ApiTimeoutError,
    AuthenticationError,
    BadRequestError,
    LwaCredentials,
    NotFoundError,
    OperationFailedError,
    RateLimitError,
    RateLimits,
    RawResponse,
    ResponseDecodeError,
    RetryPolicy,
    ServicesClient,
    UnprocessableEntityError,
)
from spapi_services import _sender as sender_module
from spapi_services._queue import RequestQueue, queue_for
from spapi_services._ratelimit import TokenReservation
from spapi_services.models import AppointmentSlotReport, JobListing

from ._helpers import ACCESS_TOKEN, CLIENT_SECRET, MARKETPLACE, REFRESH_TOKEN

CREDS = LwaCredentials("amzn1.application-oa2-client.test", CLIENT_SECRET, REFRESH_TOKEN)
API = "https://api.test"
TOKEN_URL = "https://auth.test/o2/token"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
GET = "getServiceJobByServiceJobId"

Handler = Callable[[str, URL, Mapping[str, str], bytes | None], Awaitable[tuple[int, Any]]]


def answer(status: int, data: Any = None, **headers: str) -> RawResponse:
    body = data if isinstance(data, bytes) else b"" if data is None else json.dumps(data).encode()
    merged = CIMultiDict({"x-amzn-RequestId": "req-1", **headers})
    return RawResponse(status, CIMultiDictProxy(merged), body)


class FakeApi:
    """An in-memory API and LWA endpoint behind the sender seam; ``sent`` lists requests."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.sent: list[tuple[str, URL]] = []
        self.exchanges = 0

    async def __call__(
        self, method: str, url: URL, headers: Mapping[str, str], body: bytes | None, seconds: float
    ) -> RawResponse:
        if str(url) == TOKEN_URL:
            self.exchanges += 1
            return answer(200, {"access_token": ACCESS_TOKEN, "expires_in": 3600})
        self.sent.append((method, url))
        status, data = await self.handler(method, url, headers, body)
        return data if isinstance(data, RawResponse) else answer(status, data)


class QueuedFakeApi(FakeApi):
    """A fake API whose "connection pool" holds ``size`` requests at a time."""

    def __init__(self, handler: Handler, size: int) -> None:
        super().__init__(handler)
        self.queue = RequestQueue(size)

    async def request_queue(self) -> RequestQueue:
        return self.queue


def client_for(api: FakeApi, **kwargs: Any) -> ServicesClient:
    kwargs.setdefault("retry", RetryPolicy(max_retries=0))
    kwargs.setdefault("rate_limits", False)
    return ServicesClient(
        CREDS, endpoint=API, token_url=TOKEN_URL, marketplace_id=MARKETPLACE, sender=api, **kwargs
    )


def job_body(job_id: str = "job-1", status: str = "NOT_SERVICED") -> dict[str, Any]:
    return {"payload": {"serviceJobId": job_id, "serviceJobStatus": status}}


async def ok_job(*_: Any) -> tuple[int, Any]:
    return 200, job_body()


# --- the seam ------------------------------------------------------------------------


async def test_a_call_goes_out_through_the_sender_alone() -> None:
    seen: list[tuple[str, str, dict[str, str], float]] = []

    async def sender(
        method: str, url: URL, headers: Mapping[str, str], body: bytes | None, seconds: float
    ) -> RawResponse:
        seen.append((method, str(url), dict(headers), seconds))
        if str(url) == TOKEN_URL:
            return answer(200, {"access_token": ACCESS_TOKEN, "expires_in": 3600})
        return answer(200, job_body())

    async with ServicesClient(
        CREDS, endpoint=API, token_url=TOKEN_URL, sender=sender, timeout=7.0
    ) as client:
        job = await client.service_jobs.get("job-1")
    assert job.service_job_id == "job-1"
    (token_call, api_call) = seen
    assert token_call[:2] == ("POST", TOKEN_URL)
    method, url, headers, seconds = api_call
    assert (method, url) == ("GET", f"{API}/service/v1/serviceJobs/job-1")
    assert headers["x-amz-access-token"] == ACCESS_TOKEN
    assert seconds == 7.0  # the attempt's timeout (the deadline leaves more)
    assert client.is_closed


# --- a. a caller's session that raises for status -----------------------------------


async def test_a_session_made_to_raise_for_status_never_raises_for_us() -> None:
    """An API error stays an API error (not "connection lost"), and no retry is spent."""
    answered = {"api": 0, "token": 0}

    async def handler(request: web.Request) -> web.Response:
        if request.path.endswith("/token"):
            answered["token"] += 1
            if request.headers.get("X-Refuse"):
                return web.json_response({"error": "invalid_grant"}, status=400)
            return web.json_response({"access_token": ACCESS_TOKEN, "expires_in": 3600})
        answered["api"] += 1
        body = {"errors": [{"code": "NotFound", "message": "no such job"}]}
        return web.json_response(body, status=404)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    server = await _serve(app)
    base = str(server.make_url("")).rstrip("/")
    try:
        async with aiohttp.ClientSession(raise_for_status=True) as session:
            client = ServicesClient(
                CREDS,
                endpoint=base,
                token_url=f"{base}/auth/token",
                session=session,
                retry=RetryPolicy(max_retries=3),
            )
            with pytest.raises(NotFoundError):
                await client.service_jobs.get("no-such-job")
            assert answered["api"] == 1  # a 404 is final: one request
            refused = ServicesClient(
                CREDS,
                endpoint=base,
                token_url=f"{base}/auth/token",
                session=aiohttp.ClientSession(raise_for_status=True, headers={"X-Refuse": "1"}),
            )
            async with refused:
                with pytest.raises(AuthenticationError) as caught:
                    await refused.service_jobs.get("job-1")
                assert caught.value.error == "invalid_grant"  # not "unreachable"
                await refused.config.session.close()  # type: ignore[union-attr]
    finally:
        await server.close()


# --- b. the queue place first, then the plan's token --------------------------------


async def test_no_token_is_taken_while_waiting_for_a_place() -> None:
    """With the only connection held, nobody spends the plan's tokens waiting for it."""
    release = asyncio.Event()
    events: list[str] = []

    async def handler(method: str, url: URL, *_: Any) -> tuple[int, Any]:
        events.append("sent")
        if url.path.endswith("/slow"):
            await release.wait()
        return 200, job_body()

    api = QueuedFakeApi(handler, 1)
    limits = CountingLimits({GET: (100, 10)}, headroom=0, events=events)
    async with client_for(api, rate_limits=limits) as client:
        slow = asyncio.create_task(client.service_jobs.get("slow"))
        await _turns()
        others = [asyncio.create_task(client.service_jobs.get(f"job-{i}")) for i in range(5)]
        await _turns()
        assert events == ["token", "sent"]  # four waiting for the place took no token
        release.set()
        await asyncio.gather(slow, *others)
    # Every token was spent right before its request went out.
    assert events == ["token", "sent"] * 6


async def test_an_operation_waiting_for_its_bucket_holds_no_place() -> None:
    """A slow bucket's waiters must not take every place while other operations wait."""
    api = QueuedFakeApi(ok_job, 2)
    # assignAppointmentResources at one request per 1000 s: its second call must wait.
    limits = RateLimits({"assignAppointmentResources": (0.001, 1)})
    async with client_for(api, rate_limits=limits, deadline=None) as client:
        await client.appointments.assign_resources("j", "a", ["t"])
        stuck = [
            asyncio.create_task(client.appointments.assign_resources("j", "a", ["t"]))
            for _ in range(5)
        ]
        await _turns()
        job = await asyncio.wait_for(client.service_jobs.get("job-1"), 5)
        assert job.service_job_id == "job-1"  # went by, both places free
        assert not any(task.done() for task in stuck)
        for task in stuck:
            task.cancel()
        await asyncio.gather(*stuck, return_exceptions=True)


# --- c. 429: full-jitter back-off, bounded by the deadline ---------------------------


async def test_429s_back_off_with_full_jitter_until_the_deadline() -> None:
    async def throttled(*_: Any) -> tuple[int, Any]:
        return 429, {"errors": [{"code": "QuotaExceeded", "message": "slow down"}]}

    api = FakeApi(throttled)
    timer = RecordingTimer()
    random.seed(12)
    policy = RetryPolicy(max_retries=2, base_delay=0.5, max_delay=8.0)
    async with client_for(api, retry=policy, deadline=30.0, timer=timer) as client:
        with pytest.raises(RateLimitError) as caught:
            await client.service_jobs.get("job-1")
    # Paced 429s do not use up max_retries: they go on while the deadline leaves room.
    assert len(api.sent) > policy.max_retries + 1
    assert len(timer) == len(api.sent) - 1
    for retry, delay in enumerate(timer):
        assert 0 <= delay <= min(8.0, 0.5 * 2**retry)  # anywhere up to the back-off
    assert len(set(timer)) == len(timer)  # drawn, not fixed
    assert sum(timer) < 30.0
    assert any("deadline of 30 s would pass" in note for note in caught.value.__notes__)


async def test_without_a_deadline_429s_count_against_max_retries() -> None:
    async def throttled(*_: Any) -> tuple[int, Any]:
        return 429, {}

    api = FakeApi(throttled)
    async with client_for(
        api, retry=RetryPolicy(max_retries=2), deadline=None, timer=RecordingTimer()
    ) as client:
        with pytest.raises(RateLimitError) as caught:
            await client.service_jobs.get("job-1")
    assert len(api.sent) == 3
    assert caught.value.attempts == 3


# --- d. a deadline for the whole call ---------------------------------------------------


async def test_the_deadline_names_the_usage_plan_when_the_wait_is_longer() -> None:
    api = FakeApi(ok_job)
    limits = RateLimits({GET: (0.01, 1)})  # one token per 100 s
    async with client_for(api, rate_limits=limits, deadline=5.0) as client:
        await client.service_jobs.get("job-1")
        with pytest.raises(ApiTimeoutError) as caught:
            await client.service_jobs.get("job-1")
    assert caught.value.stage == "waiting for the usage plan"
    assert "deadline of 5 s ran out while waiting for the usage plan" in str(caught.value)
    assert len(api.sent) == 1  # it gave up at once rather than sleep into certain failure


async def test_the_deadline_names_the_request_queue() -> None:
    release = asyncio.Event()

    async def handler(method: str, url: URL, *_: Any) -> tuple[int, Any]:
        if url.path.endswith("/slow"):
            await release.wait()
        return 200, job_body()

    api = QueuedFakeApi(handler, 1)
    async with client_for(api, deadline=0.05) as client:
        slow = asyncio.create_task(client.with_options(deadline=None).service_jobs.get("slow"))
        await _turns()
        with pytest.raises(ApiTimeoutError) as caught:
            await client.service_jobs.get("job-1")
        release.set()
        await slow
    assert caught.value.stage == "waiting in the request queue"


async def test_the_deadline_cuts_the_answer_wait_short() -> None:
    timeouts: list[float] = []

    async def handler(method: str, url: URL, *_: Any) -> tuple[int, Any]:
        return 200, job_body()

    api = FakeApi(handler)
    original = api.__call__

    async def slow_sender(
        method: str, url: URL, headers: Mapping[str, str], body: bytes | None, seconds: float
    ) -> RawResponse:
        if str(url) != TOKEN_URL:
            timeouts.append(seconds)
            await asyncio.sleep(seconds)
            raise TimeoutError
        return await original(method, url, headers, body, seconds)

    async with ServicesClient(
        CREDS, endpoint=API, token_url=TOKEN_URL, sender=slow_sender, timeout=30.0, deadline=0.2
    ) as client:
        with pytest.raises(ApiTimeoutError) as caught:
            await client.service_jobs.get("job-1")
    assert timeouts
    assert timeouts[0] <= 0.2  # the attempt got what was left, not 30 s
    assert caught.value.stage == "waiting for the answer"


async def test_the_deadline_can_be_changed_per_view_and_switched_off() -> None:
    api = FakeApi(ok_job)
    client = client_for(api, deadline=12.0)
    assert client.config.deadline == 12.0
    assert client.with_options(deadline=3.0).config.deadline == 3.0
    assert client.with_options(deadline=None).config.deadline is None
    assert client.with_options(timeout=9).config.deadline == 12.0  # kept
    for wrong in (0, -1, float("inf"), "5", True):
        with pytest.raises(ValueError, match="deadline: must be a positive number of seconds"):
            client.with_options(deadline=wrong)  # type: ignore[arg-type]
    await client.aclose()


# --- e. resuming a job search exactly ----------------------------------------------------


def _pages(ids: list[list[str]]) -> Handler:
    """Pages of job ids; page n's token is ``p<n>``."""

    async def handler(method: str, url: URL, *_: Any) -> tuple[int, Any]:
        token = url.query.get("pageToken")
        index = 0 if token is None else int(token[1:])
        page: dict[str, Any] = {
            "totalResultSize": sum(map(len, ids)),
            "jobs": [{"serviceJobId": i} for i in ids[index]],
        }
        if index + 1 < len(ids):
            page["nextPageToken"] = f"p{index + 1}"
        return 200, {"payload": page}

    return handler


TWENTY_FOUR = [[f"j{p}-{i}" for i in range(10)] for p in range(2)] + [[f"j2-{i}" for i in range(4)]]
EVERY_ID = [i for page in TWENTY_FOUR for i in page]


@pytest.mark.parametrize("stop_after", [1, 5, 9, 10, 11, 23])
async def test_a_break_resumes_with_no_job_missing_or_repeated(stop_after: int) -> None:
    api = FakeApi(_pages(TWENTY_FOUR))
    async with client_for(api) as client:
        first = client.service_jobs.list(created_after=T0, page_size=10)
        taken: list[str] = []
        async for job in first:
            taken.append(job.service_job_id)
            if len(taken) == stop_after:
                break
        token = first.resume_token
        assert isinstance(token, str)
        rest = client.service_jobs.list(created_after=T0, page_size=10, resume_token=token)
        resumed = [job.service_job_id async for job in rest]
    assert taken + resumed == EVERY_ID
    assert rest.resume_token is None  # all of it, now


async def test_an_error_between_pages_resumes_from_the_page_that_failed() -> None:
    fail = {"p1": 1}
    pages = _pages(TWENTY_FOUR)

    async def flaky(method: str, url: URL, *rest: Any) -> tuple[int, Any]:
        token = url.query.get("pageToken")
        if fail.get(token or ""):
            fail[token or ""] -= 1
            return 400, {"errors": [{"code": "InvalidInput", "message": "try later"}]}
        return await pages(method, url, *rest)

    api = FakeApi(flaky)
    async with client_for(api) as client:
        first = client.service_jobs.list(created_after=T0, page_size=10)
        taken: list[str] = []
        with pytest.raises(BadRequestError, match="try later"):
            await _collect(first, taken)
        rest = client.service_jobs.list(
            created_after=T0, page_size=10, resume_token=first.resume_token
        )
        resumed = [job.service_job_id async for job in rest]
    assert taken + resumed == EVERY_ID


async def test_a_resume_token_belongs_to_its_search() -> None:
    api = FakeApi(_pages(TWENTY_FOUR))
    async with client_for(api) as client:
        first = client.service_jobs.list(created_after=T0, page_size=10, max_items=3)
        _ = [job async for job in first]
        token = first.resume_token
        assert token is not None
        with pytest.raises(ValueError, match="resume_token: it was made for another search"):
            client.service_jobs.list(created_after=T0, page_size=5, resume_token=token)
        with pytest.raises(ValueError, match="resume_token: not a token"):
            client.service_jobs.list(created_after=T0, resume_token="garbage!")
        with pytest.raises(ValueError, match="give one of them"):
            client.service_jobs.list(created_after=T0, page_token="p1", resume_token=token)
    assert len(api.sent) == 1


async def test_next_page_token_is_the_apis_own() -> None:
    api = FakeApi(_pages(TWENTY_FOUR))
    async with client_for(api) as client:
        paginator = client.service_jobs.list(created_after=T0, page_size=10)
        async for _ in paginator:
            break
    assert paginator.next_page_token == "p1"  # not where the jobs stopped: that is resume_token


# --- g. the body limit counts what the decoder gives --------------------------------


async def test_a_compressed_bomb_is_refused_while_read(monkeypatch: pytest.MonkeyPatch) -> None:
    inflated = b'{"payload": {"serviceJobId": "' + b"A" * 4_000_000 + b'"}}'
    bomb = gzip.compress(inflated, compresslevel=9)
    assert len(bomb) < 10_000

    async def handler(request: web.Request) -> web.Response:
        if request.path.endswith("/token"):
            return web.json_response({"access_token": ACCESS_TOKEN, "expires_in": 3600})
        return web.Response(
            body=bomb,
            headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
        )

    monkeypatch.setattr(sender_module, "MAX_BODY_BYTES", 1_000_000)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    server = await _serve(app)
    base = str(server.make_url("")).rstrip("/")
    try:
        async with ServicesClient(CREDS, endpoint=base, token_url=f"{base}/token") as client:
            with pytest.raises(ResponseDecodeError, match="exceeds the 1000000-byte limit"):
                await client.service_jobs.get("job-1")
    finally:
        await server.close()


# --- i. an LWA error page in no known encoding ---------------------------------------


async def test_an_undecodable_lwa_page_is_an_authentication_error() -> None:
    pages = iter([(503, b"\xff\xfe\x00busy"), (400, b"\xff\xfe\x00no")])

    async def sender(
        method: str, url: URL, headers: Mapping[str, str], body: bytes | None, seconds: float
    ) -> RawResponse:
        status, raw = next(pages)
        return RawResponse(status, CIMultiDictProxy(CIMultiDict()), raw)

    client = ServicesClient(
        CREDS,
        endpoint=API,
        token_url=TOKEN_URL,
        sender=sender,
        timer=RecordingTimer(),
        retry=RetryPolicy(max_retries=3),
    )
    async with client:
        results = await asyncio.gather(
            *(client.service_jobs.get("job-1") for _ in range(3)), return_exceptions=True
        )
    # The 503 was retried; the 400 refused; the waiters share it, nobody else asks.
    assert all(isinstance(r, AuthenticationError) for r in results)
    assert {r.status_code for r in results} == {400}  # type: ignore[union-attr]


# --- j. a client used from a second event loop ----------------------------------------


def test_a_second_event_loop_gets_a_clear_error() -> None:
    api = FakeApi(ok_job)
    client = client_for(api)
    first = asyncio.new_event_loop()
    second = asyncio.new_event_loop()
    try:
        first.run_until_complete(client.service_jobs.get("job-1"))
        with pytest.raises(RuntimeError, match="belongs to another event loop"):
            second.run_until_complete(client.service_jobs.get("job-1"))
        first.run_until_complete(client.aclose())
    finally:
        second.close()
        first.close()
    assert len(api.sent) == 1


# --- m. server text in logs and messages ------------------------------------------------


async def test_server_text_cannot_forge_log_lines_or_paint_the_terminal(
    caplog: pytest.LogCaptureFixture,
) -> None:
    forged = "fine\nCRITICAL:root:forged line \x1b[31mred\x1b[0m"

    async def handler(method: str, url: URL, *_: Any) -> tuple[int, Any]:
        if url.path.endswith("/resources"):
            warning = {"code": "RESOURCES_OVERBOOKED", "message": forged}
            return 200, {"payload": {"warnings": [warning]}}
        return 422, {"errors": [{"code": "X\nY", "message": forged}]}

    api = FakeApi(handler)
    caplog.set_level(logging.WARNING, logger="spapi_services")
    async with client_for(api) as client:
        await client.appointments.assign_resources("j", "a", ["t"])
        with pytest.raises(UnprocessableEntityError) as caught:
            await client.service_jobs.complete("job-1")
    for text in [*(r.getMessage() for r in caplog.records), str(caught.value)]:
        assert "\n" not in text
        assert "\x1b" not in text
    assert "forged line \\u001b[31mred" in caplog.records[0].getMessage()
    assert caught.value.errors[0].message == forged  # the data itself is kept as sent


# --- n. a 200 with no payload ----------------------------------------------------------


@pytest.mark.parametrize("body", [{}, None, {"payload": None}])
async def test_no_payload_is_an_empty_page_or_an_empty_slot_report(body: Any) -> None:
    async def handler(*_: Any) -> tuple[int, Any]:
        return 200, body

    api = FakeApi(handler)
    async with client_for(api) as client:
        assert [job async for job in client.service_jobs.list(created_after=T0)] == []
        assert await client.service_jobs.list_page(created_after=T0) == JobListing()
        assert await client.appointments.slots_for_job("job-1") == AppointmentSlotReport()
        report = await client.appointments.slots(asin="B000000001", store_id="s1")
        assert report == AppointmentSlotReport()
        with pytest.raises(ResponseDecodeError, match=r"no payload|expected a JSON object"):
            await client.service_jobs.get("job-1")  # one job must be there


async def test_an_operation_failure_keeps_its_payload_and_body() -> None:
    async def handler(*_: Any) -> tuple[int, Any]:
        data = {"payload": {"resourceId": "r1"}, "errors": [{"code": "E", "message": "bad"}]}
        return 200, data

    api = FakeApi(handler)
    async with client_for(api) as client:
        with pytest.raises(OperationFailedError) as caught:
            await client.reservations.cancel("res-1")
    assert caught.value.payload == {"resourceId": "r1"}
    assert json.loads(caught.value.body)["errors"][0]["code"] == "E"


# --- o. a refused retry after an unclear first attempt ---------------------------------


@pytest.mark.parametrize(
    ("operation", "state", "outcome"),
    [
        ("cancel", "CANCELLED", None),
        ("complete", "COMPLETED", None),
        ("cancel", "NOT_SERVICED", UnprocessableEntityError),
        ("complete", "CANCELLED", UnprocessableEntityError),
    ],
)
async def test_a_lost_answer_then_a_refusal_reads_the_job_back(
    operation: str, state: str, outcome: type[Exception] | None
) -> None:
    attempts = iter([TimeoutError, 422])

    async def handler(method: str, url: URL, *_: Any) -> tuple[int, Any]:
        if method == "GET":
            return 200, job_body("job-1", state)
        step = next(attempts)
        if step is TimeoutError:
            raise TimeoutError
        return 422, {"errors": [{"code": "InvalidState", "message": "already closed"}]}

    api = FakeApi(handler)
    async with client_for(api, retry=RetryPolicy(max_retries=2), timer=RecordingTimer()) as c:
        call = (
            c.service_jobs.cancel("job-1", reason_code="V1")
            if operation == "cancel"
            else c.service_jobs.complete("job-1")
        )
        if outcome is None:
            await call
        else:
            with pytest.raises(outcome) as caught:
                await call
            assert caught.value.may_have_taken_effect  # type: ignore[attr-defined]
            assert any("may have taken effect" in n for n in caught.value.__notes__)
    assert [m for m, _ in api.sent] == ["PUT", "PUT", "GET"]


async def test_a_plain_refusal_is_not_read_back() -> None:
    async def handler(*_: Any) -> tuple[int, Any]:
        return 422, {"errors": [{"code": "InvalidState", "message": "no"}]}

    api = FakeApi(handler)
    async with client_for(api, retry=RetryPolicy(max_retries=2)) as client:
        with pytest.raises(UnprocessableEntityError) as caught:
            await client.service_jobs.cancel("job-1", reason_code="V1")
    assert not caught.value.may_have_taken_effect
    assert len(api.sent) == 1


async def test_a_lost_cancel_reservation_then_404_says_it_may_have_run() -> None:
    attempts = iter([TimeoutError, 404])

    async def handler(*_: Any) -> tuple[int, Any]:
        if next(attempts) is TimeoutError:
            raise TimeoutError
        return 404, {"errors": [{"code": "NotFound", "message": "no such reservation"}]}

    api = FakeApi(handler)
    async with client_for(api, retry=RetryPolicy(max_retries=2), timer=RecordingTimer()) as c:
        with pytest.raises(NotFoundError) as caught:
            await c.reservations.cancel("res-1")
    assert caught.value.may_have_taken_effect


# --- p. one request queue per session ------------------------------------------------------


async def test_two_clients_on_one_session_share_one_queue() -> None:
    connector = aiohttp.TCPConnector(limit=3)
    async with aiohttp.ClientSession(connector=connector) as session:
        first = ServicesClient(CREDS, endpoint=API, session=session)
        second = ServicesClient(CREDS, endpoint=API, session=session)
        queues = [
            await c._core.transport.sender.request_queue()  # type: ignore[attr-defined]
            for c in (first, second)
        ]
        assert queues[0] is queues[1] is queue_for(session)
        assert queues[0].size == 3


# --- k. short-lived tokens ---------------------------------------------------------------


async def test_a_token_living_a_minute_or_less_is_still_reused() -> None:
    lifetimes = iter([40, 40])

    async def sender(
        method: str, url: URL, headers: Mapping[str, str], body: bytes | None, seconds: float
    ) -> RawResponse:
        if str(url) == TOKEN_URL:
            return answer(200, {"access_token": "Atza|short", "expires_in": next(lifetimes)})
        return answer(200, job_body())

    clock = ManualTimer()
    client = ServicesClient(CREDS, endpoint=API, token_url=TOKEN_URL, sender=sender, timer=clock)
    async with client:
        for _ in range(5):
            await client.service_jobs.get("job-1")
        assert client._core.transport.tokens.exchanges == 1
        clock.advance(20)  # half its life: exchanged again
        await client.service_jobs.get("job-1")
        assert client._core.transport.tokens.exchanges == 2


# --- helpers ------------------------------------------------------------------------------


class CountingLimits(RateLimits):
    """RateLimits that writes "token" to ``events`` each time it hands one out."""

    def __init__(self, *args: Any, events: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.events = events

    async def try_acquire(self, scope: str, operation_id: str) -> float:
        due = await super().try_acquire(scope, operation_id)
        if due <= 0:
            self.events.append("token")
        return due


async def _collect(paginator: Any, into: list[str]) -> None:
    async for job in paginator:
        into.append(job.service_job_id)


async def _turns(n: int = 30) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def _serve(app: web.Application) -> Any:
    from aiohttp.test_utils import TestServer

    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server


class FakeReservingPlan(RateLimits):
    """A plan that reserves, as an out-of-process one does: token n is due n/10 s on."""

    def __init__(self) -> None:
        super().__init__()
        self.asked = 0

    async def reserve(self, scope: str, operation_id: str, *, max_wait: float | None) -> Any:
        wait = self.asked / 10
        self.asked += 1
        if max_wait is not None and wait > max_wait:
            return TokenReservation(False, wait)
        return TokenReservation(True, wait)


async def test_a_reserving_plan_is_asked_once_per_request_and_its_waits_are_slept() -> None:
    api = QueuedFakeApi(ok_job, 2)
    plan = FakeReservingPlan()
    timer = RecordingTimer()
    async with client_for(api, rate_limits=plan, timer=timer, deadline=None) as client:
        await asyncio.gather(*(client.service_jobs.get(f"job-{i}") for i in range(5)))
    assert plan.asked == 5  # one question per request, however long its wait
    assert len(api.sent) == 5
    assert sorted(timer) == pytest.approx([0.1, 0.2, 0.3, 0.4])  # each its own token's wait


async def test_a_reservation_past_the_deadline_is_refused_at_once() -> None:
    api = FakeApi(ok_job)
    plan = FakeReservingPlan()
    plan.asked = 100  # the next token is 10 s away
    async with client_for(api, rate_limits=plan, deadline=2.0) as client:
        with pytest.raises(ApiTimeoutError) as caught:
            await client.service_jobs.get("job-1")
    assert caught.value.stage == "waiting for the usage plan"
    assert api.sent == []
