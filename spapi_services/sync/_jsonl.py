"""A JSON Lines file as the mirror: an append-only log of job snapshots.

Each line is one service job as the API's JSON.  A job appears once per run that saw it
(its first sync, then each later run after it changed), so the newest line for a
``serviceJobId`` is its latest state.  The file is never rewritten.

Beside it, ``<file>.checkpoint.json`` holds each scope's checkpoint, the unfinished run's
windows and page tokens, and ``committed_bytes``: how much of the log is backed by the
checkpoint.  A page is appended and flushed first, then the sidecar is replaced
atomically with the window's next token and the new length.  The guarantee:

* a page is in the log if and only if the sidecar counts it; on opening, anything past
  ``committed_bytes`` (a page written by a run that stopped before saving its
  checkpoint) is cut off, and that page is fetched again;
* within one run, resumptions included, a job is written at most once: the ids already
  written by the run are read back from the log when it resumes.

Do not edit the log while a run is unfinished; a log shorter than its checkpoint says
is refused.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from .. import _serde
from ..models.jobs import ServiceJob
from ._plan import Mode, SyncPlan, Window, format_time, parse_time
from ._sink import SinkState, ThreadedSink, job_record

__all__ = ["JsonlSink"]

_VERSION = 1


class JsonlSink(ThreadedSink):
    """Append service jobs to a JSON Lines file, with a checkpoint file beside it.

    :param path: the log (created if missing).
    :param durable: ``fsync`` the log and the checkpoint after every page, so a power cut
        cannot lose a page the checkpoint counts.  Turn it off for speed on scratch data.
    """

    def __init__(self, path: str | os.PathLike[str], *, durable: bool = True) -> None:
        super().__init__()
        self.path = Path(path)
        self.checkpoint_path = self.path.with_name(self.path.name + ".checkpoint.json")
        self.durable = durable
        self._file: IO[bytes] | None = None
        self._state: dict[str, Any] = {}
        self._seen: dict[str, set[str]] = {}

    _thread_name = "spapi-sync-jsonl"

    def __repr__(self) -> str:
        return f"JsonlSink({str(self.path)!r})"

    # --- on the sink's thread ---------------------------------------------------------

    def _open(self) -> None:
        if self.path.parent != Path():
            self.path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.path, "a+b")  # noqa: SIM115 - held open until close()
        self._file = log
        size = log.seek(0, os.SEEK_END)
        if self.checkpoint_path.exists():
            self._state = json.loads(self.checkpoint_path.read_text(encoding="utf-8"))
            if self._state.get("version") != _VERSION:
                raise ValueError(
                    f"{self.checkpoint_path}: unknown checkpoint version "
                    f"{self._state.get('version')!r}"
                )
        else:
            # A log made elsewhere, or a first run: what is there stays, untouched.
            self._state = {"version": _VERSION, "committed_bytes": size, "scopes": {}}
        committed = int(self._state["committed_bytes"])
        if size < committed:
            raise ValueError(
                f"{self.path} is {size} bytes but its checkpoint counts {committed}: "
                "it was changed outside the sync; move the checkpoint file away to start over"
            )
        if size > committed:
            log.truncate(committed)  # a page whose checkpoint was never saved

    def _scope_state(self, scope: str) -> SinkState:
        scoped = self._state["scopes"].get(scope, {})
        checkpoint = parse_time(scoped["synced_until"]) if "synced_until" in scoped else None
        run = scoped.get("run")
        if run is None:
            return SinkState(checkpoint=checkpoint)
        committed = int(self._state["committed_bytes"])
        self._seen[scope] = self._ids_since(int(run["log_offset"]), committed, scope)
        return SinkState(checkpoint=checkpoint, plan=_plan_from_json(scope, run))

    def _ids_since(self, offset: int, end: int, scope: str) -> set[str]:
        """Ids of the scope's jobs in the log between two offsets (an unfinished run's)."""
        seen: set[str] = set()
        with open(self.path, "rb") as log:
            log.seek(offset)
            for line in log.read(end - offset).splitlines():
                if line.strip():
                    job = json.loads(line)
                    job_id = job.get("serviceJobId")
                    if job_id and job.get("marketplaceId", scope) == scope:
                        seen.add(job_id)
        return seen

    def _begin(self, plan: SyncPlan) -> None:
        scoped = self._state["scopes"].setdefault(plan.scope, {})
        scoped["run"] = _plan_to_json(plan, log_offset=int(self._state["committed_bytes"]))
        self._seen[plan.scope] = set()
        self._save()

    def _write_page(
        self, plan: SyncPlan, window: Window, jobs: Sequence[ServiceJob], next_token: str | None
    ) -> int:
        log = self._file
        if log is None:
            raise RuntimeError("JsonlSink is not open")
        seen = self._seen.setdefault(plan.scope, set())
        lines: list[bytes] = []
        ids: list[str] = []
        for job in jobs:
            job_id = job.service_job_id
            if job_id and (job_id in seen or job_id in ids):
                continue
            if job_id:
                ids.append(job_id)
            lines.append(_serde.dumps(job_record(job)).encode() + b"\n")
        if lines:
            log.seek(0, os.SEEK_END)
            log.write(b"".join(lines))
            log.flush()
            if self.durable:
                os.fsync(log.fileno())
        entry = self._state["scopes"][plan.scope]["run"]["windows"][window.index]
        entry["page_token"] = next_token
        entry["done"] = next_token is None
        entry["pages"] += 1
        entry["jobs"] += len(lines)
        entry["expected"] = window.expected
        self._state["committed_bytes"] = log.tell() if lines else self._state["committed_bytes"]
        self._save()
        seen.update(ids)
        return len(lines)

    def _finish(self, plan: SyncPlan) -> None:
        self._state["scopes"][plan.scope] = {"synced_until": format_time(plan.end)}
        self._seen.pop(plan.scope, None)
        self._save()

    def _save(self) -> None:
        data = json.dumps(self._state, indent=1).encode()
        tmp = self.checkpoint_path.with_name(self.checkpoint_path.name + ".tmp")
        with open(tmp, "wb") as out:
            out.write(data)
            out.flush()
            if self.durable:
                os.fsync(out.fileno())
        os.replace(tmp, self.checkpoint_path)

    def _close(self) -> None:
        log, self._file = self._file, None
        if log is not None:
            log.close()


def _plan_to_json(plan: SyncPlan, *, log_offset: int) -> dict[str, Any]:
    return {
        "run_id": plan.run_id,
        "mode": plan.mode.value,
        "start": format_time(plan.start),
        "end": format_time(plan.end),
        "log_offset": log_offset,
        "windows": [
            {
                "start": format_time(w.start),
                "end": format_time(w.end),
                "query_start": format_time(w.query_start),
                "query_end": format_time(w.query_end),
                "page_token": w.page_token,
                "done": w.done,
                "pages": w.pages,
                "jobs": w.jobs,
                "expected": w.expected,
            }
            for w in plan.windows
        ],
    }


def _plan_from_json(scope: str, run: dict[str, Any]) -> SyncPlan:
    return SyncPlan(
        run_id=run["run_id"],
        scope=scope,
        mode=Mode(run["mode"]),
        start=parse_time(run["start"]),
        end=parse_time(run["end"]),
        windows=[
            Window(
                index=i,
                start=parse_time(w["start"]),
                end=parse_time(w["end"]),
                query_start=parse_time(w["query_start"]),
                query_end=parse_time(w["query_end"]),
                page_token=w["page_token"],
                done=w["done"],
                pages=w["pages"],
                jobs=w["jobs"],
                expected=w["expected"],
            )
            for i, w in enumerate(run["windows"])
        ],
    )
