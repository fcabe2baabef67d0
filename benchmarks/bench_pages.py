"""Paging through every job at the getServiceJobs plan: us and each peer's documented way.

The emulator is set up as ``bench_sync.py`` sets it up (its own process, 4,000 jobs of
seed 1 across five marketplaces, 250 ms latency on every answer, getServiceJobs' plan of
10 requests a second, burst 40, enforced).  Each client fetches every page of the US
marketplace's jobs (about a quarter of the sync's job, to keep the run short), one page
after another, the way its README shows:

* spapi-services: ``async for job in client.service_jobs.list(created_after=...)``, with
  its default limits;
* python-amazon-sp-api: ``load_all_pages(next_token_param="pageToken",
  use_rate_limit_header=True)`` around the sync ``get_service_jobs`` (its default sleeps a
  fixed 2 s between pages; the header option sleeps 1 / x-amzn-RateLimit-Limit);
* amzn-sp-api: a hand-written loop on ``payload.next_page_token`` (it has no helper);
* amzn-selling-partner: ``iter_list_service_jobs(...)`` with its default bucket.

A loop that fetches one page at a time cannot beat P × 250 ms for P pages, nor the plan's
(P − 40) / 10 s; the bound here is the larger of the two (with 250 ms of latency, the
first).  Reported: elapsed / bound, pages and jobs fetched, 429s drawn, CPU per page and
errors; one run each.
``bench_sync.py`` (the concurrent bulk sync) is reported beside this when present.
``python benchmarks/bench_pages.py [--quick]``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import PEERS, api_server, fmt_errors, installed, label, run_client, spread, table

LIST_JOBS = "getServiceJobs"
RATE, BURST = 10.0, 40
LATENCY = 0.25

HOW = {
    "ours": "`client.service_jobs.list(...)`, default limits",
    "saleweaver": '`load_all_pages(next_token_param="pageToken", use_rate_limit_header=True)`',
    "official": "manual loop on `payload.next_page_token`",
    "asp": "`iter_list_service_jobs(...)`, default bucket",
}


def name_of(client: str) -> str:
    """The client's name; python-amazon-sp-api's pagination helper is sync-only."""
    return "python-amazon-sp-api (sync)" if client == "saleweaver" else label(client)


def run(quick: bool = False, server: str = "emulator") -> dict[str, Any]:
    """Page through everything with each client; returns elapsed/bound and what went wrong."""
    jobs, latency = (1000, 0.05) if quick else (4000, LATENCY)
    plan = [("ours", 0)] + [(peer, 0) for peer in PEERS if installed(peer)]
    runs = []
    with api_server(server, latency=latency, enforce=True, jobs=jobs, seed=1) as srv:
        for client, rep in plan:
            srv.reset()
            outcome = run_client(client, "pages", srv, limits="plan", timeout=600)
            counts = srv.api_counts(LIST_JOBS)
            outcome.update(rep=rep, requests=sum(counts.values()), throttled=counts.get(429, 0))
            runs.append(outcome)
    complete = max((r.get("n", 0) for r in runs if not r.get("errors")), default=0)
    bound = max(max(complete - BURST, 0) / RATE, complete * latency)
    for r in runs:
        if "failed" not in r:
            r["elapsed_over_bound"] = r["wall_s"] / bound if bound else None
    ours = [r for r in runs if r.get("client") == "ours" and "failed" not in r]
    return {
        "server": srv.kind,
        "seeded_jobs": jobs,
        "pages": complete,
        "bound_s": bound,
        "latency_s": latency,
        "runs": runs,
        "ours": {
            "elapsed_over_bound": spread([r["elapsed_over_bound"] for r in ours]),
            "throttled": spread([float(r["throttled"]) for r in ours]),
        }
        if ours and bound
        else None,
    }


def markdown(r: dict[str, Any]) -> str:
    """The figures as markdown."""
    rows = []
    for x in r["runs"]:
        name = name_of(x["client"])
        if "failed" in x:
            rows.append([name, HOW[x["client"]], "failed", "", "", "", x["failed"][:100]])
            continue
        ratio = x.get("elapsed_over_bound")
        rows.append(
            [
                name,
                HOW[x["client"]],
                f"{ratio:.2f}" if ratio is not None else "n/a",
                f"{x['n']} / {x['jobs']:,}",
                x["throttled"],
                f"{x['cpu_ms_per_call']:.1f}",
                fmt_errors(x["errors"]),
            ]
        )
    return "\n".join(
        [
            f"Every US job ({r['pages']} pages of up to 20) from the {r['server']} server "
            f"({r['seeded_jobs']:,} seeded jobs, {r['latency_s'] * 1e3:.0f} ms latency, "
            f"getServiceJobs {RATE:.0f}/s burst {BURST} enforced); bound = max("
            f"{r['pages']} × {r['latency_s']:.2f} s, ({r['pages']} − {BURST}) / {RATE:.0f} s) = "
            f"{r['bound_s']:.1f} s. One run each.",
            "",
            table(
                [
                    "client",
                    "how",
                    "elapsed / bound",
                    "pages / jobs",
                    "429s drawn",
                    "CPU ms / page",
                    "errors raised",
                ],
                rows,
            ),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--server", choices=["emulator", "lean"], default="emulator")
    args = parser.parse_args()
    print(markdown(run(args.quick, args.server)))


if __name__ == "__main__":
    main()
