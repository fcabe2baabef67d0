"""What the fleet did about each fault, read off its processes' logs and the API's answers.

Every fleet process logs what it does about trouble in words of its own (a lease lost, a
task taken over, Redis waited for, a statement tried again).  :data:`REACTIONS` names
those lines; :func:`reactions` finds them in each fault's window (from its start to
``grace`` seconds after its end), in the logs of the processes the fault hit (the worker
slot's, or every process for a server or API fault), and take-overs in any worker's
log; a line in the windows of two faults counts for each it can answer (a lease lost
answers a Redis fault or a worker's, never a 503).  A fault on the API is also read by
what the emulator answered while it lasted, and one on the status probe's link by what
``Fleet.status()`` answered.  What the moving world brings about (windows paged again,
expired page tokens) is counted over the whole run (:func:`world_reactions`).

The long run's summary (``tests/chaos/run.py``) counts, for each kind of fault, in how
many of its events each reaction was seen: what the fleet now does about it.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path

import attrs

__all__ = ["REACTIONS", "LogLine", "ProbeAnswer", "Reaction", "reactions", "read_logs"]


@attrs.frozen
class Reaction:
    """One thing the fleet does about trouble, and the log line that says it did.

    ``kinds``: what a fault must hit for the line to be its reaction (``worker``,
    ``redis``, ``postgres``, ``api``...), so that a line in the windows of two faults
    is counted for the one it answers; empty for what the moving world brings about,
    whatever the faults (counted over the whole run instead).  ``anywhere``: seen in
    any worker's log, not only the hit one's (another worker taking over its task).
    """

    name: str
    pattern: re.Pattern[str]
    kinds: frozenset[str]
    anywhere: bool = False


_WORKER, _REDIS, _PG = "worker", "redis", "postgres"
_API = ("api", "plan", "token")
_ANY = (_WORKER, _REDIS, _PG, *_API)


def _r(name: str, pattern: str, *kinds: str, anywhere: bool = False) -> Reaction:
    return Reaction(name, re.compile(pattern), frozenset(kinds), anywhere)


#: What the fleet's processes say when they deal with trouble.
REACTIONS: tuple[Reaction, ...] = (
    _r("a sync stopped itself, its lease not renewed in time", r"lost its sync lock \(not renewed",
       _WORKER, _REDIS),
    _r("a sync stopped itself, its lock held by another", r"lost its sync lock \(another worker",
       _WORKER, _REDIS),
    _r("a write refused by the fencing token (FencedOut), the sync stopped",
       r"this sync holds fencing token", _WORKER, _REDIS, _PG),
    _r("an outcome not recorded, the seller taken over meanwhile",
       r"its outcome is not recorded", _WORKER, _REDIS, _PG),
    _r("another worker took over the quiet worker's task",
       r"taking over task \S+ from a worker that went quiet", _WORKER, _REDIS, anywhere=True),
    _r("the worker found its running task taken over", r"was taken over by .* still ran it",
       _WORKER, _REDIS),
    _r("a task run twice left to its new holder to acknowledge",
       r"another worker has taken it over since", _WORKER, _REDIS),
    _r("the queue's listener waited for Redis, then reconnected",
       r"failed \(.*\): the task queue waits for it", _WORKER, _REDIS),
    _r("locks and marks waited for Redis", r"failed \(.*\): seller locks, queued marks",
       _WORKER, _REDIS),
    _r("usage plans fell back to the process", r"usage plans fall back to this process",
       _WORKER, _REDIS),
    _r("Redis answered again", r"Redis at \S+ answers again", _WORKER, _REDIS),
    _r("the queue's consumer group created again", r"had no consumer group", _REDIS),
    _r("running tasks lost with Redis, their syncs went on", r"Redis lost the queue's running",
       _REDIS),
    _r("a lock Redis lost taken again by its holder", r"its lock had vanished from Redis",
       _REDIS),
    _r("the schedule skipped a seller's round (Redis did not answer)",
       r"not sent this round, Redis did not answer", _REDIS),
    _r("a send the queue refused, its seller freed for the next round",
       r"not sent this round, the queue did not take it", _REDIS),
    _r("PostgreSQL statements tried again on a new connection", r"PostgreSQL connection lost",
       _WORKER, _PG),
    _r("PostgreSQL answered again", r"PostgreSQL answers again", _WORKER, _PG),
    _r("a sync could not start (PostgreSQL away too long)", r"could not start its sync",
       _WORKER, _PG),
    _r("a sync could not take its lock (Redis away)", r"could not take its lock",
       _WORKER, _REDIS),
    _r("a sync failed, recorded as failed", r"seller \S+: sync failed", *_ANY),
    _r("a run resumed from its checkpoint", r"resuming an unfinished", *_ANY),
    _r("a sync of the worker finished", r"seller \S+: synced, \d+ jobs", _WORKER),
    _r("a refused page token (expired): its window paged again", r"refused the page token"),
    _r("jobs left a window while it was paged: paged again", r"jobs left window \d+ while"),
)  # fmt: skip


#: The start of a log line of a fleet process (taskiq's format): its local time.
_STAMP = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\]")


@attrs.frozen
class LogLine:
    """One line of a process's log: when (seconds into the campaign), whose, what."""

    t: float
    role: str
    text: str


@attrs.frozen
class ProbeAnswer:
    """One answer of the status probe: when, how long it took, and whether it said
    "Redis unreachable" (statuses from PostgreSQL alone)."""

    t: float
    seconds: float
    redis_unreachable: bool


def read_logs(logs: Iterable[tuple[str, Path]], wall_start: float) -> list[LogLine]:
    """Every stamped line of each ``(role, log)``, on the campaign's clock."""
    lines = []
    for role, path in logs:
        for text in path.read_text(errors="replace").splitlines():
            stamp = _STAMP.match(text)
            if stamp is None:
                continue
            wall = datetime.strptime(stamp[1], "%Y-%m-%d %H:%M:%S,%f").timestamp()
            lines.append(LogLine(wall - wall_start, role, text))
    return lines


def reactions(
    *,
    target: str,
    kind_target: str,
    start: float,
    end: float,
    grace: float,
    lines: Sequence[LogLine],
    answers: Counter[int],
    probe: Sequence[ProbeAnswer],
) -> Counter[str]:
    """What the fleet did about one fault: each reaction's lines in its window.

    ``target`` is the slot or resource hit, ``kind_target`` what its kind hits
    (``worker``, ``redis``...); ``answers`` the emulator's answers (by status) while it
    lasted, ``probe`` the status probe's answers.
    """
    found: Counter[str] = Counter()
    until = end + grace
    for line in lines:
        if not start <= line.t <= until:
            continue
        own = kind_target != "worker" or line.role == target
        for reaction in REACTIONS:
            if kind_target not in reaction.kinds:
                continue
            if (own or (reaction.anywhere and line.role != target)) and reaction.pattern.search(
                line.text
            ):
                found[reaction.name] += 1
    if kind_target in ("api", "plan", "token"):
        for status, count in sorted(answers.items()):
            found[f"the API answered {status}"] += count
    if kind_target == "status":
        during = [a for a in probe if start <= a.t <= end]
        unreachable = sum(1 for a in during if a.redis_unreachable)
        found["status answered 'Redis unreachable' from PostgreSQL alone"] += unreachable
        found["status answered in full"] += len(during) - unreachable
    return found


def world_reactions(lines: Sequence[LogLine]) -> Counter[str]:
    """What the fleet did about the moving world (jobs leaving a window while it was
    paged, page tokens expiring), over the whole run, whatever the faults."""
    found: Counter[str] = Counter()
    for line in lines:
        for reaction in REACTIONS:
            if not reaction.kinds and reaction.pattern.search(line.text):
                found[reaction.name] += 1
    return found
