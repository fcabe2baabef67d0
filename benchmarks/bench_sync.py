"""Bulk sync against the usage plan's bound: concurrent windows versus one paginator.

The emulator runs in a process of its own (``python -m spapi_services.emulator``) with
4,000 seeded jobs across its five marketplaces, 250 ms of latency on every API answer
and Amazon's published usage plans enforced (getServiceJobs: 10 requests a second, burst
40).  Each run syncs every job into a fresh SQLite file with a fresh client:

* ``concurrent``: ``sync_jobs(...)`` with its defaults (8 windows, 8 pages in flight);
* ``sequential``: the same call with ``windows=1, concurrency=1``, one page after
  another per marketplace, which is what a single paginator does.

No client can finish R requests faster than ``(R − 40) / 10`` seconds: the bucket's
bound.  Reported for each mode (median of the runs, with the spread): elapsed, the
bound for the requests made and for the pages stored, elapsed/bound, requests, pages,
rows written, and 429s received (counted from the client's own log of every attempt, so
retried ones are included).  The target: within 10 % of the bound, no 429.

``python benchmarks/bench_sync.py [--quick]``; :func:`run` returns the figures and
:func:`markdown` renders them.  Between runs the script waits for the emulator's bucket
to fill up again.  Timing never runs as a test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from spapi_services import LwaCredentials, ServicesClient
from spapi_services.sync import SqliteSink, sync_jobs

RATE, BURST = 10.0, 40
LATENCY = 0.25
OPERATION_PATH = "/service/v1/serviceJobs"
MARKETPLACES = ["ATVPDKIKX0DER", "A2EUQ1WTGCTBG2", "A1AM78C64UM0Y8", "A1PA6795UKMFR9",
                "A1F83G8C2ARO7P"]  # fmt: skip


@contextmanager
def emulator(jobs: int, latency: float, seed: int = 1) -> Iterator[dict[str, Any]]:
    """``python -m spapi_services.emulator`` in its own process; yields its facts."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "spapi_services.emulator", "--port", "0", "--json",
         "--jobs", str(jobs), "--seed", str(seed), "--latency", str(latency)],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError("the emulator exited before it was ready")
        facts: dict[str, Any] = json.loads(line)
        if not facts["url"].startswith("http://127.0.0.1:"):
            raise RuntimeError(f"not a loopback emulator: {facts['url']}")
        yield facts
    finally:
        proc.terminate()
        proc.wait(timeout=30)


class ThrottleCounter(logging.Handler):
    """Counts the 429 answers to getServiceJobs in the client's per-attempt DEBUG lines."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.throttled = 0
        self.attempts = 0

    def emit(self, record: logging.LogRecord) -> None:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and args[1] == OPERATION_PATH:
            self.attempts += 1
            if args[2] == 429:
                self.throttled += 1


async def one_run(facts: dict[str, Any], mode: str, db: Path) -> dict[str, Any]:
    """One sync of every marketplace into ``db``; its figures."""
    counter = ThrottleCounter()
    logger = logging.getLogger("spapi_services")
    logger.addHandler(counter)
    previous = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        creds = LwaCredentials(facts["client_id"], facts["client_secret"], facts["refresh_token"])
        async with ServicesClient(
            creds, endpoint=facts["url"], token_url=facts["token_url"]
        ) as client:
            options: dict[str, Any] = {} if mode == "concurrent" else {
                "windows": 1, "concurrency": 1,
            }  # fmt: skip
            report = await sync_jobs(
                client,
                SqliteSink(db),
                since=datetime.now(UTC) - timedelta(days=91),
                marketplace_ids=MARKETPLACES,
                **options,
            )
    finally:
        logger.removeHandler(counter)
        logger.setLevel(previous)
    bound = max(report.requests - BURST, 0) / RATE
    return {
        "elapsed": report.elapsed,
        "requests": report.requests,
        "attempts": counter.attempts,
        "pages": report.pages,
        "jobs": report.jobs,
        "windows": report.windows,
        "bound": bound,
        "bound_pages": max(report.pages - BURST, 0) / RATE,
        "ratio": report.elapsed / bound if bound else float("nan"),
        "throttled": counter.throttled,
    }


def _median(runs: list[dict[str, Any]], key: str) -> dict[str, float]:
    values = [float(r[key]) for r in runs]
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def run(quick: bool = False) -> dict[str, Any]:
    """Sync everything several times in each mode; medians and spreads of the figures."""
    jobs, reps = (1000, 1) if quick else (4000, 3)
    refill = BURST / RATE + 1.0  # seconds for the emulator's bucket to be full again
    results: dict[str, Any] = {
        "jobs": jobs,
        "latency": LATENCY,
        "rate": RATE,
        "burst": BURST,
        "marketplaces": len(MARKETPLACES),
    }
    with emulator(jobs, LATENCY) as facts, tempfile.TemporaryDirectory() as tmp:
        for mode in ("concurrent", "sequential"):
            runs = []
            for rep in range(reps):
                time.sleep(refill)
                db = Path(tmp) / f"{mode}-{rep}.sqlite"
                runs.append(asyncio.run(one_run(facts, mode, db)))
                print(f"  {mode} #{rep + 1}: {_line(runs[-1])}", flush=True)
            results[mode] = {
                "runs": runs,
                **{k: _median(runs, k) for k in ("elapsed", "bound", "ratio")},
                "requests": runs[0]["requests"],
                "pages": runs[0]["pages"],
                "rows": runs[0]["jobs"],
                "throttled": sum(r["throttled"] for r in runs),
            }
    return results


def _line(r: dict[str, Any]) -> str:
    return (
        f"{r['elapsed']:.2f} s for {r['requests']} requests ({r['pages']} pages, "
        f"{r['jobs']} jobs); bound {r['bound']:.2f} s → {r['ratio']:.3f}×; "
        f"429s: {r['throttled']}"
    )


def markdown(results: dict[str, Any]) -> str:
    """The figures as a markdown table."""
    head = (
        f"{results['jobs']:,} jobs in {results['marketplaces']} marketplaces, "
        f"{results['latency'] * 1000:.0f} ms latency, getServiceJobs plan "
        f"{results['rate']:g}/s burst {results['burst']} enforced by the emulator "
        "(its own process).  Bound = (requests − 40) / 10 s.  Medians of the runs, "
        "[min–max]."
    )
    rows = [
        "| mode | elapsed s | bound s | elapsed / bound | requests | pages | rows | 429s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for mode, how in (
        ("concurrent", "windows (default 8) paged concurrently"),
        ("sequential", "one page at a time (`windows=1, concurrency=1`)"),
    ):
        m = results[mode]
        e, b, q = m["elapsed"], m["bound"], m["ratio"]
        rows.append(
            f"| {mode}: {how} | {e['median']:.2f} [{e['min']:.2f}–{e['max']:.2f}] "
            f"| {b['median']:.1f} | {q['median']:.3f} [{q['min']:.3f}–{q['max']:.3f}] "
            f"| {m['requests']} | {m['pages']} | {m['rows']} | {m['throttled']} |"
        )
    return head + "\n\n" + "\n".join(rows) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1,000 jobs, one run per mode")
    args = parser.parse_args()
    os.environ.pop("HTTP_PROXY", None)
    os.environ.pop("HTTPS_PROXY", None)
    results = run(quick=args.quick)
    print(markdown(results))


if __name__ == "__main__":
    main()
