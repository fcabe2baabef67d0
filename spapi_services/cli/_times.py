"""Reading the times people type: ISO 8601, plain dates, ``now`` and ``30d``-style offsets."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import click

__all__ = ["TIME", "TimeParam", "parse_when"]

_RELATIVE = re.compile(r"^([+-]?)(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_when(text: str, *, now: datetime | None = None) -> datetime:
    """A timestamp from what someone typed.

    ``2026-03-01T15:00:00Z`` and other ISO 8601 forms (no offset means UTC); a bare date
    (midnight UTC); ``now``; ``30d``, ``12h``, ``90m`` (that long ago); ``+2d`` (that
    long from now), to the whole minute.  Units: s, m, h, d, w.
    """
    value = text.strip()
    current = now or datetime.now(UTC)
    if value.lower() == "now":
        return current
    match = _RELATIVE.match(value.lower())
    if match:
        sign, amount, unit = match.groups()
        delta = timedelta(**{_UNITS[unit]: float(amount)})
        moved = current + delta if sign == "+" else current - delta
        # "+2d" means about then: a booking at 14:00, not at 14:00:37.512.
        return moved if unit == "s" else moved.replace(second=0, microsecond=0)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"{text!r} is not a time: use ISO 8601 (2026-03-01T15:00:00Z), a date "
            "(2026-03-01), 'now', or an offset such as 30d (ago) or +2h (from now)"
        ) from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


class TimeParam(click.ParamType):  # type: ignore[type-arg]
    """A click parameter holding an aware datetime (see :func:`parse_when`)."""

    name = "time"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, datetime):
            return value
        try:
            return parse_when(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


TIME = TimeParam()
