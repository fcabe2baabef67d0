"""How fast the emulator answers: getServiceJobByServiceJobId at concurrency 50.

The emulator runs in a process of its own (``python -m spapi_services.emulator`` with
usage plans off), so the client below and the server do not share a core.  Each run
sends a fixed number of GETs of seeded jobs over a raw aiohttp session and times them;
the figure is the median of three runs.  The emulator must comfortably outrun what the
client benchmarks need (well over 1,000 requests a second).

    python benchmarks/bench_emulator.py [--requests 5000] [--concurrency 50] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

import aiohttp

JOBS = 500


def _start_emulator() -> tuple[subprocess.Popen[str], dict[str, Any]]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "spapi_services.emulator",
            "--port",
            "0",
            "--jobs",
            str(JOBS),
            "--seed",
            "1",
            "--no-limits",
            "--json",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        process.kill()
        raise RuntimeError("the emulator did not start")
    return process, json.loads(line)


async def _token(session: aiohttp.ClientSession, facts: dict[str, Any]) -> str:
    form = {
        "grant_type": "refresh_token",
        "refresh_token": facts["refresh_token"],
        "client_id": facts["client_id"],
        "client_secret": facts["client_secret"],
    }
    async with session.post(facts["token_url"], data=form) as response:
        response.raise_for_status()
        token: str = (await response.json())["access_token"]
        return token


async def _job_ids(session: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> list[str]:
    ids: list[str] = []
    params = {"marketplaceIds": "ATVPDKIKX0DER", "createdAfter": "2000-01-01T00:00:00Z"}
    while True:
        search = f"{url}/service/v1/serviceJobs"
        async with session.get(search, params=params, headers=headers) as r:
            r.raise_for_status()
            page = (await r.json())["payload"]
        ids.extend(job["serviceJobId"] for job in page["jobs"])
        token = page.get("nextPageToken")
        if not token:
            return ids
        params["pageToken"] = token


async def _one_run(
    session: aiohttp.ClientSession,
    url: str,
    headers: dict[str, str],
    ids: Sequence[str],
    requests: int,
    concurrency: int,
) -> float:
    next_index = 0
    failures = 0

    async def worker() -> None:
        nonlocal next_index, failures
        while next_index < requests:
            job_id = ids[next_index % len(ids)]
            next_index += 1
            async with session.get(f"{url}/service/v1/serviceJobs/{job_id}", headers=headers) as r:
                await r.read()
                if r.status != 200:
                    failures += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    if failures:
        raise RuntimeError(f"{failures} requests failed")
    return requests / elapsed


async def _measure(requests: int, concurrency: int, runs: int) -> dict[str, Any]:
    process, facts = _start_emulator()
    try:
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector) as session:
            headers = {"x-amz-access-token": await _token(session, facts)}
            ids = await _job_ids(session, facts["url"], headers)
            await _one_run(session, facts["url"], headers, ids, min(500, requests), concurrency)
            rates = [
                await _one_run(session, facts["url"], headers, ids, requests, concurrency)
                for _ in range(runs)
            ]
    finally:
        process.terminate()
        process.wait(timeout=10)
    return {
        "operation": "getServiceJobByServiceJobId",
        "requests_per_run": requests,
        "concurrency": concurrency,
        "runs": [round(rate, 1) for rate in rates],
        "requests_per_second": round(statistics.median(rates), 1),
    }


def run(requests: int = 5000, concurrency: int = 50, runs: int = 3) -> dict[str, Any]:
    """Measure the emulator; the result's ``requests_per_second`` is the median of the runs."""
    return asyncio.run(_measure(requests, concurrency, runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(json.dumps(run(args.requests, args.concurrency, args.runs), indent=2))


if __name__ == "__main__":
    main()
