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

    #: The file's type.
    content_type: ContentType
    #: The file's size in bytes.
    content_length: int = bounded(required=True, minimum=1, maximum=MAX_DOCUMENT_BYTES)
    # Base64 of the 16-byte digest: 22 characters and "==".  A hex digest is refused.
    #: The MD5 digest of the file, in base64 (not hex).
    content_md5: str | None = bounded(pattern=r"^[A-Za-z0-9+/]{22}={2}$")


@attrs.frozen(kw_only=True, repr=False)
class EncryptionDetails(ApiModel):
    """The key and IV (both base64) to encrypt a document with before uploading it."""

    #: The cipher to encrypt with.
    standard: EncryptionStandard
    #: The IV, in base64 (kept out of reprs).
    initialization_vector: str
    #: The key, in base64 (kept out of reprs).
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

    #: The destination's id, to cite the document once uploaded.
    upload_destination_id: str
    #: The presigned URL to upload to (kept out of reprs).
    url: str = attrs.field(repr=False)
    #: How to encrypt the file before uploading it.
    encryption_details: EncryptionDetails
    #: Headers to send with the upload.
    headers: dict[str, str] | None = None
