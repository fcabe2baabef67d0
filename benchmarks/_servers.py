"""A lean loopback Services API server for the benchmarks, and a helper to run it apart.

Run as a script it serves, on 127.0.0.1 only:

* ``POST /auth/o2/token``: a fake LWA token (any form is accepted);
* ``GET /service/v1/serviceJobs/{id}``: one fully populated service job (about 3.4 KB);
* ``GET /service/v1/serviceJobs``: ``--pages`` pages of 20 jobs, chained by
  ``nextPageToken`` -> ``pageToken``, synthesised from one pre-rendered page;
* ``GET /__log``: every API request seen since the last reset, as
  ``[seconds since the first, operationId, status]`` rows, plus counters and the number
  of client connections (distinct peer addresses) they came on;
* ``POST /__reset``: forget the log and refill every bucket.

``--latency S`` delays every API answer by S seconds; ``--enforce`` meters
getServiceJobByServiceJobId (20/s, burst 40) and getServiceJobs (10/s, burst 40) with a
token bucket each, as Amazon does, answering 429 ``QuotaExceeded`` with no
``Retry-After`` (what the real API sends).  Bodies are pre-rendered bytes and there is no
access log, so the server spends as little CPU per request as aiohttp allows.

:func:`start` runs it as a separate process and yields its base URL.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

GET_JOB = "getServiceJobByServiceJobId"
LIST_JOBS = "getServiceJobs"

#: The published plans of the two operations the benchmarks call (``_routes.py`` has them
#: all; repeated here so the server process does not import the SDK it measures).
PLANS: dict[str, tuple[float, int]] = {GET_JOB: (20.0, 40), LIST_JOBS: (10.0, 40)}

JOBS_PER_PAGE = 20
_ID = "@@ID@@"
_QUOTA = json.dumps(
    {
        "errors": [
            {
                "code": "QuotaExceeded",
                "message": "You exceeded your quota for the requested resource.",
                "details": "",
            }
        ]
    }
).encode()


def job(job_id: str) -> dict[str, Any]:
    """A service job with every field the model has set, as the API sends it."""
    technicians = [
        {"technicianId": "AXDKE1TECH1", "name": "Jane Ortiz"},
        {"technicianId": "AXDKE1TECH2", "name": "Sam Lee"},
    ]
    slot = {"startTime": "2026-03-02T15:00:00.000Z", "durationInMinutes": 120}
    promise = {"startTime": "2026-02-28T14:00:00Z", "endTime": "2026-02-28T22:00:00Z"}
    item = {
        "asin": "B08TVSAMPLE",
        "title": "65-inch 4K television",
        "quantity": 1,
        "orderId": "113-0000001-1111111",
        "itemStatus": "DELIVERED",
        "brandName": "ExampleBrand",
        "itemDelivery": {
            "estimatedDeliveryDate": "2026-02-28T20:00:00Z",
            "itemDeliveryPromise": promise,
        },
        "linkedAssets": [
            {
                "assetType": "VEHICLE",
                "assetName": "Delivery van",
                "additionalAttributes": {"make": "Ford", "model": "Transit"},
            }
        ],
    }
    return {
        "createTime": "2026-02-27T09:14:53.952Z",
        "serviceJobId": job_id,
        "serviceJobStatus": "NOT_SERVICED",
        "scopeOfWork": {
            "asin": "B07BB1RGT5",
            "title": "Wall-mounted TV installation, up to 65 inches",
            "quantity": 1,
            "requiredSkills": ["TV_MOUNTING", "ELECTRICAL_BASIC"],
        },
        "seller": {"sellerId": "A2SELLER0001"},
        "serviceJobProvider": {"serviceJobProviderId": "A3PROVIDER02"},
        "preferredAppointmentTimes": [
            slot,
            {"startTime": "2026-03-03T09:00:00Z", "durationInMinutes": 120},
        ],
        "appointments": [
            {
                "appointmentId": f"{job_id}_00b9d5f2-839d-c13e-b8cd-dae1c3995b2a",
                "appointmentStatus": "ACTIVE",
                "appointmentTime": slot,
                "assignedTechnicians": technicians,
                "poa": {
                    "appointmentTime": slot,
                    "technicians": technicians,
                    "uploadingTechnician": "AXDKE1TECH1",
                    "uploadTime": "2026-03-02T17:05:12.114Z",
                    "poaType": "CUSTOMER_SIGNATURE",
                },
            }
        ],
        "serviceOrderId": "112-0000001-4463201",
        "productOrderIds": ["113-0000001-1111111"],
        "trackingIds": ["TBA301234567890"],
        "marketplaceId": "ATVPDKIKX0DER",
        "storeId": "53694163-6dc8-4f80-b6b1-ec47b7b9747e",
        "buyer": {
            "buyerId": "A1BUYER00001",
            "name": "Alex Example",
            "phone": "+1-206-555-0100",
            "isPrimeMember": True,
        },
        "associatedItems": [item, {**item, "asin": "B08MOUNT01", "itemStatus": "SHIPPED"}],
        "serviceLocation": {
            "serviceLocationType": "IN_HOME",
            "address": {
                "name": "Alex Example",
                "addressLine1": "410 Terry Ave N",
                "city": "Seattle",
                "stateOrRegion": "WA",
                "postalCode": "98109",
                "countryCode": "US",
                "phone": "+1-206-555-0100",
            },
        },
        "payments": [{"amount": {"value": 149.99, "currency": "USD"}, "instrument": "CREDIT_CARD"}],
    }


class _Bucket:
    """Amazon's meter for one operation: ``rate`` tokens a second, at most ``burst``."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self.tokens, self.stamp = float(burst), time.monotonic()

    def take(self, now: float) -> bool:
        self.tokens = min(float(self.burst), self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class _State:
    def __init__(self, *, latency: float, enforce: bool, pages: int) -> None:
        self.latency = latency
        self.enforce = enforce
        self.pages = pages
        self.buckets: dict[str, _Bucket] = {}
        self.log: list[tuple[float, str, int]] = []
        self.tokens_issued = 0
        self.peers: set[object] = set()
        self.reset()
        head, _, tail = json.dumps({"payload": job(_ID)}).partition(_ID)
        self.job_parts = (head.encode(), tail.encode())
        page_jobs = [job(f"{_ID}-{n:02d}") for n in range(JOBS_PER_PAGE)]
        self.page_parts = json.dumps({"jobs": page_jobs}).encode().split(_ID.encode())

    def reset(self) -> None:
        now = time.monotonic()
        self.buckets = {op: _Bucket(rate, burst) for op, (rate, burst) in PLANS.items()}
        for bucket in self.buckets.values():
            bucket.stamp = now
        self.log = []
        self.peers = set()

    def admit(self, operation: str) -> int:
        now = time.monotonic()
        status = 200
        if self.enforce and not self.buckets[operation].take(now):
            status = 429
        self.log.append((now, operation, status))
        return status


def _app(state: _State) -> Any:
    from aiohttp import web

    def headers(operation: str) -> dict[str, str]:
        return {
            "Content-Type": "application/json",
            "x-amzn-RequestId": f"req-{len(state.log)}",
            "x-amzn-RateLimit-Limit": repr(PLANS[operation][0]),
        }

    async def answer(request: web.Request, operation: str, body: bytes) -> web.Response:
        status = state.admit(operation)
        if request.transport is not None:
            state.peers.add(request.transport.get_extra_info("peername"))
        if state.latency:
            await asyncio.sleep(state.latency)
        return web.Response(
            status=status, body=body if status == 200 else _QUOTA, headers=headers(operation)
        )

    async def token(request: web.Request) -> web.Response:
        await request.read()
        state.tokens_issued += 1
        body = {
            "access_token": "Atza|benchmark-token",
            "refresh_token": "Atzr|benchmark",
            "token_type": "bearer",
            "expires_in": 3600,
        }
        return web.json_response(body)

    async def get_job(request: web.Request) -> web.Response:
        head, tail = state.job_parts
        return await answer(request, GET_JOB, head + request.match_info["job_id"].encode() + tail)

    async def list_jobs(request: web.Request) -> web.Response:
        raw = request.query.get("pageToken", "p0")
        page = int(raw[1:]) if raw.startswith("p") and raw[1:].isdigit() else 0
        stamp = f"P{page:06d}".encode()
        jobs = stamp.join(state.page_parts)
        nxt = b'"p%d"' % (page + 1) if page + 1 < state.pages else b"null"
        body = b'{"payload":{"totalResultSize":%d,"nextPageToken":%s,' % (
            state.pages * JOBS_PER_PAGE,
            nxt,
        )
        return await answer(request, LIST_JOBS, body + jobs[1:] + b"}")

    async def log(_: web.Request) -> web.Response:
        t0 = state.log[0][0] if state.log else 0.0
        counts = Counter(f"{op} {status}" for _, op, status in state.log)
        rows = [[round(t - t0, 6), op, status] for t, op, status in state.log]
        return web.json_response(
            {
                "records": rows,
                "counts": dict(counts),
                "tokens_issued": state.tokens_issued,
                "connections": len(state.peers),
            }
        )

    async def reset(_: web.Request) -> web.Response:
        state.reset()
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/auth/o2/token", token)
    app.router.add_get("/service/v1/serviceJobs/{job_id}", get_job)
    app.router.add_get("/service/v1/serviceJobs", list_jobs)
    app.router.add_get("/__log", log)
    app.router.add_post("/__reset", reset)
    return app


def serve(port: int, *, latency: float, enforce: bool, pages: int) -> None:
    """Serve until killed, printing ``LISTENING <base url>`` once bound."""
    from aiohttp import web

    async def main() -> None:
        runner = web.AppRunner(
            _app(_State(latency=latency, enforce=enforce, pages=pages)), access_log=None
        )
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", port, backlog=1024)
        await site.start()
        bound = runner.addresses[0][1]
        print(f"LISTENING http://127.0.0.1:{bound}", flush=True)
        await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())


# --- the parent's side -------------------------------------------------------------


@contextlib.contextmanager
def start(
    *, latency: float = 0.0, enforce: bool = False, pages: int = 50, python: str | None = None
) -> Iterator[str]:
    """Run the server in its own process for the duration of the ``with``; yield its URL."""
    command = [
        python or sys.executable,
        str(Path(__file__).resolve()),
        "--port",
        "0",
        "--latency",
        str(latency),
        "--pages",
        str(pages),
    ]
    if enforce:
        command.append("--enforce")
    with spawn(command, "LISTENING ") as line:
        yield line.split()[1]


@contextlib.contextmanager
def spawn(command: list[str], ready_prefix: str, timeout: float = 30.0) -> Iterator[str]:
    """Start ``command``, wait for a stdout line starting ``ready_prefix``, stop it after."""
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + timeout
        assert proc.stdout is not None
        line = ""
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            if line.startswith(ready_prefix):
                break
        if not line.startswith(ready_prefix):
            err = proc.stderr.read() if proc.stderr and proc.poll() is not None else ""
            raise RuntimeError(f"server did not start: {command!r}\n{err[-2000:]}")
        yield line.strip()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def fetch_log(base_url: str) -> dict[str, Any]:
    """The server's request log and counters."""
    with urllib.request.urlopen(base_url + "/__log", timeout=10) as resp:
        data: dict[str, Any] = json.loads(resp.read())
        return data


def reset(base_url: str) -> None:
    """Empty the log and refill the buckets."""
    request = urllib.request.Request(base_url + "/__reset", data=b"", method="POST")
    with urllib.request.urlopen(request, timeout=10) as resp:
        resp.read()


def main() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import _guard

    _guard.install()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--enforce", action="store_true")
    parser.add_argument("--pages", type=int, default=50)
    args = parser.parse_args()
    serve(args.port, latency=args.latency, enforce=args.enforce, pages=args.pages)


if __name__ == "__main__":
    main()
