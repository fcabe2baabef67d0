"""Static mode: every sandbox case of Amazon's model, replayed with its status and body."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from spec_data import MODEL_PATH

from spapi_services._routes import ROUTES
from spapi_services.emulator import ServicesEmulator, StaticSandbox

from ._helpers import US, Api, StartEmulator

# Operations whose body parameter is required: a case that lists no body still sends one.
_BODY_OPERATIONS = {op for op, route in ROUTES.items() if route.method in ("POST", "PUT")} - {
    "cancelServiceJobByServiceJobId",
    "completeServiceJobByServiceJobId",
}


@pytest.fixture
async def sandbox(start_emulator: StartEmulator, session: aiohttp.ClientSession) -> Api:
    emu = await start_emulator(static_spec=MODEL_PATH)
    api = Api(session, emu)
    await api.login()
    return api


def test_every_case_of_the_model_is_loaded() -> None:
    sandbox = StaticSandbox.from_file(MODEL_PATH)
    assert len(sandbox) == 147
    assert set(sandbox.cases) == set(ROUTES)


async def test_every_case_answers_its_documented_status_and_body(sandbox: Api) -> None:
    static = sandbox.emu.static
    assert static is not None
    mismatches: list[str] = []
    checked = 0
    for operation, cases in static.cases.items():
        route = ROUTES[operation]
        for case in cases:
            params: dict[str, Any] = dict(case.parameters)
            path = {name: str(params.pop(name, f"unlisted-{name}")) for name in route.path_params()}
            body = params.pop("body", {} if operation in _BODY_OPERATIONS else None)
            query = {name: str(value) for name, value in params.items()}
            kwargs: dict[str, Any] = {"query": query}
            if body is not None:
                kwargs["body"] = body
            answer = await sandbox.call(operation, path, **kwargs)
            expected = None if case.status == 204 else case.response
            checked += 1
            if answer.status != case.status or answer.json != expected:
                mismatches.append(
                    f"{operation} {case.status}: got {answer.status} {answer.text[:120]}"
                )
            if case.status in (200, 204, 400, 404):
                assert answer.headers["x-amzn-RateLimit-Limit"] == f"{route.rate:.1f}"
            else:
                assert "x-amzn-RateLimit-Limit" not in answer.headers
    assert checked == 147
    assert mismatches == []


async def test_tokens_recorded_already_encoded_also_match_raw(sandbox: Api) -> None:
    """A client may pass a recorded token through untouched: %3D stays in the URL."""
    token = "MjAyMi0wNC0wNVQwMDowMDowMFo%3D"
    body = {
        "capacityTypes": ["SCHEDULED_CAPACITY", "AVAILABLE_CAPACITY"],
        "startDateTime": "2022-03-01T00:00:00Z",
        "endDateTime": "2022-05-30T00:00:00Z",
    }
    url = (
        f"{sandbox.emu.url}/service/v1/serviceResources/"
        f"validResourceId-9d267d55-9426-5bfp-cc47-f167gb969f29/capacity/range"
        f"?marketplaceIds={US}&nextPageToken={token}"
    )
    async with sandbox.session.post(
        url, json=body, headers={"x-amz-access-token": sandbox.token or ""}
    ) as r:
        assert r.status == 200
        page = await r.json()
    assert page["capacities"][0]["slots"][0]["startDateTime"] == "2022-04-05T00:00:00Z"


async def test_no_matching_case_is_400_in_the_operations_shape(sandbox: Api) -> None:
    answer = await sandbox.call("getServiceJobs", query={"createdAfter": "2020-01-01T00:00:00Z"})
    assert answer.status == 200  # the catch-all case
    wrapped = await sandbox.call("cancelReservation", {"reservationId": "unknown-reservation"})
    assert wrapped.status == 400
    assert wrapped.errors[0]["code"] == "InvalidInput"
    assert isinstance(wrapped.json, dict)
    bare = await sandbox.call(
        "setAppointmentFulfillmentData",
        {"serviceJobId": "j", "appointmentId": "a"},
        body={"fulfillmentTime": {}},
    )
    assert bare.status == 400
    assert isinstance(bare.json, list)


async def test_static_mode_still_wants_a_token(sandbox: Api) -> None:
    answer = await sandbox.call("getServiceJobByServiceJobId", {"serviceJobId": "x"}, token=None)
    assert answer.status == 403


def test_static_mode_seeds_nothing(tmp_path: Any) -> None:
    spec = tmp_path / "tiny.json"
    spec.write_text(json.dumps({"paths": {}}))
    emu = ServicesEmulator(static_spec=spec, jobs=50)
    assert emu.store.jobs == {}
    assert quote("a b") == "a%20b"
