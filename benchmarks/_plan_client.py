"""spapi-services in a process of its own, spending a usage plan one way; prints ``RESULT``.

``python benchmarks/_plan_client.py SCENARIO --base-url URL --creds JSON --mode MODE ...``

Modes (what ``rate_limits=`` gets; one plan object for every client of the process):

* ``default``: ``None``, the published plans in this process (``RateLimits()``: slow
  start, and adaptive after a 429);
* ``exact``: ``RateLimits(adaptive=False)``, the exact bucket (the default before the
  slow start);
* ``adaptive``: ``RateLimits(slow_start=False)``, adaptive without the slow start (what
  ``adaptive=True`` was before it);
* ``redis``: ``RedisRateLimits(--redis-url)``;
* ``off``: ``False``, no plan at all.

``--plan RATE,BURST`` overrides getServiceJobByServiceJobId's plan (``--headroom`` the
tokens held back); ``--tokens redis`` keeps access tokens in a ``RedisTokenCache``.

Scenarios, all on getServiceJobByServiceJobId:

* ``burst``: ``--n`` calls fired at once by a cold client (its token exchange included);
* ``get``: ``--n`` calls, ``--concurrency`` in flight, after ``--warmup`` calls: CPU and
  the latency of each call;
* ``sequential``: ``--n`` calls one after another after one warm-up call; with
  ``--spacing S`` the n-th starts ``n × S`` seconds after the first (the benchmark paces
  them itself), without it the plan paces them;
* ``sellers``: ``--sellers`` clients, one per seller (``_sellers_emulator.seller_token``),
  each making one warm-up call and then ``--n`` calls one after another, all at once.

``--time-plan`` also counts the CPU spent inside the plan's ``try_acquire``
(``plan_cpu_ms_per_call``, sequential scenario).  With ``--barrier`` the process prints
``READY`` once set up and starts only when a line arrives on its standard input: the
benchmark starts several processes that way at the same instant.  Times in the result
are ``time.time()`` (one clock for every process), CPU is ``time.process_time()`` over
the timed part.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _guard

_guard.install()

from _clients import JOB_IDS, MARKETPLACE, Tally, job_id, run_workers  # noqa: E402

GET = "getServiceJobByServiceJobId"


class Setup:
    """The plan and token cache of this process, and how to make a client on them."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.closers: list[Callable[[], Awaitable[None]]] = []
        overrides = None
        if args.plan:
            rate, burst = args.plan.split(",")
            overrides = {GET: (float(rate), int(burst))}
        self.plan: Any
        if args.mode == "off":
            self.plan = False
        elif args.mode == "default":
            custom = overrides is not None or args.headroom is not None
            self.plan = _rate_limits(overrides, args.headroom, False) if custom else None
        elif args.mode == "exact":
            self.plan = _rate_limits(overrides, args.headroom, False)
        elif args.mode == "adaptive":
            self.plan = _rate_limits(overrides, args.headroom, True, slow_start=False)
        else:
            from spapi_services.redis import RedisRateLimits

            self.plan = RedisRateLimits(
                args.redis_url,
                overrides=overrides,
                key_prefix=args.key_prefix,
                headroom=args.headroom,
            )
            self.closers.append(self.plan.aclose)
        self.plan_cpu = 0.0
        if args.time_plan and self.plan not in (None, False):
            self._time_plan()
        self.throttled_at: list[float] = []
        if args.trace:
            if self.plan is None:
                self.plan = _rate_limits(None, None, True)  # what None means, made here
            self._trace_429s()
        self.tokens: Any = None
        if args.tokens == "redis":
            from spapi_services.redis import RedisTokenCache

            self.tokens = RedisTokenCache(args.redis_url, key_prefix=args.key_prefix)
            self.closers.append(self.tokens.aclose)

    def _time_plan(self) -> None:
        """Count the CPU spent inside the plan's ``try_acquire`` or ``reserve`` (the
        bucket's own work, and for Redis its round trips: nothing else runs while a
        sequential call waits).  The client reserves when the plan can (Redis)."""
        name = "reserve" if hasattr(self.plan, "reserve") else "try_acquire"
        ask = getattr(self.plan, name)

        async def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.process_time()
            try:
                return await ask(*args, **kwargs)
            finally:
                self.plan_cpu += time.process_time() - started

        setattr(self.plan, name, timed)

    def _trace_429s(self) -> None:
        """Note the time (``time.time()``) of every 429 the plan hears of."""
        throttled = self.plan.throttled

        async def traced(*args: Any, **kwargs: Any) -> Any:
            self.throttled_at.append(time.time())
            return await throttled(*args, **kwargs)

        self.plan.throttled = traced

    def client(self, refresh_token: str | None = None) -> Any:
        from spapi_services import LwaCredentials, ServicesClient

        creds = json.loads(self.args.creds)
        credentials = LwaCredentials(
            creds["client_id"], creds["client_secret"], refresh_token or creds["refresh_token"]
        )
        return ServicesClient(
            credentials,
            endpoint=self.args.base_url,
            token_url=self.args.base_url + "/auth/o2/token",
            marketplace_id=MARKETPLACE,
            rate_limits=self.plan,
            token_cache=self.tokens,
        )

    async def close(self) -> None:
        for close in self.closers:
            await close()


def _rate_limits(
    overrides: Any, headroom: int | None, adaptive: bool, slow_start: bool | None = None
) -> Any:
    from spapi_services import RateLimits

    return RateLimits(overrides, headroom=headroom, adaptive=adaptive, slow_start=slow_start)


async def _barrier(args: argparse.Namespace) -> None:
    if not args.barrier:
        return
    print("READY", flush=True)
    line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    if not line:
        raise SystemExit("the benchmark went away before GO")


class Clock:
    """Wall (``time.time()``) and CPU time of the timed part."""

    def __enter__(self) -> Clock:
        self.start, self.cpu0 = time.time(), time.process_time()
        return self

    def __exit__(self, *_: object) -> None:
        self.end, self.cpu = time.time(), time.process_time() - self.cpu0


def _outcome(tally: Tally, clock: Clock, n: int, **extra: Any) -> dict[str, Any]:
    return {
        "n": n,
        "ok": tally.ok,
        "errors": dict(tally.errors),
        "start": clock.start,
        "end": clock.end,
        "wall_s": clock.end - clock.start,
        "cpu_s": clock.cpu,
        "cpu_ms_per_call": clock.cpu / n * 1e3 if n else 0.0,
        **extra,
    }


async def _call(client: Any, i: int, tally: Tally) -> None:
    try:
        await client.service_jobs.get(job_id(i))
    except Exception as exc:
        tally.failed(exc)
    else:
        tally.ok += 1


async def burst(setup: Setup, args: argparse.Namespace) -> dict[str, Any]:
    tally = Tally()
    done_at: list[float] = []

    async def call(i: int) -> None:
        await _call(client, args.offset + i, tally)
        if args.trace:
            done_at.append(time.time())

    async with setup.client() as client:
        await _barrier(args)
        with Clock() as clock:
            await asyncio.gather(*(call(i) for i in range(args.n)))
    extra: dict[str, Any] = {"plan_counts": getattr(setup.plan, "counts", None)}
    if args.trace:
        extra |= {"throttled_at": setup.throttled_at, "done_at": done_at}
    return _outcome(tally, clock, args.n, **extra)


async def get(setup: Setup, args: argparse.Namespace) -> dict[str, Any]:
    tally = Tally()
    latencies: list[float] = []
    async with setup.client() as client:
        for i in range(args.warmup):
            await client.service_jobs.get(job_id(i))
        await _barrier(args)

        async def timed(i: int) -> object:
            started = time.perf_counter()
            try:
                return await client.service_jobs.get(job_id(i))
            finally:
                latencies.append(time.perf_counter() - started)

        with Clock() as clock:
            await run_workers(timed, args.n, args.concurrency, tally)
    latencies.sort()
    return _outcome(
        tally,
        clock,
        args.n,
        latency_ms={
            "median": statistics.median(latencies) * 1e3,
            "p90": latencies[int(0.9 * (len(latencies) - 1))] * 1e3,
            "p99": latencies[int(0.99 * (len(latencies) - 1))] * 1e3,
        },
    )


async def sequential(setup: Setup, args: argparse.Namespace) -> dict[str, Any]:
    tally = Tally()
    loop = asyncio.get_running_loop()
    async with setup.client() as client:
        await client.service_jobs.get(job_id(0))  # the token, a connection, the burst spent
        await _barrier(args)
        setup.plan_cpu = 0.0
        before = dict(getattr(setup.plan, "counts", None) or {})
        with Clock() as clock:
            first = loop.time()
            for i in range(args.n):
                if args.spacing:
                    await asyncio.sleep(max(0.0, first + i * args.spacing - loop.time()))
                await _call(client, i + 1, tally)
    # RedisRateLimits: round trips made and slots booked (and given up) in the timed part.
    after = getattr(setup.plan, "counts", None)
    counts = None if after is None else {k: v - before.get(k, 0) for k, v in after.items()}
    return _outcome(
        tally,
        clock,
        args.n,
        interval_ms=(clock.end - clock.start) / args.n * 1e3,
        plan_cpu_ms_per_call=setup.plan_cpu / args.n * 1e3,
        plan_counts=counts,
    )


async def sellers(setup: Setup, args: argparse.Namespace) -> dict[str, Any]:
    from _sellers_emulator import seller_token

    tally = Tally()
    clients = [setup.client(seller_token(i)) for i in range(args.sellers)]
    try:
        for client in clients:
            await client.__aenter__()
        # Every seller's token exchanged and its burst spent before the timed part.
        await asyncio.gather(*(c.service_jobs.get(job_id(i)) for i, c in enumerate(clients)))
        await _barrier(args)

        async def one_seller(s: int, client: Any) -> None:
            for i in range(args.n):
                await _call(client, s * args.n + i, tally)

        with Clock() as clock:
            await asyncio.gather(*(one_seller(s, c) for s, c in enumerate(clients)))
    finally:
        for client in clients:
            await client.__aexit__(None, None, None)
    calls = args.n * args.sellers
    return _outcome(tally, clock, calls, sellers=args.sellers)


SCENARIOS = {"burst": burst, "get": get, "sequential": sequential, "sellers": sellers}


async def _main(args: argparse.Namespace) -> dict[str, Any]:
    setup = Setup(args)
    try:
        return await SCENARIOS[args.scenario](setup, args)
    finally:
        await setup.close()


class _OutageCount(logging.Handler):
    """Counts the warnings of ``spapi_services.redis``: each is Redis failing or not
    answering in time, so that the plan or token cache went on without it for a while."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", choices=sorted(SCENARIOS))
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--creds", required=True, help="JSON: client_id, client_secret, ...")
    parser.add_argument("--ids-url", help="a URL answering a JSON list of job ids to get")
    parser.add_argument(
        "--mode", choices=["default", "exact", "adaptive", "redis", "off"], required=True
    )
    parser.add_argument("--plan", help="RATE,BURST for getServiceJobByServiceJobId")
    parser.add_argument("--headroom", type=int)
    parser.add_argument("--redis-url")
    parser.add_argument("--key-prefix", default="spapi")
    parser.add_argument("--tokens", choices=["memory", "redis"], default="memory")
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--offset", type=int, default=0, help="first job index (burst)")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=0)
    parser.add_argument("--spacing", type=float, default=0.0)
    parser.add_argument("--sellers", type=int, default=1)
    parser.add_argument("--barrier", action="store_true")
    parser.add_argument("--trace", action="store_true", help="note when each 429 came")
    parser.add_argument(
        "--time-plan", action="store_true", help="count the CPU inside the plan's try_acquire"
    )
    args = parser.parse_args()
    _guard.check_url(args.base_url)
    if args.redis_url and not args.redis_url.startswith("redis://127.0.0.1:"):
        raise SystemExit("--redis-url: loopback only")
    if (args.mode == "redis" or args.tokens == "redis") and not args.redis_url:
        raise SystemExit("--redis-url is needed for Redis")
    if not 0 < args.n * args.sellers <= 20_000:
        raise SystemExit("--n × --sellers: keep the loop bounded (1..20000)")
    if args.ids_url:
        import urllib.request

        with urllib.request.urlopen(_guard.check_url(args.ids_url), timeout=30) as resp:
            JOB_IDS.extend(json.loads(resp.read()))
    outages = _OutageCount()
    logging.getLogger("spapi_services.redis").addHandler(outages)
    outcome = asyncio.run(_main(args))
    outcome.update(
        scenario=args.scenario, mode=args.mode, tokens=args.tokens, redis_outages=outages.count
    )
    print("RESULT " + json.dumps(outcome), flush=True)


if __name__ == "__main__":
    main()
