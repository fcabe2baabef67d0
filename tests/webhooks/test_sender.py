"""One attempt over real sockets: what is sent, and what each answer comes to."""

from __future__ import annotations

import socket
from datetime import UTC, datetime

import pytest
import standardwebhooks

from spapi_services import __version__
from spapi_services.webhooks import (
    AttemptOutcome,
    WebhookEndpoint,
    WebhookSecret,
    WebhookSender,
    change_message,
    verify,
)

from .conftest import LOCAL, Receiver, Reply

SEEN = datetime(2026, 6, 17, 12, 0, tzinfo=UTC)


def _endpoint(receiver: Receiver, *secrets: WebhookSecret) -> WebhookEndpoint:
    return WebhookEndpoint(url=receiver.url, secrets=secrets or WebhookSecret.generate())


async def test_the_body_received_is_the_body_signed_and_the_reference_library_accepts_it(
    receiver: Receiver, secret: WebhookSecret, jobs: list[dict[str, object]]
) -> None:
    endpoint = _endpoint(receiver, secret)
    message = change_message("created", jobs[0], seen_at=SEEN, seller_id="A1")
    body = endpoint.body(message)
    async with WebhookSender(allow_networks=LOCAL) as sender:
        result = await sender.attempt(endpoint, message.id, body)

    (got,) = receiver.received
    assert result.outcome is AttemptOutcome.DELIVERED
    assert result.status == 204
    assert result.error is None
    assert got.body == body
    assert got.headers["webhook-id"] == message.id
    assert got.headers["webhook-timestamp"] == str(result.timestamp)
    assert got.headers["content-type"] == "application/json"
    assert got.headers["user-agent"] == f"spapi-services/{__version__} (webhooks)"
    parsed = standardwebhooks.Webhook(secret.export()).verify(got.body, got.headers)
    assert parsed["data"]["job"]["serviceJobId"] == jobs[0]["serviceJobId"]
    assert verify(got.body, got.headers, secret) == message.id


async def test_while_rotating_every_secret_signs_each_attempt(receiver: Receiver) -> None:
    old, new = WebhookSecret.generate(), WebhookSecret.generate()
    async with WebhookSender(allow_networks=LOCAL) as sender:
        await sender.attempt(_endpoint(receiver, new, old), "msg_rot", b"{}")

    (got,) = receiver.received
    assert len(got.headers["webhook-signature"].split(" ")) == 2
    standardwebhooks.Webhook(old.export()).verify(got.body, got.headers)
    standardwebhooks.Webhook(new.export()).verify(got.body, got.headers)


@pytest.mark.parametrize(
    ("reply", "outcome", "error", "retry_after"),
    [
        (Reply(200), AttemptOutcome.DELIVERED, None, None),
        (Reply(202), AttemptOutcome.DELIVERED, None, None),
        (Reply(410), AttemptOutcome.GONE, "HTTP 410 Gone", None),
        (Reply(429, {"Retry-After": "120"}), AttemptOutcome.SLOW_DOWN, "HTTP 429", 120.0),
        (Reply(503, {"Retry-After": "0.5"}), AttemptOutcome.SLOW_DOWN, "HTTP 503", 0.5),
        (Reply(502), AttemptOutcome.SLOW_DOWN, "HTTP 502", None),
        (Reply(504), AttemptOutcome.SLOW_DOWN, "HTTP 504", None),
        (Reply(500, {"Retry-After": "30"}), AttemptOutcome.FAILED, "HTTP 500", 30.0),
        (Reply(400), AttemptOutcome.FAILED, "HTTP 400", None),
        (Reply(401), AttemptOutcome.FAILED, "HTTP 401", None),
    ],
)
async def test_each_answer_comes_to_its_outcome(
    receiver: Receiver,
    reply: Reply,
    outcome: AttemptOutcome,
    error: str | None,
    retry_after: float | None,
) -> None:
    receiver.script(reply)
    async with WebhookSender(allow_networks=LOCAL) as sender:
        result = await sender.attempt(_endpoint(receiver), "msg_1", b"{}")

    assert result.outcome is outcome
    assert result.status == reply.status
    assert result.retry_after == retry_after
    if error is None:
        assert result.error is None
    else:
        assert result.error is not None
        assert result.error.startswith(error)


async def test_a_retry_after_date_is_read_as_seconds_from_now(receiver: Receiver) -> None:
    receiver.script(Reply(503, {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}))
    async with WebhookSender(allow_networks=LOCAL) as sender:
        result = await sender.attempt(_endpoint(receiver), "msg_1", b"{}")

    assert result.outcome is AttemptOutcome.SLOW_DOWN
    assert result.retry_after == 0.0  # a date past means now


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_a_redirect_is_a_failure_and_is_not_followed(receiver: Receiver, status: int) -> None:
    receiver.script(Reply(status, {"Location": f"{receiver.base}/moved"}))
    async with WebhookSender(allow_networks=LOCAL) as sender:
        result = await sender.attempt(_endpoint(receiver), "msg_1", b"{}")

    assert result.outcome is AttemptOutcome.FAILED
    assert result.error == f"HTTP {status}: a redirect (not followed)"
    assert receiver.other_paths == []
    assert len(receiver.received) == 1


async def test_no_answer_within_the_timeout_is_a_failure(receiver: Receiver) -> None:
    receiver.script(Reply(hang=True))
    async with WebhookSender(timeout=0.3, allow_networks=LOCAL) as sender:
        result = await sender.attempt(_endpoint(receiver), "msg_1", b"{}")

    assert result.outcome is AttemptOutcome.FAILED
    assert result.status is None
    assert result.error == "no answer within 0.3 s"
    assert len(receiver.received) == 1


async def test_a_receiver_that_is_not_there_is_a_failure() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    endpoint = WebhookEndpoint(
        url=f"http://127.0.0.1:{port}/hooks", secrets=WebhookSecret.generate()
    )
    async with WebhookSender(allow_networks=LOCAL) as sender:
        result = await sender.attempt(endpoint, "msg_1", b"{}")

    assert result.outcome is AttemptOutcome.FAILED
    assert result.status is None
    assert result.error is not None
    assert result.error.startswith("could not connect to 127.0.0.1")


@pytest.mark.parametrize("timeout", [0, -1, 61])
def test_a_timeout_out_of_range_is_refused(timeout: float) -> None:
    with pytest.raises(ValueError, match="timeout: must be more than 0 and at most 60 seconds"):
        WebhookSender(timeout=timeout)


async def test_a_closed_sender_refuses_to_send(receiver: Receiver) -> None:
    sender = WebhookSender(allow_networks=LOCAL)
    await sender.aclose()
    await sender.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await sender.attempt(_endpoint(receiver), "msg_1", b"{}")
