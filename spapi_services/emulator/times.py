"""Reading the timestamps that requests carry, as strictly as the service does.

The model calls every request time "ISO 8601, in UTC".  The sandbox answers a
``+05:30`` offset with "not in UTC" and a malformed string with "failed to parse", so
the two failures are told apart here.  Output timestamps are written by
:func:`spapi_services._serde.format_datetime`, the SDK's own writer.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from .._serde import format_datetime

__all__ = ["format_datetime", "is_utc", "parse_time", "utc_or_none"]

_ZERO = timedelta(0)


def parse_time(text: str) -> datetime:
    """An aware datetime from ISO 8601 text; a ValueError when it does not parse.

    A timestamp without an offset is taken as UTC, as the API does for the times it sends.
    """
    if not isinstance(text, str) or len(text) < 10:
        raise ValueError(f"not an ISO 8601 timestamp: {text!r}")
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value


def is_utc(value: datetime) -> bool:
    """Whether an aware datetime was given with a zero offset."""
    return value.utcoffset() == _ZERO


def utc_or_none(text: str) -> datetime | None:
    """The time if ``text`` parses, else ``None`` (for filters where only validity matters)."""
    try:
        return parse_time(text)
    except ValueError:
        return None
