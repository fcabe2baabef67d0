"""Request checks shared by every operation, and the headers every answer carries."""

from __future__ import annotations

import io

import pytest

from spapi_services._routes import ROUTES
from spapi_services.emulator import ServicesEmulator
from spapi_services.emulator.validation import RULES

from ._helpers import Api

GET = "getServiceJobByServiceJobId"


def test_every_operation_has_rules() -> None:
    assert set(RULES) == set(ROUTES)
    for operation, rules in RULES.items():
        assert {p.name for p in rules.path} == set(ROUTES[operation].path_params()), operation


async def test_path_identifiers_are_at_most_100_characters(api: Api) -> None:
    answer = await api.call(GET, {"serviceJobId": "x" * 101})
    assert answer.status == 400
    assert answer.errors == [
        {
            "code": "InvalidInput",
            "message": "Missing or invalid request parameters: [serviceJobId]",
            "details": "serviceJobId must have at most 100 characters",
        }
    ]
    assert answer.headers["x-amzn-RateLimit-Limit"] == "20.0"


async def test_several_problems_are_named_together(api: Api) -> None:
    answer = await api.call(
        "assignAppointmentResources",
        {"serviceJobId": "x" * 101, "appointmentId": "y" * 101},
        body={"resources": "all"},
    )
    assert answer.status == 400
    assert answer.messages == [
        "Missing or invalid request parameters: [serviceJobId, appointmentId, resources]"
    ]


@pytest.mark.parametrize(
    ("data", "content_type", "status"),
    [
        (b"{not json", "application/json", 400),
        (b"[1, 2]", "application/json", 400),
        (b'{"contentType": "PDF", "contentLength": 10}', "text/plain", 415),
        (b"", "application/json", 400),
    ],
)
async def test_bodies_must_be_json_objects(
    api: Api, data: bytes, content_type: str, status: int
) -> None:
    answer = await api.call(
        "createServiceDocumentUploadDestination", data=data, headers={"Content-Type": content_type}
    )
    assert answer.status == status, answer.text
    if status == 415:
        assert answer.errors[0]["code"] == "UnsupportedMediaType"
        assert "x-amzn-RateLimit-Limit" not in answer.headers


async def test_oversized_bodies_are_413(api: Api) -> None:
    answer = await api.call(
        "updateSchedule",
        {"resourceId": "x"},
        data=io.BytesIO(b'{"schedules": ["' + b"x" * (1 << 20) + b'"]}'),
        headers={"Content-Type": "application/json"},
    )
    assert answer.status == 413


async def test_unknown_paths_are_404_json(api: Api, emu: ServicesEmulator) -> None:
    async with api.session.get(emu.url + "/service/v2/whatever") as response:
        assert response.status == 404
        assert response.headers["x-amzn-RequestId"]
        assert (await response.json())["errors"][0]["code"] == "NotFound"
    assert emu.requests[-1].operation is None


async def test_every_answer_has_a_request_id(api: Api, emu: ServicesEmulator) -> None:
    job_id = next(iter(emu.store.jobs))
    answers = [
        await api.call(GET, {"serviceJobId": job_id}),
        await api.call(GET, {"serviceJobId": "missing"}),
        await api.call(GET, {"serviceJobId": job_id}, token=None),
    ]
    ids = [a.headers["x-amzn-RequestId"] for a in answers]
    assert len(set(ids)) == 3
    assert [r.request_id for r in emu.requests[-3:]] == ids


async def test_request_log_and_counts(api: Api, emu: ServicesEmulator) -> None:
    job_id = next(iter(emu.store.jobs))
    await api.call(GET, {"serviceJobId": job_id})
    await api.call(
        "getServiceJobs",
        query={"createdAfter": "2020-01-01T00:00:00Z", "asins": "B000000001,B000000002"},
    )
    record = emu.requests[-1]
    assert record.operation == "getServiceJobs"
    assert record.method == "GET"
    assert record.path == "/service/v1/serviceJobs"
    assert record.query["asins"] == "B000000001,B000000002"
    assert record.status == 200
    assert emu.count(GET) == 1
    assert emu.count(status=200) == 3  # the token exchange too
    assert emu.counts[GET, 200] == 1
    emu.reset()
    assert emu.requests == []
    assert emu.count() == 0
    assert emu.lwa_exchanges == 0
    assert (await api.call(GET, {"serviceJobId": job_id})).status == 200  # tokens survive


async def test_reset_with_state_reseeds_the_world(api: Api, emu: ServicesEmulator) -> None:
    job = emu.store.find_jobs(status="NOT_SERVICED")[0]
    before = job.to_wire()
    await api.call("completeServiceJobByServiceJobId", {"serviceJobId": job.service_job_id})
    emu.reset(state=True)
    assert emu.store.jobs[job.service_job_id].to_wire() == before
