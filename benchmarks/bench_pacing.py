"""What pacing costs: the bucket's own share of a paced call's CPU, and many sellers at once.

A call paced by the bucket at 20/s was measured at about ten times the CPU of an unpaced
call, and a call started every 50 ms with no limiter at all cost as much as the paced
one.  Two parts tell the bucket's cost from the cost of the pace itself:

1. **Same spacing.**  getServiceJobByServiceJobId one call after another, 200 calls:
   *paced* by the plan at 20/s (burst 1, so every call waits for its token), in process
   and in Redis, against *unpaced* calls the benchmark itself starts every 50 ms (no
   plan).  The bucket's share is measured two ways: the CPU spent inside the plan's
   ``try_acquire`` or ``reserve`` (timed in the paced process) over the call's CPU, and (paced −
   unpaced) / paced.  For Redis, also the round trips per call and the booked slots left
   unused when the calls stop.  For scale, the same calls unpaced and back to back, 50 in flight
   (the loop never idle).
2. **Many sellers.**  One process, S sellers (each its own client, refresh token and
   bucket: the published 20/s with a burst of 1, so every call waits for its token),
   each making 20 calls one after another, all sellers at once, S = 1, 10, 50, 200: CPU
   per call against the busy figure of part 1.  (A lower rate cannot be set from the
   client: the emulator's ``x-amzn-RateLimit-Limit`` header says 20/s, and the plan
   follows it.)  200 sellers ask for 4,000 calls a second, more than two cores serve with
   the emulator beside the client: the row shows the loop saturated.

The emulator runs in its own process (its limits off in part 1; on in part 2, each
seller metered apart), each client run in a fresh process.  CPU is the client
process's ``time.process_time()`` over the timed part; medians (min–max) of 5 runs
(part 1) and 3 runs (part 2), the setups alternating.
``python benchmarks/bench_pacing.py [--quick]``.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _fleet
import _redis_proc
import _sellers_emulator
from _common import emulator_server, fmt_spread, spread, table

SPACING = 0.05  # 20/s: getServiceJobByServiceJobId's published rate
TARGET_SHARE = 0.10
SELLER_PLAN = "20,1"
SELLER_COUNTS = (1, 10, 50, 200)
UNPACED = "unpaced, every 50 ms"

_prefixes = itertools.count()


def run(quick: bool = False) -> dict[str, Any]:
    """Both parts; returns the figures (see :func:`markdown`)."""
    note = _redis_proc.missing()
    with contextlib.ExitStack() as stack:
        redis_url = stack.enter_context(_redis_proc.start()) if note is None else None
        spacing = same_spacing(redis_url, quick)
    sellers = many_sellers(quick)
    busy = spacing["rows"].get("unpaced, back to back, 50 in flight", {}).get("cpu_ms_per_call")
    if busy:
        for row in sellers["rows"].values():
            if "cpu_ms_per_call" in row:
                row["over_busy"] = row["cpu_ms_per_call"]["median"] / busy["median"]
    return {"redis_note": note, "spacing": spacing, "sellers": sellers, "target": TARGET_SHARE}


def same_spacing(redis_url: str | None, quick: bool) -> dict[str, Any]:
    n, reps = (40, 1) if quick else (200, 5)
    paced = {"plan": "20,1", "headroom": 0, "n": n, "time_plan": True}
    setups: list[tuple[str, str, str, dict[str, Any]]] = [
        (UNPACED, "sequential", "off", {"spacing": SPACING, "n": n}),
        ("paced by the in-process bucket, 20/s", "sequential", "default", paced),
    ]
    if redis_url:
        setups.append(("paced by the Redis bucket, 20/s", "sequential", "redis", paced))
    busy_n = 500 if quick else 2000
    setups.append(
        (
            "unpaced, back to back, 50 in flight",
            "get",
            "off",
            {"n": busy_n, "concurrency": 50, "warmup": 50},
        )
    )
    runs: list[dict[str, Any]] = []
    with emulator_server(enforce=False) as server:
        for rep in range(reps):
            for name, scenario, mode, options in setups:
                extra: dict[str, Any] = {}
                if mode == "redis":
                    prefix = f"pacing{os.getpid()}-{next(_prefixes)}"
                    extra = {"redis_url": redis_url, "key_prefix": prefix}
                command = _fleet.command(scenario, server, mode, **options, **extra)
                (outcome,) = _fleet.run([command], timeout=300)
                runs.append(outcome | {"setup": name, "rep": rep})
                print(f"   {name}: {_brief(outcome)}", flush=True)
    rows = _rows(runs, [s[0] for s in setups])
    unpaced = {r["rep"]: r for r in runs if r["setup"] == UNPACED and "failed" not in r}
    for name, row in rows.items():
        mine = [r for r in runs if r["setup"] == name and "failed" not in r]
        if not name.startswith("paced") or not mine:
            continue
        row["plan_cpu_ms_per_call"] = spread([r["plan_cpu_ms_per_call"] for r in mine])
        counted = [r for r in mine if r.get("plan_counts")]
        if counted:  # Redis: round trips per call, and booked slots no call used
            row["round_trips_per_call"] = spread(
                [r["plan_counts"]["round_trips"] / r["n"] for r in counted]
            )
            row["unused_slots"] = spread(
                [float(r["plan_counts"]["booked"] - r["ok"]) for r in counted]
            )
        row["bucket_share"] = spread(
            [r["plan_cpu_ms_per_call"] / r["cpu_ms_per_call"] for r in mine]
        )
        # Each paced run against the unpaced run of the same repetition, just before it.
        pairs = [(r, unpaced[r["rep"]]) for r in mine if r["rep"] in unpaced]
        if pairs:
            row["difference_share"] = spread(
                [
                    (r["cpu_ms_per_call"] - u["cpu_ms_per_call"]) / r["cpu_ms_per_call"]
                    for r, u in pairs
                ]
            )
    return {"n": n, "busy_n": busy_n, "rows": rows, "runs": runs}


def many_sellers(quick: bool) -> dict[str, Any]:
    counts, n, reps = ((1, 20), 10, 1) if quick else (SELLER_COUNTS, 20, 3)
    runs: list[dict[str, Any]] = []
    with _sellers_emulator.start(max(counts), enforce=True) as server:
        for rep in range(reps):
            for count in counts:
                server.reset()
                command = _fleet.command(
                    "sellers", server, "default", sellers=count, n=n, plan=SELLER_PLAN, headroom=0
                )
                (outcome,) = _fleet.run([command], timeout=300)
                throttled = sum(v for k, v in server.log()["counts"].items() if k.endswith(" 429"))
                runs.append(outcome | {"setup": str(count), "rep": rep, "throttled": throttled})
                print(f"   {count} sellers: {_brief(outcome)}, {throttled} × 429", flush=True)
    rows = _rows(runs, [str(c) for c in counts])
    for count in counts:
        done = [r for r in runs if r["setup"] == str(count) and "failed" not in r]
        if done:
            rows[str(count)]["calls_per_s"] = spread([r["n"] / r["wall_s"] for r in done])
            rows[str(count)]["throttled"] = sum(r["throttled"] for r in done)
    return {"counts": list(counts), "calls_per_seller": n, "plan": SELLER_PLAN, "rows": rows}


def _rows(runs: list[dict[str, Any]], names: list[str]) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    for name in names:
        done = [r for r in runs if r["setup"] == name and "failed" not in r]
        if not done:
            rows[name] = {"failed": next((r["failed"] for r in runs if r["setup"] == name), "?")}
            continue
        rows[name] = {
            "cpu_ms_per_call": spread([r["cpu_ms_per_call"] for r in done]),
            "failed_calls": sum(r["n"] - r["ok"] for r in done),
        }
        if "interval_ms" in done[0]:
            rows[name]["interval_ms"] = spread([r["interval_ms"] for r in done])
    return rows


def _brief(outcome: dict[str, Any]) -> str:
    if "failed" in outcome:
        return "failed: " + outcome["failed"][:200]
    return (
        f"{outcome['cpu_ms_per_call']:.3f} ms CPU/call, {outcome['wall_s']:.1f} s, "
        f"{outcome['n'] - outcome['ok']} failed"
    )


def markdown(r: dict[str, Any]) -> str:
    """The figures as markdown."""
    lines: list[str] = []
    if r.get("redis_note"):
        lines += [f"Redis figures left out: {r['redis_note']}.", ""]
    s = r["spacing"]
    lines += [
        f"**Same spacing.** {s['n']} getServiceJobByServiceJobId calls one after another "
        f"(the busy row: {s['busy_n']:,} calls, 50 in flight). Client CPU per call, median "
        "(min–max). The bucket's share two ways: the CPU spent inside the plan's "
        "`try_acquire` or `reserve` (timed in the paced process: the bucket's work and, "
        "for Redis, its round trip) over the call's CPU; and (paced − unpaced) / paced, "
        "each paced run against the unpaced run just before it (a difference of two noisy "
        "figures).",
        "",
    ]
    rows = []
    for name, row in s["rows"].items():
        if "failed" in row:
            rows.append([name, "failed", "", "", "", "", row["failed"][:80]])
            continue
        rows.append(
            [
                name,
                fmt_spread(row["cpu_ms_per_call"], 3, " ms"),
                fmt_spread(row["interval_ms"], 1, " ms") if "interval_ms" in row else "–",
                _figure(row.get("plan_cpu_ms_per_call"), " ms", 3),
                _figure(row.get("bucket_share")),
                _figure(row.get("difference_share")),
                row["failed_calls"],
            ]
        )
    header = ["calls", "CPU / call", "interval", "inside the plan / call", "bucket's share"]
    lines.append(table([*header, "(paced − unpaced) / paced", "failed calls"], rows))
    trips = {k: v for k, v in s["rows"].items() if "round_trips_per_call" in v}
    for name, row in trips.items():
        lines += [
            "",
            f"{name[0].upper()}{name[1:]}: {fmt_spread(row['round_trips_per_call'], 2)} round "
            "trips to Redis per call (the process books slots ahead while its calls keep up "
            f"with the plan); {fmt_spread(row['unused_slots'], 0)} booked slots left unused "
            "when the calls stopped (plan capacity given up, at most the lease of 8).",
        ]
    shares = {k: v["bucket_share"] for k, v in s["rows"].items() if "bucket_share" in v}
    if shares:
        verdicts = [
            f"{name.split(' by the ')[-1]} {v['median']:.1%} "
            f"({'met' if v['median'] <= r['target'] else '**missed**'})"
            for name, v in shares.items()
        ]
        lines += [
            "",
            f"The bucket's own share (CPU inside the plan), target ≤ {r['target']:.0%}: "
            + "; ".join(verdicts)
            + ".",
        ]
    m = r["sellers"]
    lines += [
        "",
        f"**Many sellers in one process.** Each seller its own client, refresh token and "
        f"bucket (plan {m['plan'].replace(',', '/s, burst ')}), {m['calls_per_seller']} calls "
        "one after another, every seller at once. CPU per call against the busy row above.",
        "",
    ]
    rows = []
    for count, row in m["rows"].items():
        if "failed" in row:
            rows.append([count, "failed", "", "", row["failed"][:80]])
            continue
        rows.append(
            [
                count,
                fmt_spread(row["cpu_ms_per_call"], 3, " ms"),
                f"{row['over_busy']:.2f}x" if "over_busy" in row else "–",
                fmt_spread(row["calls_per_s"], 0, "/s"),
                f"{row['failed_calls']} failed, {row['throttled']} × 429",
            ]
        )
    lines.append(table(["sellers", "CPU / call", "vs busy", "calls / s", "outcome"], rows))
    return "\n".join(lines)


def _figure(s: dict[str, float] | None, unit: str = "%", digits: int = 1) -> str:
    """A spread as a percentage (or in ``unit``), or a dash."""
    if s is None:
        return "–"
    if unit != "%":
        return fmt_spread(s, digits, unit)
    return fmt_spread({k: v * 100 if k != "reps" else v for k, v in s.items()}, digits, "%")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    print(markdown(run(args.quick)))


if __name__ == "__main__":
    main()
