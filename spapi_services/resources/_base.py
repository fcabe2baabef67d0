"""What every resource shares: the client it belongs to, the call, and the decoding.

A resource method checks its arguments, builds the request, and calls one of the helpers
here, which send it through the client and decode the answer into the model it names.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from .. import _serde
from .._transport import ApiResponse
from ..errors import ResponseDecodeError

if TYPE_CHECKING:
    from .._client import ServicesClient

T = TypeVar("T")


class Resource:
    """A group of operations, holding the client that sends them."""

    def __init__(self, client: ServicesClient) -> None:
        self._client = client

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {self._client!r}>"

    def _marketplace(self, marketplace_id: str | None) -> str:
        """The marketplace to send: the one given, else the client's default."""
        return self._client._marketplace(marketplace_id)

    async def _send(
        self,
        operation: str,
        *,
        path: dict[str, str] | None = None,
        query: dict[str, Any] | None = None,
        body: Any = None,
    ) -> ApiResponse:
        """Send an operation whose answer carries nothing to decode."""
        return await self._client._call(operation, path=path, query=query, body=body)

    async def _result(
        self,
        operation: str,
        cls: type[T],
        *,
        path: dict[str, str] | None = None,
        query: dict[str, Any] | None = None,
        body: Any = None,
    ) -> T:
        """Send an operation and decode its whole body (not wrapped in ``payload``) as ``cls``."""
        response = await self._send(operation, path=path, query=query, body=body)
        return decode(response, cls, operation)

    async def _payload(
        self,
        operation: str,
        cls: type[T],
        *,
        path: dict[str, str] | None = None,
        query: dict[str, Any] | None = None,
        body: Any = None,
        empty: Callable[[], T] | None = None,
    ) -> T:
        """Send an operation and decode the ``payload`` of its answer as ``cls``.

        ``empty`` makes the payload optional: an answer without one (``{}``, or no body at
        all) means ``empty()``, such as a page with no jobs.  Without it, a missing payload
        is a :class:`ResponseDecodeError`.
        """
        response = await self._send(operation, path=path, query=query, body=body)
        found = decode_payload(response, cls, operation, required=empty is None)
        if found is None:
            if empty is None:  # decode_payload raised already; kept for the type checker
                raise ResponseDecodeError("the response has no payload", operation=operation)
            return empty()
        return found


def body_object(response: ApiResponse, operation: str) -> dict[str, Any]:
    """The response body, which must be a JSON object."""
    data = response.data
    if not isinstance(data, dict):
        what = "an empty body" if data is None else f"a JSON {type(data).__name__}"
        raise ResponseDecodeError(
            f"expected a JSON object, got {what}",
            request_id=response.request_id,
            operation=operation,
        )
    return data


def decode(response: ApiResponse, cls: type[T], operation: str) -> T:
    """The whole body as ``cls`` (for the operations whose result is not wrapped)."""
    return structure(body_object(response, operation), cls, response, operation)


def decode_payload(
    response: ApiResponse, cls: type[T], operation: str, *, required: bool = True
) -> T | None:
    """The ``payload`` of the body as ``cls``; ``None`` when absent and not ``required``.

    When the payload is optional, an empty 2xx body reads as ``{}``: it says as much.
    """
    if response.data is None and not required:
        return None
    body = body_object(response, operation)
    if "payload" not in body or body["payload"] is None:
        if required:
            raise ResponseDecodeError(
                "the response has no payload",
                request_id=response.request_id,
                operation=operation,
            )
        return None
    return structure(body["payload"], cls, response, operation)


def structure(data: Any, cls: type[T], response: ApiResponse, operation: str) -> T:
    """``data`` (part of ``response``) as ``cls``; a mismatch names the request id."""
    try:
        return _serde.structure(data, cls, operation=operation)
    except ResponseDecodeError as exc:
        exc.request_id = response.request_id
        raise
