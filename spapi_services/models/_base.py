"""Building blocks shared by every model: the model base, the enum base and field helpers."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any, Self

import attrs

__all__ = ["ApiEnum", "ApiModel", "bounded"]

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


class ApiModel:
    """Base of every model: the model as the API's JSON, and back.

    :meth:`to_api_dict` gives the model in the shape the API writes it: camelCase keys
    (``serviceJobId``), fields that are ``None`` left out, arrays as lists, timestamps as
    text in UTC with a ``Z`` (``2026-06-17T12:00:00Z``, with milliseconds only when there
    are any: ``...T12:00:00.250Z``), enum values as their strings (values this release
    does not know included), and amounts of money as exact :class:`~decimal.Decimal`
    numbers.  :meth:`to_api_json` is the same as compact JSON text, each Decimal written
    digit for digit as a JSON number: what the command line prints with ``--json``.
    :meth:`from_api_dict` reads such a dict back, checking it as the SDK checks the API's
    answers.

    What a round trip keeps:

    * ``type(m).from_api_dict(m.to_api_dict()) == m`` for every model whose times are
      whole milliseconds (the API's precision: a finer part is dropped when written).
    * ``M.from_api_dict(d).to_api_dict() == d`` for every dict already in that form (as
      every answer of the API's sandbox and of the emulator is), when its numbers with a
      fraction are read as Decimals (``json.loads(text, parse_float=Decimal)``; read as
      floats, an amount such as ``19.99`` differs from its Decimal by the float's
      rounding).
    * Any other dict comes back in that form: keys the model does not know, and ``null``
      values, are left out (the models ignore such keys, so that fields Amazon adds do
      not break this release); each timestamp is the same instant written as above; a
      number where text is expected, or a scalar in a free-form map (an upload's
      headers), comes back as its text.  Keep the original dict if you need it as it was.

    A job's dict holds the buyer's personal data, and an upload destination's its
    encryption key: treat the dict as you would the model.
    """

    __slots__ = ()

    def to_api_dict(self) -> dict[str, Any]:
        """This model as the API's JSON object: a new dict, of JSON values only.

        Inside are dicts, lists, strings, integers and booleans, and each amount of money
        is a :class:`~decimal.Decimal`, which the standard library's ``json.dumps``
        refuses and some frameworks write as a string (the web backends guide says
        which): to send the model as it is, use :meth:`to_api_json`.
        """
        from .. import _serde  # the converter imports the models: resolved at call time

        data: dict[str, Any] = _serde.unstructure(self)
        return data

    def to_api_json(self) -> str:
        """This model as the API's JSON text (compact, UTF-8 characters kept as they are).

        The same as ``json.dumps(self.to_api_dict())`` would be if the standard library
        wrote a Decimal as the number it is, digit for digit.
        """
        from .. import _serde

        return _serde.dumps(_serde.unstructure(self))

    @classmethod
    def from_api_dict(cls, data: Mapping[str, Any]) -> Self:
        """Build the model from the API's JSON object (a parsed body's ``payload``, say).

        The data is checked as the SDK checks an answer from the API: a value of the
        wrong kind, a missing required field or an unreadable timestamp raises
        :class:`~spapi_services.errors.ResponseDecodeError`, whose ``problems`` name each
        mismatch with its JSON path (``expected a string, got a number @
        $.buyer.name``).  So do two mistakes that would otherwise give an empty model:
        a whole answer (``{"payload": ...}``) instead of its payload, and
        snake_case keys (``service_job_id``, as ``attrs.asdict`` writes them) instead of
        the API's names.  Keys the model does not know are ignored.
        """
        from .. import _serde

        mistakes = _misnamed_keys(cls, data)
        if mistakes:
            from ..errors import ResponseDecodeError

            raise ResponseDecodeError(f"data does not fit {cls.__name__}", problems=mistakes)
        return _serde.structure(data, cls, subject="data", parsed=False)


def _misnamed_keys(cls: type[ApiModel], data: object) -> list[str]:
    """The top-level keys of ``data`` that show it is not this model's JSON object."""
    if not isinstance(data, Mapping):
        return []  # the converter says what it is instead
    snake = _snake_case_names(cls)
    problems = [
        f"a snake_case key; the API's name is {snake[key]!r} @ $.{key}"
        for key in data
        if key in snake and snake[key] not in data
    ]
    if "payload" in data and not _has_field(cls, "payload"):
        problems.append("a whole answer, not the object: pass its 'payload' @ $.payload")
    return problems


_SNAKE_CASE_NAMES: dict[type, dict[str, str]] = {}


def _snake_case_names(cls: type) -> dict[str, str]:
    """Python name -> wire name, for the fields whose two names differ (worked out once)."""
    names = _SNAKE_CASE_NAMES.get(cls)
    if names is None:
        from .._serde import to_camel

        wire = {field.name: to_camel(field.name) for field in attrs.fields(cls)}
        names = _SNAKE_CASE_NAMES[cls] = {p: w for p, w in wire.items() if p != w}
    return names


def _has_field(cls: type, name: str) -> bool:
    return any(field.name == name for field in attrs.fields(cls))
