"""Upload destinations for fulfilment documents, and how their contents must be encrypted."""

from __future__ import annotations

import attrs

from ._base import ApiModel, bounded
from .enums import ContentType, EncryptionStandard

__all__ = [
    "MAX_DOCUMENT_BYTES",
    "EncryptionDetails",
    "ServiceDocumentUploadDestination",
    "ServiceUploadDocument",
]

#: The largest document the API accepts, in bytes (5 MiB).
MAX_DOCUMENT_BYTES = 5_242_880


@attrs.frozen(kw_only=True)
class ServiceUploadDocument(ApiModel):
    """Body of a request for an upload destination: the file's type, size and MD5."""

    content_type: ContentType
    content_length: int = bounded(required=True, minimum=1, maximum=MAX_DOCUMENT_BYTES)
    # Base64 of the 16-byte digest: 22 characters and "==".  A hex digest is refused.
    content_md5: str | None = bounded(pattern=r"^[A-Za-z0-9+/]{22}={2}$")


@attrs.frozen(kw_only=True, repr=False)
class EncryptionDetails(ApiModel):
    """The key and IV (both base64) to encrypt a document with before uploading it."""

    standard: EncryptionStandard
    initialization_vector: str
    key: str

    def __repr__(self) -> str:
        # The key decrypts the buyer's document: keep it out of logs and tracebacks.
        return (
            f"EncryptionDetails(standard={str(self.standard)!r}, "
            "initialization_vector='<redacted>', key='<redacted>')"
        )


@attrs.frozen(kw_only=True)
class ServiceDocumentUploadDestination(ApiModel):
    """Where and how to upload one document: a presigned URL valid for a few minutes."""

    upload_destination_id: str
    url: str = attrs.field(repr=False)
    encryption_details: EncryptionDetails
    headers: dict[str, str] | None = None
