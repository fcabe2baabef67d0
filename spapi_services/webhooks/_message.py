"""A webhook message: its id, its event type, when it happened, and its data.

The body sent is the Standard Webhooks envelope, compact JSON::

    {"type": "service_job.created", "timestamp": "2025-06-01T09:30:00Z", "data": {...}}

For a change of a service job, ``data`` is the change as the change feed writes it
(``kind``, ``seenAt``, ``changeId`` and ``contentHash`` when known, ``sellerId`` when
known, and ``job``: the job in the API's JSON shape).  The message id is the
``webhook-id``: the same on every attempt of one message, so a receiver de-duplicates
by it.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

import attrs

from .. import _serde
from ._signing import check_message_id

__all__ = [
    "SERVICE_JOB_CREATED",
    "SERVICE_JOB_UPDATED",
    "WebhookMessage",
    "change_message",
    "new_message_id",
]

#: The event type of a service job new to the publisher.
SERVICE_JOB_CREATED = "service_job.created"
#: The event type of a known service job whose content changed.
SERVICE_JOB_UPDATED = "service_job.updated"

_KINDS = {"created": SERVICE_JOB_CREATED, "updated": SERVICE_JOB_UPDATED}


def new_message_id() -> str:
    """A new random message id (``msg_`` and 26 base32 characters: 128 random bits)."""
    raw = base64.b32encode(secrets.token_bytes(16)).decode("ascii").rstrip("=").lower()
    return f"msg_{raw}"


def _message_id(value: str) -> str:
    check_message_id(value)
    return value


def _aware(value: datetime) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"timestamp: must be an aware datetime, got {value!r}")
    return value


@attrs.frozen(kw_only=True)
class WebhookMessage:
    """One event to deliver: the same id, type, time and data on every attempt.

    :param type: the event type, dotted (``service_job.created``).
    :param timestamp: when the event happened (not when it is sent).
    :param data: the event's JSON data; amounts may be :class:`~decimal.Decimal`.
    :param id: the ``webhook-id``; a new random one by default.  Keep it stable for one
        event (a redelivery must reuse it), distinct for two.
    :param seller_id: the seller the event is about, for endpoints of one seller.
    """

    #: The event type, dotted (``service_job.created``).
    type: str
    #: When the event happened (not when it is sent).
    timestamp: datetime = attrs.field(validator=lambda _s, _a, v: _aware(v))
    #: The event's JSON data.
    data: Mapping[str, Any] = attrs.field(repr=False)
    #: The ``webhook-id``: the same on every attempt and redelivery of the event.
    id: str = attrs.field(factory=new_message_id, converter=_message_id)
    #: The seller the event is about (``None``: none in particular).
    seller_id: str | None = None

    def envelope(self, data: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The body's JSON object, with ``data`` in place of the message's if given."""
        return {
            "type": self.type,
            "timestamp": _serde.format_datetime(self.timestamp),
            "data": self.data if data is None else data,
        }

    def body(self, data: Mapping[str, Any] | None = None) -> bytes:
        """The body as sent and signed: the envelope as compact UTF-8 JSON."""
        return _serde.dumps(self.envelope(data)).encode("utf-8")


class _ApiModel(Protocol):
    def to_api_dict(self) -> dict[str, Any]: ...


def change_message(
    kind: str,
    job: _ApiModel | Mapping[str, Any],
    *,
    seen_at: datetime,
    seller_id: str | None = None,
    content_hash: str | None = None,
    message_id: str | None = None,
) -> WebhookMessage:
    """The message for one change of a service job.

    :param kind: ``"created"`` or ``"updated"`` (a ``ChangeKind`` is one).
    :param job: the job: a :class:`~spapi_services.models.ServiceJob`, or its API JSON.
    :param seen_at: when the change was seen: the message's timestamp.
    :param seller_id: the seller whose job it is (``data.sellerId``, and which
        endpoints take it).
    :param content_hash: the job's content hash, if the publisher has one
        (``data.contentHash``, and ``data.changeId``: the job id and 32 hex digits of it).
    :param message_id: the ``webhook-id``: an outbox row's id, say; a new random one by
        default.
    """
    kind_text = str(getattr(kind, "value", kind))
    event_type = _KINDS.get(kind_text)
    if event_type is None:
        raise ValueError(f"kind: must be created or updated, got {kind_text!r}")
    record = dict(job) if isinstance(job, Mapping) else job.to_api_dict()
    data: dict[str, Any] = {"kind": kind_text, "seenAt": _serde.format_datetime(seen_at)}
    if content_hash is not None:
        job_id = record.get("serviceJobId")
        data["changeId"] = f"{job_id if isinstance(job_id, str) else ''}:{content_hash[:32]}"
        data["contentHash"] = content_hash
    if seller_id is not None:
        data["sellerId"] = seller_id
    data["job"] = record
    return WebhookMessage(
        type=event_type,
        timestamp=seen_at,
        data=data,
        id=message_id if message_id is not None else new_message_id(),
        seller_id=seller_id,
    )
