"""Async client for Amazon's Selling Partner API, Services API v1.

::

    async with ServicesClient(LwaCredentials.from_env(), marketplace_id="ATVPDKIKX0DER") as client:
        async for job in client.service_jobs.list(created_after=since):
            ...
"""

__version__ = "0.1.0"

import logging as _logging

from ._auth import AccessTokenProvider, LwaCredentials
from ._client import Region, ServicesClient
from ._pagination import PageIterator
from ._ratelimit import RateLimits, UsagePlan
from ._retry import RetryPolicy
from ._sender import RawResponse, Sender
from ._timing import Timer
from .errors import (
    ApiConnectionError,
    ApiStatusError,
    ApiTimeoutError,
    AuthenticationError,
    BadRequestError,
    ForbiddenError,
    InternalServerError,
    NotFoundError,
    OperationFailedError,
    PaginationError,
    PayloadTooLargeError,
    RateLimitError,
    ResponseDecodeError,
    ServerError,
    ServiceUnavailableError,
    SpApiError,
    TokenEndpointUnreachableError,
    UnprocessableEntityError,
    UnsupportedMediaTypeError,
    UploadError,
)
from .resources.service_jobs import JobFilters, JobPaginator

# A library leaves output to the application: without this, WARNING records (an API
# warning about an answer) would reach stderr through logging's last-resort handler
# whenever the application has not configured logging, whatever it wanted.
_logging.getLogger("spapi_services").addHandler(_logging.NullHandler())

__all__ = [
    "AccessTokenProvider",
    "ApiConnectionError",
    "ApiStatusError",
    "ApiTimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ForbiddenError",
    "InternalServerError",
    "JobFilters",
    "JobPaginator",
    "LwaCredentials",
    "NotFoundError",
    "OperationFailedError",
    "PageIterator",
    "PaginationError",
    "PayloadTooLargeError",
    "RateLimitError",
    "RateLimits",
    "RawResponse",
    "Region",
    "ResponseDecodeError",
    "RetryPolicy",
    "Sender",
    "ServerError",
    "ServiceUnavailableError",
    "ServicesClient",
    "SpApiError",
    "Timer",
    "TokenEndpointUnreachableError",
    "UnprocessableEntityError",
    "UnsupportedMediaTypeError",
    "UploadError",
    "UsagePlan",
    "__version__",
]
