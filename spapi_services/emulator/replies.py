"""What an operation answers: a status and JSON bytes, and the error shapes the API uses.

Handlers return a :class:`Reply` or raise :class:`ApiError`; the server turns either into
an HTTP response.  Errors are ``{"errors": [...]}`` everywhere except where the model
says otherwise (setAppointmentFulfillmentData answers a bare array), and that choice is
made by the server from the operation, not by each handler.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

from .. import _serde

__all__ = [
    "EMPTY_OBJECT",
    "NO_CONTENT",
    "ApiError",
    "Reply",
    "dump",
    "error_body",
    "error_entry",
    "invalid_input",
    "json_reply",
    "unprocessable",
]


def dump(data: Any) -> bytes:
    """Compact JSON bytes."""
    return _serde.dumps(data).encode()


@attrs.frozen(slots=True)
class Reply:
    """A status code and an already-serialised JSON body (``None`` for no body)."""

    status: int
    body: bytes | None


def json_reply(data: Any, status: int = 200) -> Reply:
    """A reply carrying ``data`` as JSON."""
    return Reply(status, dump(data))


#: ``{}``: what the service sends for a success that has nothing to say.
EMPTY_OBJECT = Reply(200, b"{}")
#: 204 and no body.
NO_CONTENT = Reply(204, None)


def error_entry(code: str, message: str, details: str = "") -> dict[str, str]:
    """One entry of an error list, in the service's shape."""
    return {"code": code, "message": message, "details": details}


class ApiError(Exception):
    """An error answer: the status and the error entries to send."""

    def __init__(self, status: int, errors: Sequence[dict[str, str]]) -> None:
        super().__init__(status, errors[0]["message"] if errors else "")
        self.status = status
        self.errors = list(errors)


def invalid_input(message: str, details: str = "", *, status: int = 400) -> ApiError:
    """An ``InvalidInput`` error, 400 unless told otherwise."""
    return ApiError(status, [error_entry("InvalidInput", message, details)])


def unprocessable(*messages: str) -> ApiError:
    """A 422 with one ``InvalidInput`` entry per message (the sandbox groups them)."""
    return ApiError(422, [error_entry("InvalidInput", m) for m in messages])


def error_body(errors: Sequence[dict[str, str]], *, bare: bool) -> bytes:
    """The JSON body of an error answer, wrapped or as a bare array."""
    return dump(list(errors) if bare else {"errors": list(errors)})
