"""Reading the times people type: ISO 8601, plain dates, ``now`` and ``30d``-style offsets.

A time written without a UTC offset means what a person's own clock says: it is read in
the local time zone (``TZ``, else the system's), never silently as UTC, and the command
shows the instant it resolved to before it sends anything.  A local time that the zone
skips (clocks going forward) or repeats (clocks going back) is refused: only an offset
can say which instant was meant.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import click

__all__ = ["TIME", "TIME_HELP", "Reading", "TimeParam", "parse_when", "read_time", "readings"]

#: The rule for every time option, for ``--help``.
TIME_HELP = (
    "TIME is ISO 8601 with an offset (2026-12-01T09:00Z, 2026-12-01T09:00-05:00); "
    "without one, a time or a date (2026-12-01: midnight) is local time (TZ, else the "
    "system zone) and the UTC instant it means is shown before anything is sent; "
    "'now'; 30d, 12h, 90m ago; +2d, +3h from now (units s m h d w)."
)

_RELATIVE = re.compile(r"^([+-]?)(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_META_KEY = "spapi_services.cli.times"


@attrs.frozen
class Reading:
    """How a typed time was understood: the instant, and the local zone if one was used."""

    text: str
    instant: datetime
    zone: str | None = None
    """``"EST, UTC-05:00"`` when the text had no offset and was read as local time."""


def read_time(text: str, *, now: datetime | None = None) -> Reading:
    """A timestamp from what someone typed (see :data:`TIME_HELP`).

    Offsets such as ``30d`` (ago) and ``+2d`` (from now) are to the whole minute: a
    booking at 14:00, not at 14:00:37.512.  Raises :class:`ValueError` naming the rule.
    """
    value = text.strip()
    current = now or datetime.now(UTC)
    if value.lower() == "now":
        return Reading(text, current)
    match = _RELATIVE.match(value.lower())
    if match:
        sign, amount, unit = match.groups()
        delta = timedelta(**{_UNITS[unit]: float(amount)})
        moved = current + delta if sign == "+" else current - delta
        return Reading(text, moved if unit == "s" else moved.replace(second=0, microsecond=0))
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"{text!r} is not a time: use ISO 8601 (2026-03-01T15:00:00Z), a date "
            "(2026-03-01), 'now', or an offset such as 30d (ago) or +2h (from now)"
        ) from None
    if parsed.tzinfo is not None and parsed.utcoffset() is not None:
        return Reading(text, parsed)
    local = _local(parsed.replace(tzinfo=None), text)
    return Reading(text, local, zone=_zone_label(local))


def parse_when(text: str, *, now: datetime | None = None) -> datetime:
    """The aware datetime :func:`read_time` finds in ``text``."""
    return read_time(text, now=now).instant


def _local(naive: datetime, text: str) -> datetime:
    # fold=0 and fold=1 pick the offset before and after a transition; a wall time
    # that is not itself after the round trip lies in a gap, and one that survives it
    # with two different offsets happens twice.
    early = naive.replace(fold=0).astimezone()
    late = naive.replace(fold=1).astimezone()
    if early.replace(tzinfo=None) != naive or late.replace(tzinfo=None) != naive:
        raise ValueError(
            f"{text!r} does not exist in the local time zone (the clocks skip it): "
            f"give it with a UTC offset, e.g. {naive.isoformat(timespec='minutes')}"
            f"{_offset(early)}"
        )
    if early.utcoffset() != late.utcoffset():
        shown = naive.isoformat(timespec="minutes")
        raise ValueError(
            f"{text!r} happens twice in the local time zone ({_zone_label(early)}, then "
            f"{_zone_label(late)}): give the offset you mean, e.g. "
            f"{shown}{_offset(early)} or {shown}{_offset(late)}"
        )
    return early


def _offset(value: datetime) -> str:
    return value.isoformat()[-6:]


def _zone_label(value: datetime) -> str:
    name = value.tzname() or ""
    offset = f"UTC{_offset(value)}"
    return f"{name}, {offset}" if name and not name.startswith(("UTC", "+", "-")) else offset


def readings(ctx: click.Context | None = None) -> list[tuple[str, Reading]]:
    """The (option, reading) pairs of the local times given to the current command."""
    ctx = ctx or click.get_current_context()
    found: list[tuple[str, Reading]] = ctx.meta.get(_META_KEY, [])
    return found


class TimeParam(click.ParamType):  # type: ignore[type-arg]
    """A click parameter holding an aware datetime (see :func:`read_time`).

    A time read as local time is remembered on the context, so the command can say what
    it resolved to (see :func:`readings`).
    """

    name = "time"

    def get_metavar(self, param: click.Parameter, ctx: click.Context) -> str:
        return "TIME"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, datetime):
            return value
        try:
            reading = read_time(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
        if reading.zone is not None and ctx is not None:
            label = _option_label(param)
            ctx.meta.setdefault(_META_KEY, []).append((label, reading))
        return reading.instant


def _option_label(param: click.Parameter | None) -> str:
    if isinstance(param, click.Option):
        longs = [o for o in param.opts if o.startswith("--")]
        return (longs or param.opts)[0]
    return param.human_readable_name if param is not None else "time"


TIME = TimeParam()
