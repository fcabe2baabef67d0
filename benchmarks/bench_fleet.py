"""The fleet: 50 sellers × 400 jobs mirrored into PostgreSQL by 1, 2 and 4 worker processes.

The emulator runs in a process of its own (``_sellers_emulator.py``: 50 sellers' refresh
tokens, each metered on its own published plan, getServiceJobs 10/s burst 40 enforced,
250 ms of latency on every answer, 400 seeded jobs); Redis and PostgreSQL are Debian's,
started for the run on 127.0.0.1 in temporary folders (``spapi_services.fleet._local``,
as the fleet's demo does).  For each worker count, each repetition gets a fresh fleet
(its own schema, Redis prefix and queue) and the emulator's buckets refilled; the
workers are one ``spapi-services fleet worker --workers N`` (taskiq processes forked
from it, the loopback guard installed), started and listening before the clock starts.
Then every seller's sync is sent at once, and the clock stops when every seller is
``ok`` and the queue is empty.

Per worker count (median of the repetitions, with the spread): wall time; the bound
(each seller's own plan bounds its sync, and the sellers run side by side, so the
fleet's bound is its slowest seller's: the larger of ``(requests − 40) / 10`` and its
pages' latency with every window busy, ``ceil(requests / windows) × 250 ms``); wall
time over the bound; jobs mirrored per second; the workers' CPU per job (user + system
of every worker process, from /proc, over the timed part); how many of the machine's
cores were busy (all processes, from /proc/stat) and how many each part kept busy (the
workers, the emulator, PostgreSQL, Redis, this driver); and 429s (target 0).  Every run
checks that each seller's 400 jobs are in PostgreSQL once.

``python benchmarks/bench_fleet.py [--quick] [--sellers N] [--jobs N] [--workers 1,2,4]
[--runs N]``; :func:`run` returns the figures and :func:`markdown` renders them.  Linux
only (/proc).  Timing never runs as a test.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import dataclasses
import itertools
import json
import math
import os
import secrets
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import _common  # noqa: E402  (installs the loopback guard)
import _sellers_emulator  # noqa: E402

SELLERS, JOBS, LATENCY, COUNTS, RUNS = 50, 400, 0.25, (1, 2, 4), 2
RATE, BURST = 10.0, 40
OPERATION = "getServiceJobs"
MARKETPLACES = ["ATVPDKIKX0DER", "A2EUQ1WTGCTBG2", "A1AM78C64UM0Y8", "A1PA6795UKMFR9",
                "A1F83G8C2ARO7P"]  # fmt: skip
#: A run that has not finished by then is reported as failed.
TIMEOUT = 600.0
_TICK = os.sysconf("SC_CLK_TCK")

# The worker command, with this folder's loopback guard installed first (its forked
# processes keep it).
_WORKER = (
    "import sys; sys.path.insert(0, {here!r}); import _guard; _guard.install(); "
    "from spapi_services.cli import main; "
    "sys.argv = ['spapi-services', 'fleet', 'worker', '--workers', '{n}', "
    "'--max-async-tasks', '{tasks}', '--log-level', 'WARNING']; main()"
)


def missing() -> str | None:
    """Why the fleet cannot be measured here, or ``None``."""
    try:
        from spapi_services.fleet import _local
    except ImportError as exc:
        return f"the fleet extra is not installed ({exc})"
    try:
        _local.find_program("redis-server", "redis-server")
        _local.find_program("postgres", "postgresql", elsewhere=_local.PostgresServer.elsewhere)
    except _local.ProgramMissing as exc:
        return str(exc)
    if not Path("/proc/stat").exists():
        return "this benchmark reads CPU times from /proc (Linux)"
    return None


# --- CPU accounting ------------------------------------------------------------------------


def _stat(pid: str) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (field 3 on), or None."""
    try:
        with open(f"/proc/{pid}/stat") as file:
            return file.read().rsplit(")", 1)[1].split()
    except OSError:
        return None  # gone meanwhile


def tree_cpu(root: int) -> float:
    """CPU seconds (user + system) of a process and every live descendant of it."""
    parents: dict[int, int] = {}
    ticks: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            fields = _stat(entry.name)
            if fields is not None:
                parents[int(entry.name)] = int(fields[1])  # field 4: the parent
                ticks[int(entry.name)] = int(fields[11]) + int(fields[12])  # utime, stime
    total = 0
    for pid in ticks:
        ancestor = pid
        while ancestor not in (root, 0, 1) and ancestor in parents:
            ancestor = parents[ancestor]
        if ancestor == root:
            total += ticks[pid]
    return total / _TICK


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) of one process."""
    fields = _stat(str(pid))
    return 0.0 if fields is None else (int(fields[11]) + int(fields[12])) / _TICK


def emulator_pid() -> int:
    """The emulator process this one started (``_sellers_emulator.py``)."""
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        fields = _stat(entry.name)
        if fields is None or int(fields[1]) != os.getpid():  # field 4: the parent
            continue
        with contextlib.suppress(OSError), open(f"/proc/{entry.name}/cmdline", "rb") as file:
            if b"_sellers_emulator.py" in file.read():
                return int(entry.name)
    raise RuntimeError("the emulator process was not found")


@dataclasses.dataclass(frozen=True)
class Others:
    """The processes beside the workers whose CPU the run shares: (kind, id) by name."""

    ids: dict[str, tuple[str, int]]

    def cpu(self) -> dict[str, float]:
        return {
            name: tree_cpu(i) if kind == "tree" else process_cpu(i)
            for name, (kind, i) in self.ids.items()
        }


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all cores since boot."""
    with open("/proc/stat") as file:
        values = [int(v) for v in file.readline().split()[1:]]
    idle = values[3] + values[4]  # idle and iowait
    return sum(values) - idle, sum(values)


# --- one run -------------------------------------------------------------------------------


def seller_bound(requests: int, windows: int, latency: float) -> float:
    """The least time one seller's sync of ``requests`` requests can take."""
    return max((requests - BURST) / RATE, math.ceil(requests / windows) * latency)


async def _run_once(
    server: _common.Server,
    redis_url: str,
    dsn: str,
    others: Others,
    workers: int,
    sellers: int,
    jobs: int,
    latency: float,
) -> dict[str, Any]:
    import asyncpg
    from redis.asyncio import Redis

    from spapi_services.fleet import DirectoryKey, Fleet

    tag = uuid.uuid4().hex[:10]
    env = {
        **os.environ,
        "SPAPI_FLEET_REDIS_URL": redis_url,
        "SPAPI_FLEET_DATABASE_URL": dsn,
        "SPAPI_FLEET_DIRECTORY_KEY": DirectoryKey.generate(),
        "SPAPI_FLEET_TOKEN_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "SPAPI_FLEET_ENDPOINT": server.url,
        "SPAPI_FLEET_TOKEN_URL": server.url + "/auth/o2/token",
        "SPAPI_FLEET_HISTORY_DAYS": "92",
        "SPAPI_FLEET_SCHEMA": f"b_{tag}",
        "SPAPI_FLEET_KEY_PREFIX": f"b{tag}",
        "SPAPI_FLEET_QUEUE": f"b{tag}:tasks",
        "SPAPI_FLEET_POOL_SIZE": "8",
        "SPAPI_CLIENT_ID": (server.creds or {})["client_id"],
        "SPAPI_CLIENT_SECRET": (server.creds or {})["client_secret"],
    }
    for name in ("SPAPI_REDIS_URL", "SPAPI_DATABASE_URL", "SPAPI_ENDPOINT", "SPAPI_TOKEN_URL"):
        env.pop(name, None)
    fleet = Fleet.from_env(env)
    redis = Redis.from_url(redis_url)
    worker: subprocess.Popen[bytes] | None = None
    try:
        ids = [f"B{i:03d}" for i in range(sellers)]
        for i, seller_id in enumerate(ids):
            await fleet.add_seller(seller_id, _sellers_emulator.seller_token(i), MARKETPLACES)
        await fleet.status()  # the schema made before the clock starts
        worker = _start_workers(env, workers, sellers)
        await _listening(redis, worker, workers)
        await asyncio.sleep(0.5)  # let the forked processes settle
        server.reset()  # every seller's bucket full, the log empty
        cpu0, (busy0, total0), rest0 = tree_cpu(worker.pid), machine_busy(), others.cpu()
        started = time.monotonic()
        await fleet.enqueue_all()
        statuses = await _all_done(fleet, redis, started)
        elapsed = time.monotonic() - started
        cpu1, (busy1, total1), rest1 = tree_cpu(worker.pid), machine_busy(), others.cpu()
        log = server.log()
        db = await asyncpg.connect(dsn)
        try:
            rows = await db.fetch(
                f"SELECT seller_id, count(*), count(DISTINCT service_job_id)"
                f" FROM {fleet.schema}.service_jobs GROUP BY seller_id"
            )
        finally:
            await db.close()
    finally:
        if worker is not None:
            _stop(worker)
        await redis.aclose()
        await fleet.aclose()
    mirrored = sum(r[1] for r in rows)
    wrong = [r[0] for r in rows if r[1] != r[2] or r[1] != jobs] + [
        s for s in ids if s not in {r[0] for r in rows}
    ]
    requests = {s.seller_id: s.requests or 0 for s in statuses}
    bound = max(seller_bound(r, fleet.windows, latency) for r in requests.values())
    cpu = cpu1 - cpu0
    return {
        "elapsed": elapsed,
        "bound": bound,
        "elapsed_over_bound": elapsed / bound,
        "jobs": mirrored,
        "jobs_per_s": mirrored / elapsed,
        "cpu_s": cpu,
        "cpu_ms_per_job": 1000 * cpu / mirrored if mirrored else None,
        "busy_cores": (os.cpu_count() or 1) * (busy1 - busy0) / max(1, total1 - total0),
        # Cores each part kept busy on average: the workers, then the rest.
        "cores_by_part": {
            "workers": cpu / elapsed,
            **{name: (rest1[name] - rest0[name]) / elapsed for name in rest0},
        },
        "requests": sum(requests.values()),
        "throttled": log["counts"].get(f"{OPERATION} 429", 0),
        "sellers_wrong": wrong,
    }


def _start_workers(env: dict[str, str], workers: int, tasks: int) -> subprocess.Popen[bytes]:
    """``spapi-services fleet worker --workers N`` in a session of its own."""
    return subprocess.Popen(
        [sys.executable, "-c", _WORKER.format(here=str(HERE), n=workers, tasks=tasks)],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


async def _listening(redis: Any, worker: subprocess.Popen[bytes], count: int) -> None:
    """Until ``count`` connections wait in XREADGROUP: every worker process listens."""
    give_up = time.monotonic() + 60
    while True:
        clients = await redis.client_list()
        if sum(1 for c in clients if c.get("cmd") == "xreadgroup") >= count:
            return
        if worker.poll() is not None or time.monotonic() > give_up:
            err = worker.stderr.read().decode(errors="replace") if worker.stderr else ""
            raise RuntimeError(f"the workers did not start:\n{err[-2000:]}")
        await asyncio.sleep(0.05)


async def _all_done(fleet: Any, redis: Any, started: float) -> list[Any]:
    broker = fleet.broker
    while True:
        statuses = await fleet.status()
        if all(s.state == "ok" and not s.running and not s.queued for s in statuses):
            pending = await redis.xpending(broker.queue_name, broker.consumer_group_name)
            if pending["pending"] == 0 and await redis.xlen(broker.queue_name) == 0:
                return list(statuses)
        if time.monotonic() - started > TIMEOUT:
            behind = [(s.seller_id, s.state, s.last_error) for s in statuses if s.state != "ok"]
            raise RuntimeError(f"not finished after {TIMEOUT:.0f} s: {behind[:5]}")
        await asyncio.sleep(0.05)


def _stop(worker: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(worker.pid, signal.SIGTERM)
    try:
        worker.wait(20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()


# --- the benchmark -------------------------------------------------------------------------


@contextlib.contextmanager
def servers() -> Iterator[tuple[str, str, Others]]:
    """Redis and PostgreSQL on 127.0.0.1 for the run: their URLs, and the processes
    (theirs, the emulator's and this one's) whose CPU the figures break down."""
    from spapi_services.fleet import _local

    with (
        _local.running(_local.RedisServer) as redis,
        _local.running(_local.PostgresServer) as postgres,
    ):
        assert redis.pid is not None
        assert postgres.pid is not None
        others = Others(
            {
                "emulator": ("process", emulator_pid()),
                "PostgreSQL": ("tree", postgres.pid),
                "Redis": ("tree", redis.pid),
                "this driver": ("process", os.getpid()),
            }
        )
        yield redis.url, postgres.dsn, others


def run(
    quick: bool = False,
    *,
    sellers: int | None = None,
    jobs: int | None = None,
    counts: Sequence[int] | None = None,
    runs: int | None = None,
) -> dict[str, Any]:
    """Every worker count; returns the figures (see :func:`markdown`)."""
    note = missing()
    if note is not None:
        return {"missing": note}
    sellers = sellers or (10 if quick else SELLERS)
    jobs = jobs or (200 if quick else JOBS)
    counts = tuple(counts or ((1, 2) if quick else COUNTS))
    runs = runs or (1 if quick else RUNS)
    cells: dict[str, Any] = {}
    with (
        _sellers_emulator.start(sellers, enforce=True, latency=LATENCY, jobs=jobs) as server,
        servers() as (redis_url, dsn, others),
    ):
        raw: dict[int, list[dict[str, Any]]] = {n: [] for n in counts}
        for _ in range(runs):
            for n in counts:  # worker counts alternate between repetitions
                print(f"   {n} worker process(es)...", flush=True)
                raw[n].append(
                    asyncio.run(
                        _run_once(server, redis_url, dsn, others, n, sellers, jobs, LATENCY)
                    )
                )
    for n, results in raw.items():
        cells[str(n)] = {
            key: _common.spread([r[key] for r in results])
            for key in (
                "elapsed",
                "bound",
                "elapsed_over_bound",
                "jobs_per_s",
                "cpu_ms_per_job",
                "busy_cores",
            )
        }
        cells[str(n)]["cores_by_part"] = {
            part: _common.spread([r["cores_by_part"][part] for r in results])
            for part in results[0]["cores_by_part"]
        }
        cells[str(n)]["throttled"] = max(r["throttled"] for r in results)
        cells[str(n)]["requests"] = results[0]["requests"]
        cells[str(n)]["jobs"] = results[0]["jobs"]
        cells[str(n)]["sellers_wrong"] = sorted({s for r in results for s in r["sellers_wrong"]})
    return {
        "sellers": sellers,
        "jobs_per_seller": jobs,
        "latency": LATENCY,
        "counts": list(counts),
        "runs": runs,
        "cores": os.cpu_count(),
        "cells": cells,
        "limit": where_the_limit_is(cells, list(counts)),
    }


def where_the_limit_is(cells: dict[str, Any], counts: list[int]) -> str:
    """In words: how throughput grew with workers, and what stopped it."""
    cores = os.cpu_count() or 1
    rates = [(n, cells[str(n)]["jobs_per_s"]["median"]) for n in counts]
    steps = []
    limit = None
    for (a, ra), (b, rb) in itertools.pairwise(rates):
        growth = rb / ra
        steps.append(f"{a}→{b} workers: ×{growth:.2f}")
        if limit is None and growth < 1.1:
            busy = cells[str(b)]["busy_cores"]["median"]
            over = cells[str(a)]["elapsed_over_bound"]["median"]
            if busy >= 0.75 * cores:
                limit = (
                    f"throughput stops growing past {a} worker process(es): the cores are the "
                    f"limit ({busy:.1f} of {cores} busy at {b}, shared by the workers, the "
                    "emulator, PostgreSQL and Redis)"
                )
            else:
                limit = (
                    f"throughput stops growing past {a} worker process(es), but not for want "
                    f"of CPU ({busy:.1f} of {cores} cores busy at {b}): the sellers' own "
                    f"pace is the limit, each seller's chain of pages at {over:.2f}× its bound"
                )
    best = max(rates, key=lambda r: r[1])
    over = cells[str(best[0])]["elapsed_over_bound"]["median"]
    if limit is None:
        limit = f"throughput still grows at {counts[-1]} worker processes ({over:.2f}× the bound)"
    parts = "; ".join(
        f"{n}: "
        + ", ".join(
            f"{name} {s['median']:.2f}" for name, s in cells[str(n)]["cores_by_part"].items()
        )
        for n in counts
    )
    return (
        "; ".join(steps)
        + ". "
        + limit[0].upper()
        + limit[1:]
        + f". Cores each part kept busy, by worker processes: {parts} (the busy cores of the "
        "table count the whole machine, whatever else runs on it)."
    )


def markdown(r: dict[str, Any]) -> str:
    """The figures as markdown."""
    if "missing" in r:
        return f"Not run: {r['missing']}."
    rows = []
    for n in r["counts"]:
        c = r["cells"][str(n)]
        rows.append(
            [
                n,
                _common.fmt_spread(c["elapsed"], 1, " s"),
                f"{c['bound']['median']:.2f} s",
                _common.fmt_spread(c["elapsed_over_bound"], 2, "x"),
                _common.fmt_spread(c["jobs_per_s"], 0),
                _common.fmt_spread(c["cpu_ms_per_job"], 3, " ms"),
                _common.fmt_spread(c["busy_cores"], 2),
                c["throttled"],
                "all" if not c["sellers_wrong"] else f"**wrong: {', '.join(c['sellers_wrong'])}**",
            ]
        )
    return "\n".join(
        [
            f"{r['sellers']} sellers × {r['jobs_per_seller']:,} jobs "
            f"({r['sellers'] * r['jobs_per_seller']:,} in all), {r['latency'] * 1000:.0f} ms "
            f"per answer, each seller's published plan enforced (getServiceJobs {RATE:g}/s "
            f"burst {BURST}); {r['runs']} run(s) per count, median (min–max). Bound: the "
            "slowest seller's larger of its plan and its pages' latency over the fleet's "
            "windows. CPU: every worker process, user + system. Busy cores: the whole "
            f"machine ({r['cores']} cores), every process.",
            "",
            _common.table(
                [
                    "worker processes",
                    "wall time",
                    "bound",
                    "wall / bound",
                    "jobs/s",
                    "worker CPU per job",
                    "busy cores",
                    "429s",
                    "each seller's jobs once",
                ],
                rows,
            ),
            "",
            r["limit"],
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 sellers × 200 jobs, 1 and 2")
    parser.add_argument("--sellers", type=int)
    parser.add_argument("--jobs", type=int)
    parser.add_argument("--workers", help="worker counts, e.g. 1,2,4")
    parser.add_argument("--runs", type=int)
    parser.add_argument("--json", action="store_true", help="print the raw figures too")
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")] if args.workers else None
    results = run(args.quick, sellers=args.sellers, jobs=args.jobs, counts=counts, runs=args.runs)
    print(markdown(results))
    if args.json:
        print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
