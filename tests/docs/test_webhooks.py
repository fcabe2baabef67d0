"""The webhooks guide's block, run against the receiver example served on 127.0.0.1."""

from __future__ import annotations

from typing import Any

import pytest
from _pages import US, load_example, run_fragment
from aiohttp import web

from spapi_services import ServicesClient
from spapi_services.emulator import ServicesEmulator
from spapi_services.webhooks import WebhookSecret

from ._docs import block


async def test_the_guide_sends_the_waiting_jobs_to_the_receiver_without_their_buyers(
    emulator: ServicesEmulator, client: ServicesClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = WebhookSecret.generate().export()
    example = load_example("webhook_receiver.py")
    app = example["make_app"](secret)
    bodies: list[dict[str, Any]] = []
    handle = example["handle"]

    async def keep(app: web.Application, event: dict[str, Any]) -> None:
        bodies.append(event)
        await handle(app, event)

    example["handle"] = keep
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        host, port = runner.addresses[0][:2]
        monkeypatch.setenv("WEBHOOK_URL", f"http://{host}:{port}/webhooks")
        monkeypatch.setenv("WEBHOOK_SECRET", secret)
        names: dict[str, Any] = {"client": client}
        await run_fragment(block("webhooks-dispatch"), names)
    finally:
        await runner.cleanup()

    stats = names["stats"]
    sent = [event["data"]["job"] for event in bodies]
    waiting = {
        j.service_job_id for j in emulator.store.find_jobs(status="NOT_SERVICED", marketplace_id=US)
    }
    assert stats.delivered == len(sent) > 0
    assert stats.dead == 0
    assert {job["serviceJobId"] for job in sent} <= waiting
    assert all(job["serviceJobStatus"] == "NOT_SERVICED" for job in sent)
    assert all(not {"buyerId", "name", "phone"} & set(job.get("buyer", {})) for job in sent)
    assert all("address" not in job.get("serviceLocation", {}) for job in sent)
    assert all(event["type"] == "service_job.created" for event in bodies)
