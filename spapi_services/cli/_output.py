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


def _layout(columns: Sequence[str], cells: Sequence[Sequence[str]], room: int) -> list[int | None]:
    """Column widths for a table that would not fit in ``room`` characters as it is.

    An id broken over two lines is hard to copy, so columns of short unspaced values (ids,
    statuses, codes) keep their full width, from the left, while they fit; the other
    columns wrap at spaces and share what is left in proportion to what they hold.
    ``None`` everywhere means the table fits and rich may lay it out itself.
    """
    natural, shortest, whole = [], [], []
    for index, name in enumerate(columns):
        values = [row[index] for row in cells if index < len(row)]
        natural.append(max(len(v) for v in (name, *values)))
        shortest.append(min(max(len(w) for v in (name, *values) for w in v.split() or [""]), 14))
        whole.append(bool(values) and all(len(v) <= 40 and " " not in v for v in values))
    frame = 1 + 3 * len(columns)
    if frame + sum(natural) <= room:
        return [None] * len(columns)
    widths = list(shortest)
    for index in range(len(columns)):
        if whole[index] and frame + sum(widths) - widths[index] + natural[index] <= room:
            widths[index] = natural[index]
    spare = room - frame - sum(widths)
    wants = {i: natural[i] - widths[i] for i in range(len(columns)) if natural[i] > widths[i]}
    total = sum(wants.values())
    if spare > 0 and total:
        for index, want in wants.items():
            widths[index] += min(want, spare * want // total)
    return [max(1, w) for w in widths]


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
        cells = [[_cell(v) for v in row] for row in rows]
        widths = _layout(columns, cells, self.out.width)
        table = Table(title=title, caption=caption, title_justify="left")
        for name, width in zip(columns, widths, strict=True):
            table.add_column(name, overflow="fold", width=width)
        for row in cells:
            table.add_row(*row)
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
