"""``spapi-services fleet demo``: a whole fleet on this machine, one worker killed midway.

It starts Redis and PostgreSQL from Debian's binaries (each on a free port of
127.0.0.1, in a temporary directory) and the emulator with many sellers in this
process (Amazon's usage plans enforced, latency on every page), puts the sellers in the
fleet's directory, starts worker processes (``spapi-services fleet worker``, each in a
session of its own), sends every seller's sync and shows each seller's progress live.
Once a worker is caught with a sync half stored it is killed (SIGKILL): its sellers
wait for their lease to run out, then the other workers resume them.  The summary
checks the mirror against the emulator's jobs (none missing, none twice) and compares
the time with the usage plans' bound.  A receiver in this process (on 127.0.0.1) takes
the first seller's changes as webhooks, checking each signature and de-duplicating by
``webhook-id``; the summary says how many of the changes it got (all) and how many twice
(a delivery the killed worker had under way).  With ``--serve`` the fleet stays up afterwards,
its status page served on 127.0.0.1 until Ctrl-C.  Everything is removed after, Ctrl-C
included.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import math
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import click
from rich.console import Group as RichGroup
from rich.live import Live
from rich.markup import escape
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from ._app import json_option, run, settings
from ._demo import _latency
from ._failures import EXIT_USAGE, Failure
from ._output import Output, plural

if TYPE_CHECKING:
    import asyncpg
    from redis.asyncio import Redis

    from ..emulator import ServicesEmulator
    from ..fleet import Fleet, SellerStatus

__all__ = ["demo"]

_OP = "getServiceJobs"
#: Short, so a killed worker's sellers come back within seconds; long enough that a busy
#: two-core machine renews it in time.
_LEASE = 3.0
_POLL = 0.2
# Variables of the user's own setup that would point the demo's workers elsewhere.
_FOREIGN = (
    "SPAPI_REDIS_URL",
    "SPAPI_DATABASE_URL",
    "SPAPI_ENDPOINT",
    "SPAPI_TOKEN_URL",
    "SPAPI_SANDBOX",
    "SPAPI_REGION",
)


@attrs.frozen
class DemoOptions:
    """What the demo runs: how many sellers and workers, how big and slow the world."""

    sellers: int
    jobs: int
    workers: int
    latency: float
    jitter: float
    seed: int
    kill: bool
    timeout: float
    serve: bool = False
    port: int = 8765


@click.command()
@click.option(
    "--sellers", type=click.IntRange(1, 500), default=20, show_default=True, help="Sellers."
)
@click.option(
    "--jobs",
    type=click.IntRange(1, 20_000),
    default=500,
    show_default=True,
    help="Service jobs of each seller.",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 16),
    default=3,
    show_default=True,
    help="Worker processes (one is killed midway, so give two or more).",
)
@click.option(
    "--latency",
    default="250",
    show_default=True,
    metavar="MS|MIN-MAX",
    help="Milliseconds each page takes (a range draws per request).",
)
@click.option("--seed", type=int, default=7, show_default=True, help="Seed of the sellers' worlds.")
@click.option(
    "--kill/--no-kill",
    default=True,
    show_default=True,
    help="Kill a worker in the middle of a sync.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=600.0,
    show_default=True,
    metavar="SECONDS",
    help="Give up if the fleet has not finished by then.",
)
@click.option(
    "--serve",
    is_flag=True,
    help="Once done, keep the fleet up and serve its status page on 127.0.0.1 "
    "(as `fleet status --serve` would) until Ctrl-C; then remove everything.",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8765,
    show_default=True,
    help="The status page's port with --serve (0: any free one).",
)
@json_option
def demo(
    sellers: int,
    jobs: int,
    workers: int,
    latency: str,
    seed: int,
    kill: bool,
    timeout: float,
    serve: bool,
    port: int,
) -> None:
    """Run a fleet here: Redis, PostgreSQL, the emulator's sellers, workers, one killed.

    Needs Debian's redis-server and postgresql packages (nothing is installed or kept:
    every server runs on 127.0.0.1 in a temporary directory, removed after).  --serve
    keeps it all up to look at its status page, until Ctrl-C.
    """
    if kill and workers < 2:
        raise Failure(
            "--workers: give at least 2 to kill one (or --no-kill)",
            kind="invalid_argument",
            exit_code=EXIT_USAGE,
            data={"option": "--workers", "rule": "at least 2 with --kill"},
        )
    base, jitter = _latency(latency)
    options = DemoOptions(sellers, jobs, workers, base, jitter, seed, kill, timeout, serve, port)
    out = settings().output
    from ..fleet import _local

    try:
        redis_program = _local.find_program("redis-server", "redis-server")
        postgres_program = _local.find_program(
            "postgres", "postgresql", elsewhere=_local.PostgresServer.elsewhere
        )
    except _local.ProgramMissing as missing:
        raise Failure(
            f"the fleet demo runs Redis and PostgreSQL on this machine, and {missing}",
            kind="setup",
            exit_code=EXIT_USAGE,
            data={"program": missing.program, "package": missing.package},
        ) from None
    # SIGTERM stops the demo as Ctrl-C does: everything it started is stopped and removed.
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        with contextlib.ExitStack() as stack:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="spapi-fleet-")))
            _say(out, "Starting Redis and PostgreSQL on 127.0.0.1 (temporary folders)...")
            redis = stack.enter_context(
                _local.RedisServer(_own_folder(stack, "redis"), executable=redis_program)
            )
            postgres = stack.enter_context(
                _local.PostgresServer(_own_folder(stack, "postgres"), executable=postgres_program)
            )
            pool = WorkerPool(folder)
            stack.callback(pool.stop)
            summary = run(lambda: _run(out, options, redis.url, postgres.dsn, pool))
    finally:
        signal.signal(signal.SIGTERM, previous)
    if not options.serve:  # with --serve it was shown before the page was served
        _show_summary(out, summary)


def _own_folder(stack: contextlib.ExitStack, name: str) -> Path:
    # A folder of its own at the top: PostgreSQL, run as another user under root, must
    # be able to reach it.
    return Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=f"spapi-fleet-{name}-")))


def _say(out: Output, message: str) -> None:
    if not out.as_json:
        out.say(message)


# --- the worker processes ----------------------------------------------------------------


class WorkerPool:
    """``spapi-services fleet worker`` processes, each in a session of its own (so one
    can be killed with its children, and a Ctrl-C reaches none of them)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.processes: list[subprocess.Popen[bytes]] = []
        self.killed: int | None = None

    def start(self, count: int, env: dict[str, str], max_tasks: int) -> None:
        for number in range(count):
            command = [
                sys.executable, "-m", "spapi_services.cli", "fleet", "worker",
                "--workers", "1",
                "--max-async-tasks", str(max_tasks),
                "--log-level", "WARNING",
            ]  # fmt: skip
            with (self.folder / f"worker{number + 1}.log").open("wb") as log:
                self.processes.append(
                    subprocess.Popen(
                        command,
                        env=env,
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )

    def number_of(self, pid: int) -> int | None:
        """Which worker (1, 2...) a process belongs to, if it is one of theirs."""
        try:
            group = os.getpgid(pid)
        except ProcessLookupError:
            return None
        for number, process in enumerate(self.processes, 1):
            if process.pid == group:
                return number
        return None

    def kill(self, number: int) -> None:
        """Kill a worker and its children at once, as a crash would."""
        process = self.processes[number - 1]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        self.killed = number

    def failed(self) -> list[tuple[int, str]]:
        """Workers that exited on their own, with the end of their log."""
        dead = []
        for number, process in enumerate(self.processes, 1):
            if number != self.killed and process.poll() is not None:
                log = (self.folder / f"worker{number}.log").read_text(errors="replace")
                dead.append((number, log[-1500:]))
        return dead

    def stop(self) -> None:
        """Stop every worker (SIGTERM, then SIGKILL after a few seconds)."""
        for process in self.processes:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        give_up = time.monotonic() + 5
        for process in self.processes:
            try:
                process.wait(max(0.1, give_up - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()


# --- the run -----------------------------------------------------------------------------


class DemoReceiver:
    """A webhook receiver on 127.0.0.1: verifies, de-duplicates by ``webhook-id``, counts."""

    def __init__(self) -> None:
        self.secret = ""
        self.url = ""
        self.ids: set[str] = set()
        self.copies = 0
        self.refused = 0
        self._runner: Any = None

    async def start(self) -> None:
        from aiohttp import web

        app = web.Application()
        app.router.add_post("/webhooks", self._receive)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/webhooks"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _receive(self, request: Any) -> Any:
        from aiohttp import web

        from ..webhooks import WebhookVerificationError, verify

        body = await request.read()
        try:
            webhook_id = verify(body, request.headers, self.secret)
        except WebhookVerificationError:
            self.refused += 1
            return web.Response(status=400)
        if webhook_id in self.ids:
            self.copies += 1  # a repeat: acknowledged, not handled again
        self.ids.add(webhook_id)
        return web.Response(status=204)


#: The seller whose changes the demo's receiver takes.
_HOOKED = "S01"


@attrs.define
class _Watch:
    """What the live view shows, updated every poll."""

    statuses: list[SellerStatus] = attrs.field(factory=list)
    stored: dict[str, int] = attrs.field(factory=dict)
    expected: dict[str, int] = attrs.field(factory=dict)
    started: float = 0.0
    killed: dict[str, Any] | None = None
    events: list[str] = attrs.field(factory=list)
    receiver: DemoReceiver = attrs.field(factory=DemoReceiver)
    hooked: int = 0
    """Changes of the hooked seller recorded in the outbox."""


async def _run(
    out: Output, options: DemoOptions, redis_url: str, dsn: str, pool: WorkerPool
) -> dict[str, Any]:
    import asyncpg
    from redis.asyncio import Redis

    from ..emulator import ServicesEmulator
    from ..emulator.catalog import MARKETPLACES
    from ..fleet import Fleet

    # The worlds are built an hour back, so that every job is there before the sync.
    reference = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    emu = ServicesEmulator(
        jobs=options.jobs,
        seed=options.seed,
        sellers=options.sellers,
        enforce_limits=True,
        reference_time=reference,
    )
    if options.latency or options.jitter:
        emu.faults.set(_OP, latency=options.latency, jitter=options.jitter)
    marketplaces = [m.marketplace_id for m in MARKETPLACES]
    watch = _Watch(expected={})
    async with emu:
        env = _worker_environment(emu, redis_url, dsn)
        fleet = Fleet.from_env(env)
        db = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
        redis = Redis.from_url(redis_url)
        await watch.receiver.start()
        try:
            ids = {f"S{seller.index + 1:02d}": seller for seller in emu.sellers}
            for seller_id, seller in ids.items():
                await fleet.add_seller(seller_id, seller.refresh_token, marketplaces)
            hook = await fleet.set_webhook(
                watch.receiver.url, endpoint_id="demo", seller_id=_HOOKED, buyer_data="drop"
            )
            watch.receiver.secret = hook.secrets[0].export()
            _say(
                out,
                f"Emulator on [cyan]{emu.url}[/cyan]: {plural(options.sellers, 'seller')}, "
                f"{options.jobs:,} jobs each in {len(marketplaces)} marketplaces, "
                f"{_ms(options)} a page, each seller's own usage plans enforced.",
            )
            pool.start(options.workers, env, max_tasks=options.sellers)
            await _workers_listening(redis, pool, options.workers)
            _say(
                out,
                f"{plural(options.workers, 'worker process', 'worker processes')} listening; "
                "sending every seller's sync.",
            )
            watch.expected = {s: len(e.store.jobs) for s, e in ids.items()}
            watch.started = time.monotonic()
            sent_at = datetime.now(UTC)
            await fleet.enqueue_all()
            await _follow(out, options, fleet, db, redis, pool, watch)
            elapsed = time.monotonic() - watch.started
            summary = await _summary(emu, fleet, db, ids, watch, options, elapsed, sent_at)
            if options.serve:
                _show_summary(out, summary)
                await _serve_status(out, fleet, options.port)
            return summary
        finally:
            await watch.receiver.stop()
            await redis.aclose()
            await db.close()
            await fleet.aclose()


async def _serve_status(out: Output, fleet: Fleet, port: int) -> None:
    """The fleet's status page on 127.0.0.1:``port`` until Ctrl-C or SIGTERM."""
    from aiohttp import web

    from ..fleet._page import allowed_hosts, status_app

    runner = web.AppRunner(
        status_app(fleet, hosts=allowed_hosts("127.0.0.1")), access_log=None, handle_signals=False
    )
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    try:
        await web.TCPSite(runner, "127.0.0.1", port).start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/"
        if out.as_json:
            out.json({"url": url})
        else:
            out.say(
                f"The fleet stays up: its status page is on [cyan]{url}[/cyan] (the workers "
                "keep running; `fleet status` works too). Ctrl-C stops it all and removes "
                "everything."
            )
        sys.stdout.flush()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await runner.cleanup()


def _worker_environment(emu: ServicesEmulator, redis_url: str, dsn: str) -> dict[str, str]:
    from ..fleet import DirectoryKey

    env = {k: v for k, v in os.environ.items() if k not in _FOREIGN}
    env.update(
        {
            "SPAPI_FLEET_REDIS_URL": redis_url,
            "SPAPI_FLEET_DATABASE_URL": dsn,
            "SPAPI_FLEET_DIRECTORY_KEY": DirectoryKey.generate(),
            "SPAPI_FLEET_TOKEN_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
            "SPAPI_FLEET_ENDPOINT": emu.url,
            "SPAPI_FLEET_TOKEN_URL": emu.token_url,
            "SPAPI_FLEET_HISTORY_DAYS": "92",
            "SPAPI_FLEET_LEASE_SECONDS": str(_LEASE),
            "SPAPI_FLEET_RECLAIM_INTERVAL_SECONDS": "0.5",
            "SPAPI_FLEET_POOL_SIZE": "4",
            # The demo's receiver is on this machine.
            "SPAPI_FLEET_WEBHOOK_ALLOW_NETWORKS": "127.0.0.0/8",
            "SPAPI_CLIENT_ID": emu.credentials.client_id,
            "SPAPI_CLIENT_SECRET": emu.credentials.client_secret,
        }
    )
    return env


def _ms(options: DemoOptions) -> str:
    low = options.latency * 1000
    if not options.jitter:
        return f"{low:.0f} ms"
    return f"{low:.0f}–{low + options.jitter * 1000:.0f} ms"


async def _workers_listening(redis: Redis, pool: WorkerPool, count: int) -> None:
    """Wait until every worker reads the queue: a connection each, blocked in XREADGROUP.

    (Redis lists a consumer of the group only once it has been given a task.)
    """
    give_up = time.monotonic() + 60
    while True:
        clients = await redis.client_list()
        if sum(1 for c in clients if c.get("cmd") == "xreadgroup") >= count:
            return
        _check_workers(pool)
        if time.monotonic() > give_up:
            raise Failure("the workers did not start within a minute", kind="demo")
        await asyncio.sleep(0.1)


def _check_workers(pool: WorkerPool) -> None:
    failed = pool.failed()
    if failed:
        number, log = failed[0]
        raise Failure(
            f"worker {number} exited on its own",
            kind="demo",
            lines=[escape(line) for line in log.strip().splitlines()[-12:]],
        )


async def _follow(
    out: Output,
    options: DemoOptions,
    fleet: Fleet,
    db: asyncpg.Pool,
    redis: Redis,
    pool: WorkerPool,
    watch: _Watch,
) -> None:
    """Poll the fleet until every seller is done, killing a worker on the way."""
    live = None if out.as_json else Live(console=out.out, refresh_per_second=8)
    with live or contextlib.nullcontext():
        while True:
            await _observe(fleet, db, watch)
            if options.kill and watch.killed is None:
                _maybe_kill(pool, watch)
            if live is not None:
                live.update(_view(watch, options))
            if await _finished(fleet, redis, watch, db):
                break
            _check_workers(pool)
            if time.monotonic() - watch.started > options.timeout:
                behind = [s.seller_id for s in watch.statuses if s.state != "ok"]
                raise Failure(
                    f"the fleet did not finish within {options.timeout:g} s; not done: "
                    + ", ".join(behind),
                    kind="demo",
                )
            await asyncio.sleep(_POLL)


async def _observe(fleet: Fleet, db: asyncpg.Pool, watch: _Watch) -> None:
    watch.statuses = await fleet.status()
    rows = await db.fetch(
        f"SELECT seller_id, count(*) FROM {fleet.schema}.service_jobs GROUP BY seller_id"
    )
    watch.stored = {row[0]: row[1] for row in rows}
    watch.hooked = await db.fetchval(
        f"SELECT count(*) FROM {fleet.schema}.change_outbox WHERE seller_id = $1", _HOOKED
    )


def _maybe_kill(pool: WorkerPool, watch: _Watch) -> None:
    """Kill the first worker found with a sync that has stored pages but not finished."""
    by_worker: dict[int, list[str]] = {}
    caught: int | None = None
    for status in watch.statuses:
        if status.state != "running" or status.worker is None:
            continue
        number = pool.number_of(int(status.worker.rsplit(":", 1)[1]))
        if number is None:
            continue
        by_worker.setdefault(number, []).append(status.seller_id)
        stored = watch.stored.get(status.seller_id, 0)
        if caught is None and 0 < stored < watch.expected.get(status.seller_id, 0):
            caught = number
    if caught is None:
        return
    pool.kill(caught)
    at = time.monotonic() - watch.started
    sellers = by_worker[caught]
    watch.killed = {"worker": caught, "atSeconds": round(at, 2), "sellers": sellers}
    watch.events.append(
        f"{at:.1f} s: killed worker {caught} (SIGKILL) in the middle of "
        f"{', '.join(sellers)}: {'its task goes' if len(sellers) == 1 else 'their tasks go'} "
        f"to another worker once silent for {2 * _LEASE:g} s (twice the lease), and "
        "resume from the checkpoint"
    )


async def _finished(fleet: Fleet, redis: Redis, watch: _Watch, db: asyncpg.Pool) -> bool:
    if not watch.statuses or any(s.state != "ok" or s.running or s.queued for s in watch.statuses):
        return False
    undelivered = await db.fetchval(
        f"SELECT count(*) FROM {fleet.schema}.change_outbox o WHERE relayed_at IS NULL OR"
        f" EXISTS (SELECT 1 FROM {fleet.schema}.webhook_deliveries d WHERE"
        " d.outbox_id = o.id AND d.state <> 'delivered')"
    )
    if undelivered:
        return False
    broker = fleet.broker
    pending = await redis.xpending(broker.queue_name, broker.consumer_group_name)
    return pending["pending"] == 0 and await redis.xlen(broker.queue_name) == 0


def _view(watch: _Watch, options: DemoOptions) -> RichGroup:
    table = Table(title_justify="left", expand=False, pad_edge=False)
    for name in ("seller", "state", "mirrored", "", "worker", "429s"):
        table.add_column(name, no_wrap=True)
    for status in watch.statuses:
        expected = watch.expected.get(status.seller_id, 0)
        stored = watch.stored.get(status.seller_id, 0)
        state = "running" if status.running else status.state
        style = {"ok": "green", "running": "cyan", "interrupted": "yellow"}.get(state, "red")
        if state == "new":
            style = "dim"
        worker = "-"
        if status.worker and status.running:
            worker = f"pid {status.worker.rsplit(':', 1)[1]}"
        table.add_row(
            status.seller_id,
            Text(state + (" (queued)" if status.queued else ""), style=style),
            ProgressBar(total=max(expected, 1), completed=stored, width=24),
            f"{stored:>5,}/{expected:,}",
            worker,
            str(status.throttled_total),
        )
    done = sum(1 for s in watch.statuses if s.state == "ok" and not s.running)
    elapsed = time.monotonic() - watch.started
    head = Text.from_markup(
        f"[bold]{done}/{len(watch.statuses)} sellers done[/bold] · "
        f"{sum(watch.stored.values()):,}/{sum(watch.expected.values()):,} jobs mirrored · "
        f"{len(watch.receiver.ids):,}/{watch.hooked:,} of {_HOOKED}'s changes received as "
        f"webhooks · {elapsed:.1f} s · {options.workers} workers"
    )
    events = [Text(line, style="yellow") for line in watch.events]
    return RichGroup(head, *events, table)


async def _summary(
    emu: ServicesEmulator,
    fleet: Fleet,
    db: asyncpg.Pool,
    sellers: dict[str, Any],
    watch: _Watch,
    options: DemoOptions,
    elapsed: float,
    sent_at: datetime,
) -> dict[str, Any]:
    rows = await db.fetch(f"SELECT seller_id, service_job_id FROM {fleet.schema}.service_jobs")
    stored: dict[str, list[str]] = {}
    for row in rows:
        stored.setdefault(row[0], []).append(row[1])
    expected = {seller_id: set(seller.store.jobs) for seller_id, seller in sellers.items()}
    duplicates = sum(len(ids) - len(set(ids)) for ids in stored.values())
    missing = sum(len(jobs - set(stored.get(s, ()))) for s, jobs in expected.items())
    unexpected = sum(len(set(ids) - expected.get(s, set())) for s, ids in stored.items())
    mirrored = sum(len(set(stored.get(s, ())) & jobs) for s, jobs in expected.items())
    rate, burst = emu.limits.plan(_OP)
    windows = fleet.windows
    statuses = {s.seller_id: s for s in await fleet.status()}

    def bound(requests: int) -> float:
        # The seller's plan, or its pages' latency with every window busy: the larger.
        return max((requests - burst) / rate, math.ceil(requests / windows) * options.latency)

    bounds = {s: bound(status.requests or 0) for s, status in statuses.items()}
    slowest = max(bounds.values(), default=0.0)
    # The sellers the kill did not touch show the pace; the others add the hand-over.
    touched = set(watch.killed["sellers"]) if watch.killed else set()
    untouched = [
        (status.finished_at - sent_at).total_seconds()
        for seller_id, status in statuses.items()
        if seller_id not in touched and status.finished_at is not None
    ]
    calm = max(untouched, default=None)
    mirror = await db.fetchval(
        f"SELECT value FROM {fleet.schema}.mirror_meta WHERE name = 'mirror_id'"
    )
    hooked = {
        f"msg_{mirror}_{row[0]}"
        for row in await db.fetch(
            f"SELECT id FROM {fleet.schema}.change_outbox WHERE seller_id = $1", _HOOKED
        )
    }
    receiver = watch.receiver
    return {
        "sellers": len(sellers),
        "workers": options.workers,
        "killed": watch.killed,
        "jobsExpected": sum(len(jobs) for jobs in expected.values()),
        "jobsMirrored": mirrored,
        "duplicates": duplicates,
        "missing": missing,
        "unexpected": unexpected,
        "throttled": emu.count(status=429),
        "requests": emu.count(_OP),
        "states": dict(Counter(s.state for s in statuses.values())),
        "elapsedSeconds": round(elapsed, 2),
        "boundSeconds": round(slowest, 2),
        "elapsedOverBound": round(elapsed / slowest, 2) if slowest else None,
        "untouchedSeconds": None if calm is None else round(calm, 2),
        "untouchedOverBound": round(calm / slowest, 2) if calm and slowest else None,
        "leaseSeconds": _LEASE,
        "webhooks": {
            "seller": _HOOKED,
            "changes": len(hooked),
            "received": len(receiver.ids & hooked),
            "missing": len(hooked - receiver.ids),
            "unexpected": len(receiver.ids - hooked),
            "receivedTwice": receiver.copies,
            "refused": receiver.refused,
        },
        "plan": {"operation": _OP, "rate": rate, "burst": burst, "windows": windows},
    }


def _show_summary(out: Output, summary: dict[str, Any]) -> None:
    if out.as_json:
        out.json(summary)
        return
    killed = summary["killed"]
    plan = summary["plan"]
    ratio = summary["elapsedOverBound"]
    out.out.print()
    out.out.rule("[bold]Summary", align="left")
    out.fields(
        None,
        [
            ("sellers", summary["sellers"]),
            (
                "workers",
                f"{summary['workers']}"
                + (
                    f"; worker {killed['worker']} killed at {killed['atSeconds']} s "
                    f"(syncing {', '.join(killed['sellers'])})"
                    if killed
                    else "; none killed"
                ),
            ),
            ("jobs expected", f"{summary['jobsExpected']:,}"),
            ("jobs mirrored", f"{summary['jobsMirrored']:,}"),
            ("duplicates", summary["duplicates"]),
            ("missing", summary["missing"]),
            ("unknown rows", summary["unexpected"]),
            ("429s", summary["throttled"]),
            (f"{plan['operation']} requests", summary["requests"]),
            ("time", f"{summary['elapsedSeconds']:.1f} s"),
            (
                "the plans' bound",
                f"{summary['boundSeconds']:.1f} s (the slowest seller: its plan, "
                f"{plan['rate']:g}/s burst {plan['burst']}, or its pages' latency over "
                f"{plan['windows']} windows)",
            ),
            ("time / bound", f"{ratio:.2f}×" if ratio else "-"),
            (
                "webhooks",
                f"{summary['webhooks']['received']:,} of {summary['webhooks']['changes']:,} "
                f"changes of {summary['webhooks']['seller']} received by a receiver on "
                f"127.0.0.1 ({summary['webhooks']['receivedTwice']} twice, with the same "
                f"webhook-id; {summary['webhooks']['missing']} missing)",
            ),
        ]
        + (
            [
                (
                    "sellers the kill spared",
                    f"done in {summary['untouchedSeconds']:.1f} s"
                    + (
                        f" ({summary['untouchedOverBound']:.2f}× the bound)"
                        if summary["untouchedOverBound"]
                        else ""
                    )
                    + f"; the others waited {2 * summary['leaseSeconds']:g} s for the dead "
                    "worker's task to be handed over",
                )
            ]
            if killed and summary["untouchedSeconds"] is not None
            else []
        ),
    )
    if summary["missing"] or summary["duplicates"] or summary["unexpected"]:
        out.say("[red]The mirror does not match the emulator's jobs.[/red]")
    if summary["webhooks"]["missing"] or summary["webhooks"]["unexpected"]:
        out.say("[red]The receiver did not get every change.[/red]")
