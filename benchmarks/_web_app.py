"""A web backend calling the SDK, for ``bench_processes.py``: run under uvicorn's workers.

``uvicorn _web_app:app --app-dir benchmarks --workers 4`` with, in the environment:

* ``SPAPI_BENCH_BASE_URL``, ``SPAPI_BENCH_CREDS`` (JSON), ``SPAPI_BENCH_IDS_URL``: the
  emulator, its credentials and its job ids;
* ``SPAPI_BENCH_MODE``: ``default`` (each worker its own published plans), ``adaptive``
  (``RateLimits(adaptive=True)``) or ``redis`` (``RedisRateLimits`` and
  ``RedisTokenCache`` on ``SPAPI_BENCH_REDIS_URL``, under ``SPAPI_BENCH_KEY_PREFIX``);
* ``SPAPI_BENCH_READY_DIR``: each worker writes a file there once its client is open.

Each worker opens one client in the lifespan, as a FastAPI application would, and
``GET /jobs/{i}`` calls getServiceJobByServiceJobId with it: 200 with the job's id, or
502 naming the SDK error.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _guard

_guard.install()

from fastapi import FastAPI  # noqa: E402
from fastapi.responses import JSONResponse  # noqa: E402

from spapi_services import LwaCredentials, RateLimits, ServicesClient  # noqa: E402

MARKETPLACE = "ATVPDKIKX0DER"
STATE: dict[str, Any] = {}


def _plan_and_tokens(mode: str) -> tuple[Any, Any, list[Any]]:
    if mode == "default":
        return None, None, []
    if mode == "exact":
        return RateLimits(adaptive=False), None, []
    if mode == "adaptive":
        return RateLimits(adaptive=True), None, []
    from spapi_services.redis import RedisRateLimits, RedisTokenCache

    url = os.environ["SPAPI_BENCH_REDIS_URL"]
    if not url.startswith("redis://127.0.0.1:"):
        raise SystemExit("SPAPI_BENCH_REDIS_URL: loopback only")
    prefix = os.environ.get("SPAPI_BENCH_KEY_PREFIX", "spapi")
    plan = RedisRateLimits(url, key_prefix=prefix)
    tokens = RedisTokenCache(url, key_prefix=prefix)
    return plan, tokens, [plan, tokens]


def _job_ids(url: str) -> list[str]:
    with urllib.request.urlopen(_guard.check_url(url), timeout=30) as resp:
        ids: list[str] = json.loads(resp.read())
        return ids


@contextlib.asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    base_url = _guard.check_url(os.environ["SPAPI_BENCH_BASE_URL"])
    creds = json.loads(os.environ["SPAPI_BENCH_CREDS"])
    STATE["ids"] = await asyncio.to_thread(_job_ids, os.environ["SPAPI_BENCH_IDS_URL"])
    plan, tokens, stores = _plan_and_tokens(os.environ.get("SPAPI_BENCH_MODE", "default"))
    client = ServicesClient(
        LwaCredentials(creds["client_id"], creds["client_secret"], creds["refresh_token"]),
        endpoint=base_url,
        token_url=base_url + "/auth/o2/token",
        marketplace_id=MARKETPLACE,
        rate_limits=plan,
        token_cache=tokens,
    )
    async with client:
        STATE["client"] = client
        ready = Path(os.environ["SPAPI_BENCH_READY_DIR"]) / f"worker-{os.getpid()}"
        ready.write_text("ready")
        try:
            yield
        finally:
            for store in stores:
                await store.aclose()


app = FastAPI(lifespan=lifespan)


@app.get("/jobs/{i}")
async def get_job(i: int) -> Any:
    ids = STATE["ids"]
    try:
        job = await STATE["client"].service_jobs.get(ids[i % len(ids)])
    except Exception as exc:
        return JSONResponse({"error": type(exc).__name__}, status_code=502)
    return {"id": job.service_job_id}
