"""What a sync run sets out to fetch: its time range cut into windows, and their progress.

A run covers one marketplace (its *scope*) and one time range.  The first run of a scope
searches by creation time from ``since``; every later run searches by last-update time
from the previous run's end, less a small overlap.  A large range is cut into windows of
equal length, each paged through with its own page tokens, so several pages can be in
flight at once.  A window remembers the token of its next page and whether it is finished; the
sink stores that with the jobs of each page, which is what makes a run resumable.

A window whose pages have all been stored is not finished yet: it waits for a check (its
first page asked for again, to see whether its result set changed while it was paged),
and the sink stores that state like a token, as :data:`CHECK_PENDING`.  A window whose
result set changed may be cut into smaller windows appended to the plan; it is then
finished, with :data:`CUT` in place of a token.  Both are ordinary text, so every sink
stores them as it stores a token, and a plan written by an older version reads the same.
"""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, datetime, timedelta

import attrs

__all__ = [
    "BOUNDARY_MARGIN",
    "CHECK_PENDING",
    "CUT",
    "MIN_PIECE",
    "Mode",
    "SyncPlan",
    "Window",
    "cut",
    "format_time",
    "parse_time",
    "pieces_allowed",
    "split",
    "truncate",
]

#: How far each window's search reaches past an inner boundary.  The API does not say
#: whether ``createdAfter``/``createdBefore`` are inclusive; reaching a second beyond the
#: boundary on both sides means a job created exactly on it cannot fall between two
#: windows.  The few jobs this fetches twice are deduplicated by the sinks.
BOUNDARY_MARGIN = timedelta(seconds=1)
#: The shortest range a window is cut into when it is cut again: four margins, so the
#: pieces' overlap (two margins) stays under half of each.
MIN_PIECE = 4 * BOUNDARY_MARGIN
#: In place of a page token: the window's pages are stored and its check is due.  (Not a
#: token the API could issue: no API token starts with the SDK's name and a colon.)
CHECK_PENDING = "spapi-services:check"
#: In place of a page token: the window was cut into smaller windows, which cover it.
CUT = "spapi-services:cut"


class Mode(enum.Enum):
    """Which time a run's windows cut: creation (first run) or last update (later runs)."""

    CREATED = "created"
    UPDATED = "updated"


@attrs.define(kw_only=True)
class Window:
    """A slice of a run's time range and how far its paging has got.

    ``query_start``/``query_end`` are what is sent (the slice widened by
    :data:`BOUNDARY_MARGIN` at inner boundaries).  ``page_token`` is the token of the next
    page to fetch, ``None`` before the first page, :data:`CHECK_PENDING` once the last
    page is stored and the check is due, :data:`CUT` once the window is cut into others;
    ``done`` is set once the window is checked (or cut).  ``pages`` and ``jobs`` count
    what has been stored for this window over the whole run, resumptions included;
    ``expected`` is the API's ``totalResultSize`` for the window when its latest pass
    through the pages began (its first page), once a page has told us.
    """

    #: The window's place in its run.
    index: int
    #: The start of its slice of the run's range.
    start: datetime
    #: The end of its slice.
    end: datetime
    #: The start sent to the API (the slice widened at inner boundaries).
    query_start: datetime
    #: The end sent to the API.
    query_end: datetime
    #: The token of the next page to fetch (``None`` before the first page; a marker once the window
    #: waits for its check, or was cut).
    page_token: str | None = None
    #: Whether the window is paged and checked (or cut into others).
    done: bool = False
    #: Pages stored for the window over the whole run.
    pages: int = 0
    #: Jobs stored for the window over the whole run.
    jobs: int = 0
    #: The API's ``totalResultSize`` for the window when its latest pass began (``None`` until a
    #: page has told).
    expected: int | None = None

    @property
    def checking(self) -> bool:
        """Whether every page is stored and the window waits for its check."""
        return self.page_token == CHECK_PENDING and not self.done

    @property
    def superseded(self) -> bool:
        """Whether the window was cut into smaller windows, which cover its range."""
        return self.page_token == CUT


@attrs.define(kw_only=True)
class SyncPlan:
    """One run: its scope, mode and time range, and the windows that cover the range.

    When every window is done, ``end`` becomes the scope's checkpoint.
    """

    #: The run's id.
    run_id: str
    #: The marketplace id.
    scope: str
    #: Which time the windows cut: creation or last update.
    mode: Mode
    #: The start of the run's time range.
    start: datetime
    #: The end of the range: the scope's checkpoint once every window is done.
    end: datetime
    #: The windows that cover the range.
    windows: list[Window]

    @classmethod
    def new(
        cls, *, scope: str, mode: Mode, start: datetime, end: datetime, windows: int
    ) -> SyncPlan:
        """A fresh plan whose range is cut into ``windows`` equal slices.

        Times are cut to the millisecond, the precision the sinks store, so a plan read
        back from a sink sends exactly the same searches.
        """
        # The end is rounded up: a job changed a moment before the run began belongs in it.
        start, end = truncate(start), truncate(end + timedelta(microseconds=999))
        return cls(
            run_id=uuid.uuid4().hex,
            scope=scope,
            mode=mode,
            start=start,
            end=end,
            windows=split(start, end, windows),
        )

    @property
    def pending(self) -> list[Window]:
        """The windows not finished yet, in order."""
        return [w for w in self.windows if not w.done]


def split(start: datetime, end: datetime, count: int) -> list[Window]:
    """``[start, end]`` cut into ``count`` windows of equal length (to the millisecond).

    A range too short for that many windows of at least a millisecond gets fewer.
    """
    if end <= start:
        raise ValueError("the end of a sync range must be after its start")
    span_ms = int((end - start) / timedelta(milliseconds=1))
    count = max(1, min(count, span_ms))
    bounds = [start + timedelta(milliseconds=span_ms * i // count) for i in range(count)]
    bounds.append(end)
    last = count - 1
    return [
        Window(
            index=i,
            start=bounds[i],
            end=bounds[i + 1],
            query_start=bounds[i] - BOUNDARY_MARGIN if i > 0 else bounds[i],
            query_end=bounds[i + 1] + BOUNDARY_MARGIN if i < last else bounds[i + 1],
        )
        for i in range(count)
    ]


def cut(window: Window, count: int, first_index: int) -> list[Window]:
    """``window``'s search range cut into ``count`` windows, numbered from ``first_index``.

    The pieces send exactly the window's search at their outer edges, and overlap by
    :data:`BOUNDARY_MARGIN` on each side of their inner boundaries, as a plan's windows do.
    """
    pieces = split(window.query_start, window.query_end, count)
    for offset, piece in enumerate(pieces):
        piece.index = first_index + offset
    return pieces


def pieces_allowed(window: Window) -> int:
    """How many pieces ``window`` can be cut into, each at least :data:`MIN_PIECE` long."""
    return int((window.query_end - window.query_start) / MIN_PIECE)


def truncate(value: datetime) -> datetime:
    """``value`` in UTC, cut to the millisecond."""
    utc = value.astimezone(UTC)
    return utc.replace(microsecond=utc.microsecond // 1000 * 1000)


def format_time(value: datetime) -> str:
    """UTC text of fixed width (``2026-01-02T03:04:05.678Z``): text order is time order."""
    utc = value.astimezone(UTC)
    return f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond // 1000:03d}Z"


def parse_time(text: str) -> datetime:
    """Read back what :func:`format_time` wrote (any ISO 8601 text with an offset)."""
    value = datetime.fromisoformat(text)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
