"""Refresh tokens and webhook secrets at rest: sealed with AES-256-GCM under a key the
user keeps.

A sealed token reads ``v1:<key id>:<base64url(nonce ‖ ciphertext ‖ tag)>``.  It is bound
to its seller (the seller id is the associated data), so a sealed token copied to
another seller's row does not open.  A webhook endpoint's secret is sealed the same way,
bound to the endpoint's id under a context of its own, so neither kind of value opens
as the other.  The key id names which key of a :class:`DirectoryKey`
ring sealed it, so keys can be rotated: the first seals, every one opens.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["DirectoryKey", "DirectoryKeyError", "token_fingerprint"]

_KEY_BYTES = 32
_NONCE_BYTES = 12
_CONTEXT = b"spapi-services seller refresh token v1\x00"
_SECRET_CONTEXT = b"spapi-services webhook endpoint secret v1\x00"
_SEALED = re.compile(r"\Av1:([0-9a-f]{12}):([A-Za-z0-9_-]+)\Z")


class DirectoryKeyError(ValueError):
    """A directory key is malformed, or not the one a stored token needs.

    Messages name seller ids and key ids, never a key or a token.
    """


class DirectoryKey:
    """One or more 256-bit keys for the refresh tokens of a seller directory.

    Give raw 32-byte keys or their base64 text (``DirectoryKey.generate()`` makes one;
    so does ``openssl rand -base64 32``); several, or text with several separated by
    commas or spaces, make a ring: the first seals new tokens, every one opens old ones.
    """

    __slots__ = ("_keys",)

    def __init__(self, *keys: bytes | str) -> None:
        raw = [_decode(k, i) for i, k in enumerate(_split(keys))]
        if not raw:
            raise DirectoryKeyError("directory_key: give at least one key")
        self._keys = {_key_id(key): AESGCM(key) for key in raw}
        if len(self._keys) != len(raw):
            raise DirectoryKeyError("directory_key: a key is listed twice")

    @staticmethod
    def generate() -> str:
        """A new random key, as the base64 text :class:`DirectoryKey` reads."""
        return base64.urlsafe_b64encode(secrets.token_bytes(_KEY_BYTES)).decode().rstrip("=")

    @property
    def key_ids(self) -> tuple[str, ...]:
        """The ring's key ids (derived from the keys; they reveal nothing of them)."""
        return tuple(self._keys)

    def __repr__(self) -> str:
        return f"DirectoryKey({', '.join(self._keys)})"

    def seal(self, seller_id: str, token: str) -> str:
        """``token`` sealed with the first key, bound to ``seller_id``."""
        return self._seal(_CONTEXT, seller_id, token)

    def open(self, seller_id: str, sealed: str) -> str:
        """The token a sealed value holds; :class:`DirectoryKeyError` if it cannot."""
        return self._open(_CONTEXT, f"seller {seller_id}", "refresh token", seller_id, sealed)

    def seal_secret(self, endpoint_id: str, secret: str) -> str:
        """A webhook endpoint's signing secret(s) sealed, bound to ``endpoint_id``."""
        return self._seal(_SECRET_CONTEXT, endpoint_id, secret)

    def open_secret(self, endpoint_id: str, sealed: str) -> str:
        """The secret(s) :meth:`seal_secret` sealed; :class:`DirectoryKeyError` if not."""
        return self._open(_SECRET_CONTEXT, f"webhook {endpoint_id}", "secret", endpoint_id, sealed)

    def _seal(self, context: bytes, subject: str, text: str) -> str:
        key_id, aead = next(iter(self._keys.items()))
        nonce = secrets.token_bytes(_NONCE_BYTES)
        sealed = aead.encrypt(nonce, text.encode(), context + subject.encode())
        payload = base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")
        return f"v1:{key_id}:{payload}"

    def _open(self, context: bytes, owner: str, what: str, subject: str, sealed: str) -> str:
        match = _SEALED.match(sealed)
        if match is None:
            raise DirectoryKeyError(f"{owner}: the stored {what} is not sealed")
        key_id, payload = match[1], match[2]
        aead = self._keys.get(key_id)
        if aead is None:
            raise DirectoryKeyError(
                f"{owner}: its {what} was sealed with key {key_id}, which "
                f"directory_key does not hold (it holds {', '.join(self._keys)})"
            )
        try:
            blob = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
            plain = aead.decrypt(
                blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], context + subject.encode()
            )
        except (InvalidTag, ValueError, binascii.Error):
            raise DirectoryKeyError(
                f"{owner}: the stored {what} does not open with key {key_id}: it was "
                "altered or moved from another row"
            ) from None
        return plain.decode()

    def sealed_with_current(self, sealed: str) -> bool:
        """Whether a sealed value is under the first key (no rotation needed)."""
        match = _SEALED.match(sealed)
        return match is not None and match[1] == next(iter(self._keys))


def token_fingerprint(token: str) -> str:
    """A keyed digest that tells whether a refresh token changed, and nothing else."""
    return hmac.new(b"spapi-services refused token", token.encode(), hashlib.sha256).hexdigest()[
        :32
    ]


def _split(keys: Iterable[bytes | str]) -> list[bytes | str]:
    parts: list[bytes | str] = []
    for key in keys:
        if isinstance(key, str):
            parts.extend(p for p in re.split(r"[\s,]+", key) if p)
        else:
            parts.append(key)
    return parts


def _decode(key: object, index: int) -> bytes:
    if isinstance(key, bytes | bytearray):
        raw = bytes(key)
    elif isinstance(key, str):
        text = key.replace("+", "-").replace("/", "_").rstrip("=")
        try:
            raw = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
        except (binascii.Error, ValueError):
            raise DirectoryKeyError(f"directory_key[{index}]: not base64 text") from None
    else:
        raise DirectoryKeyError(
            f"directory_key[{index}]: expected bytes or base64 text, got {type(key).__name__}"
        )
    if len(raw) != _KEY_BYTES:
        raise DirectoryKeyError(
            f"directory_key[{index}]: must be {_KEY_BYTES} bytes, got {len(raw)} "
            "(make one with DirectoryKey.generate())"
        )
    return raw


def _key_id(key: bytes) -> str:
    return hmac.new(key, b"spapi-services directory key id", hashlib.sha256).hexdigest()[:12]
