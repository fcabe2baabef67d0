"""Opaque page tokens: an encrypted cursor, in standard base64 with its padding.

A client must hand a token back exactly as it got it.  The tokens here are built so that
a careless client fails visibly: they always contain ``+``, ``/`` and ``=``, which break
when a token is pasted into a URL unencoded (``+`` turns into a space) or decoded twice.
The cursor is sealed with AES-GCM, so a token that was altered or came from another
emulator is refused rather than misread.  The nonce is derived from the cursor, so the
same page always gets the same token (a client's repeated-token guard can be tested).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["InvalidPageToken", "PageTokens"]

# Three bytes that encode to "+/+/": every token starts with both awkward characters.
_HEADER = b"\xfb\xff\xbf"
_NONCE = 12
_TAG = 16


class InvalidPageToken(ValueError):
    """A token this emulator did not issue, or one that was altered on the way."""


class PageTokens:
    """Seals cursors into tokens and opens them again."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("PageTokens: the key must be 32 bytes")
        self._key = key
        self._aead = AESGCM(key)

    def encode(self, cursor: Mapping[str, Any]) -> str:
        """The token for ``cursor`` (a JSON-serialisable mapping)."""
        plain = json.dumps(cursor, separators=(",", ":"), sort_keys=True).encode()
        # Pad with spaces (JSON ignores them) so the sealed length leaves one byte over a
        # multiple of three: base64 then always ends in "==".
        while (len(plain) + _NONCE + _TAG) % 3 != 1:
            plain += b" "
        nonce = hmac.new(self._key, plain, hashlib.sha256).digest()[:_NONCE]
        sealed = nonce + self._aead.encrypt(nonce, plain, _HEADER)
        return base64.b64encode(_HEADER + sealed).decode("ascii")

    def decode(self, token: str) -> dict[str, Any]:
        """The cursor inside ``token``; :class:`InvalidPageToken` if it is not one of ours."""
        try:
            raw = base64.b64decode(token.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError, ValueError):
            raise InvalidPageToken("not a page token") from None
        if len(raw) < len(_HEADER) + _NONCE + _TAG or not raw.startswith(_HEADER):
            raise InvalidPageToken("not a page token")
        body = raw[len(_HEADER) :]
        try:
            plain = self._aead.decrypt(body[:_NONCE], body[_NONCE:], _HEADER)
            cursor = json.loads(plain)
        except (InvalidTag, ValueError):
            raise InvalidPageToken("page token was altered or expired") from None
        if not isinstance(cursor, dict):
            raise InvalidPageToken("not a page token")
        return cursor
