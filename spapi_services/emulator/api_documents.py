"""createServiceDocumentUploadDestination: a new upload destination from the vault.

An unknown ``contentType`` is a 422 with the sandbox's wording (the schema checks of
validation.py answer 400 for everything else, as the sandbox does).
"""

from __future__ import annotations

from ..models.enums import ContentType
from .context import Handler, ServiceContext
from .replies import Reply, json_reply, unprocessable
from .validation import Call

__all__ = ["DocumentsApi"]

_TYPES = tuple(ContentType.__members__)


class DocumentsApi:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    def handlers(self) -> dict[str, Handler]:
        return {"createServiceDocumentUploadDestination": self.create_destination}

    def create_destination(self, call: Call) -> Reply:
        content_type = call.body["contentType"]
        if content_type not in _TYPES:
            raise unprocessable(f"contentType parameter is invalid. Use one of {list(_TYPES)}")
        payload = self.ctx.vault.create(
            content_type,
            int(call.body["contentLength"]),
            call.body.get("contentMD5"),
            self.ctx.base_url,
        )
        return json_reply({"payload": payload})
