"""Webhooks: latency from a change in the emulator to the receiver's 2xx, and no change
lost through a worker SIGKILLed mid-delivery and a receiver down for a minute.

Redis and PostgreSQL are Debian's, started for the run on 127.0.0.1 in temporary
folders; the emulator (``SELLERS`` sellers, a few seeded jobs each) and the receiver (an
aiohttp.web app verifying every signature with the Standard Webhooks reference library,
answering 204) run in this process; the fleet's workers are two ``spapi-services fleet
worker`` processes (the loopback guard installed), each running its webhook relay.
Syncs are sent every ``SYNC_EVERY`` second (as a scheduler with that interval would),
so a change's latency is the wait for the next sync, the sync, the outbox's
notification and the delivery.

1. **Steady**: for ``STEADY`` seconds a random seller's job is changed (moved on, or a
   new job created) every ``GAP`` seconds; the latency of each is the wall time its
   message (that job, in that status) got its 2xx less the wall time of the change, and
   "from the commit" is the same less the outbox row's ``seen_at``.
2. **Faults**: one delivery is left hanging at the receiver and the worker holding it is
   SIGKILLed (a new one started); then the receiver goes down for ``OUTAGE`` seconds
   while changes go on, and comes back.  The deliveries use a schedule scaled to the
   outage (0, 1, 2, 5, 10, 20, then every 30 s): the default one's next try after a
   minute's outage is five minutes after the first failure, which would only make the
   run longer.  Counted: changes made, changes recorded (outbox rows), changes
   received, lost (recorded or made but never received: target 0), copies received
   more than once and whether every copy carried the same ``webhook-id`` and body
   (target: all), and how long after the receiver's return the last one arrived.

``python benchmarks/bench_webhooks.py [--quick] [--outage SECONDS]``; :func:`run` returns
the figures and :func:`markdown` renders them.  Linux only.  Timing never runs as a test.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import random
import secrets
import signal
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import _common  # noqa: E402  (installs the loopback guard)

SELLERS, JOBS = 5, 12
STEADY, GAP, OUTAGE, SYNC_EVERY = 30.0, 0.5, 60.0, 1.0
SCHEDULE = "0,1,2,5,10,20" + ",30" * 20
US = "ATVPDKIKX0DER"
MARKETPLACES = [US]
_WORKER = (
    "import sys; sys.path.insert(0, {here!r}); import _guard; _guard.install(); "
    "from spapi_services.cli import main; "
    "sys.argv = ['spapi-services', 'fleet', 'worker', '--workers', '1', "
    "'--max-async-tasks', '20', '--log-level', 'WARNING']; main()"
)


def missing() -> str | None:
    """Why webhooks cannot be measured here, or ``None``."""
    try:
        from spapi_services.fleet import _local
    except ImportError as exc:
        return f"the fleet extra is not installed ({exc})"
    try:
        _local.find_program("redis-server", "redis-server")
        _local.find_program("postgres", "postgresql", elsewhere=_local.PostgresServer.elsewhere)
    except _local.ProgramMissing as exc:
        return str(exc)
    return None


# --- the receiver -------------------------------------------------------------------------


class Receiver:
    """Verifies, records (wall time of each 2xx answer) and answers 204; can hang one
    request, and go down and come back on its port."""

    def __init__(self) -> None:
        self.secret = ""
        self.port = 0
        self.arrivals: list[tuple[float, str, bytes]] = []
        self.unverified = 0
        self.hang_next = False
        self.hung: list[str] = []
        self.release = asyncio.Event()
        self._runner: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    async def start(self) -> None:
        from aiohttp import web

        app = web.Application()
        app.router.add_post("/hooks", self._hooks)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True).start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            self.release.set()
            await runner.cleanup()
            self.release = asyncio.Event()

    async def _hooks(self, request: Any) -> Any:
        from aiohttp import web
        from standardwebhooks import Webhook

        body = await request.read()
        try:
            Webhook(self.secret).verify(body, dict(request.headers))
        except Exception:
            self.unverified += 1
            return web.Response(status=400)
        webhook_id = request.headers["webhook-id"]
        self.arrivals.append((time.time(), webhook_id, body))
        if self.hang_next:
            self.hang_next = False
            self.hung.append(webhook_id)
            await self.release.wait()  # the answer never reaches the killed worker
        return web.Response(status=204)


# --- the run --------------------------------------------------------------------------------


def _environment(emu: Any, redis_url: str, dsn: str, tag: str) -> dict[str, str]:
    from spapi_services.fleet import DirectoryKey

    return {
        **os.environ,
        "SPAPI_FLEET_REDIS_URL": redis_url,
        "SPAPI_FLEET_DATABASE_URL": dsn,
        "SPAPI_FLEET_DIRECTORY_KEY": DirectoryKey.generate(),
        "SPAPI_FLEET_TOKEN_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "SPAPI_FLEET_ENDPOINT": emu.url,
        "SPAPI_FLEET_TOKEN_URL": emu.token_url,
        "SPAPI_FLEET_HISTORY_DAYS": "92",
        "SPAPI_FLEET_LEASE_SECONDS": "5",
        "SPAPI_FLEET_RECLAIM_INTERVAL_SECONDS": "0.5",
        "SPAPI_FLEET_SCHEMA": f"w_{tag}",
        "SPAPI_FLEET_KEY_PREFIX": f"w{tag}",
        "SPAPI_FLEET_QUEUE": f"w{tag}:tasks",
        "SPAPI_FLEET_POOL_SIZE": "4",
        "SPAPI_FLEET_WEBHOOK_ALLOW_NETWORKS": "127.0.0.0/8",
        "SPAPI_FLEET_WEBHOOK_DELAYS": SCHEDULE,
        "SPAPI_FLEET_WEBHOOK_TIMEOUT_SECONDS": "5",
        "SPAPI_FLEET_WEBHOOK_LEASE_SECONDS": "10",
        "SPAPI_CLIENT_ID": emu.credentials.client_id,
        "SPAPI_CLIENT_SECRET": emu.credentials.client_secret,
    }


def _start_worker(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", _WORKER.format(here=str(HERE))],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _kill(worker: subprocess.Popen[bytes], how: int = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(worker.pid, how)
    try:
        worker.wait(20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()


class World:
    """The changes made to the emulator's sellers, with their wall times."""

    def __init__(self, emu: Any, rng: random.Random) -> None:
        self.emu = emu
        self.rng = rng
        self.changes: list[tuple[float, str, str, str]] = []  # (time, seller, job, status)

    def change(self) -> None:
        seller = self.rng.choice(self.emu.sellers)
        store = seller.store
        moves = {"PENDING_SCHEDULE": "NOT_SERVICED", "NOT_SERVICED": "COMPLETED",
                 "HOLD": "NOT_SERVICED"}  # fmt: skip
        movable = [j for j in store.jobs.values() if j.status in moves and j.marketplace_id == US]
        if movable and self.rng.random() < 0.7:
            job = self.rng.choice(movable)
            store.set_job_status(job.service_job_id, moves[job.status])
        else:
            job = store.new_job(marketplace_id=US)
        self.changes.append((time.time(), f"S{seller.index}", job.service_job_id, job.status))


async def _syncing(fleet: Any, stop: asyncio.Event) -> None:
    """Every seller's sync sent each ``SYNC_EVERY`` seconds (a seller still running or
    queued is skipped, as the scheduler does)."""
    while not stop.is_set():
        with contextlib.suppress(Exception):
            await fleet.enqueue_all()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(SYNC_EVERY):
                await stop.wait()


async def _changing(world: World, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        world.change()
        await asyncio.sleep(GAP * world.rng.uniform(0.5, 1.5))


async def _until(what: str, check: Any, within: float) -> None:
    give_up = time.monotonic() + within
    while not await check():
        if time.monotonic() > give_up:
            raise RuntimeError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def _latencies(
    world: World, receiver: Receiver, changes: list[tuple[float, str, str, str]]
) -> tuple[list[float], int]:
    """Each change's latency to its first 2xx (and how many never arrived)."""
    by_job: dict[tuple[str, str], list[tuple[float, str, float]]] = {}
    for at, _, body in receiver.arrivals:
        data = json.loads(body)["data"]
        key = (data["sellerId"], data["job"]["serviceJobId"])
        seen = _epoch(data["seenAt"])
        by_job.setdefault(key, []).append((at, data["job"]["serviceJobStatus"], seen))
    found, lost = [], 0
    for when, seller, job_id, status in changes:
        arrivals = [
            at for at, shown, seen in by_job.get((seller, job_id), ()) if shown == status
            and seen >= when - 0.001
        ]  # fmt: skip
        if arrivals:
            found.append(min(arrivals) - when)
        elif not _superseded(world, seller, job_id, when):
            lost += 1
    return found, lost


def _superseded(world: World, seller: str, job_id: str, when: float) -> bool:
    """Whether the job changed again before a sync could see this change (the two are
    one change to a poller: the later one is the one to find)."""
    later = [t for t, s, j, _ in world.changes if s == seller and j == job_id and t > when]
    return bool(later) and min(later) - when < SYNC_EVERY * 3


def _epoch(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _measure(redis_url: str, dsn: str, quick: bool, outage: float) -> dict[str, Any]:
    import asyncpg

    from spapi_services.emulator import ServicesEmulator
    from spapi_services.fleet import Fleet

    steady = 8.0 if quick else STEADY
    rng = random.Random(7)
    tag = uuid.uuid4().hex[:8]
    async with ServicesEmulator(jobs=JOBS, seed=5, sellers=SELLERS) as emu:
        env = _environment(emu, redis_url, dsn, tag)
        fleet = Fleet.from_env(env)
        receiver = Receiver()
        await receiver.start()
        db = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
        workers = [_start_worker(env) for _ in range(2)]
        stop = asyncio.Event()
        syncs: asyncio.Task[None] | None = None
        world = World(emu, rng)
        schema = fleet.schema
        try:
            for seller in emu.sellers:
                await fleet.add_seller(f"S{seller.index}", seller.refresh_token, MARKETPLACES)
            # The first syncs store every job; the endpoint, set after them, takes what
            # changes from then on.
            await fleet.enqueue_all()
            await _until("the first syncs", lambda: _synced(fleet), 120)
            await _until("their changes relayed", lambda: _drained(db, schema), 60)
            before = await db.fetchval(f"SELECT coalesce(max(id), 0) FROM {schema}.change_outbox")
            endpoint = await fleet.set_webhook(receiver.url, endpoint_id="bench")
            receiver.secret = endpoint.secrets[0].export()
            syncs = asyncio.create_task(_syncing(fleet, stop))

            # --- steady ------------------------------------------------------------------
            await _changing(world, steady)
            steady_changes = list(world.changes)
            await _until("the steady changes delivered", lambda: _drained(db, schema), 120)
            commit = await _from_commit(db, schema, receiver)

            # --- a worker killed mid-delivery --------------------------------------------
            receiver.hang_next = True
            while not receiver.hung:
                world.change()
                await asyncio.sleep(GAP)
            stuck = receiver.hung[0]
            holder = await db.fetchval(
                f"SELECT leased_by FROM {schema}.webhook_deliveries WHERE outbox_id = $1",
                int(stuck.rsplit("_", 1)[1]),
            )
            pid = int(holder.rsplit(":", 1)[1])
            victim = next(w for w in workers if w.pid == os.getpgid(pid))
            _kill(victim)
            killed_at = time.time()
            receiver.release.set()
            workers.append(_start_worker(env))

            # --- the receiver down ---------------------------------------------------------
            await receiver.stop()
            down_at = time.monotonic()
            await _changing(world, outage)
            await receiver.start()
            back = time.monotonic()
            await _until("every change delivered", lambda: _drained(db, schema), 300)
            recovered = time.monotonic() - back
            stop.set()
            await syncs
            await _until("the last syncs", lambda: _synced(fleet), 60)
            await _until("their changes delivered", lambda: _drained(db, schema), 300)

            rows = await db.fetch(
                f"SELECT id FROM {schema}.change_outbox WHERE id > $1 ORDER BY id", before
            )
            mirror = await db.fetchval(
                f"SELECT value FROM {schema}.mirror_meta WHERE name = 'mirror_id'"
            )
            retried = await db.fetchval(
                f"SELECT count(*) FROM {schema}.webhook_deliveries WHERE attempts > 1"
            )
        finally:
            stop.set()
            if syncs is not None:
                await asyncio.gather(syncs, return_exceptions=True)
            for worker in workers:
                _kill(worker, signal.SIGTERM)
            await receiver.stop()
            await db.close()
            await fleet.aclose()
    expected = {f"msg_{mirror}_{row['id']}" for row in rows}
    received: dict[str, set[bytes]] = {}
    for _, webhook_id, body in receiver.arrivals:
        received.setdefault(webhook_id, set()).add(body)
    counts: dict[str, int] = {}
    for _, webhook_id, _ in receiver.arrivals:
        counts[webhook_id] = counts.get(webhook_id, 0) + 1
    # Judged once every change is made: a change the next one superseded (made before a
    # sync could see it) is no loss.
    latencies, steady_lost = _latencies(world, receiver, steady_changes)
    _, made_lost = _latencies(world, receiver, world.changes)
    return {
        "sellers": SELLERS,
        "sync_every_s": SYNC_EVERY,
        "steady_s": steady,
        "steady_changes": len(steady_changes),
        "steady_measured": len(latencies),
        "steady_lost": steady_lost,
        "p50": _pct(latencies, 0.5),
        "p99": _pct(latencies, 0.99),
        "mean": statistics.fmean(latencies) if latencies else None,
        "commit_p50": _pct(commit, 0.5),
        "commit_p99": _pct(commit, 0.99),
        "outage_s": round(back - down_at, 1),
        "killed_at": killed_at,
        "changes_made": len(world.changes),
        "changes_recorded": len(expected),
        "changes_received": len(expected & set(received)),
        "lost_recorded": len(expected - set(received)),
        "lost_made": made_lost,
        "unknown_received": len(set(received) - expected),
        "duplicates": sum(n - 1 for n in counts.values()),
        "duplicates_same_id_and_body": all(len(b) == 1 for b in received.values()),
        "stuck_copies": counts.get(stuck, 0),
        "retried_deliveries": retried,
        "recovered_s": round(recovered, 2),
        "unverified": receiver.unverified,
    }


async def _synced(fleet: Any) -> bool:
    statuses = await fleet.status()
    return all(s.state == "ok" and not s.running and not s.queued for s in statuses)


async def _drained(db: Any, schema: str) -> bool:
    waiting = await db.fetchval(
        f"SELECT count(*) FROM {schema}.change_outbox o WHERE relayed_at IS NULL OR EXISTS"
        f" (SELECT 1 FROM {schema}.webhook_deliveries d WHERE d.outbox_id = o.id"
        " AND d.state <> 'delivered')"
    )
    return bool(waiting == 0)


async def _from_commit(db: Any, schema: str, receiver: Receiver) -> list[float]:
    rows = await db.fetch(f"SELECT id, seen_at FROM {schema}.change_outbox")
    seen = {row["id"]: row["seen_at"].timestamp() for row in rows}
    first: dict[int, float] = {}
    for at, webhook_id, _ in receiver.arrivals:
        outbox_id = int(webhook_id.rsplit("_", 1)[1])
        first[outbox_id] = min(first.get(outbox_id, at), at)
    return [first[i] - seen[i] for i in first if i in seen]


def run(quick: bool = False, outage: float | None = None) -> dict[str, Any]:
    """Measure; the figures (``{"skipped": why}`` when the servers are missing)."""
    why = missing()
    if why is not None:
        return {"skipped": why}
    from spapi_services.fleet import _local

    chosen = (10.0 if quick else OUTAGE) if outage is None else outage
    with (
        _local.running(_local.RedisServer) as redis,
        _local.running(_local.PostgresServer) as postgres,
    ):
        return asyncio.run(_measure(redis.url, postgres.dsn, quick, chosen))


def markdown(results: dict[str, Any]) -> str:
    if "skipped" in results:
        return f"Skipped: {results['skipped']}\n"

    def s(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    r = results
    latency = _common.table(
        ["changes (measured)", "change → 2xx p50 s", "p99 s", "commit → 2xx p50 s", "p99 s",
         "syncs sent every", "lost"],
        [[f"{r['steady_changes']} ({r['steady_measured']})", s(r["p50"]), s(r["p99"]),
          s(r["commit_p50"]), s(r["commit_p99"]), f"{r['sync_every_s']:g} s",
          str(r["steady_lost"])]],
    )  # fmt: skip
    ok = r["lost_recorded"] == 0 and r["lost_made"] == 0 and r["duplicates_same_id_and_body"]
    faults = _common.table(
        ["outage", "changes made", "recorded", "received", "lost", "duplicates",
         "every duplicate: same webhook-id and body", "caught up after return"],
        [[f"{r['outage_s']:g} s", str(r["changes_made"]), str(r["changes_recorded"]),
          str(r["changes_received"]), f"{r['lost_recorded'] + r['lost_made']} "
          + ("✓" if ok else "✗"), str(r["duplicates"]),
          "yes ✓" if r["duplicates_same_id_and_body"] else "no ✗", f"{r['recovered_s']:.1f} s"]],
    )  # fmt: skip
    return latency + "\n" + faults


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--outage", type=float)
    args = parser.parse_args()
    results = run(args.quick, args.outage)
    print(json.dumps(results, indent=1))
    print(markdown(results))


if __name__ == "__main__":
    main()
