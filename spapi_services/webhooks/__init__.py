"""Webhooks as the Standard Webhooks specification has them: signed, retried, verified.

Sending the changes a process sees to your endpoints::

    from spapi_services.webhooks import (
        WebhookDispatcher, WebhookEndpoint, WebhookSecret, change_message,
    )

    secret = WebhookSecret.generate()          # give secret.export() to the receiver
    endpoint = WebhookEndpoint(
        url="https://example.com/hooks", secrets=secret, buyer_data="drop"
    )
    async with WebhookDispatcher([endpoint]) as dispatcher:
        message = change_message("created", job, seen_at=seen_at, seller_id="A1")
        await dispatcher.publish(message)

Receiving (in any web framework: the body as received, and the headers)::

    from spapi_services.webhooks import WebhookVerificationError, verify

    try:
        webhook_id = verify(raw_body, request.headers, "whsec_...")
    except WebhookVerificationError:
        ...  # answer 400, do nothing
    # de-duplicate by webhook_id: a message can arrive more than once

Each message is signed over ``{webhook-id}.{webhook-timestamp}.{body}`` with HMAC-SHA256
(``webhook-signature: v1,<base64>``); the reference library ``standardwebhooks``
verifies it too.  Deliveries are retried with back-off over about three days
(:class:`RetrySchedule`), then dead-lettered; a 410 disables the endpoint; 429 and 5xx
"slow down" statuses hold the endpoint back, obeying ``Retry-After``.  Endpoints on
private, loopback or link-local addresses are refused unless allowed
(:class:`AddressGuard`).  Bodies and secrets are never logged.
"""

from ._addresses import LOOPBACK_NETWORKS, AddressGuard, EndpointAddressError, NetworkLike
from ._dispatcher import Delivery, DeliveryState, DispatcherStats, WebhookDispatcher
from ._endpoint import WEBHOOK_BUYER_DATA, WebhookBuyerData, WebhookEndpoint
from ._message import (
    SERVICE_JOB_CREATED,
    SERVICE_JOB_UPDATED,
    WebhookMessage,
    change_message,
    new_message_id,
)
from ._schedule import DEFAULT_DELAYS, AttemptOutcome, RetrySchedule, outcome_of
from ._sender import DEFAULT_TIMEOUT, AttemptResult, WebhookSender
from ._signing import (
    DEFAULT_TOLERANCE,
    WebhookSecret,
    WebhookSecretLike,
    WebhookVerificationError,
    sign,
    signature_header,
    verify,
    webhook_headers,
)

__all__ = [
    "DEFAULT_DELAYS",
    "DEFAULT_TIMEOUT",
    "DEFAULT_TOLERANCE",
    "LOOPBACK_NETWORKS",
    "SERVICE_JOB_CREATED",
    "SERVICE_JOB_UPDATED",
    "WEBHOOK_BUYER_DATA",
    "AddressGuard",
    "AttemptOutcome",
    "AttemptResult",
    "Delivery",
    "DeliveryState",
    "DispatcherStats",
    "EndpointAddressError",
    "NetworkLike",
    "RetrySchedule",
    "WebhookBuyerData",
    "WebhookDispatcher",
    "WebhookEndpoint",
    "WebhookMessage",
    "WebhookSecret",
    "WebhookSecretLike",
    "WebhookSender",
    "WebhookVerificationError",
    "change_message",
    "new_message_id",
    "outcome_of",
    "sign",
    "signature_header",
    "verify",
    "webhook_headers",
]
