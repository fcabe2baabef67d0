"""Client overhead: spapi-services against a hand-written aiohttp + json loop.

Both send the same getServiceJobByServiceJobId requests (``x-amz-access-token`` from one
LWA exchange, ``User-Agent``, ``Accept``) to the lean server in another process: no
latency, no limits (``rate_limits=False``), 50 in flight, 5,000 timed calls after 200
untimed ones.  The figure is client CPU seconds per request (``time.process_time()`` in
the client process) and ours / floor, per repetition (the two alternate), median and
spread.  The target is at most 1.3x.

When the target is missed it also measures where the time goes: the same run with model
decoding switched off (the transport alone), and a cProfile of the timed part grouped by
library.  ``python benchmarks/bench_overhead.py [--quick]``.
"""

from __future__ import annotations

import argparse
import importlib.util
import pstats
import statistics
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Server, fmt_spread, lean_server, run_client, spread, table

TARGET = 1.3


def run(quick: bool = False) -> dict[str, Any]:
    """Measure; returns the figures (CPU ms per call, ratios) and, if missed, a breakdown."""
    n, reps, warmup = (500, 2, 50) if quick else (5000, 5, 200)
    runs: dict[str, list[dict[str, Any]]] = {"raw": [], "ours": []}
    # With the speedups extra installed, ours runs both ways: orjson, and stdlib JSON.
    both_ways = importlib.util.find_spec("orjson") is not None
    if both_ways:
        runs["ours-stdlib"] = []
    with lean_server() as server:
        for rep in range(reps):
            order = list(runs) if rep % 2 == 0 else list(reversed(runs))
            for client in order:
                ablate = "orjson" if client == "ours-stdlib" else "none"
                name = "ours" if client == "ours-stdlib" else client
                outcome = run_client(name, "get", server, n=n, warmup=warmup, ablate=ablate)
                if "failed" in outcome:
                    raise RuntimeError(f"overhead: {client} failed: {outcome['failed']}")
                runs[client].append(outcome)
        ratios = [o["cpu_s"] / r["cpu_s"] for o, r in zip(runs["ours"], runs["raw"], strict=True)]
        results: dict[str, Any] = {
            "n": n,
            "concurrency": 50,
            "reps": reps,
            "cpu_ms_per_call": {
                c: spread([r["cpu_ms_per_call"] for r in rs]) for c, rs in runs.items()
            },
            "calls_per_s": {c: spread([r["calls_per_s"] for r in rs]) for c, rs in runs.items()},
            "errors": {c: sum(sum(r["errors"].values()) for r in rs) for c, rs in runs.items()},
            "ratio": spread(ratios),
            "target": TARGET,
            "orjson": both_ways,
        }
        if both_ways:
            results["ratio_stdlib_json"] = spread(
                [
                    o["cpu_s"] / r["cpu_s"]
                    for o, r in zip(runs["ours-stdlib"], runs["raw"], strict=True)
                ]
            )
        if results["ratio"]["median"] > TARGET:
            results["breakdown"] = _breakdown(server, n, warmup, results)
    return results


def _breakdown(server: Server, n: int, warmup: int, results: dict[str, Any]) -> dict[str, Any]:
    """Where ours spends its CPU: an ablation without models, and a grouped cProfile."""
    reps = 3 if n >= 5000 else 1
    no_decode = [
        run_client("ours", "get", server, n=n, warmup=warmup, ablate="decode")["cpu_ms_per_call"]
        for _ in range(reps)
    ]
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "ours.prof")
        run_client("ours", "get", server, n=n, warmup=warmup, profile=path)
        stats = pstats.Stats(path)
    raw_ms = results["cpu_ms_per_call"]["raw"]["median"]
    ours_ms = results["cpu_ms_per_call"]["ours"]["median"]
    transport_ms = statistics.median(no_decode)
    return {
        "transport_only_cpu_ms": spread(no_decode),
        "split_ms": {
            "floor (aiohttp + json.loads)": raw_ms,
            "our transport above the floor": transport_ms - raw_ms,
            "model decoding (cattrs structure, Decimal floats)": ours_ms - transport_ms,
        },
        "by_area": _by_area(stats),
        "top": _top(stats, 15),
    }


_AREAS = (
    ("spapi_services/_serde", "spapi_services: _serde (cattrs hooks)"),
    ("<cattrs generated", "cattrs generated structure functions"),
    ("<spapi_services", "spapi_services: generated structure functions"),
    ("spapi_services/_transport", "spapi_services: _transport"),
    ("spapi_services/", "spapi_services: other modules"),
    ("cattrs", "cattrs library"),
    ("json/", "json (stdlib)"),
    ("aiohttp", "aiohttp"),
    ("yarl", "yarl"),
    ("multidict", "multidict"),
    ("asyncio", "asyncio (stdlib)"),
    ("_socket", "socket syscalls"),
    ("benchmarks/", "benchmark harness"),
)


def _area(filename: str, name: str) -> str:
    where = f"{filename}:{name}"
    for needle, area in _AREAS:
        if needle in where:
            return area
    if filename == "~":
        return "builtins (C)"
    return "other"


def _by_area(stats: pstats.Stats) -> list[tuple[str, float]]:
    """Own time (tottime) summed by library, as shares of the total."""
    totals: dict[str, float] = defaultdict(float)
    raw_stats: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    for (filename, _line, name), (_cc, _nc, tottime, _ct, _callers) in raw_stats.items():
        totals[_area(filename, name)] += tottime
    whole = sum(totals.values()) or 1.0
    return sorted(((a, t / whole) for a, t in totals.items()), key=lambda x: -x[1])


def _top(stats: pstats.Stats, count: int) -> list[dict[str, Any]]:
    raw_stats: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    whole = sum(v[2] for v in raw_stats.values()) or 1.0
    rows = sorted(raw_stats.items(), key=lambda kv: -kv[1][2])[:count]
    out = []
    for (filename, line, name), (_cc, ncalls, tottime, cumtime, _callers) in rows:
        short = "/".join(Path(filename).parts[-2:]) if filename != "~" else ""
        out.append(
            {
                "function": f"{short}:{line}({name})" if short else name,
                "calls": ncalls,
                "own_share": tottime / whole,
                "cum_share": cumtime / whole,
            }
        )
    return out


def markdown(r: dict[str, Any]) -> str:
    """The figures as markdown."""
    cpu, rps = r["cpu_ms_per_call"], r["calls_per_s"]
    verdict = "met" if r["ratio"]["median"] <= r["target"] else "**missed**"
    lines = [
        f"{r['n']:,} getServiceJobByServiceJobId calls, {r['concurrency']} in flight, no latency, "
        f"limits off; {r['reps']} repetitions, the two clients alternating; "
        "median (min–max).",
        "",
        table(
            ["client", "client CPU ms / call", "calls / s (context)", "failed calls"],
            [
                [
                    "floor: aiohttp + json.loads",
                    fmt_spread(cpu["raw"], 3),
                    fmt_spread(rps["raw"], 0),
                    r["errors"]["raw"],
                ],
                [
                    "spapi-services" + (" (orjson: the speedups extra)" if r.get("orjson") else ""),
                    fmt_spread(cpu["ours"], 3),
                    fmt_spread(rps["ours"], 0),
                    r["errors"]["ours"],
                ],
                *(
                    [
                        [
                            "spapi-services (standard library JSON)",
                            fmt_spread(cpu["ours-stdlib"], 3),
                            fmt_spread(rps["ours-stdlib"], 0),
                            r["errors"]["ours-stdlib"],
                        ]
                    ]
                    if r.get("orjson")
                    else []
                ),
            ],
        ),
        "",
        f"**CPU per call, spapi-services / floor: {fmt_spread(r['ratio'], 2, 'x')}** "
        f"(target ≤ {r['target']}x: {verdict}).",
    ]
    if r.get("orjson"):
        lines.append(
            "With the standard library's JSON instead of orjson: "
            f"{fmt_spread(r['ratio_stdlib_json'], 2, 'x')}."
        )
    b = r.get("breakdown")
    if b:
        lines += [
            "",
            "Where the time goes (target missed). The same run with model decoding switched "
            f"off costs {fmt_spread(b['transport_only_cpu_ms'], 3)} ms per call, so:",
            "",
            table(
                ["part of one call", "CPU ms", "share"],
                [
                    [k, f"{v:.3f}", f"{v / sum(b['split_ms'].values()):.0%}"]
                    for k, v in b["split_ms"].items()
                ],
            ),
            "",
            "cProfile of the timed part (profiling inflates small calls; read it as shares):",
            "",
            table(["area", "own time"], [[a, f"{s:.1%}"] for a, s in b["by_area"] if s >= 0.01]),
            "",
            table(
                ["function", "calls", "own", "cumulative"],
                [
                    [
                        f"`{t['function']}`",
                        t["calls"],
                        f"{t['own_share']:.1%}",
                        f"{t['cum_share']:.1%}",
                    ]
                    for t in b["top"]
                ],
            ),
        ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    print(markdown(run(parser.parse_args().quick)))


if __name__ == "__main__":
    main()
