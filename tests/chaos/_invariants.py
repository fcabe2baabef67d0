"""What must hold after a campaign, each checked with our own SQL against PostgreSQL and
read against the emulator's store (and :class:`~._workload.Versions`, its history).

Each check is a plain function returning its :class:`Finding` list (empty: it holds).
Besides the state after the final clean round, an **audit** of every committed write to
``service_jobs`` and ``sync_checkpoints`` (a trigger of ours, installed once the fleet
has made its tables) lets :func:`stale_moments` replay the mirror's history and find
the moments it claimed to be synced up to a time while holding an older version of a
job changed before that time: what a write from a fenced-out holder does, even if a
later sync repairs it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import attrs

from ._workload import Versions, moment_before

if TYPE_CHECKING:
    import asyncpg

__all__ = [
    "AUDIT_SQL",
    "INVARIANTS",
    "Finding",
    "checkpoint_not_ahead",
    "every_job_once",
    "every_seller_ok",
    "install_audit",
    "no_job_differs",
    "stale_moments",
]

#: Seconds a job's change must precede a checkpoint to count as "before" it: the sync
#: rounds its end up to the millisecond, and a change within that edge may be either side.
EDGE = 0.01


@attrs.frozen
class Finding:
    """One violation of an invariant: which, of what, and what was seen."""

    invariant: str
    subject: str
    detail: str

    def __str__(self) -> str:
        return f"{self.invariant}: {self.subject}: {self.detail}"


#: The invariants, in the order they are reported, with what each one means.
INVARIANTS = {
    "every_job_once": "every job of every seller is in service_jobs exactly once (none "
    "missing, none extra, none twice)",
    "no_job_differs": "every stored job equals the emulator's current version",
    "checkpoint_not_ahead": "for each seller and marketplace, every job updated before the "
    "checkpoint is stored at its current version",
    "no_stale_moment": "at no commit did the mirror hold a job older than its checkpoint "
    "claims (audit of every write, replayed)",
    "every_seller_ok": "every seller's status is ok after a sync started after the heal",
    "no_worker_died": "no worker or scheduler process ended except those the campaign "
    "killed or stopped (taskiq's manager restarting its child counts as a death)",
    "no_stall": "no running seller went stall_after seconds without a write or a status "
    "change while its worker was unhurt; the status probe always answered in time; no "
    "worker, stopped once every sync had ended, was left waiting for a task",
}

AUDIT_SQL = """
CREATE TABLE IF NOT EXISTS {s}.chaos_audit (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT clock_timestamp(),
    tbl text NOT NULL,
    op text NOT NULL,
    seller_id text NOT NULL,
    item text NOT NULL,
    job jsonb,
    synced_until timestamptz,
    writer text DEFAULT current_setting('application_name')
);
CREATE OR REPLACE FUNCTION {s}.chaos_audit_job() RETURNS trigger AS $$
BEGIN
    INSERT INTO {s}.chaos_audit (tbl, op, seller_id, item, job)
        VALUES ('job', TG_OP, NEW.seller_id, NEW.service_job_id, NEW.job);
    RETURN NULL;
END $$ LANGUAGE plpgsql;
CREATE OR REPLACE FUNCTION {s}.chaos_audit_checkpoint() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        INSERT INTO {s}.chaos_audit (tbl, op, seller_id, item)
            VALUES ('checkpoint', TG_OP, OLD.seller_id, OLD.scope);
    ELSE
        INSERT INTO {s}.chaos_audit (tbl, op, seller_id, item, synced_until)
            VALUES ('checkpoint', TG_OP, NEW.seller_id, NEW.scope, NEW.synced_until);
    END IF;
    RETURN NULL;
END $$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS chaos_audit ON {s}.service_jobs;
CREATE TRIGGER chaos_audit AFTER INSERT OR UPDATE ON {s}.service_jobs
    FOR EACH ROW EXECUTE FUNCTION {s}.chaos_audit_job();
DROP TRIGGER IF EXISTS chaos_audit ON {s}.sync_checkpoints;
CREATE TRIGGER chaos_audit AFTER INSERT OR UPDATE OR DELETE ON {s}.sync_checkpoints
    FOR EACH ROW EXECUTE FUNCTION {s}.chaos_audit_checkpoint();
"""


async def install_audit(db: asyncpg.Pool[asyncpg.Record], schema: str) -> None:
    """Record every committed write of jobs and checkpoints (a rolled-back one leaves none)."""
    await db.execute(AUDIT_SQL.format(s=schema))


# --- the state after the final round -----------------------------------------------------


async def stored_jobs(
    db: asyncpg.Pool[asyncpg.Record], schema: str
) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Every stored job by (seller, job id): a list, so a duplicate would show as two."""
    rows = await db.fetch(f"SELECT seller_id, service_job_id, job FROM {schema}.service_jobs")
    found: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        found.setdefault((row["seller_id"], row["service_job_id"]), []).append(
            json.loads(row["job"])
        )
    return found


def every_job_once(
    stored: dict[tuple[str, str], list[dict[str, Any]]], versions: Versions
) -> list[Finding]:
    """Each job the emulator has is stored once; nothing else is stored."""
    findings = []
    for key in sorted(versions.jobs.keys() - stored.keys()):
        findings.append(Finding("every_job_once", "/".join(key), "missing from service_jobs"))
    for key in sorted(stored.keys() - versions.jobs.keys()):
        findings.append(Finding("every_job_once", "/".join(key), "stored, but no such job"))
    for key, rows in sorted(stored.items()):
        if len(rows) > 1:
            findings.append(Finding("every_job_once", "/".join(key), f"stored {len(rows)} times"))
    return findings


def no_job_differs(
    stored: dict[tuple[str, str], list[dict[str, Any]]], versions: Versions
) -> list[Finding]:
    """Each stored job is the emulator's current version of it."""
    findings = []
    for key, rows in sorted(stored.items()):
        if key not in versions.jobs:
            continue
        current = versions.current(key)
        for row in rows:
            seen = versions.which(key, row)
            if seen != current:
                shown = "matching no version" if seen is None else f"version {seen}"
                findings.append(
                    Finding(
                        "no_job_differs",
                        "/".join(key),
                        f"stored {shown}, the emulator's is version {current} "
                        f"(status {row.get('serviceJobStatus')!r} stored, "
                        f"{versions.jobs[key][current].record.get('serviceJobStatus')!r} now)",
                    )
                )
    return findings


async def checkpoints(
    db: asyncpg.Pool[asyncpg.Record], schema: str
) -> dict[tuple[str, str], datetime]:
    """(seller, marketplace) -> the checkpoint's ``synced_until``."""
    rows = await db.fetch(f"SELECT seller_id, scope, synced_until FROM {schema}.sync_checkpoints")
    return {(r["seller_id"], r["scope"]): r["synced_until"] for r in rows}


def checkpoint_not_ahead(
    stored: dict[tuple[str, str], list[dict[str, Any]]],
    marks: dict[tuple[str, str], datetime],
    versions: Versions,
    sellers: Iterable[str],
    marketplaces: Iterable[str],
) -> list[Finding]:
    """Every seller has a checkpoint per marketplace, and no checkpoint claims a job
    changed before it that the mirror holds an older version of (or not at all)."""
    findings = []
    scopes = list(marketplaces)
    for seller_id in sellers:
        for scope in scopes:
            if (seller_id, scope) not in marks:
                findings.append(
                    Finding("checkpoint_not_ahead", f"{seller_id}/{scope}", "no checkpoint")
                )
    for key in versions.jobs:
        mark = marks.get((key[0], versions.marketplace[key]))
        if mark is None:
            continue
        due = versions.current(key)
        if versions.jobs[key][due].updated >= moment_before(mark, EDGE):
            continue  # changed after the checkpoint: the next sync's to fetch
        rows = stored.get(key, [])
        seen = [versions.which(key, row) for row in rows]
        if not rows or any(s is None or s < due for s in seen):
            findings.append(
                Finding(
                    "checkpoint_not_ahead",
                    "/".join(key),
                    f"checkpoint {mark.isoformat()} covers version {due}, stored "
                    f"{'nothing' if not rows else seen}",
                )
            )
    return findings


async def every_seller_ok(
    db: asyncpg.Pool[asyncpg.Record], schema: str, sellers: Iterable[str], healed: datetime
) -> list[Finding]:
    """Every seller's status is ``ok``, from a sync that started after the heal."""
    rows = await db.fetch(
        f"SELECT seller_id, state, started_at, last_error FROM {schema}.fleet_status"
    )
    found = {r["seller_id"]: r for r in rows}
    findings = []
    for seller_id in sellers:
        row = found.get(seller_id)
        if row is None:
            findings.append(Finding("every_seller_ok", seller_id, "no status: never synced"))
        elif row["state"] != "ok" or row["started_at"] is None or row["started_at"] < healed:
            findings.append(
                Finding(
                    "every_seller_ok",
                    seller_id,
                    f"state {row['state']!r}, started {row['started_at']}, healed {healed}; "
                    f"last error: {(row['last_error'] or '')[:200]}",
                )
            )
    return findings


# --- the history of every write ------------------------------------------------------------


async def audit_rows(db: asyncpg.Pool[asyncpg.Record], schema: str) -> list[asyncpg.Record]:
    """Every audited write, in the order the writes were made."""
    return await db.fetch(
        f"SELECT id, at, tbl, op, seller_id, item, job, synced_until, writer"
        f" FROM {schema}.chaos_audit ORDER BY id"
    )


def stale_moments(rows: Iterable[asyncpg.Record], versions: Versions) -> list[Finding]:
    """Replay the audit: after each write, does any checkpoint claim more than is stored?

    At the moment of each write, a checkpoint covers a job whose version current then was
    made before the checkpoint.  A job write that leaves such a job older than that
    version, or a checkpoint write that covers a version not stored, is a finding, with
    its writer (each process connects under an ``application_name`` of its own).
    Versions and writes are compared on this machine's one clock (the emulator's and
    PostgreSQL's).
    """
    stored: dict[tuple[str, str], int | None] = {}
    marks: dict[tuple[str, str], datetime] = {}
    by_scope: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for key, scope in versions.marketplace.items():
        by_scope.setdefault((key[0], scope), []).append(key)
    findings: list[Finding] = []
    reported: set[tuple[str, str]] = set()  # a job's first stale moment tells its story

    def behind(key: tuple[str, str], mark: datetime, moment: datetime) -> int | None:
        """The version a checkpoint ``mark`` requires at ``moment``, if it is not stored:
        the job's version current then, when it was made before the mark."""
        due = versions.at(key, moment)
        if due is None or versions.jobs[key][due].updated >= moment_before(mark, EDGE):
            return None
        have = stored.get(key)
        return due if have is None or have < due else None

    for row in rows:
        writer = row["writer"] or "an unnamed connection"
        when = row["at"].isoformat()
        if row["tbl"] == "job":
            key = (row["seller_id"], row["item"])
            if key not in versions.jobs:
                continue
            stored[key] = versions.which(key, json.loads(row["job"]))
            mark = marks.get((key[0], versions.marketplace[key]))
            due = None if mark is None else behind(key, mark, row["at"])
            if due is not None and key not in reported:
                reported.add(key)
                findings.append(
                    Finding(
                        "no_stale_moment",
                        "/".join(key),
                        f"{when}: {writer} wrote version {stored[key]} while the checkpoint "
                        f"{mark.isoformat() if mark else ''} covers version {due}",
                    )
                )
            continue
        scope_key = (row["seller_id"], row["item"])
        if row["op"] == "DELETE":
            marks.pop(scope_key, None)
            continue
        marks[scope_key] = row["synced_until"]
        for key in by_scope.get(scope_key, []):
            due = behind(key, row["synced_until"], row["at"])
            if due is None or key in reported:
                continue
            reported.add(key)
            findings.append(
                Finding(
                    "no_stale_moment",
                    "/".join(key),
                    f"{when}: {writer} set the checkpoint of {scope_key[1]} to "
                    f"{row['synced_until'].isoformat()}, covering version {due}, while "
                    f"version {stored.get(key)} was stored",
                )
            )
    return findings
