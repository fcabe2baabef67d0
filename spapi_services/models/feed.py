"""What the change feed yields: a job that was created or changed, and where to resume.

These are the SDK's own shapes, not the API's: the Services API has no change events,
so :meth:`~spapi_services.resources.ServiceJobs.changes` makes them by polling.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Generic, TypeVar

import attrs

from ._base import ApiEnum
from .jobs import ServiceJob

__all__ = ["ChangeKind", "JobChange", "SellerChange"]

S = TypeVar("S")


class ChangeKind(ApiEnum):
    """Whether a change brought a job the feed had not seen, or changed a known one.

    Like the API's enums it keeps a value it does not know (from a newer release's
    resume file or webhook, say) as a member instead of failing.
    """

    CREATED = "created"
    """A job new to the feed, created at or after the start of the feed's previous
    polling window (for its first polls, ``since``)."""
    UPDATED = "updated"
    """A job the feed had seen with other content, or one created before that (such as
    a job created before ``since`` and changed after it)."""


class _Deferred:
    """A string made on first use, then kept (resume tokens cost a little to encode)."""

    __slots__ = ("_make", "_value")

    def __init__(self, make: Callable[[], str]) -> None:
        self._make: Callable[[], str] | None = make
        self._value = ""

    def get(self) -> str:
        if self._make is not None:
            self._value, self._make = self._make(), None
        return self._value


def _deferred(value: str | Callable[[], str] | _Deferred) -> _Deferred:
    if isinstance(value, _Deferred):
        return value
    if isinstance(value, str):
        text = value
        return _Deferred(lambda: text)
    return _Deferred(value)


@attrs.frozen(kw_only=True)
class JobChange:
    """One change of one service job, as a change feed saw it.

    ``job`` is the whole job as the API returned it when the change was seen (a later
    change of the same job comes as another ``JobChange``).  ``content_hash`` is the
    SHA-256 of the job's JSON in a canonical form: two changes of one job with the same
    hash carry the same content, and ``(job id, content_hash)`` names a change for
    de-duplication (see :attr:`change_id`).  ``seen_at`` is when the feed read it, on
    the client's clock.  ``resume_token`` is where to resume: pass it to
    ``client.service_jobs.changes(resume_token=...)`` and the new feed yields every
    change after this one and none before it (empty for a change made elsewhere than a
    feed).
    """

    kind: ChangeKind
    job: ServiceJob
    seen_at: datetime
    content_hash: str
    _token: _Deferred = attrs.field(
        alias="resume_token",
        factory=lambda: _deferred(""),
        converter=_deferred,
        eq=False,
        repr=False,
    )

    @property
    def resume_token(self) -> str:
        """An opaque string: resuming from it yields every change after this one."""
        return self._token.get()

    @property
    def service_job_id(self) -> str:
        """The changed job's id."""
        return self.job.service_job_id or ""

    @property
    def change_id(self) -> str:
        """A stable name for this change: the job id and the first 32 hex digits of its
        content hash.  The same change seen twice (by two feeds, or again after a resume
        past the remembered edge) has the same id, so a receiver can de-duplicate by it."""
        return f"{self.service_job_id}:{self.content_hash[:32]}"

    def to_json(self, job: Any = None) -> dict[str, Any]:
        """The change as JSON-ready data (``kind``, ``seenAt``, ``changeId``,
        ``contentHash``, ``job``), with ``job`` as given (default: the job in the
        API's JSON shape).  The resume token is left out: it is for this process."""
        from .. import _serde

        return {
            "kind": self.kind.value,
            "seenAt": _serde.format_datetime(self.seen_at),
            "changeId": self.change_id,
            "contentHash": self.content_hash,
            "job": self.job.to_api_dict() if job is None else job,
        }


@attrs.frozen
class SellerChange(Generic[S]):
    """A change from one of several sellers' feeds merged into one
    (:func:`spapi_services.feed.merge_changes`): the seller's key, and the change."""

    seller: S
    change: JobChange
