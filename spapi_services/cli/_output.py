"""How results reach the person or the program: rich tables, or JSON with ``--json``.

JSON goes to stdout as the API's own shapes (camelCase), one document per command;
messages and progress go to stderr, so ``--json`` output can be piped as it is.  Tables
never show buyers' names, phones or addresses; ``--json`` has the whole record.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.table import Table

from .. import _serde

__all__ = ["Output", "fmt_time"]


def fmt_time(value: datetime | None) -> str:
    """A time for a table: UTC, to the minute (to the second if it has seconds)."""
    if value is None:
        return "-"
    utc = value.astimezone(UTC)
    return utc.strftime("%Y-%m-%d %H:%M:%S" if utc.second else "%Y-%m-%d %H:%M") + "Z"


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return fmt_time(value)
    return str(value)


class Output:
    """Where a command writes: ``out`` for results, ``err`` for messages and progress."""

    def __init__(self, *, as_json: bool, out: Console | None = None, err: Console | None = None):
        self.as_json = as_json
        self.out = out or Console(soft_wrap=False)
        self.err = err or Console(stderr=True)

    def json(self, data: Any) -> None:
        """Write JSON-ready data (or a model) to stdout, compact, on one line."""
        text = _serde.dumps(_serde.unstructure(data))
        sys.stdout.write(text + "\n")
        sys.stdout.flush()

    def table(
        self,
        title: str | None,
        columns: Sequence[str],
        rows: Iterable[Sequence[Any]],
        *,
        caption: str | None = None,
    ) -> None:
        """A rich table of rows (``None`` shows as ``-``, times as UTC)."""
        table = Table(title=title, caption=caption, title_justify="left")
        for name in columns:
            table.add_column(name, overflow="fold")
        for row in rows:
            table.add_row(*(_cell(v) for v in row))
        self.out.print(table)

    def fields(self, title: str | None, pairs: Iterable[tuple[str, Any]]) -> None:
        """A two-column table of labelled values."""
        table = Table(title=title, show_header=False, title_justify="left")
        table.add_column(style="bold")
        table.add_column(overflow="fold")
        for label, value in pairs:
            table.add_row(label, _cell(value))
        self.out.print(table)

    def done(self, message: str) -> None:
        """A one-line confirmation (stdout in table mode; ``{"ok": true}`` with --json)."""
        if self.as_json:
            self.json({"ok": True, "message": message})
        else:
            self.out.print(f"[green]✓[/green] {message}")

    def note(self, message: str) -> None:
        """A side remark on stderr (kept out of --json output)."""
        self.err.print(message)
