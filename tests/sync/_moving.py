"""A world that moves while a sync pages it, and the checks of a mirror against it.

:class:`Churn` moves the emulator's fake clock a step for every getServiceJobs request
served, so the emulator's activity (new jobs, status moves) falls due between pages at a
rate counted in requests, whatever the machine's speed: the same changes land between
the same pages on every run.  The readers fetch a mirror's jobs with their own queries
(SQL, or the JSON Lines read line by line), and :func:`check_mirror` compares them with
the emulator's store.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from spapi_services import _serde
from spapi_services.emulator import FakeClock, ServicesEmulator
from spapi_services.emulator.introspection import RequestRecord
from spapi_services.models.jobs import ServiceJob

LIST = "getServiceJobs"

#: A mirror as its own queries read it: ``serviceJobId -> the job's JSON``, newest.
Mirror = dict[str, dict[str, Any]]


class Churn:
    """Moves ``clock`` by ``step`` seconds after each served request of ``operation``."""

    def __init__(
        self, emu: ServicesEmulator, clock: FakeClock, step: float, operation: str = LIST
    ) -> None:
        self.emu = emu
        self.clock = clock
        self.step = step
        self.operation = operation
        self.active = False
        self._record = emu.traffic.record
        emu.traffic.record = self._advancing  # type: ignore[method-assign]

    def _advancing(self, entry: RequestRecord) -> None:
        self._record(entry)
        if self.active and entry.operation == self.operation and entry.status == 200:
            self.clock.advance(self.step)

    @contextmanager
    def running(self) -> Iterator[None]:
        """Let the world move for the ``with`` block."""
        self.active = True
        try:
            yield
        finally:
            self.active = False


def wire(emu: ServicesEmulator, job_id: str) -> dict[str, Any]:
    """A job of the store as the SDK stores it: the API's JSON, read and written back."""
    job = _serde.structure(emu.store.jobs[job_id].to_wire(), ServiceJob)
    data: dict[str, Any] = json.loads(_serde.dumps(_serde.unstructure(job)))
    return data


def sqlite_mirror(path: Path) -> Mirror:
    with closing(sqlite3.connect(path)) as db:
        return {
            r[0]: json.loads(r[1])
            for r in db.execute("SELECT service_job_id, job FROM service_jobs")
        }


def jsonl_mirror(path: Path) -> Mirror:
    latest: Mirror = {}
    for line in path.read_text().splitlines():
        if line.strip():
            job = json.loads(line)
            latest[job["serviceJobId"]] = job
    return latest


def jsonl_ids_since(path: Path, offset: int) -> list[str]:
    """The ids of the lines appended after ``offset`` bytes (one run's), in order."""
    with path.open("rb") as log:
        log.seek(offset)
        return [
            json.loads(line)["serviceJobId"] for line in log.read().splitlines() if line.strip()
        ]


def check_mirror(
    emu: ServicesEmulator,
    mirror: Mirror,
    *,
    marketplace: str,
    created: tuple[datetime, datetime],
    unchanged_since: datetime,
    present_created_before: datetime | None = None,
) -> tuple[list[str], list[str]]:
    """The jobs missing from the mirror, and the stale ones: ``(missing, stale)``.

    Every job of ``marketplace`` created within ``created`` that has not changed since
    ``unchanged_since`` (when the run began) must be in the mirror exactly as the store
    holds it now.  A job changed since may be in either state, but one created before
    ``present_created_before`` (which a run was paging when it changed) must be there.
    """
    emu.run_activity()
    missing: list[str] = []
    stale: list[str] = []
    low, high = created
    for job in emu.store.jobs.values():
        if job.marketplace_id != marketplace or not low <= job.created <= high:
            continue
        stored = mirror.get(job.service_job_id)
        if job.last_updated <= unchanged_since:
            if stored is None:
                missing.append(job.service_job_id)
            elif stored != wire(emu, job.service_job_id):
                stale.append(job.service_job_id)
        elif (
            present_created_before is not None
            and job.created <= present_created_before
            and stored is None
        ):
            missing.append(job.service_job_id)
    return missing, stale


ReadMirror = Callable[[], Mirror]
