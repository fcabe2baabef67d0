"""How results reach the person or the program: rich tables, or JSON with ``--json``.

JSON goes to stdout as the API's own shapes (camelCase), one document per command;
messages and progress go to stderr, so ``--json`` output can be piped as it is.  Tables
never show buyers' names, phones or addresses; ``--json`` has the whole record.

A value someone may copy (a job id, an appointment id, an upload destination id) is
never cut or broken over lines: table columns are at least as wide as their longest
word, headers included, and a table that cannot fit that way is printed as one block
of ``label  value`` lines per row instead.  A value longer than the whole terminal is
written as one unbroken line (the terminal folds it on screen; a copy gets it whole).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from .. import _serde
from .._pipes import EXIT_PIPE_CLOSED, silence_stdout

__all__ = ["Output", "error_console", "fmt_instant", "fmt_time", "layout", "plural"]


class _Notice(Protocol):
    """An API warning or error entry: a code, a message, sometimes details."""

    @property
    def code(self) -> str: ...

    @property
    def message(self) -> str: ...

    @property
    def details(self) -> str | None: ...


def fmt_time(value: datetime | None) -> str:
    """A time for a table: UTC, to the minute (to the second if it has seconds)."""
    if value is None:
        return "-"
    utc = value.astimezone(UTC)
    return fmt_instant(utc) if utc.second else utc.strftime("%Y-%m-%d %H:%M") + "Z"


def fmt_instant(value: datetime) -> str:
    """A time to the second, always (``2026-12-07 23:31:00Z``): for times shown one under
    another, such as a stream of changes, which keep one width."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") + "Z"


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """``1 page``, ``2 pages``; ``nouns`` for an irregular plural."""
    return f"{count} {noun if count == 1 else nouns or noun + 's'}"


def _cell(value: Any, seconds: bool = False) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return fmt_instant(value) if seconds else fmt_time(value)
    return str(value)


def _cells(rows: Iterable[Sequence[Any]]) -> list[list[str]]:
    """The rows as text; a column's times all to the second if any has seconds, so that
    they keep one width (``15:00:00Z`` under ``21:44:40Z``, not ``15:00Z``)."""
    rows = [list(row) for row in rows]
    width = max((len(row) for row in rows), default=0)
    seconds = [
        any(
            isinstance(row[i], datetime) and row[i].astimezone(UTC).second
            for row in rows
            if i < len(row)
        )
        for i in range(width)
    ]
    return [[_cell(value, seconds[i]) for i, value in enumerate(row)] for row in rows]


def _longest(values: Iterable[str], *, words: bool) -> int:
    pieces = (p for v in values for p in (v.split() if words else v.splitlines()))
    return max((len(p) for p in pieces), default=0)


def layout(columns: Sequence[str], cells: Sequence[Sequence[str]], room: int) -> list[int] | None:
    """Column widths that fit ``room`` characters without breaking any word, or ``None``.

    Each column gets at least its longest word (so neither an id nor a header is ever
    split), then a share of what is left in proportion to how much more it would take
    to show every value on one line.
    """
    frame = 1 + 3 * len(columns)  # borders, and one space of padding on each side
    values = [[name, *(row[i] for row in cells)] for i, name in enumerate(columns)]
    natural = [max(1, _longest(v, words=False)) for v in values]
    if frame + sum(natural) <= room:
        return natural
    least = [max(1, _longest(v, words=True)) for v in values]
    spare = room - frame - sum(least)
    if spare < 0:
        return None
    wants = [n - s for n, s in zip(natural, least, strict=True)]
    total = sum(wants)
    widths = [s + spare * w // total for s, w in zip(least, wants, strict=True)]
    # Whatever the rounding left goes to the columns still furthest from one line each.
    left = room - frame - sum(widths)
    for index in sorted(range(len(widths)), key=lambda i: widths[i] - natural[i])[:left]:
        widths[index] += 1
    return widths


class _Console(Console):
    """A rich console that stops the command quietly when its reader has gone (``| head``):
    with the status :mod:`spapi_services._pipes` explains, not rich's own 1."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        silence_stdout()
        raise SystemExit(EXIT_PIPE_CLOSED)


def error_console() -> Console:
    """A console on stderr that stops the command quietly when its reader has gone."""
    return _Console(stderr=True)


class Output:
    """Where a command writes: ``out`` for results, ``err`` for messages and progress."""

    def __init__(self, *, as_json: bool, out: Console | None = None, err: Console | None = None):
        self.as_json = as_json
        self.out = out or _Console(soft_wrap=False)
        self.err = err or error_console()

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
        """A table of rows (``None`` shows as ``-``, times as UTC), or one block per row."""
        cells = _cells(rows)
        widths = layout(columns, cells, self.out.width)
        if widths is None:
            self._blocks(title, columns, cells, caption)
            return
        table = Table(title=title, caption=caption, title_justify="left")
        for name, width in zip(columns, widths, strict=True):
            table.add_column(name, width=width, overflow="fold")
        for row in cells:
            table.add_row(*(Text(c) for c in row))
        self.out.print(table)

    def fields(self, title: str | None, pairs: Iterable[tuple[str, Any]]) -> None:
        """Labelled values: a two-column table, or aligned lines if a value is too wide."""
        rows = [(label, _cell(value)) for label, value in pairs]
        widths = layout(["", ""], rows, self.out.width)
        if widths is None:
            self._lines(title, rows)
            return
        table = Table(title=title, show_header=False, title_justify="left")
        table.add_column(style="bold", width=widths[0])
        table.add_column(width=widths[1], overflow="fold")
        for label, value in rows:
            table.add_row(Text(label), Text(value))
        self.out.print(table)

    def _blocks(
        self,
        title: str | None,
        columns: Sequence[str],
        cells: Sequence[Sequence[str]],
        caption: str | None,
    ) -> None:
        if title:
            self.out.print(Text(title, style="italic"))
        for row in cells:
            self._lines(None, list(zip(columns, row, strict=True)))
            self.out.print()
        if caption:
            self.out.print(Text(caption, style="dim italic"))

    def _lines(self, title: str | None, rows: Sequence[tuple[str, str]]) -> None:
        if title:
            self.out.print(Text(title, style="italic"))
        width = max((len(label) for label, _ in rows), default=0)
        for label, value in rows:
            line = Text.assemble((label.ljust(width), "bold"), "  ", value)
            self.out.print(line, soft_wrap=True)

    def say(self, message: str) -> None:
        """Prose on stdout (rich markup allowed): wrapped at spaces, no word ever broken."""
        longest = _longest([Text.from_markup(message).plain], words=True)
        self.out.print(message, soft_wrap=longest > self.out.width)

    def done(self, message: str) -> None:
        """A one-line confirmation (stdout in table mode; ``{"ok": true}`` with --json)."""
        if self.as_json:
            self.json({"ok": True, "message": message})
        else:
            self.say(f"[green]✓[/green] {escape(message)}")

    def note(self, message: str) -> None:
        """A side remark on stderr (kept out of --json output)."""
        self.err.print(message)

    def note_json(self, data: dict[str, Any]) -> None:
        """A side remark for programs: one JSON line on stderr (stdout keeps the result)."""
        sys.stderr.write(_serde.dumps(data) + "\n")
        sys.stderr.flush()

    def warnings(
        self, warnings: Iterable[_Notice] | None, errors: Iterable[_Notice] | None = None
    ) -> None:
        """The API's warnings (and per-record errors) of a successful call, once each, a
        line each (never broken: details name resources to act on).

        Not with --json: they are in the JSON document already.
        """
        if self.as_json:
            return
        for kind, style, notices in (("warning", "yellow", warnings), ("error", "red", errors)):
            for notice in notices or ():
                line = f"[{style}]{kind}[/{style}] [bold]{escape(notice.code)}[/bold]: "
                line += escape(notice.message)
                if notice.details:
                    line += f" [dim]({escape(notice.details)})[/dim]"
                self.err.print(line, soft_wrap=True)
