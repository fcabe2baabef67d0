"""One campaign: the fleet run under a seeded schedule of faults, healed, synced once
more cleanly, and checked.

:func:`run_campaign` is the whole of it::

    result = await run_campaign(seed=7, settings=Settings(), folder=tmp, programs=...)
    print(result.report())

Its phases, each in the timeline:

1. **start**: servers, emulator, sellers, workers, the schedule; the audit trigger.
2. **chaos** (``settings.chaos`` seconds): the drawn faults start and end on time, jobs
   change in the emulator, and a monitor watches every 0.5 s for processes that died
   (restarted, as a process manager would, and reported), sellers that stall, and a
   status probe that does not answer in time.
3. **heal**: every fault still in force is ended; the moment is taken from PostgreSQL.
4. **final round**: every seller must finish a sync started after the heal, sent by
   the schedule, within ``settings.final_deadline``.
5. **checks**: the invariants of :mod:`._invariants`, on PostgreSQL and the emulator.

The timeline (and the job changes) are written to the campaign's folder; the seed
replays the schedule: ``SPAPI_CHAOS_SEED=<seed> nox -s chaos``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import re
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import attrs

from . import _invariants as inv
from ._faults import FaultEvent, draw_schedule
from ._reactions import ProbeAnswer, reactions, read_logs, world_reactions
from ._workload import ActivityWatch, ApiTrouble, JobChanges, Versions
from ._world import ALL_MARKETPLACES, Settings, World, tasks_never_ended

__all__ = ["Campaign", "CampaignResult", "Moment", "Programs", "run_campaign"]

#: A worker child that taskiq's manager found dead and started again.
_CHILD_DEATH = re.compile(r".*is dead\. Scheduling reload\..*")


@attrs.frozen
class Programs:
    """The server programs to run."""

    redis: str
    postgres: str


@attrs.frozen
class Moment:
    """One line of the timeline."""

    t: float
    kind: str
    what: str
    target: str
    detail: str

    def __str__(self) -> str:
        return f"t={self.t:7.2f}s  {self.kind:<9} {self.what:<22} {self.target:<10} {self.detail}"


@attrs.define
class CampaignResult:
    """What one campaign did and found."""

    seed: int
    settings: Settings
    faults: Counter[str]
    findings: list[inv.Finding]
    timeline: list[Moment]
    jobs_changed: int
    jobs_added: int
    #: Status moves and new jobs the emulator's own activity made.
    activity_moved: int
    activity_created: int
    seconds: float
    final_round: float | None
    folder: Path
    tracebacks: Counter[str] = attrs.Factory(Counter)
    #: Each fault that struck (kind, target, start, the sellers its worker was syncing)
    #: with what the fleet did about it.
    reactions: list[tuple[str, str, float, list[str], Counter[str]]] = attrs.Factory(list)
    #: What the fleet did about the moving world (windows paged again, expired tokens).
    world_reactions: Counter[str] = attrs.Factory(Counter)

    @property
    def ok(self) -> bool:
        return not self.findings

    def by_invariant(self) -> dict[str, int]:
        """Each invariant and how many findings it had (0: it held)."""
        counts = Counter(f.invariant for f in self.findings)
        return {name: counts.get(name, 0) for name in inv.INVARIANTS}

    def report(self) -> str:
        """The timeline, the invariants' results, and where the logs are."""
        lines = [f"chaos campaign, seed {self.seed}: {self.settings}"]
        lines += [str(m) for m in self.timeline]
        lines.append(
            f"faults: {dict(self.faults)}; jobs changed {self.jobs_changed}, added "
            f"{self.jobs_added} (and by the emulator's activity: {self.activity_moved} moved, "
            f"{self.activity_created} created); final round "
            + ("not finished" if self.final_round is None else f"{self.final_round:.1f} s")
            + f"; {self.seconds:.1f} s in all"
        )
        for name, count in self.by_invariant().items():
            lines.append(f"  {'ok  ' if count == 0 else 'FAIL'} {name} ({count})")
        for finding in self.findings[:60]:
            lines.append(f"    {finding}")
        if len(self.findings) > 60:
            lines.append(f"    ... and {len(self.findings) - 60} more")
        lines.append(
            "what the fleet did about each fault (its logs, within the fault and "
            f"{2 * self.settings.lease + self.settings.interval:g} s after):"
        )
        for kind, target, at, held, seen in self.reactions:
            shown = "; ".join(f"{name} x{n}" for name, n in seen.most_common()) or "nothing logged"
            syncing = f" (syncing {','.join(held)})" if held else ""
            lines.append(f"  t={at:7.2f}s {kind:<22} {target}{syncing}: {shown}")
        moving = "; ".join(f"{name} x{n}" for name, n in self.world_reactions.most_common())
        lines.append(f"what the fleet did about the moving world: {moving or 'nothing logged'}")
        for text, count in self.tracebacks.most_common(8):
            lines.append(f"  traceback x{count} in worker logs: {text}")
        lines.append(f"logs and timeline: {self.folder}")
        lines.append(f"replay: SPAPI_CHAOS_SEED={self.seed} SPAPI_CHAOS_SCHEDULES=1 nox -s chaos")
        return "\n".join(lines)


class Campaign:
    """The running campaign: its world, its schedule, its timeline and what it found."""

    def __init__(self, seed: int, settings: Settings, folder: Path) -> None:
        self.seed = seed
        self.settings = settings
        self.lease = settings.lease
        self.world = World(settings, seed, folder)
        self._trouble: ApiTrouble | None = None
        self.versions = Versions()
        self.activity = ActivityWatch(self.versions, self.world.elapsed)
        self.timeline: list[Moment] = []
        self.findings: list[inv.Finding] = []
        self.schedule: list[FaultEvent] = []
        self.active: list[FaultEvent] = []
        self.fired: list[FaultEvent] = []
        self.faults: Counter[str] = Counter()
        self.chaos_over = False
        self._hurt: set[str] = set()
        self._excused: dict[str, float] = {}
        self._stalled: set[tuple[str, datetime]] = set()
        self.probe_answers: list[ProbeAnswer] = []
        #: One per resource, held by a fault from its start until its end has finished.
        self._resources: dict[str, asyncio.Lock] = {}

    @property
    def trouble(self) -> ApiTrouble:
        """The API faults in force (once the emulator runs)."""
        assert self._trouble is not None
        return self._trouble

    # --- the timeline ----------------------------------------------------------------------

    def note(self, kind: str, what: str, target: str = "", detail: str = "") -> None:
        self.timeline.append(Moment(self.world.elapsed(), kind, what, target, detail))

    def violation(self, finding: inv.Finding) -> None:
        self.findings.append(finding)
        self.note("VIOLATION", finding.invariant, finding.subject, finding.detail)

    # --- the phases -------------------------------------------------------------------------

    async def start(self, programs: Programs) -> None:
        await self.world.start(programs.redis, programs.postgres, watch=self.activity)
        self._trouble = ApiTrouble(self.world.emu, self.settings.latency)
        self.trouble.apply()
        await inv.install_audit(self.world.pool, self.world.schema)
        rng = random.Random(f"schedule:{self.seed}")
        self.schedule = draw_schedule(
            rng,
            count=self.settings.faults,
            span=self.settings.chaos,
            lease=self.settings.lease,
            slots=[s.name for s in self.world.slots],
        )
        s = self.settings
        self.note(
            "start", "fleet", "",
            f"{s.sellers} sellers x {s.jobs} jobs, {s.workers} workers, lease {s.lease} s, "
            f"schedule every {s.interval} s; {s.page_tokens} page tokens"
            + (f" living {s.page_token_ttl} s" if s.page_token_ttl else "")
            + (f", {s.activity}" if s.activity else "")
            + f"; {len(self.schedule)} faults drawn",
        )  # fmt: skip

    async def chaos(self) -> None:
        """The drawn faults, the job changes and the monitor, for ``settings.chaos`` s."""
        began = time.monotonic()
        changes = JobChanges(
            self.world.emu,
            self.versions,
            random.Random(f"changes:{self.seed}"),
            every=self.settings.change_every,
            new_share=self.settings.new_job_share,
            hurt=self._hurt_sellers,
        )
        self.changes = changes
        monitor = asyncio.create_task(self._monitor())
        probe = asyncio.create_task(self._probe())
        try:
            await asyncio.gather(
                *(self._fire(event, began) for event in self.schedule),
                changes.run(self._over(began), self.world.elapsed),
            )
        finally:
            self.chaos_over = True
        self._monitor_task, self._probe_task = monitor, probe

    def _over(self, began: float) -> Callable[[], bool]:
        return lambda: time.monotonic() - began > self.settings.chaos

    async def heal(self) -> datetime:
        """End every fault still in force; the moment (PostgreSQL's clock) it was done."""
        for event in list(self.active):
            await self._end(event)
        world = self.world
        for slot in world.slots:
            slot.redis_link.resume()
            slot.pg_link.resume()
            if slot.paused:
                world.resume(slot)
            if slot.process is None:
                world.start_worker(slot)
        if world.probe_link is not None:
            world.probe_link.resume()
        self.trouble.clear()
        self.activity.stop(world.emu)
        world.emu.limits.reset()
        await self._wait_for_servers()
        healed: datetime = await world.pool.fetchval("SELECT now()")
        self.note("heal", "everything", "", "every fault ended; job changes stopped")
        return healed

    async def final_round(self, healed: datetime) -> float | None:
        """Seconds until every seller finished a sync started after the heal (None: never)."""
        began = time.monotonic()
        give_up = began + self.settings.final_deadline
        schema = self.world.schema
        while time.monotonic() < give_up:
            with contextlib.suppress(Exception):
                rows = await self.world.pool.fetch(
                    f"SELECT seller_id FROM {schema}.fleet_status"
                    " WHERE state = 'ok' AND started_at > $1",
                    healed,
                )
                if len(rows) == len(self.world.seller_ids):
                    took = time.monotonic() - began
                    self.note("final", "round complete", "", f"every seller ok in {took:.1f} s")
                    return took
            await asyncio.sleep(0.5)
        self.note("final", "round NOT complete", "", f"after {self.settings.final_deadline} s")
        await self._dump_redis()
        return None

    async def _dump_redis(self) -> None:
        """What Redis holds of the fleet (locks, marks, the queue), for a round that hung."""
        from redis.asyncio import Redis

        assert self.world.redis is not None
        lines = []
        async with Redis.from_url(self.world.redis.url, socket_timeout=5) as redis:
            for key in sorted(await redis.keys(f"{self.world.key_prefix}*")):
                kind = (await redis.type(key)).decode()
                ttl = await redis.pttl(key)
                value: object = ""
                if kind == "string":
                    value = await redis.get(key)
                elif kind == "stream":
                    value = await redis.xrange(key)
                    with contextlib.suppress(Exception):
                        value = (value, await redis.xpending(key, "spapi-fleet"))
                lines.append(f"{key.decode()} {kind} pttl={ttl} {value!r}"[:600])
        (self.world.folder / "redis-at-timeout.txt").write_text("\n".join(lines) + "\n")
        self.note("final", "redis dumped", "", "redis-at-timeout.txt: keys, marks, the queue")

    async def settle(self) -> None:
        """Stop the schedule, let running syncs end, and check no process died."""
        for task in (self._monitor_task, self._probe_task):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await asyncio.to_thread(self.world.end_scheduler)
        give_up = time.monotonic() + 10
        while time.monotonic() < give_up:
            running = await self.world.pool.fetchval(
                f"SELECT count(*) FROM {self.world.schema}.fleet_status WHERE state = 'running'"
            )
            if not running:
                break
            await asyncio.sleep(0.3)
        self._check_deaths()
        for slot in self.world.slots:
            await asyncio.to_thread(self.world.end_worker, slot, "stopped")
        for life in self.world.lives:
            if life.ended_by == "stopped" and (left := tasks_never_ended(life.log)):
                self.violation(
                    inv.Finding(
                        "no_stall",
                        f"{life.role} (pid {life.pid})",
                        f"stopped after every sync had ended, its worker still waited for "
                        f"{left} running task(s) that never ended (a task that does not "
                        "return holds its seller's lock or queue entry for ever)",
                    )
                )
        for life in self.world.lives:
            text = life.log.read_text(errors="replace")
            for line in _CHILD_DEATH.findall(text):
                self.violation(
                    inv.Finding("no_worker_died", f"{life.role} (pid {life.pid})",
                                f"taskiq's manager restarted its worker child: {line.strip()}")
                )  # fmt: skip

    async def check(self, healed: datetime) -> None:
        """The invariants after the final round."""
        world = self.world
        db, schema = world.pool, world.schema
        stored = await inv.stored_jobs(db, schema)
        marks = await inv.checkpoints(db, schema)
        audit = await inv.audit_rows(db, schema)
        self._write_audit(audit)
        found = [
            *inv.every_job_once(stored, self.versions),
            *inv.no_job_differs(stored, self.versions),
            *inv.checkpoint_not_ahead(
                stored, marks, self.versions, world.seller_ids, ALL_MARKETPLACES
            ),
            *inv.stale_moments(audit, self.versions),
            *await inv.every_seller_ok(db, schema, world.seller_ids, healed),
        ]
        for finding in found:
            self.violation(finding)

    def reactions(self) -> tuple[list[tuple[FaultEvent, Counter[str]]], Counter[str]]:
        """Each fault that struck, with what the fleet did about it, and what it did about
        the moving world (see :mod:`._reactions`); read once every process has ended."""
        world = self.world
        lines = read_logs(((life.role, life.log) for life in world.lives), world.wall_start)
        grace = 2 * self.settings.lease + self.settings.interval
        found = []
        for event in sorted(self.fired, key=lambda e: e.started_at or 0.0):
            assert event.started_at is not None
            found.append(
                (
                    event,
                    reactions(
                        target=event.target,
                        kind_target=event.kind.target,
                        start=event.started_at,
                        end=event.ended_at if event.ended_at is not None else world.elapsed(),
                        grace=grace,
                        lines=lines,
                        answers=event.answers,
                        probe=self.probe_answers,
                    ),
                )
            )
        return found, world_reactions(lines)

    # --- faults --------------------------------------------------------------------------------

    async def _fire(self, event: FaultEvent, began: float) -> None:
        await asyncio.sleep(max(0.0, began + event.at - time.monotonic()))
        if event.busiest:
            # Aimed at a worker in the middle of syncs: wait a little for one to be.
            give_up = time.monotonic() + 3.0
            held = await self.world.running_sellers()
            while not any(held.values()) and time.monotonic() < give_up:
                await asyncio.sleep(0.2)
                held = await self.world.running_sellers()
            if any(held.values()):
                event.target = max(held, key=lambda name: (len(held[name]), name == event.target))
        # The schedule keeps faults on one resource apart, but an end can run late (a
        # server slow to start under load): the next fault there waits for it, or it
        # would stop a server that is still starting.
        async with self._resources.setdefault(event.target, asyncio.Lock()):
            await self._strike(event)

    async def _strike(self, event: FaultEvent) -> None:
        slot = next((s for s in self.world.slots if s.name == event.target), None)
        if slot is not None:
            slot.faults.add(event.kind.name)
            event.held = (await self.world.running_sellers()).get(slot.name, [])
            event.note = f"holds {','.join(event.held) or 'nothing'}"
        self.active.append(event)
        self.fired.append(event)
        self.faults[event.kind.name] += 1
        event.started_at = self.world.elapsed()
        event.answers_before = self._answers()
        detail = await event.kind.start(self, event)
        self.note("fault", event.kind.name, event.target, f"{detail}; {event.note}".strip("; "))
        await asyncio.sleep(event.duration)
        await self._end(event)

    async def _end(self, event: FaultEvent) -> None:
        if event.ended:
            return
        event.ended = True
        detail = await event.kind.end(self, event)
        event.ended_at = self.world.elapsed()
        event.answers = self._answers() - event.answers_before
        self.active.remove(event)
        for slot in self.world.slots:
            if slot.name == event.target:
                slot.faults.discard(event.kind.name)
                self._excused[slot.name] = self.world.elapsed()
        if event.target in ("redis", "postgres"):
            self._excused["*"] = self.world.elapsed()
        self.note("end", event.kind.name, event.target, detail)

    def _answers(self) -> Counter[int]:
        """The emulator's answers so far, by status."""
        counts: Counter[int] = Counter()
        for (_, status), count in self.world.emu.traffic.counts.items():
            counts[status] += count
        return counts

    def _hurt_sellers(self) -> list[str]:
        return list(self._hurt)

    async def _wait_for_servers(self) -> None:
        world = self.world
        for server in (world.redis, world.postgres):
            assert server is not None
            if server.pid is None:
                await asyncio.to_thread(server.start)
        give_up = time.monotonic() + 20
        while time.monotonic() < give_up:
            try:
                await world.pool.fetchval("SELECT 1")
                return
            except Exception:
                await asyncio.sleep(0.2)

    # --- watching -------------------------------------------------------------------------------

    async def _monitor(self) -> None:
        """Every 0.5 s: processes that died, sellers that stalled, who is hurt."""
        while True:
            await asyncio.sleep(0.5)
            self._check_deaths()
            with contextlib.suppress(Exception):
                await self._check_stalls()

    def _check_deaths(self) -> None:
        world = self.world
        for life in world.died():
            tail = life.log.read_text(errors="replace").strip().splitlines()[-3:]
            self.violation(
                inv.Finding(
                    "no_worker_died",
                    f"{life.role} (pid {life.pid})",
                    f"exited with {life.returncode}: {' | '.join(tail)[-400:]}",
                )
            )
            if life.role == "scheduler":
                world.scheduler = None
                world.start_scheduler()
                continue
            slot = next(s for s in world.slots if s.name == life.role)
            slot.process = None
            world.start_worker(slot)
            self.note("restart", life.role, life.role, f"started again: pid {slot.pid}")

    async def _check_stalls(self) -> None:
        world = self.world
        rows = await world.pool.fetch(
            f"SELECT s.seller_id, s.worker, s.started_at,"
            f" greatest(s.updated_at, a.last) AS progress, now() AS now"
            f" FROM {world.schema}.fleet_status s LEFT JOIN"
            f" (SELECT seller_id, max(at) AS last FROM {world.schema}.chaos_audit"
            f"  GROUP BY seller_id) a USING (seller_id) WHERE s.state = 'running'"
        )
        hurt: set[str] = set()
        now = world.elapsed()
        if any(e.target in ("redis", "postgres") for e in self.active):
            self._excused["*"] = now
        for row in rows:
            worker = row["worker"] or ""
            pid = worker.rsplit(":", 1)[-1]
            slot = world.slot_of_pid(int(pid)) if pid.isdigit() else None
            if slot is not None and slot.faults:
                hurt.add(row["seller_id"])
                self._excused[row["seller_id"]] = now
            quiet = (row["now"] - row["progress"]).total_seconds()
            excused = max(self._excused.get(row["seller_id"], 0.0), self._excused.get("*", 0.0))
            quiet = min(quiet, now - excused)
            key = (row["seller_id"], row["progress"])
            if quiet > self.settings.stall_after and key not in self._stalled:
                self._stalled.add(key)
                self.violation(
                    inv.Finding(
                        "no_stall",
                        row["seller_id"],
                        f"running on {worker} (slot {slot.name if slot else 'gone'}) without "
                        f"a write or a status change for {quiet:.0f} s",
                    )
                )
        self._hurt = hurt

    async def _probe(self) -> None:
        """Ask for the status every 2 s, as `fleet status` would; it must answer in time."""
        probe = self.world.probe
        assert probe is not None
        while True:
            await asyncio.sleep(2.0)
            began = time.monotonic()
            try:
                statuses = await asyncio.wait_for(probe.status(), self.settings.probe_deadline)
                self.probe_answers.append(
                    ProbeAnswer(
                        self.world.elapsed(),
                        time.monotonic() - began,
                        any(s.redis_unreachable for s in statuses),
                    )
                )
            except TimeoutError:
                link = self.world.probe_link
                self.violation(
                    inv.Finding(
                        "no_stall",
                        "Fleet.status()",
                        f"no answer within {self.settings.probe_deadline} s "
                        f"(its Redis link {'paused' if link and link.paused else 'forwarding'})",
                    )
                )
            except Exception as exc:
                if time.monotonic() - began > self.settings.probe_deadline:
                    self.note("probe", "slow error", "", f"{type(exc).__name__} after "
                              f"{time.monotonic() - began:.1f} s")  # fmt: skip

    def _write_audit(self, rows: list[Any]) -> None:
        """Every audited write, one a line, with the version it wrote (for reading a finding)."""
        lines = []
        for row in rows:
            writer = row["writer"]
            if row["tbl"] == "job":
                key = (row["seller_id"], row["item"])
                version = (
                    self.versions.which(key, json.loads(row["job"]))
                    if key in self.versions.jobs
                    else "?"
                )
                what = f"job {row['item']} version {version}"
            else:
                what = f"checkpoint {row['item']} {row['op']} {row['synced_until']}"
            lines.append(
                f"{row['id']:6d} {row['at'].isoformat()} {row['seller_id']} {what} by {writer}"
            )
        (self.world.folder / "audit.txt").write_text("\n".join(lines) + "\n")


def _tracebacks(world: World) -> Counter[str]:
    """The last line of every traceback in the processes' logs, counted."""
    found: Counter[str] = Counter()
    for life in world.lives:
        lines = life.log.read_text(errors="replace").splitlines()
        for index, line in enumerate(lines):
            if line.startswith("Traceback"):
                end = index + 1
                while end < len(lines) and (lines[end].startswith((" ", "\t")) or not lines[end]):
                    end += 1
                if end < len(lines):
                    found[lines[end][:200]] += 1
    return found


async def run_campaign(
    *, seed: int, settings: Settings, folder: Path, programs: Programs
) -> CampaignResult:
    """Run one campaign (see the module's doc) and return what it found."""
    campaign = Campaign(seed, settings, folder)
    began = time.monotonic()
    final: float | None = None
    try:
        await campaign.start(programs)
        await campaign.chaos()
        healed = await campaign.heal()
        final = await campaign.final_round(healed)
        await campaign.settle()
        await campaign.check(healed)
    finally:
        await campaign.world.stop()
    by_fault, by_world = campaign.reactions()
    result = CampaignResult(
        seed=seed,
        settings=settings,
        faults=campaign.faults,
        findings=campaign.findings,
        timeline=campaign.timeline,
        jobs_changed=campaign.changes.changed,
        jobs_added=campaign.changes.added,
        activity_moved=campaign.activity.updated,
        activity_created=campaign.activity.created,
        seconds=time.monotonic() - began,
        final_round=final,
        folder=folder,
        tracebacks=_tracebacks(campaign.world),
        reactions=[
            (event.kind.name, event.target, event.started_at or 0.0, event.held, seen)
            for event, seen in by_fault
        ],
        world_reactions=by_world,
    )
    (folder / "timeline.txt").write_text(result.report() + "\n")
    changes = sorted(
        [*campaign.changes.log, *campaign.activity.log], key=lambda line: float(line.split("s")[0])
    )
    (folder / "job-changes.txt").write_text("\n".join(changes) + "\n")
    return result
