"""What the fleet records of a failed sync: enough to act on, nothing of a response body.

A seller's last error is kept in PostgreSQL (``fleet_status.last_error``) and shown on
the status page to whoever can read it.  ``str()`` of an API status error without
Amazon's error list holds an excerpt of the response body (which may carry anything
the answering server put there); here an API error is described by its class, status,
operation, Amazon's error codes and messages and the request id only.
"""

from __future__ import annotations

from .._text import printable
from ..errors import ApiStatusError, AuthenticationError, OperationFailedError

__all__ = ["MAX_ERROR", "describe_error", "describe_refusal"]

#: The longest error text kept for a seller.
MAX_ERROR = 500


def describe_error(exc: BaseException) -> str:
    """One printable line naming ``exc``: an API error without its body, others as raised."""
    name = type(exc).__name__
    if isinstance(exc, ApiStatusError | OperationFailedError):
        where = f"{exc.operation}: " if exc.operation else ""
        problems = "; ".join(
            f"{printable(e.code, 100)}: {printable(e.message, 300)}" for e in exc.errors
        )
        text = f"{name}: {where}HTTP {exc.status_code}"
        text += f": {problems}" if problems else " (no error details given)"
        if exc.request_id:
            text += f" (request id {printable(exc.request_id, 100)})"
    else:
        text = f"{name}: {exc}"
    return printable(text, MAX_ERROR)


def describe_refusal(exc: AuthenticationError) -> str:
    """Why a seller is marked refused: Amazon's error and description, once."""
    detail = exc.error or "refused"
    if exc.error_description:
        detail += f": {exc.error_description}"
    return printable(f"Amazon refused the seller's refresh token ({detail})", MAX_ERROR)
