"""The local emulator in a few lines: read a job, then survive an injected 503."""

import asyncio

from spapi_services import ServicesClient
from spapi_services.emulator import ServicesEmulator


async def main() -> None:
    async with ServicesEmulator(jobs=200, seed=1) as emu:
        client = ServicesClient(
            emu.credentials,
            endpoint=emu.url,
            token_url=emu.token_url,
            marketplace_id="ATVPDKIKX0DER",
        )
        async with client:
            job = emu.store.find_jobs(
                status="COMPLETED", marketplace_id="ATVPDKIKX0DER"
            )[0]
            fetched = await client.service_jobs.get(job.service_job_id)
            print(fetched.service_job_id, fetched.service_job_status)
            emu.faults.set(
                "getServiceJobByServiceJobId", error_rate=1.0, error_status=503, count=1
            )
            await client.service_jobs.get(job.service_job_id)  # one 503, retried
            print(
                emu.count("getServiceJobByServiceJobId", 503),
                "503 answered and retried",
            )


asyncio.run(main())
