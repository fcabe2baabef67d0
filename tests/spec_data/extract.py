"""Extract what the tests need from Amazon's Services API model, structure only.

Run ``python tests/spec_data/extract.py`` (optionally ``--spec PATH``) after the official
model changes: it rewrites ``services_model.json`` beside this file.  ``--check`` only
compares, and exits 1 if the committed file is out of date.

What is kept: every operation's path, method, operationId and parameters; each response's
schema and its ``x-amzn-api-sandbox`` static cases (recorded requests and answers, as
data); and the definitions.  Of schemas and parameters only the keywords that constrain
values are kept (types, formats, enums, patterns, bounds, required lists, ``$ref``...).
Every piece of documentation (descriptions, summaries, titles, examples, tags, the
``x-docgen`` tables, response headers' notes, the document's ``info``) is left out, so
nothing written by Amazon's technical writers ends up in this repository.  A keyword this
script does not know stops it, so a new kind of constraint is never dropped unnoticed.

Standard library only: it runs before the project is installed.  It is a maintenance
script, run by hand: the suite imports only its pure functions and paths, and the one test
that reads the official model (the freshness check in ``test_model.py``) skips when it is
not beside the checkout.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
#: The committed extract.
MODEL_PATH = HERE / "services_model.json"
#: Where the official model sits in CI: beside the checkout, never inside it.
SPEC_PATH = HERE.parents[2] / "shared" / "spec" / "services.json"

HTTP_METHODS = frozenset({"get", "put", "post", "delete", "patch", "head", "options"})

#: Keywords that say what a value may be.
SCHEMA_KEYWORDS = frozenset(
    {
        "$ref",
        "type",
        "format",
        "enum",
        "pattern",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "multipleOf",
        "minLength",
        "maxLength",
        "minItems",
        "maxItems",
        "uniqueItems",
        "required",
        "default",
        "items",
        "properties",
        "additionalProperties",
        "allOf",
        "readOnly",
        "collectionFormat",
    }
)
#: A parameter's own keys, besides the schema keywords of a non-body parameter.
PARAMETER_KEYS = frozenset({"name", "in", "required", "schema"})
#: Documentation, in any object of the model.
PROSE_KEYS = frozenset(
    {"description", "summary", "title", "example", "examples", "tags", "externalDocs"}
)
#: The document's own metadata (the top level), none of it needed by a test.
DOCUMENT_KEYS = frozenset(
    {
        "swagger",
        "info",
        "host",
        "basePath",
        "schemes",
        "consumes",
        "produces",
        "securityDefinitions",
        "security",
    }
)
SANDBOX = "x-amzn-api-sandbox"
#: The extract's own note on where it comes from (the script's words, not Amazon's).
NOTE_KEY = "generated-by"
NOTE = "tests/spec_data/extract.py from the official Services API model; do not edit"


class UnknownKeyError(ValueError):
    """The model uses a key this script has not been told to keep or drop."""


def extract(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The structure-only model of ``spec`` (a Swagger 2.0 document, or an extract)."""
    known = {"paths", "definitions", NOTE_KEY} | DOCUMENT_KEYS
    for key in spec:
        if key not in known and not _dropped(key):
            raise UnknownKeyError(f"top level: unknown key {key!r}")
    return {
        NOTE_KEY: NOTE,
        "paths": {path: _path_item(path, item) for path, item in spec.get("paths", {}).items()},
        "definitions": {
            name: _schema(schema, f"definitions/{name}")
            for name, schema in spec.get("definitions", {}).items()
        },
    }


def render(model: Mapping[str, Any]) -> str:
    """The extract as committed: sorted keys, one-space indents, a final newline."""
    return json.dumps(model, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def _dropped(key: str) -> bool:
    return key in PROSE_KEYS or (key.startswith("x-") and key != SANDBOX)


def _path_item(path: str, item: Mapping[str, Any]) -> dict[str, Any]:
    kept: dict[str, Any] = {}
    for key, value in item.items():
        if key in HTTP_METHODS:
            kept[key] = _operation(value, f"{path} {key}")
        elif key == "parameters" and value:
            raise UnknownKeyError(f"{path}: parameters shared by the path's operations")
        elif key != "parameters" and not _dropped(key):
            raise UnknownKeyError(f"{path}: unknown key {key!r}")
    return kept


def _operation(operation: Mapping[str, Any], where: str) -> dict[str, Any]:
    for key in operation:
        if key not in ("operationId", "parameters", "responses") and not _dropped(key):
            raise UnknownKeyError(f"{where}: unknown key {key!r}")
    return {
        "operationId": operation["operationId"],
        "parameters": [
            _parameter(p, f"{where} parameter {p.get('name')}")
            for p in operation.get("parameters", [])
        ],
        "responses": {
            status: _response(response, f"{where} {status}")
            for status, response in operation.get("responses", {}).items()
        },
    }


def _parameter(parameter: Mapping[str, Any], where: str) -> dict[str, Any]:
    kept: dict[str, Any] = {}
    for key, value in parameter.items():
        if key == "schema":
            kept[key] = _schema(value, f"{where} schema")
        elif key in PARAMETER_KEYS:
            kept[key] = value
        elif key in SCHEMA_KEYWORDS:
            kept[key] = _keyword(key, value, where)
        elif not _dropped(key):
            raise UnknownKeyError(f"{where}: unknown key {key!r}")
    return kept


def _response(response: Mapping[str, Any], where: str) -> dict[str, Any]:
    kept: dict[str, Any] = {}
    for key, value in response.items():
        if key == "schema":
            kept[key] = _schema(value, f"{where} schema")
        elif key == SANDBOX:
            kept[key] = _sandbox(value, where)
        elif key != "headers" and not _dropped(key):
            # Response headers only carry notes for people; the SDK reads them by name.
            raise UnknownKeyError(f"{where}: unknown key {key!r}")
    return kept


def _sandbox(sandbox: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The static cases, whole: recorded requests and answers are data, not prose."""
    for key in sandbox:
        if key != "static":
            raise UnknownKeyError(f"{where} {SANDBOX}: unknown key {key!r}")
    cases = sandbox.get("static", [])
    for index, case in enumerate(cases):
        if set(case) - {"request", "response"} or set(case.get("request", {})) - {"parameters"}:
            raise UnknownKeyError(f"{where} {SANDBOX} case {index}: unexpected keys")
    return {"static": [dict(case) for case in cases]}


def _schema(schema: Any, where: str) -> Any:
    if not isinstance(schema, Mapping):
        raise UnknownKeyError(f"{where}: a schema must be an object")
    kept: dict[str, Any] = {}
    for key, value in schema.items():
        if key in SCHEMA_KEYWORDS:
            kept[key] = _keyword(key, value, where)
        elif not _dropped(key):
            raise UnknownKeyError(f"{where}: unknown schema keyword {key!r}")
    return kept


def _keyword(key: str, value: Any, where: str) -> Any:
    if key == "properties":
        return {name: _schema(sub, f"{where}/{name}") for name, sub in value.items()}
    if key == "items" or (key == "additionalProperties" and isinstance(value, Mapping)):
        return _schema(value, f"{where}[]")
    if key == "allOf":
        return [_schema(sub, f"{where} allOf") for sub in value]
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", type=Path, default=SPEC_PATH, help="the official model")
    parser.add_argument("--out", type=Path, default=MODEL_PATH, help="the extract to write")
    parser.add_argument(
        "--check", action="store_true", help="compare only; exit 1 if the extract is stale"
    )
    args = parser.parse_args(argv)
    if not args.spec.is_file():
        parser.error(f"no model at {args.spec} (give its path with --spec)")
    text = render(extract(json.loads(args.spec.read_text(encoding="utf-8"))))
    current = args.out.read_text(encoding="utf-8") if args.out.is_file() else None
    if args.check:
        if current != text:
            print(f"{args.out} is out of date: run python tests/spec_data/extract.py")
            return 1
        print(f"{args.out} is up to date")
        return 0
    if current != text:
        args.out.write_text(text, encoding="utf-8")
        print(f"wrote {args.out} ({len(text.encode())} bytes)")
    else:
        print(f"{args.out} was already up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
