"""What every resource shares: the client it belongs to, and the decoding of bodies."""

from __future__ import annotations

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
    return _structure(body_object(response, operation), cls, response, operation)


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
    return _structure(body["payload"], cls, response, operation)


def _structure(data: Any, cls: type[T], response: ApiResponse, operation: str) -> T:
    try:
        return _serde.structure(data, cls, operation=operation)
    except ResponseDecodeError as exc:
        exc.request_id = response.request_id
        raise
