"""spapi-services against the other Python SP-API clients, with 20 ms of server latency.

Each client makes the same 2,000 getServiceJobByServiceJobId calls (after 50 untimed
ones) against the lean server in another process, which answers after 20 ms and enforces
no usage plan.  Each is used the way its README shows, with the workarounds the peer
study found (they are listed with the results):

* spapi-services: ``ServicesClient``, ``rate_limits=False`` (the server meters nothing;
  with the default plans it would be held to 20/s like amzn-selling-partner below);
* the floor: a hand-written aiohttp + ``json.loads`` loop;
* python-amazon-sp-api: its async client (``sp_api.asyncio.api.Services``);
* amzn-sp-api: ``ServiceApi`` with ``async_req=True``, its own thread pool;
* amzn-selling-partner: the generated ``AsyncClient`` with ``throttle=False``.

The asyncio clients run 50 workers; amzn-sp-api runs as many as its pool has threads.
Figures: calls per second (wall), client CPU ms per call, failed calls, and what the
server saw (requests, connections).  ``python benchmarks/bench_peers.py [--quick]``.
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

LATENCY = 0.020
WARMUP = 50

#: What each peer needs to run here at all, and how it was used (shown with the results).
WORKAROUNDS = {
    "saleweaver": (
        "API host set by assigning `client.endpoint` after construction (no argument for it); "
        "LWA host via an `auth_token_client_class` subclass; `sniffio` installed (without it "
        "httpcore retries a failing import on every request)."
    ),
    "official": (
        "`spapi.Configuration.set_default(spapi.Configuration())` before building the client "
        "(otherwise every deserialised model adds logging handlers and each call gets slower); "
        "`python-dateutil` installed (undeclared); root logger put back to WARNING "
        "(importing `spapi` sets INFO)."
    ),
    "asp": (
        "`AsyncClient(base_url=..., auth=AsyncLWAAuth(...))` instead of `AsyncSellingPartner` "
        "(which cannot take a base URL); `throttle=False` here, as its bucket would hold it to "
        "20/s; its token client closed by hand (`aclose()` leaves it open)."
    ),
}


def clients() -> list[str]:
    """The floor, ours, and every peer installed here."""
    return ["raw", "ours", *[p for p in PEERS if installed(p)]]


def run(quick: bool = False, server: str = "emulator") -> dict[str, Any]:
    """Measure every installed client; returns per-client spreads and what the server saw."""
    n, reps = (200, 1) if quick else (2000, 3)
    names = clients()
    runs: dict[str, list[dict[str, Any]]] = {c: [] for c in names}
    with api_server(server, latency=LATENCY, enforce=False) as srv:
        for rep in range(reps):
            order = names[rep % len(names) :] + names[: rep % len(names)]
            for client in order:
                srv.reset()
                outcome = run_client(client, "get", srv, n=n, warmup=WARMUP)
                seen = srv.log()
                outcome["server"] = {
                    "requests": sum(v for k, v in seen["counts"].items() if k.startswith(GET_JOB))
                    - WARMUP,
                    "statuses": {
                        k.rpartition(" ")[2]: v
                        for k, v in seen["counts"].items()
                        if k.startswith(GET_JOB)
                    },
                    "connections": seen["connections"],
                }
                runs[client].append(outcome)
    results: dict[str, Any] = {
        "n": n,
        "reps": reps,
        "latency_s": LATENCY,
        "server": srv.kind,
        "clients": {},
    }
    for client, rs in runs.items():
        good = [r for r in rs if "failed" not in r]
        if not good:
            results["clients"][client] = {"failed": rs[0].get("failed", "no result")}
            continue
        errors: dict[str, int] = {}
        for r in good:
            for k, v in r["errors"].items():
                errors[k] = errors.get(k, 0) + v
        results["clients"][client] = {
            "calls_per_s": spread([r["calls_per_s"] for r in good]),
            "cpu_ms_per_call": spread([r["cpu_ms_per_call"] for r in good]),
            "errors": errors,
            "requests_per_call": spread([r["server"]["requests"] / n for r in good]),
            "connections": spread([float(r["server"]["connections"]) for r in good]),
            "threads": good[0].get("threads"),
            "server_statuses": good[0]["server"]["statuses"],
        }
    ours = results["clients"].get("ours", {})
    peers = {c: v for c, v in results["clients"].items() if c in PEERS and "failed" not in v}
    if "calls_per_s" in ours and peers:
        best_rps = max(peers, key=lambda c: peers[c]["calls_per_s"]["median"])
        best_cpu = min(peers, key=lambda c: peers[c]["cpu_ms_per_call"]["median"])
        results["versus_best_peer"] = {
            "fastest_peer": best_rps,
            "rps_ratio": ours["calls_per_s"]["median"] / peers[best_rps]["calls_per_s"]["median"],
            "leanest_peer": best_cpu,
            "cpu_ratio": ours["cpu_ms_per_call"]["median"]
            / peers[best_cpu]["cpu_ms_per_call"]["median"],
        }
    return results


def markdown(r: dict[str, Any]) -> str:
    """The figures as markdown."""
    rows = []
    for client, c in r["clients"].items():
        if "failed" in c:
            rows.append([label(client), "failed", "", "", "", c["failed"][:120]])
            continue
        name = label(client) + (f", {c['threads']} threads" if c.get("threads") else "")
        rows.append(
            [
                name,
                fmt_spread(c["calls_per_s"], 0),
                fmt_spread(c["cpu_ms_per_call"], 3),
                fmt_errors(c["errors"]),
                f"{c['requests_per_call']['median']:.2f}",
                f"{c['connections']['median']:.0f}",
            ]
        )
    lines = [
        f"{r['n']:,} getServiceJobByServiceJobId calls against the {r['server']} server in its "
        f"own process, {r['latency_s'] * 1e3:.0f} ms latency, no usage plan enforced; "
        f"{r['reps']} repetition(s), median (min–max).",
        "",
        table(
            [
                "client",
                "calls / s",
                "client CPU ms / call",
                "failed calls (all reps)",
                "requests / call",
                "connections opened",
            ],
            rows,
        ),
    ]
    v = r.get("versus_best_peer")
    if v:
        lines += [
            "",
            f"spapi-services vs the fastest peer ({label(v['fastest_peer'])}): "
            f"**{v['rps_ratio']:.2f}x the calls per second**; vs the leanest peer "
            f"({label(v['leanest_peer'])}): **{v['cpu_ratio']:.2f}x the CPU per call** "
            "(below 1 is better).",
        ]
    lines += ["", "How each peer was run:", ""]
    lines += [f"- {label(p)}: {text}" for p, text in WORKAROUNDS.items() if p in r["clients"]]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--server", choices=["emulator", "lean"], default="emulator")
    args = parser.parse_args()
    print(markdown(run(args.quick, args.server)))


if __name__ == "__main__":
    main()
