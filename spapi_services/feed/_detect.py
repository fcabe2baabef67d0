"""Telling a change from a repeat: a job's content hash, and what a feed remembers.

There is no last-updated field in a service job, so a change is judged by content: the
SHA-256 of the job's JSON in a canonical form (keys sorted, no spaces, amounts written
without trailing zeros, so the same job hashes the same whichever JSON parser read it).
A feed remembers, for each job it may see again, a short key of the job id and the first
eight bytes of the content hash: a job whose remembered content matches is not a change.
Decoding a job and hashing its canonical form is most of a poll's work, and most jobs a
poll finds are ones it found last time, unchanged: so a feed also keeps, for the jobs of
its last poll, a digest of each one's JSON exactly as parsed (:func:`raw_digest`), and a
job whose JSON is the same is known without being decoded.

"Created" is judged by not having been seen, with the job's creation time as a guard
(see :func:`classify`).  Everything here is pure, so the sync's ``on_change`` and the
PostgreSQL outbox can judge changes the same way.
"""

from __future__ import annotations

import hashlib
import json
import marshal
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from ..models.feed import ChangeKind
from ..models.jobs import ServiceJob

__all__ = ["FINGERPRINT_BYTES", "api_json", "classify", "content_hash", "job_key", "raw_digest"]

#: Bytes kept of a job id's hash and of a content hash: 2⁻⁶⁴ odds of taking a changed
#: job for an unchanged one.
FINGERPRINT_BYTES = 8
#: Bytes of a job's :func:`raw_digest`: 2⁻¹²⁸ odds of taking changed JSON for unchanged.
RAW_DIGEST_BYTES = 16


def api_json(job: ServiceJob) -> Any:
    """The job as the API's JSON (camelCase; absent fields left out)."""
    return job.to_api_dict()


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        # 12.50 and 12.5 are one amount; parsers differ on which they give back.
        return format(value.normalize(), "f")
    raise TypeError(f"not JSON: {type(value).__name__}")


def content_hash(job: ServiceJob | Mapping[str, Any]) -> str:
    """The SHA-256 (hex) of a job's JSON in canonical form: equal for equal content.

    Takes the model or its API JSON (a dict), so a stored job hashes as a fetched one.
    """
    data = api_json(job) if isinstance(job, ServiceJob) else job
    text = json.dumps(
        data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_plain
    )
    return hashlib.sha256(text.encode()).hexdigest()


def raw_digest(data: Any) -> bytes:
    """A digest of a job's JSON exactly as parsed, to know a job seen before as it is
    without decoding or hashing it again (most jobs of a poll are such).

    Not canonical, and only for this process: equal digests mean equal JSON (key order,
    number forms and types included, so ``true`` is not ``1``); different ones mean only
    "look closer" (decode the job and compare its :func:`content_hash`).
    """
    try:
        # marshal is C-fast and keeps every type apart; version 2 writes no back
        # references, so equal data gives equal bytes.  (Its bytes are binary and a
        # repr is printable text: the two never coincide.)
        text = marshal.dumps(data, 2)
    except ValueError:  # a Decimal (the standard library's parser reads fractions so)
        text = repr(data).encode("utf-8", "backslashreplace")
    return hashlib.blake2b(text, digest_size=RAW_DIGEST_BYTES).digest()


def job_key(service_job_id: str) -> bytes:
    """A short, fixed-size stand-in for a job id in a feed's memory and resume token."""
    return hashlib.blake2b(service_job_id.encode(), digest_size=FINGERPRINT_BYTES).digest()


def fingerprint(hash_hex: str) -> bytes:
    """The part of a content hash a feed remembers."""
    return bytes.fromhex(hash_hex[: 2 * FINGERPRINT_BYTES])


def classify(
    remembered: bytes | None,
    current: bytes,
    created: datetime | None,
    created_from: datetime,
) -> ChangeKind | None:
    """Whether a job found in a poll is a change, and which kind; ``None`` for a repeat.

    :param remembered: the content fingerprint the feed remembers for the job, if any.
    :param current: the job's content fingerprint now.
    :param created: the job's creation time (``None`` if the API left it out).
    :param created_from: the start of the window before the one the poll asked for
        (for the feed's first poll, its ``since``).

    A remembered job is a change only if its content differs: ``updated``.  A job the
    feed does not remember is ``created`` when it was created at or after
    ``created_from``, else ``updated``.  A job the feed saw and then forgot (it forgets a
    job that drops out of its window) was last updated, so created, before the window
    it dropped out of, which is at the latest the window before this one; a job created
    before the feed's ``since`` and changed after it is ``updated`` too.  A job created
    after the previous window began would have been found by the previous poll, unless
    it was created (or became visible) after that poll read: it is new.
    """
    if remembered is not None:
        return None if remembered == current else ChangeKind.UPDATED
    if created is not None and created < created_from:
        return ChangeKind.UPDATED
    return ChangeKind.CREATED
