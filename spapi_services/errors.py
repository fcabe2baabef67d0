"""Every exception the SDK raises on purpose.

::

    SpApiError
    ├── ApiConnectionError          the request did not get an HTTP answer
    │   └── ApiTimeoutError         ... because it took too long
    ├── AuthenticationError         the Login with Amazon token exchange failed
    │   └── TokenEndpointUnreachableError  ... because no answer came (also an ApiConnectionError)
    ├── ApiStatusError              the API answered with a 4xx or 5xx status
    │   ├── BadRequestError             400
    │   ├── ForbiddenError              403
    │   ├── NotFoundError               404
    │   ├── PayloadTooLargeError        413
    │   ├── UnsupportedMediaTypeError   415
    │   ├── UnprocessableEntityError    422
    │   ├── RateLimitError              429
    │   └── ServerError                 5xx
    │       ├── InternalServerError     500
    │       └── ServiceUnavailableError 503
    ├── OperationFailedError        a 2xx answer whose body reports errors
    ├── ResponseDecodeError         a body that does not fit the API model
    ├── PaginationError             the API handed back a page token it had already given
    └── UploadError                 the document storage refused an upload

Apart from those, about a store rather than a call: :class:`FencedOut`, a sync whose
seller another sync has taken over (its writes refused).

Bad arguments are not among them: they raise :class:`ValueError` or :class:`TypeError`
before anything is sent.  One warning stands beside them:
:class:`UnknownMarketplaceWarning`, for a well-formed marketplace id that is not among
Amazon's known ones (sent all the same).  :class:`asyncio.CancelledError` is never wrapped.

An error about an answer (:class:`ApiStatusError`, :class:`OperationFailedError`) names
what Amazon's support asks for, in its message and as a dict (``support_info()``): the
operation, the request id, when it was answered, the status, the rate-limit header and
the error codes.
"""

from __future__ import annotations

import email.utils
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from multidict import CIMultiDict, CIMultiDictProxy

from ._text import printable
from .models.common import Error

__all__ = [
    "ApiConnectionError",
    "ApiStatusError",
    "ApiTimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "FencedOut",
    "ForbiddenError",
    "InternalServerError",
    "NotFoundError",
    "OperationFailedError",
    "PaginationError",
    "PayloadTooLargeError",
    "RateLimitError",
    "ResponseDecodeError",
    "ServerError",
    "ServiceUnavailableError",
    "SpApiError",
    "TokenEndpointUnreachableError",
    "UnknownMarketplaceWarning",
    "UnprocessableEntityError",
    "UnsupportedMediaTypeError",
    "UploadError",
]

_BODY_EXCERPT = 500


class SpApiError(Exception):
    """Base of every error the SDK raises about a call."""

    attempts: int = 1
    """How many requests the call sent before it gave up."""

    may_have_taken_effect: bool = False
    """True when an earlier attempt of the same call got no clear answer (a timeout, a
    lost connection, a 5xx) and so may have done what was asked: a refusal that follows
    (say, "already cancelled") may describe the state that attempt left behind."""

    def __reduce__(self) -> tuple[Any, ...]:
        # The subclasses take keyword-only arguments, which the default reduction (the
        # message as the one positional argument) cannot rebuild: pickle and copy the
        # attributes instead, so errors survive process pools and ``copy.copy``.
        state = {
            name: CIMultiDict(value) if isinstance(value, CIMultiDictProxy) else value
            for name, value in self.__dict__.items()
        }
        return _restore, (type(self), self.args, state)


def _restore(cls: type[SpApiError], args: tuple[Any, ...], state: dict[str, Any]) -> SpApiError:
    exc = cls.__new__(cls, *args)
    exc.args = args
    for name, value in state.items():
        if isinstance(value, CIMultiDict):
            value = CIMultiDictProxy(value)
        setattr(exc, name, value)
    return exc


class ApiConnectionError(SpApiError):
    """No HTTP answer: the connection failed, was reset, or the answer was cut short.

    ``host`` names the host that could not be reached (the API's, the token endpoint's,
    or the document store's), when known.
    """

    host: str | None = None

    def __init__(self, message: str, *, host: str | None = None) -> None:
        super().__init__(message)
        self.host = host


class ApiTimeoutError(ApiConnectionError):
    """No answer within the client's timeout, or the call's deadline ran out.

    ``stage`` says what the call was doing when its deadline ran out ("waiting for the
    usage plan", "waiting in the request queue", "waiting for the answer"...), or is
    ``None`` when one attempt timed out.
    """

    def __init__(self, message: str, *, stage: str | None = None, host: str | None = None) -> None:
        super().__init__(message, host=host)
        self.stage = stage


class AuthenticationError(SpApiError):
    """The Login with Amazon token exchange was refused or could not be made.

    ``error`` and ``error_description`` are Amazon's own (for example ``invalid_grant``);
    ``status_code`` is the token endpoint's status, or ``None`` when it never answered.
    """

    def __init__(
        self,
        message: str,
        *,
        error: str | None = None,
        error_description: str | None = None,
        status_code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.error = error
        self.error_description = error_description
        self.status_code = status_code


class TokenEndpointUnreachableError(AuthenticationError, ApiConnectionError):
    """The token endpoint gave no answer (refused, reset, timed out), retries included.

    Both an :class:`AuthenticationError` (no token was had) and an
    :class:`ApiConnectionError` (it is the network, not the credentials): catch whichever
    reads better.  ``host`` names the endpoint that could not be reached.
    """

    def __init__(self, message: str, *, host: str | None = None) -> None:
        AuthenticationError.__init__(self, message)
        self.host = host


class _ErrorsMixin:
    errors: tuple[Error, ...]

    @property
    def codes(self) -> tuple[str, ...]:
        """The ``code`` of every error in the body, in order."""
        return tuple(e.code for e in self.errors)


def _summary(errors: Sequence[Error]) -> str:
    # Server text: one printable line, so a message cannot forge log lines.
    return "; ".join(f"{printable(e.code, 100)}: {printable(e.message, 300)}" for e in errors)


_RATE_LIMIT_HEADER = "x-amzn-RateLimit-Limit"


def answer_time(headers: Mapping[str, str]) -> datetime:
    """When an answer was given: its ``Date`` header, else now (UTC, to the second)."""
    value = headers.get("Date")
    if value:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            pass
        else:
            if when.tzinfo is None:  # "-0000": UTC by RFC 5322
                when = when.replace(tzinfo=UTC)
            return when.astimezone(UTC)
    return datetime.now(UTC).replace(microsecond=0)


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _ForSupport(_ErrorsMixin):
    """What Amazon's support asks for about an answer that went wrong."""

    operation: str | None
    request_id: str | None
    status_code: int
    headers: Mapping[str, str]
    host: str | None
    answered_at: datetime
    attempts: int

    def support_info(self) -> dict[str, Any]:
        """The facts to quote in a support case, as plain JSON-ready values.

        ``operation``, ``request_id``, ``time`` (the answer's ``Date``, or when it was
        read; UTC, ISO 8601), ``status``, ``rate_limit`` (the ``x-amzn-RateLimit-Limit``
        header as sent), ``error_codes``, ``endpoint`` (the API's host) and ``attempts``.
        """
        rate = self.headers.get(_RATE_LIMIT_HEADER)
        return {
            "operation": self.operation,
            "request_id": self.request_id,
            "time": _iso(self.answered_at),
            "status": self.status_code,
            "rate_limit": printable(rate, 50) if rate is not None else None,
            "error_codes": [printable(code, 100) for code in self.codes],
            "endpoint": self.host,
            "attempts": self.attempts,
        }

    def _support_note(self) -> str:
        """`` (request id ..., 2026-03-02T10:15:00Z, rate limit 5/s)`` for the message."""
        parts = []
        if self.request_id:
            parts.append(f"request id {printable(self.request_id, 100)}")
        parts.append(_iso(self.answered_at))
        rate = self.headers.get(_RATE_LIMIT_HEADER)
        if rate:
            parts.append(f"rate limit {printable(rate, 50)}/s")
        return f" ({', '.join(parts)})"


class ApiStatusError(_ForSupport, SpApiError):
    """The API answered with an error status.

    Carries everything needed to act on it or to open a support case: the status, the
    parsed ``errors``, Amazon's ``request_id``, the ``rate_limit`` it reported, the
    response ``headers``, the raw ``body`` text, ``answered_at`` (the answer's ``Date``,
    else when it was read) and ``host``; :meth:`support_info` gathers what support asks for.
    """

    def __init__(
        self,
        *,
        status_code: int,
        errors: Sequence[Error] = (),
        request_id: str | None = None,
        rate_limit: float | None = None,
        headers: Mapping[str, str] | None = None,
        body: str = "",
        operation: str | None = None,
        host: str | None = None,
    ) -> None:
        self.status_code = status_code
        self.errors = tuple(errors)
        self.request_id = request_id
        self.rate_limit = rate_limit
        # Read-only, and looked up without regard to case, as HTTP headers are.
        self.headers: Mapping[str, str] = CIMultiDictProxy(CIMultiDict(headers or {}))
        self.body = body
        self.operation = operation
        self.host = host
        self.answered_at = answer_time(self.headers)
        super().__init__(self._message())

    def _message(self) -> str:
        where = f"{self.operation}: " if self.operation else ""
        if self.errors:
            detail = _summary(self.errors)
        else:
            text = " ".join(self.body.split())
            detail = printable(text, _BODY_EXCERPT) if text else "(empty body)"
        return f"{where}HTTP {self.status_code}: {detail}{self._support_note()}"


class BadRequestError(ApiStatusError):
    """400: the request was malformed or a parameter is invalid."""


class ForbiddenError(ApiStatusError):
    """403: the token is missing, expired or not allowed to touch this resource."""


class NotFoundError(ApiStatusError):
    """404: the resource does not exist."""


class PayloadTooLargeError(ApiStatusError):
    """413: the request body is too large."""


class UnsupportedMediaTypeError(ApiStatusError):
    """415: the request's content type was refused."""


class UnprocessableEntityError(ApiStatusError):
    """422: the request is well formed but the job or appointment cannot take it."""


class RateLimitError(ApiStatusError):
    """429: the usage plan's bucket was empty, and retries did not get through."""


class ServerError(ApiStatusError):
    """5xx: Amazon failed to handle the request."""


class InternalServerError(ServerError):
    """500."""


class ServiceUnavailableError(ServerError):
    """503: the service is down or overloaded."""


_STATUS_CLASSES: dict[int, type[ApiStatusError]] = {
    400: BadRequestError,
    403: ForbiddenError,
    404: NotFoundError,
    413: PayloadTooLargeError,
    415: UnsupportedMediaTypeError,
    422: UnprocessableEntityError,
    429: RateLimitError,
    500: InternalServerError,
    503: ServiceUnavailableError,
}


def status_error_class(status_code: int) -> type[ApiStatusError]:
    """The exception class for an error status."""
    cls = _STATUS_CLASSES.get(status_code)
    if cls is not None:
        return cls
    return ServerError if status_code >= 500 else ApiStatusError


class OperationFailedError(_ForSupport, SpApiError):
    """A 2xx answer that nonetheless reports errors for the whole request.

    The sandbox does this for an unknown resource id on schedules and reservations.
    ``payload`` is whatever the answer carried beside the errors (its ``payload``, as
    parsed JSON, or ``None``) and ``body`` the raw text, for callers who want to look;
    ``headers``, ``answered_at``, ``host`` and :meth:`support_info` as for
    :class:`ApiStatusError`.
    """

    def __init__(
        self,
        *,
        status_code: int,
        errors: Sequence[Error],
        request_id: str | None = None,
        operation: str | None = None,
        payload: Any = None,
        body: str = "",
        headers: Mapping[str, str] | None = None,
        host: str | None = None,
    ) -> None:
        self.status_code = status_code
        self.errors = tuple(errors)
        self.request_id = request_id
        self.operation = operation
        self.payload = payload
        self.body = body
        self.headers: Mapping[str, str] = CIMultiDictProxy(CIMultiDict(headers or {}))
        self.host = host
        self.answered_at = answer_time(self.headers)
        where = f"{operation}: " if operation else ""
        super().__init__(
            f"{where}HTTP {status_code} with errors: {_summary(self.errors)}{self._support_note()}"
        )


class ResponseDecodeError(SpApiError):
    """A response body that is not JSON, or does not fit the API model.

    ``problems`` lists each mismatch with its JSON path, such as
    ``invalid value for type, expected int @ $.payload.jobs[3].scopeOfWork.quantity``.
    """

    def __init__(
        self,
        message: str,
        *,
        problems: Sequence[str] = (),
        request_id: str | None = None,
        operation: str | None = None,
    ) -> None:
        self.problems = tuple(problems)
        self.request_id = request_id
        self.operation = operation
        where = f"{operation}: " if operation else ""
        listed = "; ".join(self.problems[:5])
        more = f" (+{len(self.problems) - 5} more)" if len(self.problems) > 5 else ""
        detail = f": {listed}{more}" if listed else ""
        super().__init__(f"{where}{message}{detail}")


class PaginationError(SpApiError):
    """The API handed back a page token it had already given: following it would loop."""


class UploadError(SpApiError):
    """The document store refused or failed an upload (S3-style ``Code`` and ``Message``)."""

    def __init__(
        self, message: str, *, status_code: int | None = None, code: str | None = None
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code


class UnknownMarketplaceWarning(UserWarning):
    """A marketplace id of the right form that is not among Amazon's marketplaces known to
    this release: it is sent as given, and this warning is issued once per id and process.

    Amazon opens a marketplace now and then; if yours is new, silence the warning with
    ``warnings.filterwarnings("ignore", category=UnknownMarketplaceWarning)``.  A
    malformed id (lower case, a country code, too short) is refused with a
    ``ValueError`` instead.
    """


class FencedOut(Exception):
    """A sync's write was refused: another sync has taken its seller over since it began.

    A fenced sink (:class:`~spapi_services.sync.PostgresSink` with a fencing token, as
    the fleet's workers use it) writes only while the token it holds is still the
    seller's latest, checked in the same transaction as the write.  A sync that lost its
    lease unawares (a frozen process, a link to Redis gone silent) and wakes up after
    another worker took the seller gets this instead of overwriting the newer sync's
    rows or checkpoint; nothing of the refused transaction was written, and the sync
    stops.  ``seller_id`` is the seller, ``token`` the token this sync held and
    ``current_token`` the one issued since.
    """

    def __init__(self, seller_id: str, token: int, current_token: int | None) -> None:
        since = (
            f"token {current_token} was issued since"
            if current_token is not None
            else "the seller has no token now"
        )
        super().__init__(
            f"seller {seller_id}: this sync holds fencing token {token}, but {since}: "
            "another sync has taken the seller over, so nothing was written and this one stops"
        )
        self.seller_id = seller_id
        self.token = token
        self.current_token = current_token

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.seller_id, self.token, self.current_token))
