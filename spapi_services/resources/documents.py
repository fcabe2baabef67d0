"""Fulfilment documents: upload destinations for proof of appointment."""

from __future__ import annotations

from .. import _serde
from .._validation import check_enum, check_int, check_request
from ..models.documents import (
    MAX_DOCUMENT_BYTES,
    ServiceDocumentUploadDestination,
    ServiceUploadDocument,
)
from ..models.enums import ContentType
from ._base import Resource, decode_payload

__all__ = ["Documents"]

_CREATE = "createServiceDocumentUploadDestination"


class Documents(Resource):
    """Get somewhere to upload a fulfilment document."""

    async def create_upload_destination(
        self,
        *,
        content_type: ContentType | str,
        content_length: int,
        content_md5: str | None = None,
    ) -> ServiceDocumentUploadDestination:
        """A presigned URL, and the AES key and IV to encrypt the document with.

        ``content_md5`` is the base64 MD5 of the file (24 characters), not hex.  The URL
        expires after about five minutes.  Not retried after an ambiguous failure.
        """
        body = ServiceUploadDocument(
            content_type=check_enum("content_type", content_type, ContentType),
            content_length=check_int(
                "content_length", content_length, minimum=1, maximum=MAX_DOCUMENT_BYTES
            ),
            content_md5=content_md5,
        )
        check_request(body, "body")
        response = await self._client._call(_CREATE, body=_serde.unstructure(body))
        destination = decode_payload(response, ServiceDocumentUploadDestination, _CREATE)
        assert destination is not None
        return destination
