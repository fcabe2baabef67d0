"""The official model's static sandbox cases, read from the project's structure-only extract."""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from typing import Any

import attrs
from spec_data import load_model

HTTP_METHODS = frozenset({"get", "put", "post", "delete", "patch"})

#: Marks a case whose request has no ``body`` parameter.
NO_BODY = object()


@attrs.frozen
class SandboxCase:
    """One ``x-amzn-api-sandbox`` static case of one response of one operation."""

    operation_id: str
    status: str
    index: int
    parameters: dict[str, Any]
    response: Any

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.operation_id, self.status, self.index)

    @property
    def id(self) -> str:
        return f"{self.operation_id}-{self.status}-{self.index}"

    @property
    def body(self) -> Any:
        """The request body (the ``value`` of the ``body`` parameter), or :data:`NO_BODY`."""
        param = self.parameters.get("body")
        if param is None:
            return NO_BODY
        return param.get("value", NO_BODY)

    @property
    def success(self) -> bool:
        return self.status.startswith("2")


@cache
def _model() -> dict[str, Any]:
    """The extract, read once (so nobody may change it)."""
    return load_model()


def operations() -> Iterator[tuple[str, dict[str, Any]]]:
    """``(operationId, operation object)`` for every operation in the model."""
    for item in _model()["paths"].values():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield operation["operationId"], operation


def sandbox_cases() -> list[SandboxCase]:
    """Every static sandbox case of every response of every operation, in the model's order."""
    cases = []
    for operation_id, operation in operations():
        for status, response in operation.get("responses", {}).items():
            sandbox = response.get("x-amzn-api-sandbox") or {}
            for index, case in enumerate(sandbox.get("static", [])):
                request = case.get("request", {})
                cases.append(
                    SandboxCase(
                        operation_id=operation_id,
                        status=status,
                        index=index,
                        parameters=request.get("parameters", {}),
                        response=case.get("response"),
                    )
                )
    return cases
