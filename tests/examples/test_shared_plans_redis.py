"""examples/shared_plans_redis.py: workers in several processes, one plan and one token.

Three copies run at once against the emulator and a real redis-server: between them they
exchange one access token (kept in Redis, sealed), and their calls are metered in
Redis's buckets for the seller, not in each process.  Without redis-server the test
skips (fails under SPAPI_REQUIRE_SERVERS=1).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from _pages import US, example, run_file, settings_env
from _servers import RedisServer, running

from spapi_services.emulator import ServicesEmulator

GET = "getServiceJobByServiceJobId"


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    with running(RedisServer) as server:
        yield server


async def test_three_workers_share_one_token_and_the_seller_s_buckets(
    emulator: ServicesEmulator, redis_server: RedisServer, tmp_path: Path
) -> None:
    jobs = emulator.store.find_jobs(marketplace_id=US)[:9]
    shares = [jobs[0:3], jobs[3:6], jobs[6:9]]
    env = settings_env(
        emulator, SPAPI_REDIS_URL=redis_server.url, SPAPI_TOKEN_KEY=os.urandom(32).hex()
    )

    done = await asyncio.gather(
        *(
            run_file(
                example("shared_plans_redis.py"),
                [j.service_job_id for j in share],
                env=env,
                cwd=tmp_path,
            )
            for share in shares
        )
    )

    for worker, share in zip(done, shares, strict=True):
        assert worker.returncode == 0, worker.stderr
        assert worker.stderr == ""
        assert worker.stdout.splitlines() == [f"{j.service_job_id} {j.status}" for j in share]
    assert emulator.lwa_exchanges == 1  # one exchange served the three processes
    assert emulator.count(GET, 200) == 9
    store = redis.Redis.from_url(redis_server.url)
    try:
        keys = sorted(k.decode() for k in store.keys("spapi:*"))
        buckets = [k for k in keys if k.startswith("spapi:plan:") and k.endswith(f":{GET}")]
        assert len(buckets) == 1  # one bucket: the seller's, whichever process called
        tokens = [k for k in keys if k.startswith("spapi:token:")]
        assert tokens
        issued = set(emulator.auth._tokens)
        stored = b"".join(store.dump(k) or b"" for k in tokens)
        assert issued
        assert [t for t in issued if t.encode() in stored] == []  # sealed, not in clear
    finally:
        store.close()
