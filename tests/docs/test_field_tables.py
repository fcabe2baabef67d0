"""The reference's field tables outside the models: a description for every field.

A class's attributes are one table on its reference page (docs/_tooling/
griffe_reference.py); a field's description is its ``#:`` comment or docstring.  A table
none of whose fields has one shows no Description column at all.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

#: Reference page -> the classes on it whose every field must be described.
DESCRIBED = {
    "client": ["RetryPolicy", "LwaCredentials", "AccessToken"],
    "sync": [
        "sync.SyncReport",
        "sync.SyncProgress",
        "sync.RunSummary",
        "sync.SinkState",
        "sync.RewriteReport",
        "sync.Window",
        "sync.SyncPlan",
        "sync.SqliteSink",
        "sync.JsonlSink",
        "sync.BuyerKey",
        "sync.BuyerKeys",
    ],
    "emulator": [
        "emulator.ServicesEmulator",
        "emulator.Activity",
        "emulator.ActivityChange",
        "emulator.EmulatedSeller",
        "emulator.Fault",
        "emulator.FaultPlan",
        "emulator.RequestRecord",
        "emulator.StaticSandbox",
    ],
    "webhooks": [
        "webhooks.WebhookEndpoint",
        "webhooks.WebhookMessage",
        "webhooks.Delivery",
        "webhooks.DispatcherStats",
        "webhooks.RetrySchedule",
        "webhooks.AttemptResult",
        "webhooks.WebhookDispatcher",
        "webhooks.WebhookSender",
        "webhooks.AddressGuard",
    ],
}

_HEADING = re.compile(r'<h\d id="([^"]+)" class="doc doc-heading">')
_TABLE = re.compile(r"Attributes:</span></p>\s*<table>(.*?)</table>", re.S)
_ROW = re.compile(r'<tr class="doc-section-item doc-field">(.*?)</tr>', re.S)
_CELL = re.compile(r"<td[^>]*>(.*?)</td>", re.S)


def field_tables(page: Path) -> dict[str, list[tuple[str, str | None]]]:
    """Each class's fields on a page: (name, description, or None with no such column)."""
    parts = _HEADING.split(page.read_text(encoding="utf-8"))
    tables: dict[str, list[tuple[str, str | None]]] = {}
    for heading, body in zip(parts[1::2], parts[2::2], strict=True):
        found = _TABLE.search(body)
        if found is None:
            continue
        # Name, then Type when any field has one, then Description when any has one.
        header = re.findall(r"<th>(.*?)</th>", found[1])
        at = header.index("Description") if "Description" in header else None
        rows = []
        for row in _ROW.findall(found[1]):
            cells = [re.sub(r"<[^>]+>", "", cell).strip() for cell in _CELL.findall(row)]
            rows.append((cells[0], None if at is None else cells[at]))
        tables[heading.removeprefix("spapi_services.")] = rows
    return tables


@pytest.mark.parametrize("page", sorted(DESCRIBED))
def test_every_field_of_these_classes_is_described(built_site: Path, page: str) -> None:
    tables = field_tables(built_site / "reference" / f"{page}.html")
    missing = [name for name in DESCRIBED[page] if name not in tables]
    assert missing == [], f"no field table for {missing} on reference/{page}.html"
    bare = [
        f"{name}.{field}"
        for name in DESCRIBED[page]
        for field, description in tables[name]
        if not description
    ]
    assert bare == [], "fields without a description:\n" + "\n".join(bare)
