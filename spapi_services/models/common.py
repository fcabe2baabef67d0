"""Shapes used across the API: errors, warnings, money and the generic time range."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import attrs

from ._base import ApiModel
from .enums import ErrorLevel

__all__ = ["ApiWarning", "DateTimeRange", "Error", "MoneyAmount", "Warning"]


@attrs.frozen(kw_only=True)
class Error(ApiModel):
    """One problem the API reports, in an error response or beside a result."""

    #: Amazon's code for the problem.
    code: str
    #: What went wrong, in Amazon's words.
    message: str
    #: More about it, when Amazon says more.
    details: str | None = None
    #: Whether it is an error or a warning.
    error_level: ErrorLevel | None = None


@attrs.frozen(kw_only=True)
class ApiWarning(ApiModel):
    """A note the API attaches to a successful change (for example an overbooked resource)."""

    #: Amazon's code for the note.
    code: str
    #: The note, in Amazon's words.
    message: str
    #: More about it, when Amazon says more.
    details: str | None = None


#: The name this class had first; it shadowed the builtin ``Warning``, so it was renamed.
Warning = ApiWarning


@attrs.frozen(kw_only=True)
class MoneyAmount(ApiModel):
    """An amount of money; ``value`` is a :class:`~decimal.Decimal`, never a float."""

    #: The amount, exact.
    value: Decimal
    #: The currency, as a three-letter ISO 4217 code.
    currency: str


@attrs.frozen(kw_only=True)
class DateTimeRange(ApiModel):
    """A window of time with both ends given, in UTC."""

    #: When the window starts.
    start_time: datetime
    #: When the window ends.
    end_time: datetime
