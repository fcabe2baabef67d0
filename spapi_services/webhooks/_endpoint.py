"""A webhook endpoint: where messages go, the secrets that sign them, and what they carry.

An endpoint takes the messages of one seller or of all, of every event type or of some,
and decides how much of the buyer's personal data leaves with them: a full payload
sends the buyer's name, phone and address to every endpoint, so each endpoint says
``keep``, ``hash`` (keyed hashes: one buyer's jobs still match, the values cannot be read)
or ``drop``, as a mirror does (:class:`~spapi_services.sync.BuyerDataPolicy`).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from typing import Any, Literal, TypeAlias

import attrs
from yarl import URL

from ..sync._buyer import BuyerDataPolicy, BuyerKeys, as_keys
from ._message import WebhookMessage
from ._signing import WebhookSecret, WebhookSecretLike, as_secrets

__all__ = ["WEBHOOK_BUYER_DATA", "WebhookBuyerData", "WebhookEndpoint"]

#: What an endpoint does with buyers' personal data (``encrypt`` is the mirror's alone:
#: a receiver has no key to read it).
WebhookBuyerData: TypeAlias = Literal["keep", "hash", "drop"]
#: Every value ``buyer_data`` takes, as the command line offers them.
WEBHOOK_BUYER_DATA: tuple[WebhookBuyerData, ...] = ("keep", "hash", "drop")


def _url(value: str | URL) -> str:
    text = str(value).strip()
    try:
        url = URL(text)
    except (TypeError, ValueError):
        raise ValueError(f"url: not a URL: {_redacted(text)!r}") from None
    if url.scheme not in ("http", "https"):
        raise ValueError(
            f"url: must start with https:// (or http://), got {url.scheme or 'no scheme'!r}"
        )
    if not url.host:
        raise ValueError("url: has no host")
    if url.fragment:
        raise ValueError("url: must not have a #fragment (it is never sent)")
    return text


def _redacted(text: str) -> str:
    # Enough to recognise an endpoint, without a query, a fragment or credentials,
    # which may carry a token.
    try:
        url = URL(text)
        port = f":{url.explicit_port}" if url.explicit_port is not None else ""
        return f"{url.scheme}://{url.host}{port}{url.path}"
    except (TypeError, ValueError):
        return "<unreadable URL>"


def _secrets(value: WebhookSecretLike | Iterable[WebhookSecretLike]) -> tuple[WebhookSecret, ...]:
    return as_secrets(value, "secrets")


def _types(value: Iterable[str] | None) -> frozenset[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    found = frozenset(value)
    if not found or any(not isinstance(t, str) or not t for t in found):
        raise ValueError("event_types: give one or more event types, or None for all")
    return found


def _new_id() -> str:
    return f"ep_{secrets.token_hex(6)}"


@attrs.frozen(kw_only=True)
class WebhookEndpoint:
    """Where webhooks go, and what they carry.

    :param url: the receiver's URL (``https://``; ``http://`` for a receiver you run).
    :param secrets: the signing secret, or several while rotating one: each message is
        signed with every one of them, so the receiver may check with the old or the new.
    :param id: a name for the endpoint in logs and status; a random one by default.
    :param seller_id: the seller whose messages it takes; ``None`` takes every seller's.
    :param event_types: the event types it takes; ``None`` takes every type.
    :param buyer_data: ``keep``, ``hash`` or ``drop`` the buyer's personal data in a job.
    :param buyer_key: the key (or ring) the hashes are made with; required with ``hash``.
    """

    #: The receiver's URL; shown without its query or credentials in the repr.
    url: str = attrs.field(converter=_url, repr=lambda u: repr(_redacted(u)))
    #: The signing secrets: every message is signed with each (several while rotating one).
    secrets: tuple[WebhookSecret, ...] = attrs.field(converter=_secrets, repr=False)
    #: The endpoint's name in logs and status.
    id: str = attrs.field(factory=_new_id)
    #: The seller whose messages it takes (``None``: every seller's).
    seller_id: str | None = None
    #: The event types it takes (``None``: every type).
    event_types: frozenset[str] | None = attrs.field(default=None, converter=_types)
    #: What becomes of the buyer's personal data in a job: ``keep``, ``hash`` or ``drop``.
    buyer_data: WebhookBuyerData = attrs.field(default="keep")
    #: The key (or ring) hashes are made with, for ``hash``.
    buyer_key: BuyerKeys | None = attrs.field(default=None, converter=as_keys, repr=False)

    @buyer_data.validator
    def _check_buyer_data(self, _attribute: Any, value: str) -> None:
        if value not in WEBHOOK_BUYER_DATA:
            raise ValueError(
                f"buyer_data: must be one of {', '.join(WEBHOOK_BUYER_DATA)} for a webhook "
                f"endpoint, got {value!r}"
            )

    def __attrs_post_init__(self) -> None:
        if not self.id or not isinstance(self.id, str):
            raise ValueError("id: must be non-empty text")
        BuyerDataPolicy(self.buyer_data, self.buyer_key)  # raises if a key is missing

    @property
    def origin(self) -> str:
        """The URL without its query, fragment or credentials: safe to log or show."""
        return _redacted(self.url)

    @property
    def host(self) -> str:
        """The receiver's host name or address."""
        return URL(self.url).host or ""

    def takes(self, message: WebhookMessage) -> bool:
        """Whether this endpoint takes ``message`` (its seller and event type)."""
        if self.seller_id is not None and message.seller_id != self.seller_id:
            return False
        return self.event_types is None or message.type in self.event_types

    def body(self, message: WebhookMessage) -> bytes:
        """The body this endpoint is sent for ``message``, its buyer data treated."""
        job = message.data.get("job")
        if self.buyer_data == "keep" or not isinstance(job, dict):
            return message.body()
        policy = BuyerDataPolicy(self.buyer_data, self.buyer_key)
        return message.body({**message.data, "job": policy.protect(job)})
