"""What the emulator saw: a bounded log of requests and counters by operation and status.

Tests read it to check what a client really sent (how many retries, which headers, that
no access token went to the upload URL).  Secrets never enter it: the access token and
any ``Authorization`` header are replaced by ``<redacted>``, and so are the client secret
and refresh token of a token exchange.  Document bytes are not kept, only their size.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable, Mapping

import attrs

__all__ = ["REDACTED", "RequestRecord", "Traffic", "redact_headers"]

REDACTED = "<redacted>"

#: Pseudo-operations for the two endpoints that are not Services API operations.
TOKEN = "token"
UPLOAD = "upload"

#: Status recorded for a request whose connection was dropped without an answer.
DROPPED = 0

_SECRET_HEADERS = frozenset({"x-amz-access-token", "authorization", "cookie"})


def redact_headers(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Headers as a dict with lower-case names, secrets replaced."""
    out: dict[str, str] = {}
    for name, value in headers:
        key = name.lower()
        out[key] = REDACTED if key in _SECRET_HEADERS else value
    return out


@attrs.frozen(slots=True)
class RequestRecord:
    """One request the emulator received, and the status it answered.

    ``operation`` is the operationId, ``"token"`` for the LWA endpoint, ``"upload"`` for a
    document PUT, or ``None`` for a path that is no operation.  ``status`` is ``0`` when
    the connection was dropped on purpose.  ``query`` joins repeated keys with commas.
    """

    #: The ``x-amzn-RequestId`` the emulator answered with.
    request_id: str
    #: The HTTP method.
    method: str
    #: The request's path.
    path: str
    #: The operationId, ``token``, ``upload``, or ``None`` for a path that is no operation.
    operation: str | None
    #: The query parameters, repeated keys joined with commas.
    query: Mapping[str, str]
    #: The request's headers, secrets redacted.
    headers: Mapping[str, str]
    #: The request's body as text, secrets redacted (``None``: none, or a document upload).
    body: str | None
    #: The body's length in bytes.
    body_size: int
    #: The status answered (0: the connection was dropped on purpose).
    status: int
    #: When the request arrived, on the emulator's monotonic clock.
    time: float


class Traffic:
    """The request log and the counters; the log keeps the newest ``maxlen`` requests."""

    def __init__(self, maxlen: int = 10_000) -> None:
        self._log: deque[RequestRecord] = deque(maxlen=maxlen)
        self.counts: Counter[tuple[str | None, int]] = Counter()
        """Requests per (operation, status), 429s and dropped connections included."""
        self.lwa_exchanges = 0
        """Requests to the token endpoint, whatever their outcome."""
        self.tokens_issued = 0
        """Token exchanges that handed out an access token."""

    @property
    def requests(self) -> list[RequestRecord]:
        """The logged requests, oldest first."""
        return list(self._log)

    def record(self, entry: RequestRecord) -> None:
        self._log.append(entry)
        self.counts[entry.operation, entry.status] += 1

    def count(self, operation: str | None = None, status: int | None = None) -> int:
        """Requests of ``operation`` answered with ``status`` (``None`` matches any)."""
        return sum(
            n
            for (op, st), n in self.counts.items()
            if (operation is None or op == operation) and (status is None or st == status)
        )

    def reset(self) -> None:
        """Forget every request and zero every counter."""
        self._log.clear()
        self.counts.clear()
        self.lwa_exchanges = 0
        self.tokens_issued = 0
