"""Standard Webhooks signatures: the secret, signing a message, and verifying one.

A sender signs ``{webhook-id}.{webhook-timestamp}.{body}`` with HMAC-SHA256 under the
endpoint's secret and sends the result as ``v1,<base64>`` in ``webhook-signature``
(several, space-separated, while a secret is being rotated).  A receiver recomputes the
signature over the body exactly as received, compares in constant time, and refuses a
timestamp too far from its own clock, so a captured request cannot be replayed later.
This is what the Standard Webhooks specification (v1) says; the reference library
``standardwebhooks`` verifies what :func:`sign` makes, and :func:`verify` what it makes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import time
from collections.abc import Iterable, Mapping
from datetime import datetime
from secrets import token_bytes

__all__ = [
    "DEFAULT_TOLERANCE",
    "WebhookSecret",
    "WebhookSecretLike",
    "WebhookVerificationError",
    "as_secrets",
    "sign",
    "signature_header",
    "verify",
    "webhook_headers",
]

#: Seconds a receiver accepts between a message's ``webhook-timestamp`` and its own clock,
#: either way (the reference library's five minutes).
DEFAULT_TOLERANCE = 300.0

_PREFIX = "whsec_"
_SECRET_BYTES = 32
_MIN_SECRET_BYTES = 16
_VERSION = "v1"
_ID = re.compile(r"[!-~]{1,255}")


class WebhookVerificationError(ValueError):
    """A webhook's headers or signature do not check out: refuse the request (a 4xx).

    The message says which check failed (a header missing or malformed, a timestamp out
    of tolerance, no matching signature), never a secret or the body.
    """


class WebhookSecret:
    """An endpoint's signing secret: random bytes, written ``whsec_`` + base64.

    Make one with :meth:`generate`, give its :meth:`export` text to the receiver, and read
    it back with :meth:`from_text`.  Its repr and str show a fingerprint, not the secret.
    """

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if not isinstance(key, bytes):
            raise TypeError(f"webhook secret: expected bytes, got {type(key).__name__}")
        if len(key) < _MIN_SECRET_BYTES:
            raise ValueError(
                f"webhook secret: must be at least {_MIN_SECRET_BYTES} bytes, got {len(key)}"
            )
        self._key = key

    @classmethod
    def generate(cls) -> WebhookSecret:
        """A new secret of 32 random bytes."""
        return cls(token_bytes(_SECRET_BYTES))

    @classmethod
    def from_text(cls, text: str) -> WebhookSecret:
        """A secret from its text: ``whsec_`` and base64 (the prefix and padding optional)."""
        if isinstance(text, WebhookSecret):
            return text
        if not isinstance(text, str):
            raise TypeError(f"webhook secret: expected text, got {type(text).__name__}")
        body = text.strip().removeprefix(_PREFIX)
        try:
            key = base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(
                "webhook secret: not 'whsec_' followed by base64 text "
                "(make one with WebhookSecret.generate())"
            ) from None
        return cls(key)

    def export(self) -> str:
        """The secret as ``whsec_`` + base64: give it to the receiver, keep it secret."""
        return _PREFIX + base64.b64encode(self._key).decode("ascii")

    @property
    def fingerprint(self) -> str:
        """A short name for the secret (12 hex digits of a hash): it reveals nothing of it."""
        return hashlib.sha256(b"spapi-services webhook secret\x00" + self._key).hexdigest()[:12]

    def signature(self, msg_id: str, timestamp: int, body: bytes) -> str:
        """``v1,<base64 HMAC-SHA256>`` of ``{msg_id}.{timestamp}.{body}``."""
        signed = f"{msg_id}.{timestamp}.".encode() + body
        digest = hmac.new(self._key, signed, hashlib.sha256).digest()
        return f"{_VERSION},{base64.b64encode(digest).decode('ascii')}"

    def __repr__(self) -> str:
        return f"WebhookSecret(fingerprint={self.fingerprint!r})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, WebhookSecret) and hmac.compare_digest(self._key, other._key)

    def __hash__(self) -> int:
        return hash(self.fingerprint)


#: What a secret argument accepts: a :class:`WebhookSecret` or its ``whsec_`` text.
WebhookSecretLike = WebhookSecret | str


def as_secrets(
    value: WebhookSecretLike | Iterable[WebhookSecretLike], name: str = "secrets"
) -> tuple[WebhookSecret, ...]:
    """One secret, its text, or several (a list, or text separated by spaces or commas)
    as a tuple of secrets; the first is the newest.  Raises naming ``name``."""
    if isinstance(value, WebhookSecret):
        return (value,)
    items: list[WebhookSecretLike] = (
        [part for part in value.replace(",", " ").split() if part]
        if isinstance(value, str)
        else list(value)
    )
    if not items:
        raise ValueError(f"{name}: give at least one secret")
    found: list[WebhookSecret] = []
    for index, item in enumerate(items):
        try:
            secret = item if isinstance(item, WebhookSecret) else WebhookSecret.from_text(item)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name}[{index}]: {exc}") from None
        if secret in found:
            raise ValueError(f"{name}[{index}]: the same secret is listed twice")
        found.append(secret)
    return tuple(found)


def sign(
    secret: WebhookSecretLike, msg_id: str, timestamp: int | float | datetime, body: bytes | str
) -> str:
    """The ``v1,<base64>`` signature of one message under one secret.

    :param msg_id: the ``webhook-id``.
    :param timestamp: the ``webhook-timestamp``: unix seconds, or an aware datetime
        (whole seconds are signed).
    :param body: the request body exactly as sent (text is signed as UTF-8).
    """
    key = secret if isinstance(secret, WebhookSecret) else WebhookSecret.from_text(secret)
    return key.signature(msg_id, _unix(timestamp), _bytes(body))


def signature_header(
    secret: WebhookSecretLike | Iterable[WebhookSecretLike],
    msg_id: str,
    timestamp: int | float | datetime,
    body: bytes | str,
) -> str:
    """The ``webhook-signature`` value: one signature per secret, space-separated."""
    stamp, data = _unix(timestamp), _bytes(body)
    return " ".join(s.signature(msg_id, stamp, data) for s in as_secrets(secret, "secret"))


def webhook_headers(
    secret: WebhookSecretLike | Iterable[WebhookSecretLike],
    msg_id: str,
    timestamp: int | float | datetime,
    body: bytes | str,
) -> dict[str, str]:
    """The three Standard Webhooks headers for one attempt of one message."""
    check_message_id(msg_id)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(_unix(timestamp)),
        "webhook-signature": signature_header(secret, msg_id, timestamp, body),
    }


def verify(
    body: bytes | str,
    headers: Mapping[str, str],
    secret: WebhookSecretLike | Iterable[WebhookSecretLike],
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    now: float | datetime | None = None,
) -> str:
    """Check a received webhook; its ``webhook-id`` if it is genuine.

    :param body: the request body exactly as received (before any JSON parsing).
    :param headers: the request's headers (any mapping; names are matched in any case).
    :param secret: the endpoint's secret, or several while one is being rotated: a
        signature made with any of them is accepted.
    :param tolerance: seconds the ``webhook-timestamp`` may differ from ``now``.
    :param now: the receiver's time (unix seconds or an aware datetime); default: the
        system clock.
    :raises WebhookVerificationError: a header is missing or malformed, the timestamp
        is outside the tolerance, or no signature matches.  De-duplicate by the returned
        id only after this check has passed.
    """
    keys = as_secrets(secret, "secret")
    found = {name.lower(): value for name, value in headers.items()}
    msg_id = _header(found, "webhook-id")
    stamp_text = _header(found, "webhook-timestamp")
    signatures = _header(found, "webhook-signature")
    try:
        stamp = int(stamp_text)
    except ValueError:
        raise WebhookVerificationError("webhook-timestamp: must be whole unix seconds") from None
    moment = time.time() if now is None else float(_unix_exact(now))
    if stamp < moment - tolerance:
        raise WebhookVerificationError(
            f"webhook-timestamp: older than the tolerance of {tolerance:g} s (a replay?)"
        )
    if stamp > moment + tolerance:
        raise WebhookVerificationError(
            f"webhook-timestamp: later than the tolerance of {tolerance:g} s allows"
        )
    data = _bytes(body)
    offered = [part.encode() for part in signatures.split(" ") if part.startswith("v1,")]
    matched = False
    for key in keys:
        expected = key.signature(msg_id, stamp, data).encode()
        for candidate in offered:
            # No early exit: every comparison runs, so the time taken says nothing.
            matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise WebhookVerificationError("webhook-signature: no signature matches the secret")
    return msg_id


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name, "").strip()
    if not value:
        raise WebhookVerificationError(f"{name}: header missing")
    return value


def check_message_id(msg_id: str) -> None:
    if not isinstance(msg_id, str) or not _ID.fullmatch(msg_id):
        raise ValueError(
            f"webhook-id: must be 1 to 255 printable ASCII characters without spaces, "
            f"got {msg_id!r}"
        )


def _unix(value: int | float | datetime) -> int:
    return int(_unix_exact(value) // 1)


def _unix_exact(value: int | float | datetime) -> float:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("timestamp: a naive datetime has no time zone; pass an aware one")
        return value.timestamp()
    return float(value)


def _bytes(body: bytes | str) -> bytes:
    if isinstance(body, str):
        return body.encode("utf-8")
    if isinstance(body, bytes | bytearray | memoryview):
        return bytes(body)
    raise TypeError(f"body: expected bytes or text, got {type(body).__name__}")
