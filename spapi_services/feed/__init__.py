"""Change feeds of service jobs: react to new and changed jobs within seconds.

The Services API sends no notifications for service jobs, so a feed polls
``getServiceJobs`` for the jobs updated lately and yields each new or changed one once
(:meth:`client.service_jobs.changes() <spapi_services.resources.ServiceJobs.changes>`).
:func:`merge_changes` merges several sellers' feeds into one iterator.  The pieces that
judge a change (:func:`content_hash`, :func:`classify`) are here for other publishers of
changes to judge them the same way.
"""

from __future__ import annotations

from ..models.feed import ChangeKind, JobChange, SellerChange
from ._detect import classify, content_hash
from ._feed import (
    DEFAULT_INTERVAL,
    DEFAULT_OVERLAP,
    FEED_SHARE,
    MARGIN,
    JobFeed,
    is_transient,
)
from ._merge import MergedChanges, merge_changes
from ._token import EDGE_LIMIT

__all__ = [
    "DEFAULT_INTERVAL",
    "DEFAULT_OVERLAP",
    "EDGE_LIMIT",
    "FEED_SHARE",
    "MARGIN",
    "ChangeKind",
    "JobChange",
    "JobFeed",
    "MergedChanges",
    "SellerChange",
    "classify",
    "content_hash",
    "is_transient",
    "merge_changes",
]
