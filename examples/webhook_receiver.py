"""A webhook receiver in aiohttp.web: checks every signature, handles each change once.

POST /webhooks takes the service-job changes that the fleet (or a WebhookDispatcher)
sends, signed as Standard Webhooks.  A request whose signature or timestamp does not
check out is refused with 400 and nothing is done.  A message can arrive more than once
(a retry after a lost answer, a worker that died mid-delivery), always with the same
webhook-id, so each id is handled once and its repeats are only acknowledged.

Run it with: WEBHOOK_SECRET=whsec_... python webhook_receiver.py
(serves http://127.0.0.1:8001/webhooks; several secrets, space-separated, to rotate)
"""

import json
import logging
import os
from collections import OrderedDict
from typing import Any

from aiohttp import web

from spapi_services.webhooks import WebhookVerificationError, verify

# The Standard Webhooks reference library checks the same signatures:
#     standardwebhooks.Webhook(secret).verify(body, request.headers)

log = logging.getLogger("webhook_receiver")

SECRETS = web.AppKey("secrets", str)
SEEN = web.AppKey("seen", OrderedDict)  # webhook-ids handled, oldest first
HANDLED = web.AppKey("handled", list)  # what was done, for this example to show

# Retries of one message span about three days; remember more ids than arrive in that
# time.  A receiver with a database keeps the ids there instead (a unique column), in
# the same transaction as what it does with the change.
REMEMBER = 100_000


async def handle(app: web.Application, event: dict[str, Any]) -> None:
    """Do what the change calls for: here, note it (a real receiver books a visit)."""
    if not event["type"].startswith("service_job."):
        return  # another event type (webhook.test, or one added later): acknowledged
    job = event["data"]["job"]
    status = job.get("serviceJobStatus")
    app[HANDLED].append((event["type"], job["serviceJobId"], status))
    log.info("%s: job %s", event["type"], job["serviceJobId"])


async def receive(request: web.Request) -> web.Response:
    body = await request.read()  # the raw bytes: the signature covers them exactly
    try:
        webhook_id = verify(body, request.headers, request.app[SECRETS])
    except WebhookVerificationError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    seen = request.app[SEEN]
    if webhook_id in seen:
        return web.Response(status=204)  # handled before: acknowledge, do nothing
    # Claimed before the first await, so a copy arriving meanwhile is not handled twice.
    seen[webhook_id] = True
    try:
        await handle(request.app, json.loads(body))
    except Exception:
        del seen[webhook_id]  # not handled: the sender's retry will try again
        raise
    while len(seen) > REMEMBER:
        seen.popitem(last=False)
    return web.Response(status=204)


def make_app(secrets: str | None = None) -> web.Application:
    app = web.Application()
    app[SECRETS] = secrets if secrets is not None else os.environ["WEBHOOK_SECRET"]
    app[SEEN] = OrderedDict()
    app[HANDLED] = []
    app.router.add_post("/webhooks", receive)
    return app


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    web.run_app(make_app(), host="127.0.0.1", port=8001)
