"""One client, one scenario, in a process of its own; prints ``RESULT <json>``.

``python benchmarks/_clients.py CLIENT SCENARIO --base-url URL [--n N] [--concurrency C]``

Clients:

* ``ours``: spapi-services' ``ServicesClient`` (``--limits off|plan``);
* ``raw``: the floor, a hand-written aiohttp + ``json.loads`` loop sending the same
  headers (``x-amz-access-token`` from one LWA exchange, ``User-Agent``, ``Accept``);
* ``saleweaver``: python-amazon-sp-api's async client (``sp_api.asyncio.api.Services``),
  or its sync client and ``load_all_pages`` for the ``pages`` scenario;
* ``official``: amzn-sp-api's ``ServiceApi``, with ``async_req=True`` (its default
  thread pool) for ``get``, a hand-written token loop for ``pages``;
* ``asp``: amzn-selling-partner's generated ``AsyncClient`` (``--limits off|plan`` maps
  to its ``throttle=``).

Scenarios:

* ``get``: ``--n`` getServiceJobByServiceJobId calls from ``--concurrency`` workers after
  ``--warmup`` untimed calls;
* ``burst``: ``--n`` calls fired at once by a cold client; with ``--warmup`` above 0,
  after one untimed getServiceJobs call that fetches the token and opens a connection
  without touching the get bucket;
* ``pages``: every page of getServiceJobs, optionally reading the peak RSS at
  ``--checkpoints`` (pages).

The guard is installed before any client library is imported.  Client CPU is
``time.process_time()`` over the timed part only (all threads of this process).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import itertools
import json
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _guard

_guard.install()

MARKETPLACE = "ATVPDKIKX0DER"
CLIENT_ID = "amzn1.application-oa2-client.benchmark"
CLIENT_SECRET = "benchmark-secret"
REFRESH_TOKEN = "Atzr|benchmark"
SINCE = "2025-01-01T00:00:00Z"  # before every seeded job


#: Seeded job ids to ask for (from ``--ids-url``); empty means any id will do.
JOB_IDS: list[str] = []


def job_id(i: int) -> str:
    """The id of the ``i``-th job to get."""
    return JOB_IDS[i % len(JOB_IDS)] if JOB_IDS else f"job-{i}"


def peak_rss_kib() -> int:
    """VmHWM of this process, in KiB (the peak resident set so far)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


class Tally:
    """Outcomes of the timed calls: successes and failures by exception type."""

    def __init__(self) -> None:
        self.ok = 0
        self.errors: Counter[str] = Counter()

    def failed(self, exc: BaseException) -> None:
        status = getattr(exc, "status_code", None) or getattr(exc, "status", None)
        self.errors[f"{type(exc).__name__}{f' {status}' if status else ''}"] += 1


class Timer:
    """Wall and CPU time of a block, optionally under cProfile."""

    def __init__(self, profile: str | None = None) -> None:
        self.profile = cProfile.Profile() if profile else None
        self.path = profile
        self.wall = self.cpu = 0.0

    def __enter__(self) -> Timer:
        if self.profile:
            self.profile.enable()
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *_: object) -> None:
        self.wall = time.perf_counter() - self._wall
        self.cpu = time.process_time() - self._cpu
        if self.profile and self.path:
            self.profile.disable()
            self.profile.dump_stats(self.path)


async def run_workers(
    call: Callable[[int], Awaitable[object]], n: int, concurrency: int, tally: Tally
) -> None:
    """``n`` calls, ``concurrency`` at a time; failures are counted, not raised."""
    counter = itertools.count()

    async def worker() -> None:
        for i in counter:
            if i >= n:
                return
            try:
                await call(i)
            except Exception as exc:
                tally.failed(exc)
            else:
                tally.ok += 1

    await asyncio.gather(*(worker() for _ in range(min(concurrency, n))))


def result(tally: Tally, timer: Timer, n: int, **extra: Any) -> dict[str, Any]:
    return {
        "n": n,
        "ok": tally.ok,
        "errors": dict(tally.errors),
        "wall_s": timer.wall,
        "cpu_s": timer.cpu,
        "cpu_ms_per_call": timer.cpu / n * 1e3,
        "calls_per_s": n / timer.wall if timer.wall else 0.0,
        **extra,
    }


# --- ours --------------------------------------------------------------------------


async def ours(args: argparse.Namespace) -> dict[str, Any]:
    from datetime import UTC, datetime

    from spapi_services import LwaCredentials, ServicesClient

    creds = LwaCredentials(CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN)
    client = ServicesClient(
        creds,
        endpoint=args.base_url,
        token_url=args.base_url + "/auth/o2/token",
        marketplace_id=MARKETPLACE,
        rate_limits=None if args.limits == "plan" else False,
        # "otel", "decode-otel": the OpenTelemetry instrumentation off, though the API may
        # be installed.
        instrument=args.ablate not in ("otel", "decode-otel"),
    )
    since = datetime(2025, 1, 1, tzinfo=UTC)
    if args.ablate in ("orjson", "speedups"):
        # The standard library's JSON, though the speedups extra (orjson) is installed;
        # "speedups": and the models decoded without msgspec too.
        from spapi_services import _serde

        _serde._orjson = None
        if args.ablate == "speedups":
            _serde._msgspec = None
    if args.ablate in ("decode", "decode-otel"):
        # For the overhead breakdown: hand back the JSON instead of building models.
        from spapi_services.resources import _base

        _base.decode_payload = lambda response, _cls, _op, **_: response.data  # type: ignore[assignment]
    tally = Tally()
    async with client:
        if args.scenario == "pages":
            return await _pages_ours(client, since, args)
        if args.scenario == "burst" and args.warmup:
            await client.service_jobs.list_page(created_after=since)
        for i in range(args.warmup if args.scenario == "get" else 0):
            await client.service_jobs.get(job_id(i))

        async def call(i: int) -> object:
            return await client.service_jobs.get(job_id(i))

        concurrency = args.n if args.scenario == "burst" else args.concurrency
        with Timer(args.profile) as timer:
            await run_workers(call, args.n, concurrency, tally)
    return result(tally, timer, args.n)


async def _pages_ours(client: Any, since: Any, args: argparse.Namespace) -> dict[str, Any]:
    checkpoints = sorted(args.checkpoints)
    rss: dict[str, int] = {}
    jobs = 0
    tally = Tally()
    paginator = client.service_jobs.list(created_after=since)
    with Timer(args.profile) as timer:
        try:
            async for _job in paginator:
                jobs += 1
                if checkpoints and paginator.pages_fetched >= checkpoints[0]:
                    rss[str(checkpoints.pop(0))] = peak_rss_kib()
        except Exception as exc:
            tally.failed(exc)
        else:
            tally.ok = paginator.pages_fetched
    return result(tally, timer, paginator.pages_fetched, jobs=jobs, peak_rss_kib=rss)


# --- the floor: raw aiohttp + json ------------------------------------------------


async def raw(args: argparse.Namespace) -> dict[str, Any]:
    import json as stdjson

    import aiohttp

    headers_base = {"User-Agent": "bench-raw/1.0 (Language=Python)", "Accept": "application/json"}
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=100, limit_per_host=100)
    ) as session:
        form = {
            "grant_type": "refresh_token",
            "refresh_token": REFRESH_TOKEN,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        }
        async with session.post(args.base_url + "/auth/o2/token", data=form) as resp:
            token = stdjson.loads(await resp.read())["access_token"]
        headers = {**headers_base, "x-amz-access-token": token}
        base = args.base_url + "/service/v1/serviceJobs/"

        async def call(i: int) -> object:
            async with session.get(base + job_id(i), headers=headers) as resp:
                body = stdjson.loads(await resp.read())
                if resp.status != 200:
                    raise RuntimeError(f"HTTP {resp.status}")
                return body["payload"]

        for i in range(args.warmup):
            await call(i)
        tally = Tally()
        concurrency = args.n if args.scenario == "burst" else args.concurrency
        with Timer(args.profile) as timer:
            await run_workers(call, args.n, concurrency, tally)
    return result(tally, timer, args.n)


# --- python-amazon-sp-api (saleweaver) ----------------------------------------------


def _saleweaver_creds() -> dict[str, str]:
    return {
        "refresh_token": REFRESH_TOKEN,
        "lwa_app_id": CLIENT_ID,
        "lwa_client_secret": CLIENT_SECRET,
    }


def _token_client_class(base_url: str, base: type) -> type:
    # The LWA URL is scheme + host + path from class attributes: the documented hook.
    scheme, host = base_url.split("://", 1)
    return type("LocalAccessTokenClient", (base,), {"scheme": scheme + "://", "host": host})


async def saleweaver(args: argparse.Namespace) -> dict[str, Any]:
    if args.scenario == "pages":
        return _saleweaver_pages(args)
    from sp_api.asyncio.api import Services
    from sp_api.asyncio.auth import AccessTokenClient
    from sp_api.base import Marketplaces
    from sp_api.base.credential_provider import FromCodeCredentialProvider

    client = Services(
        marketplace=Marketplaces.US,
        credentials=_saleweaver_creds(),
        credential_providers=[FromCodeCredentialProvider],
        auth_token_client_class=_token_client_class(args.base_url, AccessTokenClient),
        timeout=30,
    )
    client.endpoint = args.base_url  # no constructor argument for the API host
    tally = Tally()
    async with client:
        if args.scenario == "burst" and args.warmup:
            await client.get_service_jobs(marketplaceIds=[MARKETPLACE], createdAfter=SINCE)
        for i in range(args.warmup if args.scenario == "get" else 0):
            await client.get_service_job_by_service_job_id(job_id(i))

        async def call(i: int) -> object:
            return await client.get_service_job_by_service_job_id(job_id(i))

        concurrency = args.n if args.scenario == "burst" else args.concurrency
        with Timer(args.profile) as timer:
            await run_workers(call, args.n, concurrency, tally)
    return result(tally, timer, args.n)


def _saleweaver_pages(args: argparse.Namespace) -> dict[str, Any]:
    from sp_api.api import Services
    from sp_api.auth import AccessTokenClient
    from sp_api.base import Marketplaces
    from sp_api.base.credential_provider import FromCodeCredentialProvider
    from sp_api.util import load_all_pages

    client = Services(
        marketplace=Marketplaces.US,
        credentials=_saleweaver_creds(),
        credential_providers=[FromCodeCredentialProvider],
        auth_token_client_class=_token_client_class(args.base_url, AccessTokenClient),
        timeout=30,
    )
    client.endpoint = args.base_url
    # The documented pattern: the generic decorator, told the parameter name.  Its
    # default sleeps a fixed 2 s between pages; use_rate_limit_header=True sleeps
    # 1 / x-amzn-RateLimit-Limit instead (0.1 s for getServiceJobs).
    pager = load_all_pages(next_token_param="pageToken", use_rate_limit_header=True)
    tally = Tally()
    pages = jobs = 0
    with Timer(args.profile) as timer:
        try:
            for page in pager(client.get_service_jobs)(
                marketplaceIds=[MARKETPLACE], createdAfter=SINCE
            ):
                pages += 1
                jobs += len(page.payload.get("jobs") or [])
        except Exception as exc:
            tally.failed(exc)
    tally.ok = pages
    client.close()
    return result(tally, timer, pages, jobs=jobs)


# --- amzn-sp-api (official) -----------------------------------------------------------


def _official_api(base_url: str) -> Any:
    import spapi
    from spapi import SPAPIClient, SPAPIConfig
    from spapi.api.services_v1.service_api import ServiceApi

    # Workaround: 1.13.0 adds a logging handler per deserialised model object unless a
    # default Configuration exists, which makes every call slower than the last.
    spapi.Configuration.set_default(spapi.Configuration())
    config = SPAPIConfig(
        client_id=CLIENT_ID, client_secret=CLIENT_SECRET, refresh_token=REFRESH_TOKEN, region="NA"
    )
    client = SPAPIClient(config, oauth_endpoint=base_url + "/auth/o2/token", endpoint=base_url)
    return ServiceApi(client.api_client)


def official(args: argparse.Namespace) -> dict[str, Any]:
    import logging

    api = _official_api(args.base_url)
    logging.getLogger().setLevel(logging.WARNING)  # importing spapi sets INFO on the root
    if args.scenario == "pages":
        return _official_pages(api, args)
    if args.scenario == "burst" and args.warmup:
        api.get_service_jobs([MARKETPLACE], created_after=SINCE)
    for i in range(args.warmup if args.scenario == "get" else 0):
        api.get_service_job_by_service_job_id(job_id(i))
    tally = Tally()
    with Timer(args.profile) as timer:
        # async_req=True: the SDK's own "async", a multiprocessing ThreadPool of
        # os.cpu_count() threads.
        pending = [
            api.get_service_job_by_service_job_id(job_id(i), async_req=True) for i in range(args.n)
        ]
        for item in pending:
            try:
                item.get()
            except Exception as exc:
                tally.failed(exc)
            else:
                tally.ok += 1
    api.api_client.pool.close()
    return result(tally, timer, args.n, threads=api.api_client.pool._processes)


def _official_pages(api: Any, args: argparse.Namespace) -> dict[str, Any]:
    tally = Tally()
    pages = jobs = 0
    token = None
    with Timer(args.profile) as timer:
        try:
            while True:  # no helper: follow payload.next_page_token by hand
                kwargs = {"page_token": token} if token else {}
                page = api.get_service_jobs([MARKETPLACE], created_after=SINCE, **kwargs)
                pages += 1
                jobs += len(page.payload.jobs or [])
                token = page.payload.next_page_token
                if not token:
                    break
        except Exception as exc:
            tally.failed(exc)
    tally.ok = pages
    return result(tally, timer, pages, jobs=jobs)


# --- amzn-selling-partner --------------------------------------------------------------


async def asp(args: argparse.Namespace) -> dict[str, Any]:
    from amzn_selling_partner import AsyncClient
    from amzn_selling_partner.plugins.amazon_spapi import AsyncLWAAuth, LWACredentials

    creds = LWACredentials(
        client_id=CLIENT_ID, client_secret=CLIENT_SECRET, refresh_token=REFRESH_TOKEN
    )
    # AsyncSellingPartner fixes base_url from the region; the generated client takes one.
    auth = AsyncLWAAuth(creds, token_url=args.base_url + "/auth/o2/token", base_url=args.base_url)
    client = AsyncClient(base_url=args.base_url, auth=auth, throttle=args.limits == "plan")
    services = client.services_v1
    tally = Tally()
    try:
        if args.scenario == "pages":
            pages = jobs = 0
            with Timer(args.profile) as timer:
                try:
                    async for _job in services.iter_list_service_jobs(
                        [MARKETPLACE], created_after=SINCE
                    ):
                        jobs += 1
                except Exception as exc:
                    tally.failed(exc)
            pages = -(-jobs // 20)
            tally.ok = pages
            return result(tally, timer, pages, jobs=jobs)
        if args.scenario == "burst" and args.warmup:
            await services.list_service_jobs([MARKETPLACE], created_after=SINCE)
        for i in range(args.warmup if args.scenario == "get" else 0):
            await services.get_service_job(job_id(i))

        async def call(i: int) -> object:
            return await services.get_service_job(job_id(i))

        concurrency = args.n if args.scenario == "burst" else args.concurrency
        with Timer(args.profile) as timer:
            await run_workers(call, args.n, concurrency, tally)
    finally:
        await client.aclose()
        await auth.aclose()  # aclose() of the client leaves the token client open
    return result(tally, timer, args.n)


CLIENTS: dict[str, Callable[[argparse.Namespace], Any]] = {
    "ours": ours,
    "raw": raw,
    "saleweaver": saleweaver,
    "official": official,
    "asp": asp,
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("client", choices=sorted(CLIENTS))
    parser.add_argument("scenario", choices=["get", "burst", "pages"])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=0)
    parser.add_argument("--limits", choices=["off", "plan"], default="off")
    parser.add_argument("--checkpoints", type=int, nargs="*", default=[])
    parser.add_argument("--profile", help="write cProfile stats of the timed part here")
    parser.add_argument(
        "--ablate",
        choices=["none", "decode", "orjson", "otel", "decode-otel", "speedups"],
        default="none",
    )
    parser.add_argument("--creds", help="JSON: client_id, client_secret, refresh_token")
    parser.add_argument("--ids-url", help="a URL answering a JSON list of job ids to get")
    args = parser.parse_args()
    _guard.check_url(args.base_url)
    global CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN
    if args.creds:
        creds = json.loads(args.creds)
        CLIENT_ID, CLIENT_SECRET = creds["client_id"], creds["client_secret"]
        REFRESH_TOKEN = creds["refresh_token"]
    if args.ids_url:
        import urllib.request

        with urllib.request.urlopen(_guard.check_url(args.ids_url), timeout=30) as resp:
            JOB_IDS.extend(json.loads(resp.read()))
    if not 0 < args.n <= 10_000:
        raise SystemExit("--n: keep the loop bounded (1..10000)")
    outcome = CLIENTS[args.client](args)
    if asyncio.iscoroutine(outcome):
        outcome = asyncio.run(outcome)
    outcome.update(client=args.client, scenario=args.scenario, limits=args.limits)
    print("RESULT " + json.dumps(outcome), flush=True)


if __name__ == "__main__":
    main()
