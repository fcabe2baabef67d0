"""examples/webhook_receiver.py, served on 127.0.0.1 and sent real webhooks over sockets.

The changes are jobs read from the emulator, sent by a WebhookDispatcher as the fleet
sends them; duplicates are real redeliveries (the same webhook-id, signed anew).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
import standardwebhooks
from _pages import load_example
from aiohttp import web

from spapi_services import ServicesClient
from spapi_services.webhooks import (
    LOOPBACK_NETWORKS,
    WebhookDispatcher,
    WebhookEndpoint,
    WebhookMessage,
    WebhookSecret,
    WebhookSender,
    change_message,
    webhook_headers,
)


@asynccontextmanager
async def serving(secrets: str) -> AsyncIterator[tuple[dict[str, Any], web.Application, str]]:
    """The example's app with ``secrets``, served on a free port; its namespace, app, URL."""
    example = load_example("webhook_receiver.py")
    app = example["make_app"](secrets)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        host, port = runner.addresses[0][:2]
        yield example, app, f"http://{host}:{port}/webhooks"
    finally:
        await runner.cleanup()


async def _changes(client: ServicesClient, count: int) -> list[WebhookMessage]:
    found = []
    since = datetime.now(UTC) - timedelta(days=90)
    async for job in client.service_jobs.list(created_after=since, max_items=count):
        kind = "created" if len(found) % 2 == 0 else "updated"
        found.append(change_message(kind, job, seen_at=datetime.now(UTC), seller_id="A1"))
    assert len(found) == count
    return found


def _handled(example: dict[str, Any], app: web.Application) -> list[Any]:
    return list(app[example["HANDLED"]])


async def _post(url: str, body: bytes, headers: dict[str, str]) -> int:
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=body, headers=headers) as response,
    ):
        return response.status


async def test_each_change_is_handled_once_however_often_it_arrives(
    client: ServicesClient,
) -> None:
    secret = WebhookSecret.generate()
    messages = await _changes(client, 6)
    async with serving(secret.export()) as (example, app, url):
        endpoint = WebhookEndpoint(url=url, secrets=secret)
        async with WebhookDispatcher([endpoint], allow_networks=LOOPBACK_NETWORKS) as dispatcher:
            for message in messages:
                await dispatcher.publish(message)
            await dispatcher.join()
            first = dispatcher.stats()
        # Redeliveries: the same ids signed anew, two of them at once.
        async with WebhookSender(allow_networks=LOOPBACK_NETWORKS) as sender:
            again = [
                sender.attempt(endpoint, m.id, endpoint.body(m)) for m in [*messages, messages[0]]
            ]
            repeats = await asyncio.gather(*again)
        handled = _handled(example, app)

    assert (first.delivered, first.dead) == (6, 0)
    assert [r.status for r in repeats] == [204] * 7  # acknowledged, not handled again
    assert handled == [
        (m.type, m.data["job"]["serviceJobId"], m.data["job"]["serviceJobStatus"]) for m in messages
    ]


async def test_a_forged_or_replayed_request_is_refused_and_not_handled(
    client: ServicesClient,
) -> None:
    secret = WebhookSecret.generate()
    (message,) = await _changes(client, 1)
    body = message.body()
    async with serving(secret.export()) as (example, app, url):
        forged = await _post(
            url, body, webhook_headers(WebhookSecret.generate(), message.id, _now(), body)
        )
        stale = _now() - timedelta(minutes=10)
        replayed = await _post(url, body, webhook_headers(secret, message.id, stale, body))
        unsigned = await _post(url, body, {"content-type": "application/json"})
        tampered_headers = webhook_headers(secret, message.id, _now(), body)
        tampered = await _post(url, body.replace(b"A1", b"B2"), tampered_headers)
        genuine = await _post(url, body, webhook_headers(secret, message.id, _now(), body))
        handled = _handled(example, app)

    assert (forged, replayed, unsigned, tampered) == (400, 400, 400, 400)
    assert genuine == 204
    assert len(handled) == 1  # only the genuine one, though the forgeries came first


async def test_what_the_reference_library_signs_is_accepted_also_while_rotating(
    client: ServicesClient,
) -> None:
    old, new = WebhookSecret.generate(), WebhookSecret.generate()
    first, second = await _changes(client, 2)
    async with serving(f"{new.export()} {old.export()}") as (example, app, url):
        statuses = []
        for message, secret in ((first, old), (second, new)):
            body = message.body()
            now = datetime.now(UTC)
            headers = {
                "webhook-id": message.id,
                "webhook-timestamp": str(int(now.timestamp())),
                "webhook-signature": standardwebhooks.Webhook(secret.export()).sign(
                    message.id, now, body
                ),
            }
            statuses.append(await _post(url, body, headers))
        handled = _handled(example, app)

    assert statuses == [204, 204]
    assert [h[1] for h in handled] == [
        first.data["job"]["serviceJobId"],
        second.data["job"]["serviceJobId"],
    ]


async def test_a_change_whose_handling_fails_is_handled_when_it_comes_again(
    client: ServicesClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = WebhookSecret.generate()
    (message,) = await _changes(client, 1)
    body = message.body()
    async with serving(secret.export()) as (example, app, url):
        real_handle = example["handle"]
        calls = 0

        async def flaky(app: web.Application, event: dict[str, Any]) -> None:
            nonlocal calls
            calls += 1
            if calls == 1:
                raise RuntimeError("the database is down")
            await real_handle(app, event)

        example["handle"] = flaky
        failed = await _post(url, body, webhook_headers(secret, message.id, _now(), body))
        retried = await _post(url, body, webhook_headers(secret, message.id, _now(), body))
        handled = _handled(example, app)

    assert (failed, retried) == (500, 204)
    assert len(handled) == 1
    assert json.loads(body)["data"]["job"]["serviceJobId"] == handled[0][1]


def _now() -> datetime:
    return datetime.now(UTC)
