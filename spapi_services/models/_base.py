"""Building blocks shared by every model: the forward-compatible enum base and field helpers."""

from __future__ import annotations

import enum
from typing import Any

import attrs

__all__ = ["ApiEnum", "bounded"]

_MAX_UNKNOWN_VALUES = 256


class ApiEnum(enum.StrEnum):
    """Base of every enum the API sends or accepts.

    Amazon adds values to its enums without notice.  A value this release does not know
    is kept as a member of the enum rather than failing the whole response: it compares
    equal to its string, formats as its string and is sent back unchanged.  Known values
    are still the usual singletons, so ``status is ServiceJobStatus.COMPLETED`` works.
    Use :meth:`is_known` to tell the two apart.
    """

    @classmethod
    def _missing_(cls, value: object) -> ApiEnum | None:
        if not isinstance(value, str):
            return None
        # Cache the pseudo-member so that the same unknown value is the same object.
        existing = cls._value2member_map_.get(value)
        if existing is not None:
            return existing  # type: ignore[return-value]
        member = str.__new__(cls, value)
        member._name_ = value
        member._value_ = value
        # Keep a bounded number of pseudo-members, so a server sending junk cannot grow memory.
        if len(cls._value2member_map_) < len(cls.__members__) + _MAX_UNKNOWN_VALUES:
            cls._value2member_map_[value] = member
        return member

    @property
    def is_known(self) -> bool:
        """Whether this value was part of the API model this release was built from."""
        return self._name_ in type(self).__members__


def bounded(**rules: Any) -> Any:
    """An optional attrs field (default ``None``) carrying client-side bounds as metadata.

    The rules are checked by :func:`spapi_services._validation.check_request` before a
    request is sent; they are never applied to responses.  Known rules: ``min_length``,
    ``max_length``, ``minimum``, ``maximum``, ``multiple_of``, ``pattern``, ``min_items``,
    ``max_items``, ``item_minimum``, ``item_maximum``, ``item_min_length``,
    ``item_max_length`` and ``item_pattern``.
    """
    required = rules.pop("required", False)
    if required:
        return attrs.field(metadata={"bounds": rules})
    return attrs.field(default=None, metadata={"bounds": rules})
