"""At the usage plan's bound: 440 getServiceJobByServiceJobId calls fired at once.

The server (the emulator, in its own process) enforces the operation's published plan,
20 requests a second with a burst of 40, and answers 429 ``QuotaExceeded`` without
``Retry-After`` beyond it, as Amazon does.  Nothing can finish the 440 calls sooner than
(440 − 40) / 20 = 20 s: that is the bound.  Each client fires all 440 at once (after one
untimed getServiceJobs call that fetches the token); we report elapsed / bound, the
calls that failed, and the 429s the server had to send.  A client that paces itself
right finishes at about 1.00x the bound with zero 429s; one that does not pace finishes
early because most of its calls fail.

Every client starts cold, as a user's would: its token exchange is part of the run.
spapi-services runs with its defaults (the published plans, ``RetryPolicy()``) three
times, plus once warm (one untimed getServiceJobs call first, which fetches the token
and opens a connection without touching the get bucket) to tell the token exchange's
part; each peer runs once with its defaults (a 20 s run each).  The server's arrival
log of every run is kept for the chart.  ``python benchmarks/bench_bound.py [--quick]``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    PEERS,
    api_server,
    fmt_errors,
    fmt_spread,
    installed,
    label,
    run_client,
    spread,
    table,
)

GET_JOB = "getServiceJobByServiceJobId"
RATE, BURST = 20.0, 40
TARGET = 1.03


def run(quick: bool = False, server: str = "emulator") -> dict[str, Any]:
    """Run every client once (ours three times); returns elapsed/bound, 429s, arrivals."""
    n, our_reps = (100, 1) if quick else (440, 3)
    bound = (n - BURST) / RATE
    plan = [("ours", rep, 0) for rep in range(our_reps)] + [("ours", our_reps, 1)]
    plan += [(peer, 0, 0) for peer in PEERS if installed(peer)]
    runs: list[dict[str, Any]] = []
    with api_server(server, enforce=True) as srv:
        for client, rep, warm in plan:
            srv.reset()
            outcome = run_client(client, "burst", srv, n=n, limits="plan", warmup=warm, timeout=300)
            rows = [r for r in srv.log()["records"] if r[1] == GET_JOB]
            runs.append(_summarise(client, rep, outcome, rows, bound) | {"warm": bool(warm)})
    ours = [r for r in runs if r["client"] == "ours" and not r["warm"] and "failed" not in r]
    results: dict[str, Any] = {
        "n": n,
        "rate": RATE,
        "burst": BURST,
        "bound_s": bound,
        "server": srv.kind,
        "runs": runs,
        "target": TARGET,
    }
    if ours:
        results["ours"] = {
            "elapsed_over_bound": spread([r["elapsed_over_bound"] for r in ours]),
            "throttled": spread([float(r["throttled"]) for r in ours]),
            "failed_calls": sum(r["failed_calls"] for r in ours),
        }
    return results


def _summarise(
    client: str, rep: int, outcome: dict[str, Any], rows: list[list[Any]], bound: float
) -> dict[str, Any]:
    if "failed" in outcome:
        return {"client": client, "rep": rep, "failed": outcome["failed"]}
    t0 = rows[0][0] if rows else 0.0
    arrivals = [(round(t - t0, 4), status) for t, _op, status in rows]
    accepted = [t for t, status in arrivals if status == 200]
    return {
        "client": client,
        "rep": rep,
        "elapsed_s": outcome["wall_s"],
        "elapsed_over_bound": outcome["wall_s"] / bound,
        "server_span_over_bound": (max(accepted) if accepted else 0.0) / bound,
        "calls": outcome["n"],
        "ok": outcome["ok"],
        "failed_calls": outcome["n"] - outcome["ok"],
        "errors": outcome["errors"],
        "requests": len(arrivals),
        "throttled": sum(1 for _, status in arrivals if status == 429),
        "cpu_ms_per_call": outcome["cpu_ms_per_call"],
        "arrivals": arrivals,
    }


def markdown(r: dict[str, Any]) -> str:
    """The figures as markdown."""
    rows = []
    for run_ in r["runs"]:
        name = label(run_["client"])
        if run_["client"] == "ours":
            name += " (warm: token fetched first)" if run_["warm"] else f" (run {run_['rep'] + 1})"
        if "failed" in run_:
            rows.append([name, "failed", "", "", "", run_["failed"][:120]])
            continue
        rows.append(
            [
                name,
                f"{run_['elapsed_over_bound']:.3f}",
                f"{run_['calls'] - run_['failed_calls']} of {run_['calls']}",
                run_["throttled"],
                run_["requests"],
                fmt_errors(run_["errors"]),
            ]
        )
    lines = [
        f"{r['n']} calls fired at once; the {r['server']} server enforces {r['rate']:.0f}/s, "
        f"burst {r['burst']}; bound = ({r['n']} − {r['burst']}) / {r['rate']:.0f} = "
        f"{r['bound_s']:.0f} s. Each client cold (its token exchange inside the run) and with "
        "its defaults.",
        "",
        table(
            [
                "client",
                "elapsed / bound",
                "calls that succeeded",
                "429s drawn",
                "requests sent",
                "errors raised",
            ],
            rows,
        ),
    ]
    ours = r.get("ours")
    if ours:
        met = (
            ours["elapsed_over_bound"]["median"] <= r["target"]
            and ours["throttled"]["max"] == 0
            and ours["failed_calls"] == 0
        )
        lines += [
            "",
            f"**spapi-services: elapsed / bound {fmt_spread(ours['elapsed_over_bound'], 3)}, "
            f"429s drawn per run {fmt_spread(ours['throttled'], 0)}, calls lost "
            f"{ours['failed_calls']}** (target ≤ {r['target']:.2f}x and zero 429s: "
            f"{'met' if met else '**missed**'}).",
        ]
    return "\n".join(lines)


def chart(r: dict[str, Any], path: Path) -> Path | None:
    """Accepted requests over time against the bucket's bound (PNG); None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, (full, zoom) = plt.subplots(1, 2, figsize=(12, 4.8), width_ratios=(3, 2))
    bound, n, rate, burst = r["bound_s"], r["n"], r["rate"], r["burst"]
    horizon = bound * 1.08
    ts = [i * horizon / 400 for i in range(401)]
    shown = [x for x in r["runs"] if "failed" not in x and (x["client"] != "ours" or x["rep"] == 0)]
    shown.sort(key=lambda x: x["client"] == "ours")  # ours drawn last, on top
    for ax, xmax in ((full, horizon), (zoom, 1.0)):
        ax.plot(
            ts,
            [min(n, burst + rate * t) for t in ts],
            color="black",
            linestyle="--",
            linewidth=1,
            label=f"the plan's bound: {burst} + {rate:.0f}/s",
        )
        for x in shown:
            ok = sorted(t for t, status in x["arrivals"] if status == 200)
            mine = x["client"] == "ours"
            line = ax.step(
                ok,
                range(1, len(ok) + 1),
                where="post",
                label=f"{label(x['client'])}: accepted",
                linewidth=2.4 if mine else 1.2,
                zorder=5 if mine else 3,
                alpha=1.0 if mine else 0.85,
            )
            bad = [t for t, status in x["arrivals"] if status == 429]
            if bad:
                ax.plot(
                    bad,
                    [0] * len(bad),
                    "|",
                    markersize=12,
                    color=line[0].get_color(),
                    alpha=0.6,
                    label=f"{label(x['client'])}: 429 ({len(bad)})",
                )
        ax.set_xlim(-0.02 * xmax, xmax)
        ax.set_xlabel("seconds since the first request reached the server")
        ax.grid(alpha=0.3)
    full.set_ylim(-10, n + 20)
    zoom.set_ylim(-5, burst + 30)
    full.set_ylabel("getServiceJobByServiceJobId requests accepted")
    full.set_title(f"{n} calls at once against {rate:.0f}/s, burst {burst}")
    zoom.set_title("the first second (429s marked on the axis)")
    zoom.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--server", choices=["emulator", "lean"], default="emulator")
    parser.add_argument("--chart", type=Path, help="also write the PNG chart here")
    args = parser.parse_args()
    results = run(args.quick, args.server)
    print(markdown(results))
    if args.chart:
        print(chart(results, args.chart))


if __name__ == "__main__":
    main()
