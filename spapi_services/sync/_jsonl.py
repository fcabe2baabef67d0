"""A JSON Lines file as the mirror: an append-only log of job snapshots.

Each line is one service job as the API's JSON (its buyer data as the sync's
``buyer_data`` left it).  A job appears once per run that saw it (its first sync, then
each later run after it changed), so the newest line for a ``serviceJobId`` is its
latest state.  Syncs only append; pruning, forgetting a buyer and rewriting the buyer
data rewrite the file whole.

Beside it, ``<file>.checkpoint.json`` holds each scope's checkpoint, the unfinished run's
windows and page tokens, the buyers forgotten (salted digests), and ``committed_bytes``:
how much of the log is backed by the checkpoint.  A page is appended and flushed first,
then the sidecar is replaced atomically with the window's next token and the new length.
Beside them, ``<file>.hashes`` keeps the content hash of each job as the API sent it
(``<hash> <serviceJobId>`` lines, the latest of a job counting), which tells a change
from a repeat (see :class:`~spapi_services.sync.ChangeSink`); it is cut with the log to
what the checkpoint counts (``committed_hash_bytes``).  The guarantee:

* a page is in the log if and only if the sidecar counts it; on opening, anything past
  ``committed_bytes`` (a page written by a run that stopped before saving its
  checkpoint) is cut off, and that page is fetched again;
* within one run, resumptions included, a job is written at most once: the ids already
  written by the run are read back from the log when it resumes;
* a rewrite is all or nothing: the new log is written beside the old one, the sidecar
  notes the rewrite, then the new log replaces the old; a rewrite stopped midway is
  undone or completed when the sink is next opened.

The files, and the temporary files they are written through, are created with mode
0600.  Do not edit the log while a run is unfinished, nor run a sync and a rewrite of the
same file at once; a log shorter than its checkpoint says is refused.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Generator, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from .. import _serde
from ..feed._detect import content_hash
from ..models.feed import JobChange
from ..models.jobs import ServiceJob
from ._buyer import (
    BuyerDataPolicy,
    BuyerKeyLike,
    ErasedBuyers,
    buyer_matches,
    erase_record,
    prunable,
    reveal_record,
    stale_hashes,
)
from ._files import (
    FILE_MODE,
    make_private_folders,
    private_opener,
    replace_private,
    sync_folder,
    warn_if_shared,
)
from ._plan import Mode, SyncPlan, Window, format_time, parse_time
from ._sink import PageWrite, RewriteReport, SinkState, ThreadedSink, changes_of, job_record

__all__ = ["JsonlSink"]

_VERSION = 1


class JsonlSink(ThreadedSink):
    """Append service jobs to a JSON Lines file, with a checkpoint file beside it.

    :param path: the log (created if missing).
    :param durable: ``fsync`` the log and the checkpoint after every page, so a power cut
        cannot lose a page the checkpoint counts.  Turn it off for speed on scratch data.
    :param buyer_key: the key, or ring of keys, that decrypts buyer data for
        :meth:`iter_jobs` and :meth:`get` and finds a buyer's protected jobs for
        :meth:`forget_buyer`; ``sync_jobs`` also protects with it by default.

    New files (and any folder made for them) are private to their owner; an existing log
    keeps its mode, with a warning if others can read it.  Reading jobs back scans the
    log: fine for a log, slow for a database's work.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        durable: bool = True,
        buyer_key: BuyerKeyLike | None = None,
    ) -> None:
        super().__init__(buyer_key=buyer_key)
        #: The log of jobs.
        self.path = Path(path)
        #: The file beside the log holding each scope's checkpoint and run.
        self.checkpoint_path = self.path.with_name(self.path.name + ".checkpoint.json")
        #: The file a key rotation writes before it replaces the log.
        self.rewrite_path = self.path.with_name(self.path.name + ".rewrite")
        #: The index of each job's content hash (see :class:`~spapi_services.sync.ChangeSink`).
        self.hashes_path = self.path.with_name(self.path.name + ".hashes")
        #: Whether the log and the checkpoint are flushed to disk after every page.
        self.durable = durable
        self._file: IO[bytes] | None = None
        self._state: dict[str, Any] = {}
        self._seen: dict[str, set[str]] = {}
        self._hashes: dict[str, str] = {}
        self._erased = ErasedBuyers()

    _thread_name = "spapi-sync-jsonl"

    def __repr__(self) -> str:
        return f"JsonlSink({str(self.path)!r})"

    # --- on the sink's thread ---------------------------------------------------------

    def _open(self) -> None:
        if self.path.parent != Path() and not self.path.parent.exists():
            make_private_folders(self.path.parent)
        warn_if_shared(self.path)
        log = open(self.path, "a+b", opener=private_opener)  # noqa: SIM115 - held until close()
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
        if "rewrite" in self._state:
            size = self._recover_rewrite()
        committed = int(self._state["committed_bytes"])
        if size < committed:
            raise ValueError(
                f"{self.path} is {size} bytes but its checkpoint counts {committed}: "
                "it was changed outside the sync; move the checkpoint file away to start over"
            )
        if size > committed:
            self._log().truncate(committed)  # a page whose checkpoint was never saved
        self._open_hashes()
        erased = self._state.get("erased")
        if erased:
            self._erased = ErasedBuyers(bytes.fromhex(erased["salt"]), erased["digests"])

    def _log(self) -> IO[bytes]:
        if self._file is None:
            raise RuntimeError("JsonlSink is not open")
        return self._file

    def _scope_state(self, scope: str) -> SinkState:
        scoped = self._state["scopes"].get(scope, {})
        checkpoint = parse_time(scoped["synced_until"]) if "synced_until" in scoped else None
        run = scoped.get("run")
        if run is None:
            return SinkState(checkpoint=checkpoint, erased=self._erased)
        committed = int(self._state["committed_bytes"])
        self._seen[scope] = self._ids_since(int(run["log_offset"]), committed, scope)
        return SinkState(
            checkpoint=checkpoint, plan=_plan_from_json(scope, run), erased=self._erased
        )

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
        current = scoped.get("run")
        if current is not None and current["run_id"] == plan.run_id:
            # The same run with its windows laid out anew (a window cut into pieces): the
            # jobs it wrote stay written, once.
            offset = int(current["log_offset"])
        else:
            offset = int(self._state["committed_bytes"])
            self._seen[plan.scope] = set()
        scoped["run"] = _plan_to_json(plan, log_offset=offset)
        self._save()

    def _write_page_changes(
        self,
        plan: SyncPlan,
        window: Window,
        jobs: Sequence[ServiceJob],
        next_token: str | None,
        hashes: Sequence[str],
    ) -> PageWrite:
        log = self._log()
        seen = self._seen.setdefault(plan.scope, set())
        lines: list[bytes] = []
        ids: list[str] = []
        written: list[tuple[ServiceJob, str]] = []
        for job, digest in zip(jobs, hashes, strict=True):
            job_id = job.service_job_id
            if job_id and (job_id in seen or job_id in ids):
                continue
            if job_id:
                ids.append(job_id)
                written.append((job, digest))
            lines.append(_serde.dumps(job_record(job)).encode() + b"\n")
        held = {job_id: self._hashes[job_id] for job_id in ids if job_id in self._hashes}
        changes = changes_of(
            [j for j, _ in written], [h for _, h in written], held, datetime.now(UTC)
        )
        if lines:
            log.seek(0, os.SEEK_END)
            log.write(b"".join(lines))
            log.flush()
            if self.durable:
                os.fsync(log.fileno())
        if changes:
            self._append_hashes(changes)
        entry = self._state["scopes"][plan.scope]["run"]["windows"][window.index]
        entry["page_token"] = next_token
        entry["done"] = next_token is None
        entry["pages"] += 1
        entry["jobs"] += len(lines)
        entry["expected"] = window.expected
        self._state["committed_bytes"] = log.tell() if lines else self._state["committed_bytes"]
        self._save()
        seen.update(ids)
        self._hashes.update(held)
        return PageWrite(written=len(lines), changes=tuple(changes))

    # --- the content hashes: an index of its own, committed with the log ----------------

    def _open_hashes(self) -> None:
        """Load the hash index, cut to what the checkpoint counts (or build it)."""
        committed = self._state.get("committed_hash_bytes")
        if committed is None or not self.hashes_path.exists():
            # A log from before the index was kept: each job judged by its stored line.
            self._hashes = {}
            for _, line in self._lines():
                record = json.loads(line)
                job_id = record.get("serviceJobId")
                if isinstance(job_id, str):
                    self._hashes[job_id] = content_hash(record)
            if self._hashes:
                self._write_hashes(self._hashes)
            else:
                self._state["committed_hash_bytes"] = 0
            return
        with open(self.hashes_path, "r+b", opener=private_opener) as index:
            size = index.seek(0, os.SEEK_END)
            if size > int(committed):
                index.truncate(int(committed))  # a page whose checkpoint was never saved
            index.seek(0)
            self._hashes = {}
            for line in index.read().splitlines():
                digest, _, job_id = line.decode().partition(" ")
                if job_id:
                    self._hashes[job_id] = digest
        # An index shorter than counted was rewritten by a prune stopped before its
        # checkpoint: it is complete as it is.
        self._state["committed_hash_bytes"] = min(size, int(committed))

    def _append_hashes(self, changes: Sequence[JobChange]) -> None:
        text = "".join(f"{c.content_hash} {c.service_job_id}\n" for c in changes).encode()
        with open(self.hashes_path, "ab", opener=private_opener) as index:
            index.seek(0, os.SEEK_END)
            index.write(text)
            index.flush()
            if self.durable:
                os.fsync(index.fileno())
            self._state["committed_hash_bytes"] = index.tell()

    def _write_hashes(self, hashes: dict[str, str]) -> None:
        """Replace the index by ``hashes`` (atomically), and count it in the checkpoint."""
        text = "".join(f"{digest} {job_id}\n" for job_id, digest in hashes.items()).encode()
        replace_private(self.hashes_path, text, durable=self.durable)
        self._state["committed_hash_bytes"] = len(text)
        self._save()

    def _finish(self, plan: SyncPlan) -> None:
        self._state["scopes"][plan.scope] = {"synced_until": format_time(plan.end)}
        self._seen.pop(plan.scope, None)
        self._save()

    def _save(self) -> None:
        data = json.dumps(self._state, indent=1).encode()
        replace_private(self.checkpoint_path, data, durable=self.durable)

    def _close(self) -> None:
        log, self._file = self._file, None
        if log is not None:
            log.close()

    # --- reading --------------------------------------------------------------------

    def _lines(self) -> Generator[tuple[int, bytes], None, None]:
        """Each committed line of the log with its offset (blank lines skipped)."""
        end = int(self._state["committed_bytes"])
        with open(self.path, "rb") as log:
            offset = 0
            for line in log:
                if offset >= end:
                    return
                if line.strip():
                    yield offset, line
                offset += len(line)

    def _latest(self) -> dict[str, tuple[int, int]]:
        """``serviceJobId -> (offset, length)`` of each job's newest line, in log order."""
        latest: dict[str, tuple[int, int]] = {}
        for offset, line in self._lines():
            job_id = json.loads(line).get("serviceJobId")
            key = job_id if isinstance(job_id, str) else f"\x00{offset}"
            latest.pop(key, None)  # moved to the end: the order of the latest lines
            latest[key] = (offset, len(line))
        return latest

    def _read_page(self, cursor: Any, limit: int) -> tuple[list[dict[str, Any]], Any]:
        spans: list[tuple[int, int]] = list(self._latest().values()) if cursor is None else cursor
        page, rest = spans[:limit], spans[limit:]
        records: list[dict[str, Any]] = []
        with open(self.path, "rb") as log:
            for offset, length in page:
                log.seek(offset)
                records.append(_serde.loads(log.read(length)))
        return records, (rest or None)

    def _read_one(self, service_job_id: str) -> dict[str, Any] | None:
        found: dict[str, Any] | None = None
        wanted = _serde.dumps(service_job_id).encode()
        for _, line in self._lines():
            if wanted not in line:  # most lines, skipped without parsing them
                continue
            record = _serde.loads(line)
            if record.get("serviceJobId") == service_job_id:
                found = record
        return found

    # --- maintenance: the log rewritten whole ---------------------------------------------

    def _prune(self, cutoff: datetime, statuses: frozenset[str]) -> int:
        doomed: set[str] = set()
        with open(self.path, "rb") as log:
            for job_id, (offset, length) in self._latest().items():
                log.seek(offset)
                if prunable(_serde.loads(log.read(length)), cutoff, statuses):
                    doomed.add(job_id)
        if doomed:
            self._rewrite_log(
                lambda line: None if json.loads(line).get("serviceJobId") in doomed else line
            )
            # A pruned job fetched again is new to the mirror, as in the other sinks.
            self._hashes = {k: v for k, v in self._hashes.items() if k not in doomed}
            self._write_hashes(self._hashes)
        return len(doomed)

    def _forget(self, buyer_id: str) -> int:
        jobs: set[str] = set()

        def erase(line: bytes) -> bytes | None:
            record = _serde.loads(line)
            if not buyer_matches(record, buyer_id, self.buyer_keys):
                return line
            jobs.add(str(record.get("serviceJobId")))
            return _serde.dumps(erase_record(record)).encode() + b"\n"

        self._rewrite_log(erase)
        erased = self._erased
        erased.add(buyer_id)
        self._state["erased"] = {"salt": erased.salt.hex(), "digests": sorted(erased.digests)}
        self._save()
        return len(jobs)

    def _rewrite(self, policy: BuyerDataPolicy) -> RewriteReport:
        jobs: set[str] = set()
        stale: set[str] = set()

        def protect(line: bytes) -> bytes | None:
            record = _serde.loads(line)
            stored = policy.protect(reveal_record(record, self.buyer_keys))
            if stale_hashes(stored, policy.keys):
                stale.add(str(record.get("serviceJobId")))
            if stored == record:
                return line
            jobs.add(str(record.get("serviceJobId")))
            return _serde.dumps(stored).encode() + b"\n"

        self._rewrite_log(protect)
        return RewriteReport(jobs=len(jobs), stale_hashes=len(stale))

    def _rewrite_log(self, transform: Callable[[bytes], bytes | None]) -> None:
        """Replace the log by its lines through ``transform`` (``None`` drops a line).

        The offsets the checkpoint keeps (its length, where each unfinished run began)
        are carried over to the new log.  Nothing is replaced if no line changed.
        """
        marks = {int(run["log_offset"]) for run in self._runs()}
        moved: dict[int, int] = {}
        changed = False
        with contextlib.suppress(FileNotFoundError):
            self.rewrite_path.unlink()  # left by a rewrite that failed before its note
        fd = os.open(self.rewrite_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        try:
            with os.fdopen(fd, "wb") as out, contextlib.closing(self._lines()) as lines:
                for offset, line in lines:
                    if offset in marks:
                        moved[offset] = out.tell()
                    new = transform(line)
                    changed = changed or new != line
                    if new is not None:
                        out.write(new)
                size = out.tell()
                out.flush()
                if self.durable:
                    os.fsync(out.fileno())
        except BaseException:
            with contextlib.suppress(OSError):
                self.rewrite_path.unlink()
            raise
        if not changed:
            self.rewrite_path.unlink()
            return
        committed = int(self._state["committed_bytes"])
        offsets = {str(old): moved.get(old, size) for old in marks if old < committed}
        # The note first: if the process stops after it, opening the sink finishes the
        # rewrite (or, if the new log never replaced the old, discards it).
        self._state["rewrite"] = {"committed_bytes": size, "offsets": offsets}
        self._save()
        self._close()
        os.replace(self.rewrite_path, self.path)
        if self.durable:
            sync_folder(self.path.parent)
        self._file = open(self.path, "a+b", opener=private_opener)  # noqa: SIM115
        self._finish_rewrite()

    def _recover_rewrite(self) -> int:
        """Finish or undo a rewrite that was stopped; the log's size afterwards."""
        if self.rewrite_path.exists():
            self.rewrite_path.unlink()  # the old log is still in place: keep it
            del self._state["rewrite"]
            self._save()
        else:
            self._finish_rewrite()
        return self._log().seek(0, os.SEEK_END)

    def _finish_rewrite(self) -> None:
        note = self._state.pop("rewrite")
        offsets: dict[str, int] = note["offsets"]
        for run in self._runs():
            run["log_offset"] = offsets.get(str(run["log_offset"]), note["committed_bytes"])
        self._state["committed_bytes"] = note["committed_bytes"]
        self._save()

    def _runs(self) -> Iterator[dict[str, Any]]:
        for scoped in self._state["scopes"].values():
            if "run" in scoped:
                yield scoped["run"]


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
