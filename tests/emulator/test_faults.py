"""Faults on demand: latency, 5xx answers (JSON or HTML), dropped connections, slow bodies."""

from __future__ import annotations

import time

import aiohttp
import pytest

from spapi_services.emulator import Fault, FaultInjector, ServicesEmulator
from spapi_services.emulator.__main__ import _emulator, build_parser
from spapi_services.emulator.faults import parse_fault_spec

from ._helpers import Api

GET = "getServiceJobByServiceJobId"


def job_id(emu: ServicesEmulator) -> str:
    return next(iter(emu.store.jobs))


async def test_latency_is_added(api: Api, emu: ServicesEmulator) -> None:
    emu.faults.set(GET, latency=0.2, jitter=0.05)
    started = time.perf_counter()
    answer = await api.call(GET, {"serviceJobId": job_id(emu)})
    assert answer.status == 200
    assert time.perf_counter() - started >= 0.2


@pytest.mark.parametrize(("status", "html"), [(503, False), (500, False), (503, True)])
async def test_server_errors_as_json_or_html(
    api: Api, emu: ServicesEmulator, status: int, html: bool
) -> None:
    emu.faults.set(GET, error_rate=1.0, error_status=status, html=html)
    answer = await api.call(GET, {"serviceJobId": job_id(emu)})
    assert answer.status == status
    assert answer.headers["x-amzn-RequestId"]
    assert "x-amzn-RateLimit-Limit" not in answer.headers
    if html:
        assert answer.headers["Content-Type"].startswith("text/html")
        assert f"<h1>{status} " in answer.text
    else:
        assert answer.errors[0]["code"] in ("InternalFailure", "ServiceUnavailable")
    assert emu.count(GET, status) == 1


async def test_dropped_connections(api: Api, emu: ServicesEmulator) -> None:
    create = "createServiceDocumentUploadDestination"
    emu.faults.set(create, drop_rate=1.0)
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await api.call(create, body={"contentType": "PDF", "contentLength": 10})
    assert emu.count(create, 0) == 1
    assert emu.requests[-1].status == 0


async def test_aiohttp_resends_an_idempotent_request_once_on_a_drop(
    api: Api, emu: ServicesEmulator
) -> None:
    # Worth knowing for client retry counts: aiohttp 3.14 itself resends GET, PUT and
    # DELETE once when the connection drops, before any retry policy sees an error.
    emu.faults.set(GET, drop_rate=1.0)
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await api.call(GET, {"serviceJobId": job_id(emu)})
    assert emu.count(GET, 0) == 2
    assert emu.requests[-1].status == 0


async def test_slow_bodies_trickle(api: Api, emu: ServicesEmulator) -> None:
    emu.faults.set(GET, slow_body=0.2)
    started = time.perf_counter()
    answer = await api.call(GET, {"serviceJobId": job_id(emu)})
    assert answer.status == 200
    assert answer.json["payload"]["serviceJobId"] == job_id(emu)
    assert time.perf_counter() - started >= 0.2


async def test_a_counted_fault_fails_exactly_n_requests(api: Api, emu: ServicesEmulator) -> None:
    emu.faults.set("*", error_rate=1.0, count=2)
    statuses = [(await api.call(GET, {"serviceJobId": job_id(emu)})).status for _ in range(4)]
    assert statuses == [503, 503, 200, 200]
    assert emu.faults.active == {}


async def test_an_operations_own_fault_beats_the_general_one(
    api: Api, emu: ServicesEmulator
) -> None:
    emu.faults.set("*", error_rate=1.0)
    emu.faults.set(GET, Fault())
    assert (await api.call(GET, {"serviceJobId": job_id(emu)})).status == 200
    search = await api.call("getServiceJobs", query={"createdAfter": "2020-01-01T00:00:00Z"})
    assert search.status == 503
    # "*" is for API operations only: the token endpoint still works.
    await api.login()
    emu.faults.clear()
    assert (
        await api.call("getServiceJobs", query={"createdAfter": "2020-01-01T00:00:00Z"})
    ).status == 200


async def test_token_endpoint_faults(api: Api, emu: ServicesEmulator) -> None:
    emu.faults.set("token", error_rate=1.0, error_status=500, count=1)
    status, _ = await api.exchange()
    assert status == 500
    assert (await api.exchange())[0] == 200
    assert emu.lwa_exchanges == 3


async def test_upload_faults(api: Api, emu: ServicesEmulator) -> None:
    emu.faults.set("upload", error_rate=1.0, error_status=503)
    dest = (
        await api.call(
            "createServiceDocumentUploadDestination",
            body={"contentType": "PDF", "contentLength": 16},
        )
    ).json["payload"]
    async with api.session.put(dest["url"], data=b"0" * 16, headers=dest["headers"]) as response:
        assert response.status == 503


async def test_fault_dice_are_seeded() -> None:
    def fates(seed: int) -> list[int | None]:
        injector = FaultInjector(seed)
        injector.set(GET, error_rate=0.5)
        return [plan.error_status if (plan := injector.plan(GET)) else None for _ in range(40)]

    assert fates(1) == fates(1)
    assert fates(1) != fates(2)
    assert 5 < sum(f == 503 for f in fates(1)) < 35


def test_faults_are_checked() -> None:
    with pytest.raises(ValueError, match="error_rate"):
        Fault(error_rate=1.5)
    with pytest.raises(ValueError, match="error_status"):
        Fault(error_status=404)
    with pytest.raises(ValueError, match="latency"):
        Fault(latency=-1)


def test_fault_specs_from_the_command_line() -> None:
    operation, fault = parse_fault_spec(
        "getServiceJobs:latency=0.25,error_rate=0.05,error_status=500,html=true,count=3"
    )
    assert operation == "getServiceJobs"
    assert fault == Fault(latency=0.25, error_rate=0.05, error_status=500, html=True, count=3)
    for bad in ("latency=1", "x:speed=2", "x:latency"):
        with pytest.raises(ValueError, match="fault spec"):
            parse_fault_spec(bad)
    args = build_parser().parse_args(
        [
            "--port",
            "0",
            "--jobs",
            "5",
            "--latency",
            "0.1",
            "--html-errors",
            "--error-rate",
            "0.2",
            "--fault",
            "token:drop_rate=0.5",
        ]
    )
    emu = _emulator(args)
    assert emu.faults.get("*") == Fault(latency=0.1, html=True, error_rate=0.2)
    assert emu.faults.get("token") == Fault(drop_rate=0.5)
    assert len(emu.store.jobs) == 5
