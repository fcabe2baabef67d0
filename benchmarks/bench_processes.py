"""One seller's usage plan spent by several processes: in-process, adaptive and Redis plans.

Amazon meters each operation per application and seller, whichever process the calls
come from.  The emulator (in its own process) enforces getServiceJobByServiceJobId's
published plan, 20/s burst 40, for its one seller.  Three parts:

1. **Processes.**  440 calls split among 1, 2, 4 and 8 client processes (one seller),
   every process cold (its token exchange inside the run) and all fired at the same
   instant, for three plans: ``default`` (each process its own ``RateLimits()``: slow
   start, and adaptive once a 429 says the plan is shared), ``exact``
   (``RateLimits(adaptive=False)``, the default before the slow start) and ``redis``
   (``RedisRateLimits`` and ``RedisTokenCache`` on a redis-server this benchmark starts
   on a free loopback port).
   Per cell: elapsed from the first process's start to the last one's end over the bound
   ((440 − 40) / 20 = 20 s, as ``bench_bound.py``), the 429s the emulator sent, the calls
   that failed after their retries, and the token exchanges.
2. **Redis's cost per call.**  2,000 calls, 50 in flight, after 100 warm-up calls, with a
   plan far above the load (no call waits) and the emulator's limits off: client CPU per
   call and latency with the in-process plan, the Redis plan, and the Redis plan with the
   Redis token cache.
3. **A web backend.**  uvicorn with 4 workers serving a FastAPI endpoint that calls the
   SDK (one client per worker, opened in the lifespan); 440 requests fired at it at once;
   429s counted at the emulator, per plan.

Without redis-server, redis-py or ``spapi_services.redis`` the Redis figures are left
out with a note.  ``python benchmarks/bench_processes.py [--quick] [--only PARTS]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _fleet
import _redis_proc
from _common import Server, emulator_server, fmt_spread, spread, table
from bench_bound import BURST, GET_JOB, RATE

HERE = Path(__file__).resolve().parent
N = 440
PROCESSES = (1, 2, 4, 8)
MODES = ("default", "exact", "redis")
MODE_NAMES = {
    "default": "in-process, default (slow start, adaptive)",
    "exact": "in-process, exact (`adaptive=False`)",
    "adaptive": "in-process, adaptive without slow start",
    "redis": "Redis",
}
#: The default at 2, 4 and 8 processes, in every run: no call lost, 429s at most this
#: share of the calls, elapsed within this much of the bound.
DEFAULT_TARGET = {"processes": (2, 4, 8), "throttled_share": 0.25, "elapsed": 1.10}
#: The default alone (one process), in every run: no 429, elapsed within this much.
ALONE_TARGET = 1.03
#: Redis at every process count: elapsed within this much of the bound, no 429, no call
#: lost, one token exchange.
REDIS_TARGET = 1.05
FAR_ABOVE = "100000,100000"  # a plan no load here reaches: nothing waits
PARTS = ("processes", "cost", "web")

_prefixes = itertools.count()


def _key_prefix() -> str:
    """A fresh Redis key prefix per run: no bucket or token carried over."""
    return f"bench{os.getpid()}-{next(_prefixes)}"


def run(
    quick: bool = False,
    parts: tuple[str, ...] = PARTS,
    counts: tuple[int, ...] | None = None,
    modes: tuple[str, ...] = MODES,
) -> dict[str, Any]:
    """Every part (or ``parts``; the processes part at ``counts`` processes, for
    ``modes``); returns the figures (see :func:`markdown`)."""
    note = _redis_proc.missing()
    modes = tuple(m for m in modes if m != "redis" or note is None)
    results: dict[str, Any] = {"redis_note": note, "modes": list(modes), "quick": quick}
    with contextlib.ExitStack() as stack:
        redis_url = stack.enter_context(_redis_proc.start()) if note is None else None
        if "processes" in parts or "web" in parts:
            server = stack.enter_context(emulator_server(enforce=True))
            if "processes" in parts:
                results["processes"] = processes(server, list(modes), redis_url, quick, counts)
            if "web" in parts:
                results["web"] = web(server, list(modes), redis_url, quick)
        if "cost" in parts:
            results["cost"] = cost(redis_url, quick)
    return results


# --- 1. processes --------------------------------------------------------------------------


def processes(
    server: Server,
    modes: list[str],
    redis_url: str | None,
    quick: bool,
    counts: tuple[int, ...] | None = None,
) -> dict[str, Any]:
    n, reps = (100, 1) if quick else (N, 3)
    if counts is None:
        counts = (1, 4) if quick else PROCESSES
    bound = (n - BURST) / RATE
    runs: list[dict[str, Any]] = []
    for rep in range(reps):  # the modes and process counts alternate within each repetition
        for count in counts:
            for mode in modes:
                runs.append(_fleet_run(server, mode, count, n, bound, redis_url) | {"rep": rep})
                print(f"   {count} × {mode}: {_brief(runs[-1])}", flush=True)
    cells = {}
    for count in counts:
        for mode in modes:
            mine = [r for r in runs if r["processes"] == count and r["mode"] == mode]
            done = [r for r in mine if "failed" not in r]
            if not done:
                cells[f"{count} {mode}"] = {"failed": mine[0].get("failed", "?")}
                continue
            cells[f"{count} {mode}"] = {
                "elapsed_over_bound": spread([r["elapsed_over_bound"] for r in done]),
                "throttled": spread([float(r["throttled"]) for r in done]),
                "lost": spread([float(r["lost"]) for r in done]),
                "exchanges": spread([float(r["exchanges"]) for r in done]),
                "reps": len(done),
            }
    return {
        "n": n,
        "rate": RATE,
        "burst": BURST,
        "bound_s": bound,
        "counts": list(counts),
        "cells": cells,
        "runs": runs,
        "verdicts": _verdicts(cells, counts, modes, n),
    }


def _fleet_run(
    server: Server, mode: str, count: int, n: int, bound: float, redis_url: str | None
) -> dict[str, Any]:
    server.reset()
    shares = [n // count + (1 if i < n % count else 0) for i in range(count)]
    offsets = [sum(shares[:i]) for i in range(count)]
    options: dict[str, Any] = {}
    if mode == "redis":
        options = {"redis_url": redis_url, "key_prefix": _key_prefix(), "tokens": "redis"}
    commands = [
        _fleet.command("burst", server, mode, n=share, offset=offset, **options)
        for share, offset in zip(shares, offsets, strict=True)
    ]
    outcomes = _fleet.run(commands, timeout=300)
    log = server.log()
    failed = [o["failed"] for o in outcomes if "failed" in o]
    if failed:
        return {"mode": mode, "processes": count, "failed": failed[0]}
    errors: dict[str, int] = {}
    for o in outcomes:
        for name, k in o["errors"].items():
            errors[name] = errors.get(name, 0) + k
    elapsed = max(o["end"] for o in outcomes) - min(o["start"] for o in outcomes)
    return {
        "mode": mode,
        "processes": count,
        "elapsed_s": elapsed,
        "elapsed_over_bound": elapsed / bound,
        "throttled": log["counts"].get(f"{GET_JOB} 429", 0),
        "lost": n - sum(o["ok"] for o in outcomes),
        "errors": errors,
        "exchanges": log["tokens_issued"],
        "redis_outages": sum(o.get("redis_outages", 0) for o in outcomes),
        **_plan_counts(outcomes),
        "process_ends_s": [
            round(o["end"] - min(x["start"] for x in outcomes), 2) for o in outcomes
        ],
    }


def _plan_counts(outcomes: list[dict[str, Any]]) -> dict[str, int]:
    """Round trips to Redis, slots booked and slots given up, over every process."""
    counts = [o["plan_counts"] for o in outcomes if o.get("plan_counts")]
    if not counts:
        return {}
    return {f"redis_{k}": sum(c.get(k, 0) for c in counts) for k in counts[0]}


def _brief(r: dict[str, Any]) -> str:
    if "failed" in r:
        return "failed: " + r["failed"][:200]
    trips = (
        f", {r['redis_round_trips']} round trips, {r['redis_unused']} slots unused, "
        f"{r.get('redis_outages', 0)} Redis outages (a process went on without it)"
        if "redis_round_trips" in r
        else ""
    )
    return (
        f"{r['elapsed_over_bound']:.3f}x, {r['throttled']} × 429, {r['lost']} lost, "
        f"{r['exchanges']} exchanges{trips}"
    )


def _verdicts(
    cells: dict[str, Any], counts: tuple[int, ...], modes: list[str], n: int
) -> dict[str, bool | None]:
    out: dict[str, bool | None] = {}
    shared = [cells.get(f"{c} default") for c in DEFAULT_TARGET["processes"] if c in counts]
    if shared and all(cell and "failed" not in cell for cell in shared):
        out["default"] = all(
            cell["lost"]["max"] == 0
            and cell["throttled"]["max"] <= DEFAULT_TARGET["throttled_share"] * n
            and cell["elapsed_over_bound"]["max"] <= DEFAULT_TARGET["elapsed"]
            for cell in shared
            if cell
        )
    alone = cells.get("1 default")
    if alone and "failed" not in alone:
        out["alone"] = (
            alone["throttled"]["max"] == 0
            and alone["lost"]["max"] == 0
            and alone["elapsed_over_bound"]["max"] <= ALONE_TARGET
        )
    if "redis" in modes:
        ok = True
        for count in counts:
            cell = cells.get(f"{count} redis", {})
            ok = ok and "failed" not in cell and bool(cell)
            if ok:
                ok = (
                    cell["elapsed_over_bound"]["median"] <= REDIS_TARGET
                    and cell["throttled"]["max"] == 0
                    and cell["lost"]["max"] == 0
                    and cell["exchanges"]["max"] == 1
                )
        out["redis"] = ok
    return out


# --- 2. Redis's cost per call --------------------------------------------------------------

COST_SETUPS = (
    ("in-process plan", "default", "memory"),
    ("Redis plan", "redis", "memory"),
    ("Redis plan and token cache", "redis", "redis"),
)


def cost(redis_url: str | None, quick: bool) -> dict[str, Any]:
    n, reps, warmup = (300, 1, 20) if quick else (2000, 3, 100)
    setups = [s for s in COST_SETUPS if s[1] != "redis" or redis_url]
    runs: list[dict[str, Any]] = []
    with emulator_server(enforce=False) as server:
        for rep in range(reps):
            for name, mode, tokens in setups:
                options: dict[str, Any] = {"plan": FAR_ABOVE, "tokens": tokens}
                if redis_url and (mode == "redis" or tokens == "redis"):
                    options |= {"redis_url": redis_url, "key_prefix": _key_prefix()}
                command = _fleet.command(
                    "get", server, mode, n=n, concurrency=50, warmup=warmup, **options
                )
                (outcome,) = _fleet.run([command], timeout=300)
                runs.append(outcome | {"setup": name, "rep": rep})
    rows: dict[str, Any] = {}
    for name, _mode, _tokens in setups:
        done = [r for r in runs if r["setup"] == name and "failed" not in r]
        if not done:
            rows[name] = {"failed": next(r["failed"] for r in runs if r["setup"] == name)}
            continue
        rows[name] = {
            "cpu_ms_per_call": spread([r["cpu_ms_per_call"] for r in done]),
            "latency_ms": spread([r["latency_ms"]["median"] for r in done]),
            "latency_p90_ms": spread([r["latency_ms"]["p90"] for r in done]),
            "failed_calls": sum(r["n"] - r["ok"] for r in done),
        }
    base = rows.get("in-process plan", {}).get("cpu_ms_per_call")
    for row in rows.values():
        if base and "cpu_ms_per_call" in row:
            row["cpu_over_in_process"] = row["cpu_ms_per_call"]["median"] / base["median"]
            row["extra_cpu_ms"] = row["cpu_ms_per_call"]["median"] - base["median"]
    return {"n": n, "concurrency": 50, "warmup": warmup, "rows": rows, "runs": runs}


# --- 3. a web backend ----------------------------------------------------------------------

WORKERS = 4


def web(server: Server, modes: list[str], redis_url: str | None, quick: bool) -> dict[str, Any]:
    missing = [m for m in ("fastapi", "uvicorn") if importlib.util.find_spec(m) is None]
    if missing:
        return {"missing": f"{' and '.join(missing)} not installed (the test extra has them)"}
    n, reps = (100, 1) if quick else (N, 2)
    bound = (n - BURST) / RATE
    runs = []
    for rep in range(reps):
        for mode in modes:
            server.reset()
            try:
                with _uvicorn(server, mode, redis_url) as base:
                    server.reset()  # nothing the start-up did counts
                    outcome = asyncio.run(_fire(base, n))
            except RuntimeError as exc:
                runs.append({"mode": mode, "rep": rep, "failed": str(exc)[:300]})
                continue
            log = server.log()
            runs.append(
                {
                    "mode": mode,
                    "rep": rep,
                    "elapsed_over_bound": outcome["elapsed_s"] / bound,
                    "throttled": log["counts"].get(f"{GET_JOB} 429", 0),
                    "failed_requests": n - outcome["ok"],
                    "statuses": outcome["statuses"],
                    "exchanges": log["tokens_issued"],
                }
            )
            print(f"   web × {mode}: {runs[-1]}", flush=True)
    rows = {}
    for mode in modes:
        done = [r for r in runs if r["mode"] == mode and "failed" not in r]
        if not done:
            rows[mode] = {"failed": next((r["failed"] for r in runs if r["mode"] == mode), "?")}
            continue
        rows[mode] = {
            "elapsed_over_bound": spread([r["elapsed_over_bound"] for r in done]),
            "throttled": spread([float(r["throttled"]) for r in done]),
            "failed_requests": spread([float(r["failed_requests"]) for r in done]),
            "exchanges": spread([float(r["exchanges"]) for r in done]),
        }
    return {"n": n, "workers": WORKERS, "bound_s": bound, "rows": rows, "runs": runs}


@contextlib.contextmanager
def _uvicorn(server: Server, mode: str, redis_url: str | None) -> Iterator[str]:
    port = _redis_proc.free_port()
    with tempfile.TemporaryDirectory(prefix="spapi-bench-web-") as ready:
        env = dict(os.environ)
        env.update(
            SPAPI_BENCH_BASE_URL=server.url,
            SPAPI_BENCH_CREDS=json.dumps(server.creds),
            SPAPI_BENCH_IDS_URL=server.ids_url or "",
            SPAPI_BENCH_MODE=mode,
            SPAPI_BENCH_REDIS_URL=redis_url or "",
            SPAPI_BENCH_KEY_PREFIX=_key_prefix(),
            SPAPI_BENCH_READY_DIR=ready,
        )
        command = [sys.executable, "-m", "uvicorn", "_web_app:app", "--app-dir", str(HERE)]
        command += ["--host", "127.0.0.1", "--port", str(port), "--workers", str(WORKERS)]
        command += ["--log-level", "warning", "--no-access-log"]
        log = Path(ready) / "uvicorn.log"
        with log.open("w") as out:
            proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            give_up = time.monotonic() + 60
            while len(list(Path(ready).glob("worker-*"))) < WORKERS:
                if proc.poll() is not None or time.monotonic() > give_up:
                    raise RuntimeError("uvicorn did not start: " + log.read_text()[-500:])
                time.sleep(0.05)
            yield f"http://127.0.0.1:{port}"
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


async def _fire(base: str, n: int) -> dict[str, Any]:
    """``n`` requests to the web backend at once; elapsed from the first sent to the last."""
    import aiohttp

    statuses: dict[str, int] = {}
    ok = 0
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=180)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def one(i: int) -> None:
            nonlocal ok
            try:
                async with session.get(f"{base}/jobs/{i}") as resp:
                    body = await resp.json()
                    key = str(resp.status) if resp.status == 200 else body.get("error", "?")
            except (aiohttp.ClientError, TimeoutError) as exc:
                key = type(exc).__name__
            statuses[key] = statuses.get(key, 0) + 1
            ok += key == "200"

        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(n)))
        elapsed = time.perf_counter() - started
    return {"elapsed_s": elapsed, "ok": ok, "statuses": statuses}


# --- the report ----------------------------------------------------------------------------


def markdown(r: dict[str, Any]) -> str:
    """The figures as markdown."""
    lines: list[str] = []
    if r.get("redis_note"):
        lines += [f"Redis figures left out: {r['redis_note']}.", ""]
    p = r.get("processes")
    if p:
        lines += [
            f"**Processes.** {p['n']} getServiceJobByServiceJobId calls split among the "
            f"processes of one seller, all fired at once, each process cold; the emulator "
            f"enforces {p['rate']:.0f}/s burst {p['burst']}; bound = ({p['n']} − {p['burst']}) "
            f"/ {p['rate']:.0f} = {p['bound_s']:.0f} s. Median (min–max) of "
            f"{max(c.get('reps', 1) for c in p['cells'].values())} runs; lost = calls that "
            "failed after their retries.",
            "",
        ]
        rows = []
        for count in p["counts"]:
            for mode in r["modes"]:
                cell = p["cells"].get(f"{count} {mode}")
                if cell is None:
                    continue
                if "failed" in cell:
                    rows.append([count, MODE_NAMES[mode], "failed", "", "", cell["failed"][:80]])
                    continue
                rows.append(
                    [
                        count,
                        MODE_NAMES[mode],
                        fmt_spread(cell["elapsed_over_bound"], 3, "x"),
                        fmt_spread(cell["throttled"], 0),
                        fmt_spread(cell["lost"], 0),
                        fmt_spread(cell["exchanges"], 0),
                    ]
                )
        lines.append(
            table(["processes", "plan", "elapsed / bound", "429s", "lost", "token exchanges"], rows)
        )
        v = p["verdicts"]
        if "default" in v:
            counts = ", ".join(str(c) for c in DEFAULT_TARGET["processes"])
            lines += [
                "",
                f"The default at {counts} processes (target: no call lost, 429s ≤ "
                f"{DEFAULT_TARGET['throttled_share']:.0%} of the calls, ≤ "
                f"{DEFAULT_TARGET['elapsed']}x the bound, in every run): "
                f"{'met' if v['default'] else '**missed**'}.",
            ]
        if "alone" in v:
            lines += [
                "",
                f"The default alone (target: 0 × 429, ≤ {ALONE_TARGET}x the bound, in every "
                f"run): {'met' if v['alone'] else '**missed**'}.",
            ]
        if "redis" in v:
            lines += [
                "",
                f"Redis at every process count (target: ≤ {REDIS_TARGET}x the bound, 0 × 429, "
                f"0 lost, 1 exchange): {'met' if v['redis'] else '**missed**'}.",
            ]
    c = r.get("cost")
    if c:
        lines += [
            "",
            f"**Redis's cost per call.** {c['n']:,} calls, {c['concurrency']} in flight, after "
            f"{c['warmup']} warm-up calls; the plan far above the load (nothing waits), the "
            "emulator's limits off. Client CPU per call and per-call latency (median of each "
            "run's median), median (min–max) of the runs.",
            "",
        ]
        rows = []
        for name, row in c["rows"].items():
            if "failed" in row:
                rows.append([name, "failed", "", "", "", row["failed"][:80]])
                continue
            rows.append(
                [
                    name,
                    fmt_spread(row["cpu_ms_per_call"], 3, " ms"),
                    f"{row.get('cpu_over_in_process', 0):.2f}x",
                    f"{row.get('extra_cpu_ms', 0) * 1e3:+.0f} µs",
                    fmt_spread(row["latency_ms"], 1, " ms"),
                    fmt_spread(row["latency_p90_ms"], 1, " ms"),
                ]
            )
        lines.append(
            table(
                ["setup", "CPU / call", "vs in-process", "extra CPU / call", "latency", "p90"],
                rows,
            )
        )
    w = r.get("web")
    if w and "missing" in w:
        lines += ["", f"**A web backend.** Not run: {w['missing']}."]
    elif w:
        lines += [
            "",
            f"**A web backend.** uvicorn, {w['workers']} workers, a FastAPI endpoint calling "
            f"getServiceJobByServiceJobId with the worker's client (opened in the lifespan); "
            f"{w['n']} requests fired at it at once; bound {w['bound_s']:.0f} s.",
            "",
        ]
        rows = []
        for mode, row in w["rows"].items():
            if "failed" in row:
                rows.append([MODE_NAMES[mode], "failed", "", "", row["failed"][:80]])
                continue
            rows.append(
                [
                    MODE_NAMES[mode],
                    fmt_spread(row["elapsed_over_bound"], 3, "x"),
                    fmt_spread(row["throttled"], 0),
                    fmt_spread(row["failed_requests"], 0),
                    fmt_spread(row["exchanges"], 0),
                ]
            )
        lines.append(
            table(["plan", "elapsed / bound", "429s", "failed requests", "token exchanges"], rows)
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", help=f"comma-separated parts of: {', '.join(PARTS)}")
    parser.add_argument("--counts", help="comma-separated process counts (default 1,2,4,8)")
    parser.add_argument("--modes", help=f"comma-separated plans of: {', '.join(MODE_NAMES)}")
    args = parser.parse_args()
    parts = tuple(s.strip() for s in args.only.split(",")) if args.only else PARTS
    unknown = set(parts) - set(PARTS)
    if unknown:
        raise SystemExit(f"unknown parts: {', '.join(sorted(unknown))}")
    counts = tuple(int(c) for c in args.counts.split(",")) if args.counts else None
    modes = tuple(m.strip() for m in args.modes.split(",")) if args.modes else MODES
    if set(modes) - set(MODE_NAMES):
        raise SystemExit(
            f"--modes: unknown plans {', '.join(sorted(set(modes) - set(MODE_NAMES)))}"
        )
    print(markdown(run(args.quick, parts, counts, modes)))


if __name__ == "__main__":
    main()
