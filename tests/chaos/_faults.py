"""The faults a campaign can bring, as a table, and the seeded schedule drawn from it.

Each :class:`FaultKind` says what it hits (a worker slot, a server, the API), how long it
lasts (in leases for the faults a lease must survive, else in seconds), how often it is
drawn, and how it starts and ends.  :func:`draw_schedule` turns a seed into a list of
:class:`FaultEvent`: the same seed gives the same schedule, so a failure is replayed by
running its seed again.  Faults on the same resource never overlap (a paused worker is
not killed too); faults on different resources may.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import attrs

from spapi_services._routes import ROUTES

if TYPE_CHECKING:
    from ._campaign import Campaign
    from ._world import WorkerSlot

__all__ = ["FAULTS", "FaultEvent", "FaultKind", "draw_schedule"]

Action = Callable[["Campaign", "FaultEvent"], Awaitable[str]]


@attrs.frozen
class FaultKind:
    """One kind of fault: what it hits, how long, how often, how it starts and ends.

    ``target`` is ``worker`` (a slot, drawn; or the busiest at the moment, see
    :attr:`FaultEvent.busiest`), or the one resource it names (``redis``, ``postgres``,
    ``api``, ``token``, ``status``).  ``lasts`` is a range of seconds, multiplied by the
    lease when ``in_leases``.  ``start`` returns a note for the timeline; ``end`` undoes
    the fault (and is what healing calls for a fault still in force).
    """

    name: str
    target: str
    weight: float
    lasts: tuple[float, float]
    in_leases: bool
    start: Action
    end: Action
    what: str


@attrs.define
class FaultEvent:
    """One fault of a schedule: when it starts (seconds into the chaos), for how long,
    on what (``target`` is the resource, or a slot's name resolved when it starts)."""

    at: float
    kind: FaultKind
    duration: float
    target: str
    busiest: bool = False
    note: str = ""
    ended: bool = False
    #: The sellers its worker was syncing when it struck (worker faults).
    held: list[str] = attrs.Factory(list)
    #: Seconds into the campaign it started and ended (once it has).
    started_at: float | None = None
    ended_at: float | None = None
    #: The emulator's answers by status while it lasted (and before it started).
    answers: Counter[int] = attrs.Factory(Counter)
    answers_before: Counter[int] = attrs.Factory(Counter)

    def resource(self) -> str:
        return self.target


# --- the actions -------------------------------------------------------------------------


def _slot(campaign: Campaign, event: FaultEvent) -> WorkerSlot:
    return next(s for s in campaign.world.slots if s.name == event.target)


async def _kill(campaign: Campaign, event: FaultEvent) -> str:
    slot = _slot(campaign, event)
    pid = slot.pid
    await asyncio.to_thread(campaign.world.end_worker, slot, "killed")
    return f"SIGKILL pid {pid}; restarted in {event.duration:.1f} s"


async def _restart_killed(campaign: Campaign, event: FaultEvent) -> str:
    slot = _slot(campaign, event)
    if slot.process is None:
        campaign.world.start_worker(slot)
        return f"started again: pid {slot.pid}"
    return "already running"


async def _pause(campaign: Campaign, event: FaultEvent) -> str:
    slot = _slot(campaign, event)
    campaign.world.pause(slot)
    return f"SIGSTOP pid group {slot.pid} for {event.duration:.1f} s (lease {campaign.lease} s)"


async def _resume(campaign: Campaign, event: FaultEvent) -> str:
    slot = _slot(campaign, event)
    campaign.world.resume(slot)
    return f"SIGCONT pid group {slot.pid}"


async def _pause_redis_link(campaign: Campaign, event: FaultEvent) -> str:
    slot = _slot(campaign, event)
    slot.redis_link.pause()
    return f"link {slot.name}-redis paused for {event.duration:.1f} s"


async def _resume_redis_link(campaign: Campaign, event: FaultEvent) -> str:
    _slot(campaign, event).redis_link.resume()
    return "forwarding again"


async def _pause_pg_link(campaign: Campaign, event: FaultEvent) -> str:
    slot = _slot(campaign, event)
    slot.pg_link.pause()
    return f"link {slot.name}-pg paused for {event.duration:.1f} s"


async def _resume_pg_link(campaign: Campaign, event: FaultEvent) -> str:
    _slot(campaign, event).pg_link.resume()
    return "forwarding again"


async def _pause_probe_link(campaign: Campaign, event: FaultEvent) -> str:
    link = campaign.world.probe_link
    assert link is not None
    link.pause()
    return f"the status probe's Redis link paused for {event.duration:.1f} s"


async def _resume_probe_link(campaign: Campaign, event: FaultEvent) -> str:
    link = campaign.world.probe_link
    assert link is not None
    link.resume()
    return "forwarding again"


async def _redis_down_losing(campaign: Campaign, event: FaultEvent) -> str:
    redis = campaign.world.redis
    assert redis is not None
    await asyncio.to_thread(redis.kill)
    redis.wipe()
    return f"SIGKILL redis-server, data wiped (in memory); back in {event.duration:.1f} s"


async def _redis_down_keeping(campaign: Campaign, event: FaultEvent) -> str:
    redis = campaign.world.redis
    assert redis is not None
    await asyncio.to_thread(redis.stop)
    return f"redis-server stopped (append-only file kept); back in {event.duration:.1f} s"


async def _redis_up(campaign: Campaign, event: FaultEvent) -> str:
    redis = campaign.world.redis
    assert redis is not None
    if redis.pid is None:
        await asyncio.to_thread(redis.start)
    return f"redis-server up again on :{redis.port}"


async def _postgres_down(campaign: Campaign, event: FaultEvent) -> str:
    postgres = campaign.world.postgres
    assert postgres is not None
    await asyncio.to_thread(postgres.stop)
    return f"PostgreSQL stopped (fast shutdown); back in {event.duration:.1f} s"


async def _postgres_up(campaign: Campaign, event: FaultEvent) -> str:
    postgres = campaign.world.postgres
    assert postgres is not None
    if postgres.pid is None:
        await asyncio.to_thread(postgres.start)
    return f"PostgreSQL up again on :{postgres.port}"


def _api_layer(**fault: object) -> tuple[Action, Action]:
    async def start(campaign: Campaign, event: FaultEvent) -> str:
        campaign.trouble.add(event.kind.name, **fault)
        shown = ", ".join(f"{k}={v}" for k, v in fault.items() if k != "token")
        return f"{shown} for {event.duration:.1f} s"

    async def end(campaign: Campaign, event: FaultEvent) -> str:
        campaign.trouble.remove(event.kind.name)
        return "cleared"

    return start, end


async def _shrink_plan(campaign: Campaign, event: FaultEvent) -> str:
    campaign.world.emu.limits.set("getServiceJobs", rate=1.0, burst=1)
    return f"getServiceJobs plan cut to 1/s, burst 1 for {event.duration:.1f} s"


async def _restore_plan(campaign: Campaign, event: FaultEvent) -> str:
    route = ROUTES["getServiceJobs"]
    campaign.world.emu.limits.set("getServiceJobs", rate=route.rate, burst=route.burst)
    return f"getServiceJobs plan back to {route.rate}/s, burst {route.burst}"


_STORM = _api_layer(error_rate=0.6, error_status=429)
_ERRORS = _api_layer(error_rate=0.3, error_status=503, html=True)
_SLOW = _api_layer(latency=0.25, jitter=0.5)
_LWA = _api_layer(token=True, error_rate=1.0, error_status=503)

#: Every fault a campaign can bring.
FAULTS: tuple[FaultKind, ...] = (
    FaultKind("kill_worker", "worker", 3, (0.3, 1.5), False, _kill, _restart_killed,
              "SIGKILL a worker's process group; a process manager starts it again"),
    FaultKind("pause_worker", "worker", 3, (1.6, 2.6), True, _pause, _resume,
              "SIGSTOP a worker for longer than its lease, then SIGCONT"),
    FaultKind("freeze_redis_link", "worker", 3, (1.4, 2.6), True, _pause_redis_link,
              _resume_redis_link,
              "one worker's link to Redis stops forwarding, sockets left open"),
    FaultKind("freeze_pg_link", "worker", 2, (1.4, 2.6), True, _pause_pg_link, _resume_pg_link,
              "one worker's link to PostgreSQL stops forwarding, sockets left open"),
    FaultKind("freeze_status_link", "status", 1, (3.0, 6.0), False, _pause_probe_link,
              _resume_probe_link,
              "the status probe's link to Redis stops forwarding"),
    FaultKind("restart_redis_memory", "redis", 2, (0.3, 1.5), False, _redis_down_losing,
              _redis_up, "Redis killed and started empty (in memory: queue, locks, marks lost)"),
    FaultKind("restart_redis_aof", "redis", 2, (0.3, 1.5), False, _redis_down_keeping,
              _redis_up, "Redis stopped and started with its append-only file"),
    FaultKind("restart_postgres", "postgres", 2, (0.3, 1.5), False, _postgres_down,
              _postgres_up, "PostgreSQL stopped (fast shutdown) and started again"),
    FaultKind("storm_429", "api", 2, (2.0, 5.0), False, *_STORM,
              "60% of API answers are 429 QuotaExceeded"),
    FaultKind("plan_cut_429", "plan", 1, (2.0, 5.0), False, _shrink_plan, _restore_plan,
              "Amazon's getServiceJobs plan cut to 1/s: the fleet's pace draws 429s"),
    FaultKind("errors_503", "api", 2, (2.0, 5.0), False, *_ERRORS,
              "30% of API answers are 503 (an HTML page)"),
    FaultKind("latency", "api", 1, (2.0, 5.0), False, *_SLOW,
              "every API answer 0.25-0.75 s late"),
    FaultKind("lwa_outage", "token", 1, (1.0, 3.0), False, *_LWA,
              "the LWA token endpoint answers 503"),
)  # fmt: skip


def draw_schedule(
    rng: random.Random,
    *,
    count: int,
    span: float,
    lease: float,
    slots: list[str],
    kinds: tuple[FaultKind, ...] = FAULTS,
) -> list[FaultEvent]:
    """``count`` faults within ``span`` seconds, drawn by weight; none overlapping another
    on the same resource (one is moved after the other, or dropped past the span)."""
    events: list[FaultEvent] = []
    busy_until: dict[str, float] = {}
    weights = [k.weight for k in kinds]
    for _ in range(count):
        kind = rng.choices(kinds, weights)[0]
        low, high = kind.lasts
        duration = rng.uniform(low, high) * (lease if kind.in_leases else 1.0)
        busiest = kind.target == "worker" and rng.random() < 0.6
        target = rng.choice(slots) if kind.target == "worker" else kind.target
        at = rng.uniform(0.5, span * 0.85)
        # A worker fault aimed at "the busiest" may land on any slot: it holds them all.
        keys = slots if busiest else [target]
        at = max([at, *(busy_until.get(k, 0.0) + 0.5 for k in keys)])
        if at > span:
            continue
        for key in keys:
            busy_until[key] = at + duration
        events.append(FaultEvent(at, kind, duration, target, busiest=busiest))
    return sorted(events, key=lambda e: e.at)
