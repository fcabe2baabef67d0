"""Static sandbox mode: replay the ``x-amzn-api-sandbox`` cases of a model file.

Amazon's static sandbox answers a request with the response of a case whose listed
parameters all equal the request's: path and query parameters by name, the body as a
whole JSON value (two timestamps are equal here when they name the same instant, so a
client that writes ``10:00:00Z`` for the recorded ``10:00:00.000Z`` still matches).
Parameters a case does not list are not looked at.  Here a case that
lists more parameters is tried before one that lists fewer, and among equals the first
in the file wins; that keeps catch-all cases (which list none) from hiding the specific
ones, and makes every case of Amazon's model reachable.  A request no case matches gets
a 400 (in the operation's error shape).  The model file is read from the path the user
gives; nothing of it is kept in this package.  Only its ``paths`` are read (operations,
responses and their cases), so a file with just those, such as a structure-only extract
of the model, serves as well as the whole Swagger document.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import attrs
from multidict import MultiMapping

from .._routes import ROUTES
from .._serde import parse_datetime
from .replies import ApiError, Reply, dump, error_entry

__all__ = ["SandboxCase", "StaticSandbox"]

_METHODS = ("get", "put", "post", "delete", "patch")


@attrs.frozen
class SandboxCase:
    """One recorded request and the status and body it is answered with."""

    operation: str
    status: int
    parameters: Mapping[str, Any]
    """Parameter name -> the value it must have (``body`` is the whole JSON body)."""
    response: Any


def _case_parameters(raw: Mapping[str, Any]) -> dict[str, Any]:
    # Each parameter is {"value": ...}; one case in Amazon's model also puts a stray
    # "resourceId" beside the body's "value", which only the value is taken from.
    return {name: spec.get("value") for name, spec in raw.items() if isinstance(spec, dict)}


class StaticSandbox:
    """The cases of one model file, ready to answer requests."""

    def __init__(self, cases: list[SandboxCase]) -> None:
        by_op: dict[str, list[SandboxCase]] = {}
        for case in cases:
            by_op.setdefault(case.operation, []).append(case)
        # Stable sort: more listed parameters first, file order among equals.
        #: The sandbox cases by operationId, the most specific first.
        self.cases = {
            op: sorted(found, key=lambda c: -len(c.parameters)) for op, found in by_op.items()
        }

    @classmethod
    def from_file(cls, path: str | Path) -> StaticSandbox:
        """Read every static case of a Swagger model file (or a file of its ``paths``)."""
        spec = json.loads(Path(path).read_text(encoding="utf-8"))
        cases = []
        for item in spec.get("paths", {}).values():
            for method in _METHODS:
                operation = item.get(method)
                if not isinstance(operation, dict) or "operationId" not in operation:
                    continue
                op_id = operation["operationId"]
                if op_id not in ROUTES:
                    continue
                for status, response in operation.get("responses", {}).items():
                    sandbox = response.get("x-amzn-api-sandbox", {})
                    for case in sandbox.get("static", []):
                        params = case.get("request", {}).get("parameters", {})
                        cases.append(
                            SandboxCase(
                                op_id, int(status), _case_parameters(params), case.get("response")
                            )
                        )
        return cls(cases)

    def __len__(self) -> int:
        return sum(len(found) for found in self.cases.values())

    def answer(
        self,
        operation: str,
        path: Mapping[str, str],
        query: MultiMapping[str],
        raw_query: MultiMapping[str],
        body: bytes,
    ) -> Reply:
        """The reply of the first matching case; ApiError(400) if none matches."""
        parsed: Any = _MISSING
        if body:
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = _MISSING
        for case in self.cases.get(operation, ()):
            if all(
                _matches(name, expected, path, query, raw_query, parsed)
                for name, expected in case.parameters.items()
            ):
                return _reply(case)
        raise ApiError(
            400,
            [
                error_entry(
                    "InvalidInput",
                    f"The request does not match any static sandbox case of {operation}.",
                    "Static sandbox responses are chosen by the parameters of the recorded cases.",
                )
            ],
        )


_MISSING = object()


def _matches(
    name: str,
    expected: Any,
    path: Mapping[str, str],
    query: MultiMapping[str],
    raw_query: MultiMapping[str],
    body: Any,
) -> bool:
    if name == "body":
        return body is not _MISSING and _same_json(body, expected)
    if name in path:
        return path[name] == _text(expected)
    wanted = _text(expected)
    decoded = ",".join(query.getall(name, []))
    # A token may be recorded already percent-encoded; a client that passes it through
    # untouched sends it as recorded, so the raw (undecoded) text is compared too.
    raw = ",".join(raw_query.getall(name, []))
    return name in query and (decoded == wanted or raw == wanted)


def _same_json(sent: Any, recorded: Any) -> bool:
    """Equal JSON, where two timestamps are equal when they name the same instant.

    Clients write times differently (``10:00:00Z`` for ``10:00:00.000Z``; UTC for an
    offset the recorded case used), and the recorded cases are not about that.  A string
    that does not parse as a timestamp is compared as it is, so a malformed time still
    only matches itself.
    """
    if isinstance(sent, dict) and isinstance(recorded, dict):
        return sent.keys() == recorded.keys() and all(
            _same_json(sent[k], recorded[k]) for k in sent
        )
    if isinstance(sent, list) and isinstance(recorded, list):
        return len(sent) == len(recorded) and all(
            _same_json(a, b) for a, b in zip(sent, recorded, strict=True)
        )
    if isinstance(sent, str) and isinstance(recorded, str) and sent != recorded:
        first, second = _instant(sent), _instant(recorded)
        return first is not None and first == second
    return bool(sent == recorded and type(sent) is type(recorded))


def _instant(text: str) -> datetime | None:
    if "T" not in text:
        return None
    try:
        return parse_datetime(text)
    except ValueError:
        return None


def _text(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(_text(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _reply(case: SandboxCase) -> Reply:
    if case.status == 204:
        return Reply(204, None)
    return Reply(case.status, dump(case.response))
