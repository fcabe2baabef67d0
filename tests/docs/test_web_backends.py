"""The web backends guide's fragment: a job inside a larger aiohttp.web answer, its amounts
JSON numbers equal to the API's digit for digit (read back as Decimals)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from _pages import US, run_fragment
from aiohttp import web

from spapi_services import ServicesClient
from spapi_services.emulator import ServicesEmulator
from spapi_services.emulator.store import JobRecord

from ._docs import block


def _a_job_with_cents(emulator: ServicesEmulator) -> JobRecord:
    """A US job with a payment whose amount has a fraction (the case json.dumps refuses)."""
    return next(
        job
        for job in emulator.store.find_jobs(marketplace_id=US)
        if any(p["amount"]["value"] % 1 for p in job.details.get("payments", []))
    )


async def test_a_job_inside_a_larger_aiohttp_answer_is_the_api_s_json(
    emulator: ServicesEmulator, client: ServicesClient
) -> None:
    record = _a_job_with_cents(emulator)
    names: dict[str, Any] = {"client": client, "job_id": record.service_job_id}

    await run_fragment(block("aiohttp-larger-answer"), names)

    response = names["response"]
    assert isinstance(response, web.Response)
    assert response.content_type == "application/json"
    assert response.text is not None
    answer = json.loads(response.text, parse_float=Decimal)
    api = json.loads(record.payload_json(), parse_float=Decimal)["payload"]
    assert answer == {"job": api, "fresh": True}
    assert isinstance(answer["job"]["payments"][0]["amount"]["value"], (Decimal, int))


async def test_without_the_dumps_the_guide_gives_the_dict_is_refused(
    emulator: ServicesEmulator, client: ServicesClient
) -> None:
    """What the guide warns of: aiohttp's default json.dumps refuses the Decimal amounts."""
    job = await client.service_jobs.get(_a_job_with_cents(emulator).service_job_id)
    with pytest.raises(TypeError, match="Decimal"):
        web.json_response({"job": job.to_api_dict()})
