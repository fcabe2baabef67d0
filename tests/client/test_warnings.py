"""Warnings in successful answers: returned, logged at WARNING, and never a failure."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime

import pytest
from aioresponses import aioresponses

from spapi_services import OperationFailedError
from spapi_services.models import AvailabilityRecord

from ._helpers import lwa_ok
from .conftest import ClientFactory

SCHEDULES = re.compile(r"^https://api\.test/service/v1/serviceResources/.*/schedules")
ASSIGN = re.compile(r"^https://api\.test/service/v1/serviceJobs/.*/resources$")
RECORD = AvailabilityRecord(
    start_time=datetime(2030, 1, 1, 9, tzinfo=UTC), end_time=datetime(2030, 1, 1, 17, tzinfo=UTC)
)


async def test_per_record_warnings_are_returned_and_logged(
    mock_api: aioresponses, make_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    lwa_ok(mock_api)
    body = {
        "payload": [
            {
                "availability": {
                    "startTime": "2030-01-01T09:00:00Z",
                    "endTime": "2030-01-01T17:00:00Z",
                },
                "warnings": [{"code": "ScheduleOverride", "message": "replaces an earlier entry"}],
            }
        ]
    }
    mock_api.put(SCHEDULES, payload=body, headers={"x-amzn-RequestId": "rid-7"})
    client = make_client()
    with caplog.at_level(logging.WARNING, logger="spapi_services"):
        records = await client.schedules.update("res-1", [RECORD])
    assert records[0].warnings is not None
    assert records[0].warnings[0].code == "ScheduleOverride"
    logged = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(logged) == 1
    assert "updateSchedule" in logged[0]
    assert "ScheduleOverride" in logged[0]
    assert "rid-7" in logged[0]


async def test_assignment_warnings_are_logged(
    mock_api: aioresponses, make_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    lwa_ok(mock_api)
    body = {"payload": {"warnings": [{"code": "RESOURCES_OVERBOOKED", "message": "busy"}]}}
    mock_api.put(ASSIGN, payload=body)
    client = make_client()
    with caplog.at_level(logging.WARNING, logger="spapi_services"):
        warnings = await client.appointments.assign_resources("job-1", "appt-1", ["tech-1"])
    assert [w.code for w in warnings] == ["RESOURCES_OVERBOOKED"]
    assert any("RESOURCES_OVERBOOKED" in r.getMessage() for r in caplog.records)


async def test_top_level_entries_marked_warning_do_not_fail_the_call(
    mock_api: aioresponses, make_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    lwa_ok(mock_api)
    body = {"errors": [{"code": "Advisory", "message": "heads up", "errorLevel": "WARNING"}]}
    mock_api.put(SCHEDULES, payload=body)
    client = make_client()
    with caplog.at_level(logging.WARNING, logger="spapi_services"):
        assert await client.schedules.update("res-1", [RECORD]) == []
    assert any("Advisory" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("level", [None, "ERROR"])
async def test_top_level_errors_still_fail_the_call(
    mock_api: aioresponses, make_client: ClientFactory, level: str | None
) -> None:
    lwa_ok(mock_api)
    entry = {"code": "InvalidInput", "message": "unknown resource"}
    if level:
        entry["errorLevel"] = level
    mock_api.put(
        SCHEDULES,
        payload={"errors": [entry, {"code": "W", "message": "w", "errorLevel": "WARNING"}]},
    )
    client = make_client()
    with pytest.raises(OperationFailedError) as caught:
        await client.schedules.update("res-1", [RECORD])
    assert caught.value.codes == ("InvalidInput", "W")
