"""A worker that spends its seller's usage plans, and shares its access token, with
every other worker of that seller, through Redis.

Usage: SPAPI_REDIS_URL=redis://HOST:6379/0 python shared_plans_redis.py JOB_ID ...

Start as many as you like, on as many hosts: Amazon meters a seller's calls wherever
they come from, and so do the workers, through Redis, so together they stay inside the
plan and make one token exchange between them. SPAPI_TOKEN_KEY (64 hex digits, from
`python -c "import os; print(os.urandom(32).hex())"`) encrypts the token in Redis; give
every worker the same. The other settings come from the SPAPI_* variables, as in the
quickstart. Needs the redis extra (from a clone: pip install -e ".[redis]").
"""

import asyncio
import os
import sys

from spapi_services import ServicesClient
from spapi_services.redis import RedisRateLimits, RedisTokenCache


async def main(job_ids: list[str]) -> None:
    redis_url = os.environ["SPAPI_REDIS_URL"]
    token_key = bytes.fromhex(os.environ["SPAPI_TOKEN_KEY"])
    async with (
        RedisRateLimits(redis_url) as plans,
        RedisTokenCache(redis_url, encryption_key=token_key) as tokens,
        ServicesClient(rate_limits=plans, token_cache=tokens) as client,
    ):
        jobs = await asyncio.gather(
            *(client.service_jobs.get(job_id) for job_id in job_ids)
        )
    for job in jobs:
        print(job.service_job_id, job.service_job_status)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
