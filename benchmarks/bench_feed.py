"""The change feed: latency from a change in the emulator to its yield, many sellers at once.

The emulator runs in a process of its own (this script with ``--serve``): ``N`` sellers,
each metered on its own published plan (getServiceJobs 10/s burst 40, enforced), a few
seeded jobs each, and a control port whose ``POST /__touch`` changes one job of a seller
and answers the wall time of the change.  This process makes one client per seller on
one shared session, one feed per client, merged with ``merge_changes``, waits until every
feed has polled once, then for ``duration`` seconds changes a random seller's job at
random moments.  The latency of a change is the wall time its ``SellerChange`` came out
of the merged iterator less the wall time of the change (one machine, one clock).

Per (sellers, interval): p50 and p99 latency (target at 1,000 sellers: p99 ≤ interval
+ 1 s), changes seen against made (every one, once), 429s (target 0), this process's CPU
per seller-hour and per poll (user + system over the timed part), getServiceJobs
requests per seller-hour against the plan's allowance (36,000: 10 a second), the cores
this process and the emulator's kept busy (on a shared two-core machine the emulator,
one process answering every seller, is the first to run short), and the machine's load
average when the timed part began (other work on the machine delays every poll).

``python benchmarks/bench_feed.py [--quick] [--sellers 1,100,1000] [--intervals 5,1]``;
:func:`run` returns the figures and :func:`markdown` renders them.  Timing never runs
as a test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import _common  # noqa: E402  (installs the loopback guard)

US = "ATVPDKIKX0DER"
LIST = "getServiceJobs"
ALLOWANCE = 10 * 3600  # getServiceJobs requests a seller may make in an hour


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# --- the emulator process -------------------------------------------------------------


async def _serve(sellers: int) -> None:
    from aiohttp import web

    from spapi_services.emulator import ServicesEmulator

    emu = ServicesEmulator(jobs=8, seed=3, sellers=sellers)
    rng = random.Random(5)

    async def touch(request: web.Request) -> web.Response:
        seller = emu.sellers[int(request.query["seller"])]
        jobs = seller.store.find_jobs(marketplace_id=US)
        job = rng.choice(jobs)
        status = rng.choice(["HOLD", "NOT_SERVICED", "PENDING_SCHEDULE", "NOT_FULFILLABLE"])
        while status == job.status:
            status = rng.choice(["HOLD", "NOT_SERVICED", "PENDING_SCHEDULE", "NOT_FULFILLABLE"])
        seller.store.set_job_status(job.service_job_id, status)
        return web.json_response({"job": job.service_job_id, "at": time.time()})

    async def counts(_: web.Request) -> web.Response:
        found: dict[str, float] = {f"{op} {status}": n for (op, status), n in emu.counts.items()}
        found["cpu"] = _cpu()
        return web.json_response(found)

    async def reset(_: web.Request) -> web.Response:
        emu.traffic.counts.clear()
        return web.json_response({"ok": True})

    control = web.Application()
    control.router.add_post("/__touch", touch)
    control.router.add_get("/__counts", counts)
    control.router.add_post("/__reset", reset)
    runner = web.AppRunner(control, access_log=None, handle_signals=False)
    async with emu:
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        creds = emu.credentials
        facts = {
            "url": emu.url,
            "token_url": emu.token_url,
            "control": f"http://127.0.0.1:{port}",
            "client_id": creds.client_id,
            "client_secret": creds.client_secret,
            "tokens": [s.refresh_token for s in emu.sellers],
        }
        print("READY " + json.dumps(facts), flush=True)
        await asyncio.Event().wait()


# --- the driver -----------------------------------------------------------------------


async def _scenario(
    facts: dict[str, Any], sellers: int, interval: float, duration: float
) -> dict[str, Any]:
    import aiohttp

    from spapi_services import LwaCredentials, ServicesClient
    from spapi_services.feed import merge_changes

    control = facts["control"]
    # One session for every seller, as an application would have (aiohttp's default pool
    # of 100 connections: hundreds more against one single-process emulator only make
    # its queue longer).
    async with aiohttp.ClientSession() as session:
        await session.post(f"{control}/__reset")
        clients = [
            ServicesClient(
                LwaCredentials(facts["client_id"], facts["client_secret"], token),
                endpoint=facts["url"],
                token_url=facts["token_url"],
                marketplace_id=US,
                session=session,
                instrument=False,
            )
            for token in facts["tokens"][:sellers]
        ]
        feeds = {i: c.service_jobs.changes(interval=interval) for i, c in enumerate(clients)}
        made: dict[tuple[int, str], float] = {}
        latencies: list[float] = []
        seen = 0

        async def consume() -> None:
            nonlocal seen
            async for item in merged:
                seen += 1
                key = (item.seller, item.change.job.service_job_id or "")
                at = made.pop(key, None)
                if at is not None:
                    latencies.append(time.time() - at)

        async def change(count: int) -> None:
            rng = random.Random(11)
            for _ in range(count):
                await asyncio.sleep(rng.uniform(0, 2 * duration / count))
                seller = rng.randrange(sellers)
                async with session.post(f"{control}/__touch?seller={seller}") as answer:
                    done = await answer.json()
                made[(seller, done["job"])] = done["at"]

        async with merge_changes(feeds) as merged:
            consumer = asyncio.create_task(consume())
            # Every feed has polled (and exchanged its token) before the clock starts.
            async with asyncio.timeout(300):
                while any(feed.polls < 1 for feed in feeds.values()):  # noqa: ASYNC110
                    await asyncio.sleep(0.1)
            await session.post(f"{control}/__reset")
            async with session.get(f"{control}/__counts") as answer:
                emulator_cpu = (await answer.json())["cpu"]
            requests_before = sum(f.requests for f in feeds.values())
            polls_before = sum(f.polls for f in feeds.values())
            errors_before = sum(f.errors for f in feeds.values())
            load = os.getloadavg()[0]
            cpu, wall = _cpu(), time.monotonic()
            count = max(20, min(300, sellers // 2))
            await change(count)
            await asyncio.sleep(interval + 2)  # the last change's poll
            elapsed, cpu = time.monotonic() - wall, _cpu() - cpu
            requests = sum(f.requests for f in feeds.values()) - requests_before
            polls = sum(f.polls for f in feeds.values()) - polls_before
            errors = sum(f.errors for f in feeds.values()) - errors_before
            consumer.cancel()
        for client in clients:
            await client.aclose()
        async with session.get(f"{control}/__counts") as answer:
            counts = await answer.json()
    latencies.sort()
    hours = sellers * elapsed / 3600

    def pct(q: float) -> float | None:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] if latencies else None

    return {
        "sellers": sellers,
        "interval": interval,
        "changes": count,
        "yielded": len(latencies),
        "missed": len(made),
        "p50": pct(0.50),
        "p99": pct(0.99),
        "target_p99": interval + 1,
        "throttled": counts.get(f"{LIST} 429", 0),
        "failed_polls": errors,
        "driver_cores": cpu / elapsed,
        "emulator_cores": (counts["cpu"] - emulator_cpu) / elapsed,
        "cpu_s_per_seller_hour": cpu / hours,
        "polls": polls,
        "polls_per_second": polls / elapsed,
        "cpu_ms_per_poll": 1000 * cpu / polls if polls else None,
        "load_average": load,
        "requests_per_seller_hour": requests / hours,
        "allowance_per_seller_hour": ALLOWANCE,
        "seconds": elapsed,
    }


def run(
    quick: bool = False,
    sellers: tuple[int, ...] = (1, 100, 1000),
    intervals: tuple[float, ...] = (5.0, 1.0),
) -> dict[str, Any]:
    """Every scenario, each against its own emulator process."""
    from _servers import spawn

    from spapi_services.feed import DEFAULT_INTERVAL

    rows = []
    for count in sellers:
        command = [sys.executable, str(Path(__file__).resolve()), "--serve", str(count)]
        with spawn(command, "READY ", timeout=600.0) as line:
            facts = json.loads(line[len("READY ") :])
            for interval in intervals:
                duration = (10.0 if quick else 20.0) + 2 * interval
                rows.append(asyncio.run(_scenario(facts, count, interval, duration)))
    return {"default_interval": DEFAULT_INTERVAL, "rows": rows}


def markdown(results: dict[str, Any]) -> str:
    """Two tables (the site's width): how soon changes arrive, and what the polling costs."""
    latency_header = [
        "sellers", "interval", "changes (yielded)", "p50 s", "p99 s", "p99 target", "429s",
    ]  # fmt: skip
    cost_header = [
        "sellers", "interval", "CPU s / seller-hour", "CPU ms / poll",
        "requests / seller-hour", "cores: driver, emulator", "load",
    ]  # fmt: skip
    latency, cost = [], []
    for r in results["rows"]:
        ok = r["p99"] is not None and r["p99"] <= r["target_p99"] and r["missed"] == 0
        who = [str(r["sellers"]), f"{r['interval']:g} s"]
        latency.append([
            *who, f"{r['changes']} ({r['yielded']})",
            f"{r['p50']:.2f}" if r["p50"] is not None else "-",
            f"{r['p99']:.2f}" if r["p99"] is not None else "-",
            f"≤ {r['target_p99']:g} " + ("✓" if ok else "✗"),
            str(r["throttled"]),
        ])  # fmt: skip
        cost.append([
            *who, f"{r['cpu_s_per_seller_hour']:.1f}",
            f"{r['cpu_ms_per_poll']:.2f}" if r.get("cpu_ms_per_poll") is not None else "-",
            f"{r['requests_per_seller_hour']:.0f} "
            f"({100 * r['requests_per_seller_hour'] / r['allowance_per_seller_hour']:.1f}%)",
            f"{r['driver_cores']:.2f}, {r['emulator_cores']:.2f}",
            f"{r['load_average']:.1f}" if "load_average" in r else "-",
        ])  # fmt: skip
    return "\n".join(
        [
            "Changes made, and (yielded) the changes the feeds yielded: a job changed twice "
            "between two polls is yielded once, with its last content. ✓: p99 within the "
            "target and no change missed.",
            "",
            _common.table(latency_header, latency),
            "",
            "What the polling costs: this process's CPU, requests against the plan's "
            "allowance (36,000 a seller-hour), the cores the driver and the emulator kept "
            "busy, and the machine's load average.",
            "",
            _common.table(cost_header, cost),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--sellers", default="1,100,1000")
    parser.add_argument("--intervals", default="5,1")
    args = parser.parse_args()
    if args.serve:
        asyncio.run(_serve(args.serve))
        return
    sellers = tuple(int(s) for s in args.sellers.split(","))
    intervals = tuple(float(s) for s in args.intervals.split(","))
    results = run(args.quick, sellers, intervals)
    print(markdown(results))
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
