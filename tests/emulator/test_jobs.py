"""Service jobs: get one, search with every filter, sort, page, cancel and complete."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from spapi_services._serde import make_converter
from spapi_services.emulator import FakeClock, ServicesEmulator
from spapi_services.emulator.store import JobRecord
from spapi_services.models.jobs import JobListing, ServiceJob

from ._helpers import US, Api

GET = "getServiceJobByServiceJobId"
LIST = "getServiceJobs"
CANCEL = "cancelServiceJobByServiceJobId"
COMPLETE = "completeServiceJobByServiceJobId"
EVER = "2000-01-01T00:00:00Z"
STRICT = make_converter(forbid_extra_keys=True)


async def pages(
    api: Api, query: dict[str, str], **kw: Any
) -> tuple[list[dict[str, Any]], list[str]]:
    """Every job of a search, following nextPageToken; also the tokens seen."""
    jobs: list[dict[str, Any]] = []
    tokens: list[str] = []
    query = dict(query)
    while True:
        answer = await api.call(LIST, query=query, **kw)
        assert answer.status == 200, answer.text
        payload = answer.json["payload"]
        jobs.extend(payload["jobs"])
        token = payload.get("nextPageToken")
        if not token:
            return jobs, tokens
        tokens.append(token)
        query["pageToken"] = token


def ids(jobs: list[dict[str, Any]]) -> list[str]:
    return [j["serviceJobId"] for j in jobs]


def expected(
    emu: ServicesEmulator, test: Callable[[JobRecord], bool], market: str = US
) -> set[str]:
    return {
        j.service_job_id for j in emu.store.jobs.values() if j.marketplace_id == market and test(j)
    }


# --- one job -----------------------------------------------------------------------------


async def test_get_returns_the_job_in_the_models_shape(api: Api, emu: ServicesEmulator) -> None:
    job = emu.store.find_jobs(status="COMPLETED")[0]
    answer = await api.call(GET, {"serviceJobId": job.service_job_id})
    assert answer.status == 200
    assert answer.headers["Content-Type"].startswith("application/json")
    assert answer.headers["x-amzn-RateLimit-Limit"] == "20.0"
    parsed = STRICT.structure(answer.json["payload"], ServiceJob)
    assert parsed.service_job_id == job.service_job_id
    assert parsed.service_job_status == "COMPLETED"
    assert parsed.appointments
    assert parsed.appointments[0].poa is not None


async def test_every_seeded_job_fits_the_model_exactly(api: Api, emu: ServicesEmulator) -> None:
    for job in emu.store.jobs.values():
        STRICT.structure(job.to_wire(), ServiceJob)
    answer = await api.call(LIST, query={"createdAfter": EVER, "pageSize": "20"})
    STRICT.structure(answer.json["payload"], JobListing)


async def test_unknown_job_is_404(api: Api) -> None:
    answer = await api.call(GET, {"serviceJobId": "no-such-job"})
    assert answer.status == 404
    assert answer.errors[0]["code"] == "NotFound"
    assert answer.headers["x-amzn-RateLimit-Limit"] == "20.0"


# --- search ------------------------------------------------------------------------------


async def test_all_pages_hold_every_job_of_the_marketplace_once(
    api: Api, emu: ServicesEmulator
) -> None:
    jobs, tokens = await pages(api, {"createdAfter": EVER, "pageSize": "7"})
    assert len(ids(jobs)) == len(set(ids(jobs)))
    assert set(ids(jobs)) == expected(emu, lambda j: True)
    assert tokens, "several pages expected"
    # Opaque, and awkward on purpose: every token needs URL encoding to survive.
    for token in tokens:
        assert "+" in token
        assert "/" in token
        assert token.endswith("=")


async def test_tokens_survive_the_query_string_and_nothing_else(api: Api) -> None:
    first = await api.call(LIST, query={"createdAfter": EVER, "pageSize": "5"})
    token = first.json["payload"]["nextPageToken"]
    good = await api.call(LIST, query={"createdAfter": EVER, "pageSize": "5", "pageToken": token})
    assert good.status == 200
    # A client that pastes the token into the URL unencoded turns "+" into spaces.
    url = (
        f"{api.emu.url}/service/v1/serviceJobs"
        f"?marketplaceIds={US}&createdAfter={EVER}&pageToken={token}"
    )
    async with api.session.get(url, headers={"x-amz-access-token": api.token or ""}) as response:
        assert response.status == 400
        body = await response.json()
    assert body["errors"][0]["message"] == "Missing or invalid request parameters: [pageToken]"


async def test_a_token_is_bound_to_its_query(api: Api) -> None:
    first = await api.call(LIST, query={"createdAfter": EVER, "pageSize": "5"})
    token = first.json["payload"]["nextPageToken"]
    other = await api.call(
        LIST, query={"createdAfter": EVER, "pageSize": "5", "pageToken": token, "sortOrder": "DESC"}
    )
    assert other.status == 400
    assert "different query" in other.errors[0]["details"]
    tampered = token[:10] + ("A" if token[10] != "A" else "B") + token[11:]
    bad = await api.call(LIST, query={"createdAfter": EVER, "pageToken": tampered})
    assert bad.status == 400


async def test_same_page_same_token_and_previous_pages(api: Api) -> None:
    query = {"createdAfter": EVER, "pageSize": "4"}
    one = (await api.call(LIST, query=query)).json["payload"]
    again = (await api.call(LIST, query=query)).json["payload"]
    assert one["nextPageToken"] == again["nextPageToken"]
    assert "previousPageToken" not in one
    two = (await api.call(LIST, query={**query, "pageToken": one["nextPageToken"]})).json["payload"]
    back = (await api.call(LIST, query={**query, "pageToken": two["previousPageToken"]})).json[
        "payload"
    ]
    assert ids(back["jobs"]) == ids(one["jobs"])


@pytest.mark.parametrize(
    ("field", "order"),
    [("JOB_DATE", "ASC"), ("JOB_DATE", "DESC"), ("JOB_STATUS", "ASC"), ("JOB_STATUS", "DESC")],
)
async def test_sorting(api: Api, emu: ServicesEmulator, field: str, order: str) -> None:
    jobs, _ = await pages(api, {"createdAfter": EVER, "sortField": field, "sortOrder": order})
    keys = [
        (j["serviceJobStatus"], j["createTime"]) if field == "JOB_STATUS" else j["createTime"]
        for j in jobs
    ]
    assert keys == sorted(keys, reverse=order == "DESC")


async def test_default_order_is_oldest_first_and_page_size_is_20(api: Api) -> None:
    payload = (await api.call(LIST, query={"createdAfter": EVER})).json["payload"]
    assert len(payload["jobs"]) == 20
    times = [j["createTime"] for j in payload["jobs"]]
    assert times == sorted(times)


async def test_filters(api: Api, emu: ServicesEmulator) -> None:
    us_jobs = emu.store.find_jobs(marketplace_id=US)
    with_items = [j for j in us_jobs if j.product_order_ids]
    some = us_jobs[:3]
    skill = us_jobs[0].required_skills[0]
    cases: list[tuple[dict[str, str], Callable[[JobRecord], bool]]] = [
        (
            {"serviceJobStatus": "COMPLETED,CANCELLED"},
            lambda j: j.status in ("COMPLETED", "CANCELLED"),
        ),
        ({"serviceOrderIds": ",".join(j.service_order_id for j in some)}, lambda j: j in some),
        (
            {"productOrderIds": with_items[0].product_order_ids[0]},
            lambda j: j is with_items[0],
        ),
        (
            {"trackingIds": with_items[0].tracking_ids[0]}
            if with_items[0].tracking_ids
            else {"trackingIds": "TBA000"},
            lambda j: bool(with_items[0].tracking_ids) and j is with_items[0],
        ),
        ({"asins": us_jobs[0].asin}, lambda j: j.asin == us_jobs[0].asin),
        ({"requiredSkills": skill}, lambda j: skill in j.required_skills),
        ({"storeIds": us_jobs[0].store_id}, lambda j: j.store_id == us_jobs[0].store_id),
    ]
    for extra, test in cases:
        jobs, _ = await pages(api, {"createdAfter": EVER, **extra})
        assert set(ids(jobs)) == expected(emu, test), extra
    other = "A1F83G8C2ARO7P"
    jobs, _ = await pages(api, {"createdAfter": EVER}, marketplace=other)
    assert set(ids(jobs)) == expected(emu, lambda j: True, other)


async def test_date_filters(api: Api, emu: ServicesEmulator, clock: FakeClock) -> None:
    now = clock.now()
    after = now - timedelta(days=30)
    before = now - timedelta(days=10)
    iso = lambda d: d.strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
    jobs, _ = await pages(api, {"createdAfter": iso(after), "createdBefore": iso(before)})
    assert set(ids(jobs)) == expected(emu, lambda j: after <= j.created <= before)
    jobs, _ = await pages(api, {"lastUpdatedAfter": iso(after), "lastUpdatedBefore": iso(before)})
    assert set(ids(jobs)) == expected(emu, lambda j: after <= j.last_updated <= before)
    start, end = now, now + timedelta(days=7)
    jobs, _ = await pages(
        api, {"createdAfter": EVER, "scheduleStartDate": iso(start), "scheduleEndDate": iso(end)}
    )
    want = expected(
        emu,
        lambda j: any(a.status != "CANCELLED" and start <= a.start <= end for a in j.appointments),
    )
    assert want
    assert set(ids(jobs)) == want


async def test_touched_jobs_show_up_as_updated(
    api: Api, emu: ServicesEmulator, clock: FakeClock
) -> None:
    clock.advance(60)
    since = clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")
    assert (await pages(api, {"lastUpdatedAfter": since}))[0] == []
    job = emu.store.find_jobs(marketplace_id=US)[5]
    emu.store.touch_job(job.service_job_id)
    jobs, _ = await pages(api, {"lastUpdatedAfter": since})
    assert ids(jobs) == [job.service_job_id]


@pytest.mark.parametrize(
    "query",
    [
        {},
        {"createdAfter": EVER, "lastUpdatedAfter": EVER},
        {"createdAfter": "TEST_CASE_400"},
        {"createdAfter": "2026-01-02T00:00:00Z", "createdBefore": "2026-01-01T00:00:00Z"},
        {"createdAfter": EVER, "pageSize": "0"},
        {"createdAfter": EVER, "pageSize": "21"},
        {"createdAfter": EVER, "pageSize": "ten"},
        {"createdAfter": EVER, "sortField": "PRICE"},
        {"createdAfter": EVER, "serviceJobStatus": "DONE"},
        {"createdAfter": EVER, "asins": "B0SHORT"},
        {"createdAfter": EVER, "serviceOrderIds": "12A-3"},
        {"createdAfter": EVER, "trackingIds": "TBA 1"},
        {"createdAfter": EVER, "storeIds": ",".join(str(i) for i in range(51))},
        {"createdAfter": EVER, "marketplaceIds": f"{US},A2EUQ1WTGCTBG2"},
    ],
)
async def test_bad_searches_are_400(api: Api, query: dict[str, str]) -> None:
    answer = await api.call(LIST, query=query)
    assert answer.status == 400, answer.text
    assert answer.errors[0]["code"] == "InvalidInput"
    assert answer.messages[0].startswith("Missing or invalid request parameters: [")
    assert answer.headers["x-amzn-RateLimit-Limit"] == "10.0"


async def test_marketplace_is_required(api: Api) -> None:
    answer = await api.call(LIST, query={"createdAfter": EVER}, marketplace=None)
    assert answer.status == 400
    assert answer.messages == ["Missing or invalid request parameters: [marketplaceIds]"]


# --- cancel and complete --------------------------------------------------------------------


async def test_cancel_moves_the_job_and_its_appointment(
    api: Api, emu: ServicesEmulator, clock: FakeClock
) -> None:
    job = next(j for j in emu.store.find_jobs(status="NOT_SERVICED") if j.active_appointment())
    clock.advance(5)
    answer = await api.call(
        CANCEL, {"serviceJobId": job.service_job_id}, query={"cancellationReasonCode": "V1"}
    )
    assert (answer.status, answer.json) == (200, {})
    got = (await api.call(GET, {"serviceJobId": job.service_job_id})).json["payload"]
    assert got["serviceJobStatus"] == "CANCELLED"
    assert all(a["appointmentStatus"] != "ACTIVE" for a in got["appointments"])
    assert job.last_updated == clock.now()


async def test_complete_moves_the_job(api: Api, emu: ServicesEmulator) -> None:
    job = next(j for j in emu.store.find_jobs(status="NOT_SERVICED") if j.active_appointment())
    answer = await api.call(COMPLETE, {"serviceJobId": job.service_job_id})
    assert (answer.status, answer.json) == (200, {})
    got = (await api.call(GET, {"serviceJobId": job.service_job_id})).json["payload"]
    assert got["serviceJobStatus"] == "COMPLETED"
    assert "COMPLETED" in {a["appointmentStatus"] for a in got["appointments"]}


@pytest.mark.parametrize("status", ["COMPLETED", "CANCELLED"])
async def test_closed_jobs_cannot_be_cancelled_or_completed(
    api: Api, emu: ServicesEmulator, status: str
) -> None:
    job_id = emu.store.find_jobs(status=status)[0].service_job_id
    cancel = await api.call(
        CANCEL, {"serviceJobId": job_id}, query={"cancellationReasonCode": "V1"}
    )
    assert cancel.status == 422
    assert cancel.messages == [
        f"Job with jobId {job_id} and jobStatus {status} cannot be cancelled"
    ]
    assert "x-amzn-RateLimit-Limit" not in cancel.headers
    complete = await api.call(COMPLETE, {"serviceJobId": job_id})
    assert complete.status == 422
    assert complete.messages == [
        f"Operation not allowed on job with jobId : {job_id} and jobState : {status}"
    ]


async def test_cancel_needs_a_known_job_and_a_valid_reason(api: Api, emu: ServicesEmulator) -> None:
    job_id = emu.store.find_jobs(status="PENDING_SCHEDULE")[0].service_job_id
    bad_reason = await api.call(
        CANCEL, {"serviceJobId": job_id}, query={"cancellationReasonCode": "INV1"}
    )
    assert bad_reason.status == 422
    assert bad_reason.messages == [f"Received invalid input reason code INV1 for jobId {job_id}"]
    unknown = await api.call(
        CANCEL, {"serviceJobId": "nope"}, query={"cancellationReasonCode": "V1"}
    )
    assert (unknown.status, unknown.messages) == (422, ["Job not found for jobId nope"])
    malformed = await api.call(
        CANCEL, {"serviceJobId": job_id}, query={"cancellationReasonCode": "v-1"}
    )
    assert malformed.status == 400
    missing = await api.call(CANCEL, {"serviceJobId": job_id})
    assert missing.messages == ["Missing or invalid request parameters: [cancellationReasonCode]"]
