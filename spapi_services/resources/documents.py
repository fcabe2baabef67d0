"""Fulfilment documents: upload destinations for proof of appointment, and the upload."""

from __future__ import annotations

from .. import _serde, _upload
from .._validation import check_int, check_request
from ..errors import UploadError
from ..models.appointments import FulfillmentDocument
from ..models.documents import (
    MAX_DOCUMENT_BYTES,
    ServiceDocumentUploadDestination,
    ServiceUploadDocument,
)
from ..models.enums import ContentType
from ._base import Resource

__all__ = ["Documents"]

_CREATE = "createServiceDocumentUploadDestination"


class Documents(Resource):
    """Get somewhere to upload a fulfilment document, and upload it."""

    async def create_upload_destination(
        self,
        *,
        content_type: ContentType | str,
        content_length: int,
        content_md5: str | None = None,
    ) -> ServiceDocumentUploadDestination:
        """A presigned URL, and the AES key and IV to encrypt the document with.

        ``content_type`` is the document's type: a :class:`ContentType`, or its name in
        any case (``TIFF``, ``JPG``, ``PNG``, ``JPEG``, ``GIF``, ``PDF``), or its MIME
        type (``image/tiff``, ``image/jpg``, ``image/png``, ``image/jpeg``, ``image/gif``,
        ``application/pdf``).  ``content_md5`` is the base64 MD5 of the file (24 characters),
        not hex.  The URL expires after about five minutes.  Not retried after an
        ambiguous failure.
        """
        body = ServiceUploadDocument(
            content_type=_upload.check_content_type("content_type", content_type),
            content_length=check_int(
                "content_length", content_length, minimum=1, maximum=MAX_DOCUMENT_BYTES
            ),
            content_md5=content_md5,
        )
        check_request(body, "body")
        return await self._payload(
            _CREATE, ServiceDocumentUploadDestination, body=_serde.unstructure(body)
        )

    async def upload(
        self,
        source: _upload.DocumentSource,
        *,
        content_type: ContentType | str | None = None,
        encrypt: bool = True,
    ) -> FulfillmentDocument:
        """Upload a document and return what ``set_fulfillment_data`` needs to cite it.

        ``source`` is the document's bytes, a path to it, or a file object open in binary
        mode (read from where it stands).  Its type is ``content_type`` when given (a
        :class:`ContentType`; its name in any case: ``TIFF``, ``JPG``, ``PNG``, ``JPEG``,
        ``GIF``, ``PDF``; or a MIME type: ``image/tiff``, ``image/jpg``, ``image/png``,
        ``image/jpeg``, ``image/gif``, ``application/pdf``), else the file suffix's
        (``.tif``/``.tiff``, ``.jpg``/``.jpeg``, ``.png``, ``.gif``, ``.pdf``), else the one
        its first bytes show.  Everything that can be checked
        here is checked before any request: 1 byte to 5 MiB, a readable file, a known type
        (``ValueError``, ``TypeError`` or ``FileNotFoundError`` otherwise).

        The steps: ask for an upload destination (declaring the document's length and
        base64 MD5), encrypt the document with AES-256-CBC and PKCS#7 padding under the
        key and IV that came with it, PUT it to the presigned URL with the headers that
        came with it, and return a :class:`FulfillmentDocument` holding the destination id
        and the base64 SHA-256 of the document.  The length and both digests are of the
        document as given, before encryption.  The PUT carries no SP-API token; server
        errors and lost connections are retried while the URL is valid (about five
        minutes); a refusal raises :class:`~spapi_services.errors.UploadError` with the
        store's error code.

        The API model describes the encryption as required, so it is on by default.
        ``encrypt=False`` sends the bytes as they are: it is there in case the live
        service turns out not to expect encrypted uploads, not for everyday use.

        Each PUT attempt gets the client's timeout; for large files on a slow link, give
        it more with ``client.with_options(timeout=120).documents.upload(...)``.  Headers a
        caller-supplied ``aiohttp`` session sends on every request go with the PUT as well.
        """
        if not isinstance(encrypt, bool):
            raise TypeError(f"encrypt: expected True or False, got {type(encrypt).__name__}")
        # Here, not at import: cryptography loads only for a program that uploads.
        from .._crypto import EncryptionKeyError, digests, encrypt_cbc, key_and_iv

        document = await _upload.read_document(source, content_type)
        sums = digests(document.data)
        # The URL's lifetime counts from before the request: never later than Amazon's.
        asked_at = self._client._now()
        destination = await self.create_upload_destination(
            content_type=document.content_type,
            content_length=sums.length,
            content_md5=sums.md5,
        )
        body = document.data
        if encrypt:
            try:
                key, iv = key_and_iv(destination.encryption_details)
            except EncryptionKeyError as exc:
                raise UploadError(
                    f"upload destination {destination.upload_destination_id}: {exc}",
                    code="InvalidEncryptionDetails",
                ) from exc
            body = encrypt_cbc(document.data, key, iv)
        await self._client._put_document(
            destination.url,
            body,
            document.content_type,
            destination.headers,
            asked_at=asked_at,
            destination_id=destination.upload_destination_id,
        )
        return FulfillmentDocument(
            upload_destination_id=destination.upload_destination_id,
            content_sha256=sums.sha256,
        )
