"""Fulfilment documents: upload destinations, the presigned PUT, and the checks Amazon
makes before it accepts a document as proof of appointment.

Amazon hands out an S3 URL valid for five minutes and an AES-256 key and IV; the client
encrypts the file (AES-CBC, PKCS#7) and PUTs it.  Here the URL points back at the
emulator (``/__uploads/<key>``), carries an HMAC signature over the key, the expiry and the
content type (the URL signs ``content-type``, as Amazon's does), and the PUT handler
answers in S3's XML error format.  When the document is cited in
setAppointmentFulfillmentData, :meth:`DocumentVault.verify` decrypts it and checks its
length, SHA-256 (base64 of the plaintext digest), type and a malware stand-in (the EICAR
test string), in the order and with the words of the sandbox's 422s.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import quote

import attrs
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from ..models.documents import MAX_DOCUMENT_BYTES
from ..models.enums import ContentType
from .auth import same_secret
from .clock import Clock

__all__ = ["DocumentVault", "UploadDestination", "encrypt_document"]

_PROBLEM = "Failed to process proof of appointment input. Reason: "
NOT_FOUND = _PROBLEM + "Input document id does not exist. Please check the input"
EXPIRED = _PROBLEM + "Input document parameters are invalid. Please check the input."
WRONG_TYPE = (
    _PROBLEM + "Document failed to meet content type restrictions. Please review document uploaded"
)
WRONG_LENGTH = (
    _PROBLEM
    + "Document failed to meet content length restrictions. Please review document uploaded"
)
NOT_UPLOADED = _PROBLEM + "Document encrypted not found or exist. Please review document uploaded"
UNDECIPHERABLE = (
    _PROBLEM + "Document failed to decrypt or decipher. Please review the uploaded document"
)
BAD_DIGEST = (
    _PROBLEM + "Document failed to meet sanity check. Could not get a Sha256 Message Digest "
    "instance. Please review document uploaded"
)
MALWARE = _PROBLEM + "Document failed to meet malware check. Please review document uploaded"

# The industry's harmless test signature for anti-virus software.
_EICAR = b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE"
_MAGIC = {
    "PDF": (b"%PDF",),
    "PNG": (b"\x89PNG\r\n\x1a\n",),
    "JPG": (b"\xff\xd8\xff",),
    "JPEG": (b"\xff\xd8\xff",),
    "GIF": (b"GIF87a", b"GIF89a"),
    "TIFF": (b"II*\x00", b"MM\x00*"),
}


@attrs.define(slots=True, eq=False)
class UploadDestination:
    """One destination: what was promised, the key and IV, and what arrived."""

    upload_destination_id: str
    key: str
    """The path segment of the upload URL."""
    content_type: str
    mime_type: str
    content_length: int
    content_md5: str | None
    aes_key: bytes = attrs.field(repr=False)
    iv: bytes = attrs.field(repr=False)
    created: float
    amz_date: str
    data: bytes | None = attrs.field(default=None, repr=False)
    upload_headers: dict[str, str] = attrs.Factory(dict)


def encrypt_document(plain: bytes, key_b64: str, iv_b64: str) -> bytes:
    """Encrypt as a client must: AES-CBC with PKCS#7 padding (a helper for tests)."""
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plain) + padder.finalize()
    cipher = Cipher(algorithms.AES(base64.b64decode(key_b64)), modes.CBC(base64.b64decode(iv_b64)))
    encryptor = cipher.encryptor()
    return encryptor.update(padded) + encryptor.finalize()


def _decrypt(data: bytes, key: bytes, iv: bytes) -> bytes:
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    padded = decryptor.update(data) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    return unpadder.update(padded) + unpadder.finalize()


class DocumentVault:
    """Every upload destination handed out, by id and by URL key."""

    def __init__(
        self,
        clock: Clock,
        *,
        url_ttl: int = 300,
        document_ttl: int = 86_400,
        require_encryption: bool = True,
    ) -> None:
        self._clock = clock
        self._secret = os.urandom(32)
        self.url_ttl = url_ttl
        """Seconds an upload URL stays valid."""
        self.document_ttl = document_ttl
        """Seconds a destination may still be cited in fulfilment data."""
        self.require_encryption = require_encryption
        """If false, a document that does not decrypt is taken as plaintext."""
        self.destinations: dict[str, UploadDestination] = {}
        self._by_key: dict[str, UploadDestination] = {}

    # --- the API operation --------------------------------------------------------

    def create(
        self, content_type: str, content_length: int, content_md5: str | None, base_url: str
    ) -> dict[str, Any]:
        """A new destination, as the ``payload`` of createServiceDocumentUploadDestination."""
        key_bytes, iv = os.urandom(32), os.urandom(16)
        token = base64.b64encode(os.urandom(24)).decode()
        uid = os.urandom(16).hex()
        destination_id = (
            f"amzn1.tortuga.3.{uid[:8]}-{uid[8:12]}-{uid[12:16]}-{uid[16:20]}-{uid[20:]}"
            f".T{os.urandom(6).hex().upper()}UTC<->amzn1.tortuga.1.token.{token}"
        )
        now: datetime = self._clock.now()
        record = UploadDestination(
            upload_destination_id=destination_id,
            key=uid,
            content_type=content_type,
            mime_type=ContentType(content_type).mime_type,
            content_length=content_length,
            content_md5=content_md5,
            aes_key=key_bytes,
            iv=iv,
            created=self._clock.monotonic(),
            amz_date=now.strftime("%Y%m%dT%H%M%SZ"),
        )
        self.destinations[destination_id] = record
        self._by_key[uid] = record
        signature = self._sign(uid, record.amz_date, self.url_ttl, record.mime_type)
        credential = quote(f"EMULATOR/{record.amz_date[:8]}/us-east-1/s3/aws4_request", safe="")
        url = (
            f"{base_url}/__uploads/{uid}?X-Amz-Algorithm=AWS4-HMAC-SHA256"
            f"&X-Amz-Credential={credential}&X-Amz-Date={record.amz_date}"
            f"&X-Amz-Expires={self.url_ttl}&X-Amz-SignedHeaders=content-type%3Bhost"
            f"&X-Amz-Signature={signature}"
        )
        return {
            "encryptionDetails": {
                "standard": "AES",
                "initializationVector": base64.b64encode(iv).decode(),
                "key": base64.b64encode(key_bytes).decode(),
            },
            "uploadDestinationId": destination_id,
            "url": url,
            "headers": {"Content-Type": record.mime_type},
        }

    def _sign(self, key: str, amz_date: str, expires: int, mime_type: str) -> str:
        message = f"{key}\n{amz_date}\n{expires}\n{mime_type}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    # --- the upload PUT -----------------------------------------------------------

    def put(
        self, key: str, query: Mapping[str, str], headers: Mapping[str, str], body: bytes
    ) -> tuple[int, bytes]:
        """Store an upload; the status and (for errors) S3's XML body."""
        record = self._by_key.get(key)
        if record is None:
            return _s3_error(404, "NoSuchUpload", "The specified upload does not exist.")
        try:
            expires = int(query.get("X-Amz-Expires", ""))
        except ValueError:
            return _s3_error(
                403, "AccessDenied", "Query-string authentication requires X-Amz-Expires."
            )
        content_type = headers.get("content-type", "")
        expected = self._sign(key, query.get("X-Amz-Date", ""), expires, content_type)
        if not same_secret(expected, query.get("X-Amz-Signature", "")):
            return _s3_error(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you "
                "provided. Check your key and signing method.",
            )
        if self._clock.monotonic() > record.created + expires:
            return _s3_error(403, "AccessDenied", "Request has expired")
        if len(body) > MAX_DOCUMENT_BYTES + 16:
            return _s3_error(
                400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size"
            )
        md5 = headers.get("content-md5")
        if md5 is not None and md5 != base64.b64encode(hashlib.md5(body).digest()).decode():
            return _s3_error(
                400, "BadDigest", "The Content-MD5 you specified did not match what we received."
            )
        record.data = body
        record.upload_headers = dict(headers)
        return 200, b""

    # --- the checks of setAppointmentFulfillmentData ------------------------------

    def verify(self, destination_id: str | None, content_sha256: str | None) -> str | None:
        """The sandbox's 422 message for a cited document, or ``None`` if it is fine."""
        record = self.destinations.get(destination_id or "")
        if record is None:
            return NOT_FOUND
        if self._clock.monotonic() > record.created + self.document_ttl:
            return EXPIRED
        if record.data is None:
            return NOT_UPLOADED
        try:
            plain = _decrypt(record.data, record.aes_key, record.iv)
        except ValueError:
            if self.require_encryption:
                return UNDECIPHERABLE
            plain = record.data
        if len(plain) != record.content_length:
            return WRONG_LENGTH
        digest = base64.b64encode(hashlib.sha256(plain).digest()).decode()
        if not content_sha256 or not same_secret(digest, content_sha256):
            return BAD_DIGEST
        if _looks_like_other_type(plain, record.content_type):
            return WRONG_TYPE
        if _EICAR in plain:
            return MALWARE
        return None

    def forget(self) -> None:
        self.destinations.clear()
        self._by_key.clear()


def _looks_like_other_type(plain: bytes, content_type: str) -> bool:
    """Whether the bytes carry the signature of a *different* known type than declared."""
    own = _MAGIC.get(content_type, ())
    if any(plain.startswith(m) for m in own):
        return False
    return any(
        plain.startswith(m) for kind, marks in _MAGIC.items() if kind != content_type for m in marks
    )


def _s3_error(status: int, code: str, message: str) -> tuple[int, bytes]:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>"
        f"<RequestId>{os.urandom(8).hex().upper()}</RequestId></Error>"
    )
    return status, body.encode()
