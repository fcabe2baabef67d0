"""The committed extract of the official model: current, deterministic, and free of prose.

Only the first test reads the official model, and only when it sits beside the checkout
(as in CI); everything else in the suite reads the extract.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from .extract import MODEL_PATH, NOTE_KEY, SPEC_PATH, UnknownKeyError, extract, render

#: Keys that hold documentation in the official model.
PROSE = frozenset({"description", "summary", "title", "example", "examples"})


def _keys(node: Any, in_properties: bool = False) -> Iterator[tuple[str, bool]]:
    """Every key of ``node``, and whether it names a property (a ``properties`` member)."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield key, in_properties
            yield from _keys(value, key == "properties" and not in_properties)
    elif isinstance(node, list):
        for item in node:
            yield from _keys(item)


def _prose_sentences(spec: Any) -> set[str]:
    """The model's descriptions, summaries and titles of more than one word."""
    found: set[str] = set()
    for node in _objects(spec):
        for key in ("description", "summary", "title"):
            value = node.get(key)
            if isinstance(value, str) and " " in value.strip():
                found.add(value)
    return found


def _objects(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _objects(value)
    elif isinstance(node, list):
        for item in node:
            yield from _objects(item)


@pytest.fixture(scope="module")
def committed() -> str:
    return MODEL_PATH.read_text(encoding="utf-8")


def test_the_extract_matches_the_official_model(committed: str) -> None:
    if not SPEC_PATH.is_file():
        pytest.skip(f"the official model is not beside the checkout ({SPEC_PATH})")
    spec = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
    fresh = render(extract(spec))
    assert fresh == committed, (
        f"{MODEL_PATH.name} is out of date with {SPEC_PATH}: run python tests/spec_data/extract.py"
    )
    leaked = sorted(s for s in _prose_sentences(spec) if s in committed)
    assert leaked == [], "prose of the official model in the extract"


def test_no_documentation_key_anywhere(committed: str) -> None:
    model = json.loads(committed)
    # ScopeOfWork and AssociatedItem have a field called "title": a property's name, whose
    # value is a schema, is the one place such a key may appear.
    named = [key for key, is_property in _keys(model) if key in PROSE and not is_property]
    assert named == []
    as_properties = {key for key, is_property in _keys(model) if key in PROSE and is_property}
    assert as_properties == {"title"}
    assert json.loads(committed)["definitions"]["ScopeOfWork"]["properties"]["title"] == {
        "type": "string"
    }
    assert not any(key.startswith("x-docgen") for key, _ in _keys(model))
    assert '"swagger"' not in committed
    assert set(model) == {NOTE_KEY, "paths", "definitions"}


def test_the_extract_is_as_the_script_writes_it(committed: str) -> None:
    # Sorted keys and stable formatting: extracting the extract gives the same bytes, so
    # the file holds nothing the script would have left out, and a re-run changes nothing.
    assert render(extract(json.loads(committed))) == committed


def test_what_the_tests_rely_on_is_there(committed: str) -> None:
    model = json.loads(committed)
    operations = {op["operationId"]: op for item in model["paths"].values() for op in item.values()}
    assert len(operations) == 17
    cases = [
        case
        for op in operations.values()
        for response in op["responses"].values()
        for case in response.get("x-amzn-api-sandbox", {}).get("static", [])
    ]
    assert len(cases) == 147
    job = model["definitions"]["ServiceJob"]
    assert job["properties"]["serviceJobStatus"]["enum"][0] == "NOT_SERVICED"
    assert job["properties"]["createTime"] == {"format": "date-time", "type": "string"}
    page_size = next(
        p for p in operations["getServiceJobs"]["parameters"] if p["name"] == "pageSize"
    )
    # The bounds the SDK's page_size check and the sync's page arithmetic rely on.
    assert (page_size["in"], page_size["minimum"], page_size["maximum"]) == ("query", 1, 20)


def test_an_unknown_keyword_stops_the_script() -> None:
    spec = {"definitions": {"Thing": {"type": "string", "contentEncoding": "base64"}}}
    with pytest.raises(UnknownKeyError, match="definitions/Thing: unknown schema keyword"):
        extract(spec)
    documented = {
        "swagger": "2.0",
        "info": {"title": "A title", "description": "Prose."},
        "definitions": {
            "Thing": {
                "type": "object",
                "description": "Prose.",
                "x-docgen-enum-table-extension": [{"description": "Prose."}],
                "properties": {"title": {"type": "string", "description": "Prose."}},
            }
        },
    }
    assert extract(documented)["definitions"] == {
        "Thing": {"type": "object", "properties": {"title": {"type": "string"}}}
    }
    assert "Prose." not in render(extract(documented))
