"""The whole fleet on this machine, with a handle on every part a fault can reach.

* **Servers**: Debian's ``redis-server`` (append-only file on, so a restart can keep its
  data or, with the files wiped, lose it all) and a PostgreSQL cluster, each on a free
  port in a folder of the campaign's.
* **The emulator** (``ServicesEmulator(sellers=N)``, Amazon's usage plans enforced) in
  this process's event loop, so the campaign can change its jobs and its faults between
  two requests.  Its page tokens are offsets (or keyset cursors), optionally expiring,
  and with an :class:`~spapi_services.emulator.Activity` every seller's world creates and
  moves jobs on its own while it is paged, besides the campaign's own changes.
* **Worker slots**: each a ``spapi-services fleet worker`` process (taskiq's manager and
  one worker child, in a session of their own) that reaches Redis and PostgreSQL
  through two :class:`~_proxy.Proxy` links of its own (``pause()`` stops forwarding
  with the sockets open: a partition, a half-open connection).  A killed worker is started again
  in its slot, as a process manager would.
* **The schedule**: ``spapi-services fleet schedule``, straight to Redis.
* **A status probe**: a :class:`Fleet` of this process reaching Redis through a link of
  its own, asked for the status every few seconds with a deadline.

Every process's output goes to a log file in the campaign's folder.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import attrs
from _proxy import Proxy

from spapi_services.emulator import Activity, ServicesEmulator
from spapi_services.emulator.catalog import MARKETPLACES
from spapi_services.fleet import DirectoryKey, Fleet
from spapi_services.fleet._local import PersistentRedisServer, PostgresServer

__all__ = ["ALL_MARKETPLACES", "AofRedis", "Life", "Settings", "WorkerSlot", "World"]

ALL_MARKETPLACES = [m.marketplace_id for m in MARKETPLACES]
TOKEN_KEY = "Y2hhb3MtY2FtcGFpZ24tdG9rZW4ta2V5LTMyLWJ5dGU="  # 32 bytes, base64


@attrs.frozen(kw_only=True)
class Settings:
    """The size and pace of one campaign."""

    sellers: int = 5
    jobs: int = 30
    workers: int = 3
    #: Seconds a seller's lock lives unrenewed (short, so faults play out within seconds).
    lease: float = 2.5
    #: Seconds between the schedule's sends of each seller.
    interval: float = 2.0
    #: Seconds of chaos (faults and job changes) before everything is healed.
    chaos: float = 30.0
    #: Fault events in the schedule.
    faults: int = 10
    #: Mean seconds between two job changes in the emulator during the chaos.
    change_every: float = 0.5
    #: Share of job changes that add a new job rather than change one.
    new_job_share: float = 0.15
    #: Seconds every seller has, once healed, to finish a clean sync.
    final_deadline: float = 45.0
    #: A running seller without any write or status change for this long is stalled.
    stall_after: float = 20.0
    #: Seconds the status probe waits for ``Fleet.status()``.
    probe_deadline: float = 5.0
    #: Added to every getServiceJobs answer (so faults land in the middle of syncs).
    latency: float = 0.1
    #: Sellers one worker process syncs at once.
    max_async_tasks: int = 4
    #: Windows (pages in flight) per sync.
    windows: int = 2
    #: What the emulator's page tokens hold: ``offset`` (a position in the result set as
    #: it is when the token comes back, so a job moving mid-paging shifts the pages after
    #: it) or ``keyset`` (the edge's sort key).
    page_tokens: str = "offset"
    #: Seconds a page token is accepted (None: for ever).
    page_token_ttl: float | None = None
    #: Each seller's world creating and moving jobs by itself while it is paged (None:
    #: only the campaign's own changes).
    activity: Activity | None = attrs.field(
        factory=lambda: Activity(created_per_minute=6, updated_per_minute=60)
    )


@attrs.define
class Life:
    """One worker (or scheduler) process from its start to its end."""

    role: str
    process: subprocess.Popen[bytes] = attrs.field(repr=False)
    log: Path
    started: float
    ended: float | None = None
    #: How the campaign ended it: ``killed`` (SIGKILL), ``stopped`` (SIGTERM at the end).
    ended_by: str | None = None
    returncode: int | None = None

    @property
    def pid(self) -> int:
        """The process id (of taskiq's manager, for a worker)."""
        return self.process.pid


@attrs.define(eq=False)
class WorkerSlot:
    """A place for one worker process, with its own links to Redis and PostgreSQL."""

    name: str
    redis_link: Proxy
    pg_link: Proxy
    process: subprocess.Popen[bytes] | None = None
    life: Life | None = None
    paused: bool = False
    #: Names of the faults acting on this slot right now.
    faults: set[str] = attrs.Factory(set)

    @property
    def pid(self) -> int | None:
        """The slot's process group (its manager's pid) while it runs."""
        return None if self.process is None else self.process.pid


class AofRedis(PersistentRedisServer):
    """``redis-server`` with its append-only file on (``appendfsync everysec``).

    :meth:`restart_keeping` stops it as a managed restart does (SIGTERM: the file is
    flushed) and starts it again on the same port with its data; :meth:`restart_losing`
    kills it and wipes its files, so it comes back empty, as an in-memory Redis does.
    """

    def command(self) -> list[str]:
        words = super().command()
        words[words.index("--appendfsync") + 1] = "everysec"
        return words

    def wipe(self) -> None:
        """Remove every file the server keeps its data in."""
        shutil.rmtree(self.directory / "appendonlydir", ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            (self.directory / "dump.rdb").unlink()


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


class World:
    """Everything a campaign runs, started by :meth:`start` and stopped by :meth:`stop`."""

    def __init__(self, settings: Settings, seed: int, folder: Path) -> None:
        self.settings = settings
        self.seed = seed
        self.folder = folder
        self.logs = _mkdir(folder / "logs")
        tag = f"c{seed % 10**8}"
        self.schema = f"chaos_{tag}"
        self.key_prefix = f"chaos{tag}"
        self.queue = f"chaos{tag}:tasks"
        self.directory_key = DirectoryKey.generate()
        self.redis: AofRedis | None = None
        self.postgres: PostgresServer | None = None
        self.emulator: ServicesEmulator | None = None
        self.db: asyncpg.Pool[asyncpg.Record] | None = None
        self.slots: list[WorkerSlot] = []
        self.scheduler: subprocess.Popen[bytes] | None = None
        self.scheduler_life: Life | None = None
        self.lives: list[Life] = []
        self.probe_link: Proxy | None = None
        self.probe: Fleet | None = None
        self.control: Fleet | None = None
        self.seller_ids: list[str] = []
        self.started = time.monotonic()
        self.wall_start = time.time()  # the same moment on the wall clock (logs' stamps)
        self._server_dirs: list[Path] = []

    # --- the parts ---------------------------------------------------------------------

    @property
    def emu(self) -> ServicesEmulator:
        assert self.emulator is not None
        return self.emulator

    @property
    def pool(self) -> asyncpg.Pool[asyncpg.Record]:
        assert self.db is not None
        return self.db

    def seller_index(self, seller_id: str) -> int:
        """The emulator's index of a fleet seller id (``S03`` -> 3)."""
        return int(seller_id[1:])

    def elapsed(self) -> float:
        """Seconds since the world started."""
        return time.monotonic() - self.started

    # --- starting and stopping -----------------------------------------------------------

    async def start(
        self,
        redis_executable: str,
        postgres_executable: str,
        watch: Callable[[ServicesEmulator], None] = lambda emulator: None,
    ) -> None:
        """Servers, emulator, sellers, links, the fleet's tables, workers and schedule.

        ``watch`` is given the emulator before it answers its first request (to record
        its jobs, and to follow the changes its activity makes).
        """
        s = self.settings
        # Folders of their own in /tmp: PostgreSQL runs as another user when we are root,
        # and must reach its folder (a pytest tmp_path is private to root).
        self._server_dirs = [
            Path(tempfile.mkdtemp(prefix=f"spapi-chaos-{name}-")) for name in ("redis", "pg")
        ]
        self.redis = AofRedis(self._server_dirs[0], executable=redis_executable)
        self.postgres = PostgresServer(self._server_dirs[1], executable=postgres_executable)
        await asyncio.gather(
            asyncio.to_thread(self.redis.start), asyncio.to_thread(self.postgres.start)
        )
        reference = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
        self.emulator = ServicesEmulator(
            jobs=s.jobs,
            seed=self.seed % 2**31,
            sellers=s.sellers,
            enforce_limits=True,
            reference_time=reference,
            page_tokens=s.page_tokens,
            page_token_ttl=s.page_token_ttl,
            activity=s.activity,
        )
        watch(self.emulator)
        await self.emulator.start()
        self.db = await asyncpg.create_pool(self.postgres.dsn, min_size=0, max_size=4)
        self.control = Fleet.from_env(self.environment(self.redis.url, self.postgres.dsn))
        self.seller_ids = [f"S{i:02d}" for i in range(s.sellers)]
        for seller in self.emu.sellers:
            await self.control.add_seller(
                f"S{seller.index:02d}", seller.refresh_token, ALL_MARKETPLACES
            )
        await self.control.status()  # creates the fleet's and the mirror's tables
        self.probe_link = await Proxy(self.redis.port).start()
        self.probe = Fleet.from_env(
            self.environment(f"redis://127.0.0.1:{self.probe_link.port}/0", self.postgres.dsn)
        )
        for index in range(s.workers):
            slot = WorkerSlot(
                name=f"w{index + 1}",
                redis_link=await Proxy(self.redis.port).start(),
                pg_link=await Proxy(self.postgres.port).start(),
            )
            self.slots.append(slot)
            self.start_worker(slot)
        self.start_scheduler()

    async def stop(self) -> None:
        """Stop every process, link and server (whatever state the campaign left)."""
        for slot in self.slots:
            await asyncio.to_thread(self.end_worker, slot, "stopped")
        await asyncio.to_thread(self.end_scheduler)
        for fleet in (self.probe, self.control):
            if fleet is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(fleet.aclose(), 10)
        for link in [self.probe_link, *(s.redis_link for s in self.slots)]:
            if link is not None:
                await link.aclose()
        for slot in self.slots:
            await slot.pg_link.aclose()
        if self.db is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.db.close(), 10)
        if self.emulator is not None:
            await self.emulator.stop()
        for server in (self.redis, self.postgres):
            if server is not None:
                await asyncio.to_thread(server.stop)
                log = server.directory / f"{server.program}.log"
                if log.exists():
                    shutil.copy(log, self.logs / log.name)
        for directory in self._server_dirs:
            shutil.rmtree(directory, ignore_errors=True)

    # --- processes -------------------------------------------------------------------------

    def environment(self, redis_url: str, database_url: str) -> dict[str, str]:
        """What every process of the fleet reads (``SPAPI_FLEET_*``), with its own links."""
        s = self.settings
        return {
            **os.environ,
            "SPAPI_REDIS_URL": redis_url,
            "SPAPI_DATABASE_URL": database_url,
            "SPAPI_FLEET_REDIS_URL": redis_url,
            "SPAPI_FLEET_DATABASE_URL": database_url,
            "SPAPI_FLEET_DIRECTORY_KEY": self.directory_key,
            "SPAPI_FLEET_TOKEN_KEY": TOKEN_KEY,
            "SPAPI_FLEET_HISTORY_DAYS": "92",
            "SPAPI_FLEET_LEASE_SECONDS": str(s.lease),
            "SPAPI_FLEET_RECLAIM_INTERVAL_SECONDS": "0.5",
            "SPAPI_FLEET_INTERVAL_MINUTES": repr(s.interval / 60),
            "SPAPI_FLEET_WINDOWS": str(s.windows),
            "SPAPI_FLEET_ENDPOINT": self.emu.url,
            "SPAPI_FLEET_TOKEN_URL": self.emu.token_url,
            "SPAPI_FLEET_SCHEMA": self.schema,
            "SPAPI_FLEET_KEY_PREFIX": self.key_prefix,
            "SPAPI_FLEET_QUEUE": self.queue,
            "SPAPI_FLEET_POOL_SIZE": "4",
            "SPAPI_CLIENT_ID": self.emu.credentials.client_id,
            "SPAPI_CLIENT_SECRET": self.emu.credentials.client_secret,
            "PYTHONUNBUFFERED": "1",
        }

    def _spawn(self, role: str, args: Sequence[str], env: dict[str, str]) -> Life:
        number = sum(1 for life in self.lives if life.role == role) + 1
        log = self.logs / f"{role}.{number}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "spapi_services.cli", "fleet", *args],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its manager and worker child stop together
            )
        life = Life(role=role, process=process, log=log, started=self.elapsed())
        self.lives.append(life)
        return life

    def start_worker(self, slot: WorkerSlot) -> None:
        """Start the slot's worker process (through the slot's links)."""
        env = self.environment(
            f"redis://127.0.0.1:{slot.redis_link.port}/0",
            # Its writes carry its name (PostgreSQL's application_name): the audit says who.
            f"postgresql://{PostgresServer.superuser}@127.0.0.1:{slot.pg_link.port}/postgres"
            f"?application_name=worker-{slot.name}",
        )
        args = [
            "worker",
            "--workers", "1",
            "--max-async-tasks", str(self.settings.max_async_tasks),
            "--log-level", "INFO",
        ]  # fmt: skip
        slot.life = self._spawn(slot.name, args, env)
        slot.process = slot.life.process
        slot.paused = False

    def end_worker(self, slot: WorkerSlot, how: str) -> None:
        """End the slot's process: ``killed`` (SIGKILL now) or ``stopped`` (SIGTERM)."""
        if slot.process is None or slot.life is None:
            return
        _end(slot.process, slot.life, how, self.elapsed)
        slot.process = None
        slot.paused = False

    def start_scheduler(self) -> None:
        """``spapi-services fleet schedule`` straight to Redis and PostgreSQL."""
        assert self.redis is not None
        assert self.postgres is not None
        env = self.environment(self.redis.url, self.postgres.dsn)
        args = ["schedule", "--update-interval", "5", "--log-level", "INFO"]
        self.scheduler_life = self._spawn("scheduler", args, env)
        self.scheduler = self.scheduler_life.process

    def end_scheduler(self) -> None:
        """Stop the schedule (SIGTERM)."""
        if self.scheduler is not None and self.scheduler_life is not None:
            _end(self.scheduler, self.scheduler_life, "stopped", self.elapsed)
            self.scheduler = None

    def pause(self, slot: WorkerSlot) -> None:
        """Freeze the slot's processes (SIGSTOP to the group), as a stalled VM would."""
        if slot.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(slot.process.pid, signal.SIGSTOP)
            slot.paused = True

    def resume(self, slot: WorkerSlot) -> None:
        """Let a paused slot run again (SIGCONT)."""
        if slot.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(slot.process.pid, signal.SIGCONT)
        slot.paused = False

    def died(self) -> list[Life]:
        """Processes that ended on their own since the last look (and are now recorded)."""
        found = []
        for life in self.lives:
            if life.ended_by is None and life.ended is None and life.process.poll() is not None:
                life.ended = self.elapsed()
                life.returncode = life.process.returncode
                found.append(life)
        return found

    def slot_of_pid(self, pid: int) -> WorkerSlot | None:
        """The slot whose process group ``pid`` (a worker child) belongs to."""
        try:
            group = os.getpgid(pid)
        except ProcessLookupError:
            return None
        return next((s for s in self.slots if s.pid == group), None)

    async def running_sellers(self) -> dict[str, list[str]]:
        """Slot name -> the sellers its worker runs right now (from ``fleet_status``;
        nobody's while PostgreSQL is away)."""
        held: dict[str, list[str]] = {s.name: [] for s in self.slots}
        try:
            rows = await asyncio.wait_for(
                self.pool.fetch(
                    f"SELECT seller_id, worker FROM {self.schema}.fleet_status"
                    " WHERE state = 'running'"
                ),
                2.0,
            )
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
            return held
        for row in rows:
            worker = row["worker"] or ""
            pid = worker.rsplit(":", 1)[-1]
            slot = self.slot_of_pid(int(pid)) if pid.isdigit() else None
            if slot is not None:
                held[slot.name].append(row["seller_id"])
        return held


def _end(process: subprocess.Popen[bytes], life: Life, how: str, clock: Any) -> None:
    group = process.pid
    if life.ended_by is None:
        life.ended_by = how  # before the signal: the monitor must not take it for a death
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            if how == "killed":
                os.killpg(group, signal.SIGKILL)
            else:
                os.killpg(group, signal.SIGCONT)  # a paused process cannot hear SIGTERM
                os.killpg(group, signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(group, signal.SIGKILL)
            process.wait()
            how = f"{how}, then killed after 20 s"
        if how == "stopped" and life.role.startswith("w"):
            _child_stopped(life.log, within=10.0)
    # The worker child of a killed manager may linger a moment: end the whole group.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGKILL)
    life.ended_by = how
    if life.ended is None:
        life.ended = clock()
        life.returncode = process.returncode


#: The last line a worker child logs as it stops, its tasks done.
CHILD_STOPPED = "Shutting down the broker."
#: What it logs when it still has tasks to wait for (then, once they end, "No more tasks").
TASKS_LEFT = re.compile(r"Waiting for (\d+) running tasks to complete")


def _child_stopped(log: Path, within: float) -> None:
    """Wait (up to ``within`` s) for the worker child, told to stop by its manager, to
    finish its tasks and stop; one that does not is left for the caller to kill, and
    its log says what it was waiting for (see :func:`tasks_never_ended`)."""
    give_up = time.monotonic() + within
    while time.monotonic() < give_up:
        if CHILD_STOPPED in log.read_text(errors="replace"):
            return
        time.sleep(0.1)


def tasks_never_ended(log: Path) -> int:
    """How many running tasks a stopped worker child waited for in vain (0: none)."""
    text = log.read_text(errors="replace")
    waiting = list(TASKS_LEFT.finditer(text))
    if not waiting or "No more tasks to wait for" in text[waiting[-1].end() :]:
        return 0
    return int(waiting[-1][1])
