"""Deliveries from one process, retried on a fake clock to a receiver over real sockets.

The dispatcher's timer is a :class:`ManualTimer`: every wait it asks for is recorded and
skipped, so a schedule of hours runs in milliseconds and the recorded waits are the
schedule's.  The receiver notes the fake clock's time of each request.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from _timers import ManualTimer

from spapi_services.webhooks import (
    DEFAULT_DELAYS,
    DeliveryState,
    RetrySchedule,
    WebhookDispatcher,
    WebhookEndpoint,
    WebhookMessage,
    WebhookSecret,
    change_message,
    verify,
)

from .conftest import LOCAL, Receiver, Reply

SEEN = datetime(2026, 6, 17, 12, 0, tzinfo=UTC)


@pytest.fixture
def timer(receiver: Receiver) -> ManualTimer:
    clock = ManualTimer()
    receiver.clock = clock.now
    return clock


def _endpoint(receiver: Receiver, name: str = "a", **options: Any) -> WebhookEndpoint:
    return WebhookEndpoint(
        url=f"{receiver.url}?to={name}", secrets=WebhookSecret.generate(), id=name, **options
    )


def _message(n: int = 1, seller: str = "A1") -> WebhookMessage:
    job = {"serviceJobId": f"job-{n}", "buyer": {"name": "Zoë Example"}}
    return change_message("created", job, seen_at=SEEN, seller_id=seller)


@asynccontextmanager
async def _dispatching(
    endpoints: list[WebhookEndpoint], timer: ManualTimer, **options: Any
) -> AsyncIterator[WebhookDispatcher]:
    dispatcher = WebhookDispatcher(
        endpoints, timer=timer, allow_networks=LOCAL, rng=random.Random(5), **options
    )
    async with dispatcher:
        yield dispatcher


async def test_a_message_is_delivered_once_signed(receiver: Receiver, timer: ManualTimer) -> None:
    endpoint = _endpoint(receiver)
    message = _message()
    async with _dispatching([endpoint], timer) as dispatcher:
        assert await dispatcher.publish(message) == 1
        await dispatcher.join()
        stats = dispatcher.stats()

    (got,) = receiver.received
    assert verify(got.body, got.headers, endpoint.secrets) == message.id
    assert got.body == endpoint.body(message)
    assert (stats.delivered, stats.attempts, stats.pending, stats.dead) == (1, 1, 0, 0)
    assert list(timer) == []  # nothing waited


async def test_failures_are_retried_on_the_schedule_with_the_same_id_and_body(
    receiver: Receiver, timer: ManualTimer
) -> None:
    receiver.script(500, 404, 502)
    endpoint = _endpoint(receiver)
    async with _dispatching([endpoint], timer) as dispatcher:
        await dispatcher.publish(_message())
        await dispatcher.join()
        stats = dispatcher.stats()

    ids = {r.webhook_id for r in receiver.received}
    bodies = {r.body for r in receiver.received}
    assert len(receiver.received) == 4
    assert len(ids) == 1
    assert len(bodies) == 1
    assert (stats.delivered, stats.attempts, stats.failed_attempts) == (1, 4, 3)
    # The waits: the schedule's 5 s, 5 min and 30 min, each within its jitter (the 502
    # also held the endpoint back 5 s, inside the wait the schedule asked for anyway).
    waits = list(timer)
    for wait, nominal in zip(waits, DEFAULT_DELAYS[1:4], strict=True):
        assert 0.8 * nominal <= wait <= 1.2 * nominal
    times = [r.at or 0.0 for r in receiver.received]
    assert all(later > earlier for earlier, later in itertools.pairwise(times))


async def test_a_delivery_that_keeps_failing_is_dead_lettered_and_can_be_sent_again(
    receiver: Receiver, timer: ManualTimer
) -> None:
    receiver.script(*[500] * 10)
    endpoint = _endpoint(receiver)
    message = _message()
    async with _dispatching([endpoint], timer) as dispatcher:
        await dispatcher.publish(message)
        await dispatcher.join()
        (dead,) = dispatcher.dead_letters()
        spent = sum(timer)
        assert dispatcher.redeliver(message_id=message.id) == 1
        await dispatcher.join()
        stats = dispatcher.stats()

    assert dead.state is DeliveryState.DELIVERED  # the same delivery, replayed
    assert dead.last_status == 204
    assert len(receiver.received) == 11
    assert {r.webhook_id for r in receiver.received} == {message.id}
    assert 0.8 * sum(DEFAULT_DELAYS) <= spent <= 1.2 * sum(DEFAULT_DELAYS)
    assert spent > 60 * 3600  # spread over days, not minutes
    assert (stats.delivered, stats.dead, stats.attempts) == (1, 0, 11)


async def test_dead_letters_say_why(receiver: Receiver, timer: ManualTimer) -> None:
    receiver.script(500, 503)
    async with _dispatching(
        [_endpoint(receiver)], timer, schedule=RetrySchedule(delays=(0, 1), jitter=0)
    ) as dispatcher:
        await dispatcher.publish(_message())
        await dispatcher.join()
        (dead,) = dispatcher.dead_letters()

    assert dead.state is DeliveryState.DEAD
    assert dead.attempts == 2
    assert (dead.last_status, dead.last_error) == (503, "HTTP 503")


async def test_410_disables_the_endpoint_and_dead_letters_what_waits_for_it(
    receiver: Receiver, timer: ManualTimer
) -> None:
    receiver.script(410)
    gone, other = _endpoint(receiver, "gone"), _endpoint(receiver, "other")
    async with _dispatching([gone, other], timer, concurrency=1) as dispatcher:
        for n in range(3):
            await dispatcher.publish(_message(n))
        await dispatcher.join()
        disabled = dispatcher.disabled
        late = _message(9)
        await dispatcher.publish(late)
        await dispatcher.join()
        dead = dispatcher.dead_letters()
        to_gone = [r for r in receiver.received if r.query == "to=gone"]
        to_other = [r for r in receiver.received if r.query == "to=other"]

        assert disabled == {"gone": "HTTP 410 Gone"}
        assert len(to_gone) == 1  # the 410, and nothing after it
        assert len(to_other) == 4
        assert len(dead) == 4
        assert {d.endpoint_id for d in dead} == {"gone"}
        assert all(d.last_error == "endpoint disabled: HTTP 410 Gone" for d in dead)

        # The owner fixed the receiver: replaying its letters enables it again.
        assert dispatcher.redeliver(endpoint_id="gone") == 4
        await dispatcher.join()
        assert dispatcher.disabled == {}
        assert dispatcher.dead_letters() == []

    again = [r for r in receiver.received if r.query == "to=gone"][1:]
    assert sorted(r.webhook_id for r in again) == sorted(d.message.id for d in dead)


@pytest.mark.parametrize(("headers", "pause"), [({"Retry-After": "120"}, 120.0), ({}, 5.0)])
async def test_slow_down_holds_the_whole_endpoint_back(
    receiver: Receiver, timer: ManualTimer, headers: dict[str, str], pause: float
) -> None:
    receiver.script(Reply(429, headers))
    async with _dispatching(
        [_endpoint(receiver)], timer, concurrency=1, schedule=RetrySchedule(jitter=0)
    ) as dispatcher:
        await dispatcher.publish(_message(1))
        await dispatcher.publish(_message(2))
        await dispatcher.join()

    first, *later = receiver.received
    assert first.at is not None
    assert len(later) == 2
    # Neither the throttled message nor the one waiting behind it went before the pause.
    assert all(r.at is not None and r.at - first.at >= pause for r in later)
    assert {r.webhook_id for r in later} == {first.webhook_id, _other_id(receiver, first)}


def _other_id(receiver: Receiver, first: Any) -> str:
    return next(r.webhook_id for r in receiver.received if r.webhook_id != first.webhook_id)


async def test_at_most_concurrency_attempts_at_once_per_endpoint(
    receiver: Receiver, timer: ManualTimer
) -> None:
    receiver.script(*[Reply(hang=True)] * 5)
    async with _dispatching([_endpoint(receiver)], timer, concurrency=2) as dispatcher:
        for n in range(5):
            await dispatcher.publish(_message(n))
        await receiver.wait_for(2)
        await asyncio.sleep(0.05)  # room for a third attempt, were it allowed
        held = len(receiver.received)
        in_flight = dispatcher.stats().in_flight
        receiver.release.set()
        await dispatcher.join()

    assert (held, in_flight) == (2, 2)
    assert len({r.webhook_id for r in receiver.received}) == 5


async def test_endpoints_take_their_sellers_messages(
    receiver: Receiver, timer: ManualTimer
) -> None:
    mine = _endpoint(receiver, "mine", seller_id="A1")
    every = _endpoint(receiver, "every")
    async with _dispatching([mine, every], timer) as dispatcher:
        assert await dispatcher.publish(_message(1, seller="A1")) == 2
        assert await dispatcher.publish(_message(2, seller="B2")) == 1
        await dispatcher.join()

    assert sorted(r.query for r in receiver.received) == ["to=every", "to=every", "to=mine"]


async def test_logs_name_the_delivery_but_never_the_body_a_secret_or_the_query(
    receiver: Receiver, timer: ManualTimer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="spapi_services")
    receiver.script(500)
    endpoint = _endpoint(receiver)
    message = _message()
    async with _dispatching([endpoint], timer) as dispatcher:
        await dispatcher.publish(message)
        await dispatcher.join()

    assert message.id in caplog.text
    assert "HTTP 500; next attempt in" in caplog.text
    assert "delivered (HTTP 204" in caplog.text
    assert "Zoë" not in caplog.text
    assert "job-1" not in caplog.text
    assert "to=a" not in caplog.text
    assert endpoint.secrets[0].export()[6:] not in caplog.text


async def test_closing_drops_what_is_pending_and_says_how_much(
    receiver: Receiver, timer: ManualTimer, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.script(Reply(hang=True), Reply(hang=True))
    dispatcher = WebhookDispatcher([_endpoint(receiver)], timer=timer, allow_networks=LOCAL)
    async with dispatcher:
        await dispatcher.publish(_message(1))
        await dispatcher.publish(_message(2))
        await receiver.wait_for(2)

    assert "closed with 2 deliveries not made" in caplog.text
    with pytest.raises(RuntimeError, match="closed"):
        await dispatcher.publish(_message(3))
    await dispatcher.aclose()  # twice is harmless


def test_bad_arguments_are_refused_naming_them(receiver: Receiver) -> None:
    endpoint = _endpoint(receiver)
    with pytest.raises(ValueError, match=r"endpoints\[1\]: id 'a' is used twice"):
        WebhookDispatcher([endpoint, endpoint])
    with pytest.raises(TypeError, match=r"endpoints\[0\]: expected a WebhookEndpoint"):
        WebhookDispatcher(["https://example.com"])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="concurrency: must be a whole number >= 1"):
        WebhookDispatcher([endpoint], concurrency=0)


async def test_joining_a_dispatcher_that_was_not_started_says_so(receiver: Receiver) -> None:
    dispatcher = WebhookDispatcher([_endpoint(receiver)], allow_networks=LOCAL)
    await dispatcher.publish(_message())
    with pytest.raises(RuntimeError, match="start the dispatcher first"):
        await dispatcher.join()
    await dispatcher.aclose()
