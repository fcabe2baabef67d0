"""One client per seller, one shared HTTP session: jobs waiting, seller by seller.

Usage: SPAPI_REFRESH_TOKENS='{"acme": "Atzr|...", ...}' python several_sellers.py
"""

import asyncio
import json
import os
from datetime import UTC, datetime, timedelta

import aiohttp

from spapi_services import LwaCredentials, ServicesClient


def client_for(refresh_token: str, session: aiohttp.ClientSession) -> ServicesClient:
    credentials = LwaCredentials(
        client_id=os.environ["SPAPI_CLIENT_ID"],  # your application's: the same for all
        client_secret=os.environ["SPAPI_CLIENT_SECRET"],
        refresh_token=refresh_token,  # the seller's own
    )
    # Endpoint, token URL and marketplace from the SPAPI_* variables, as in the
    # quickstart.
    return ServicesClient(credentials, session=session)


async def report_waiting(seller: str, client: ServicesClient) -> None:
    async with client:  # closing the client leaves the shared session open
        since = datetime.now(UTC) - timedelta(days=90)
        waiting = client.service_jobs.list(
            created_after=since, statuses=["PENDING_SCHEDULE"]
        )
        count = len([job async for job in waiting])
        print(f"{seller}: {count} jobs waiting for an appointment")


async def main(refresh_tokens: dict[str, str]) -> None:
    # The session is yours: you close it, after the clients are done.
    async with aiohttp.ClientSession() as session, asyncio.TaskGroup() as tasks:
        for seller, refresh_token in refresh_tokens.items():
            tasks.create_task(
                report_waiting(seller, client_for(refresh_token, session))
            )


if __name__ == "__main__":
    # Each seller's refresh token, as you stored it when they authorised your app:
    # SPAPI_REFRESH_TOKENS='{"acme": "Atzr|...", "globex": "Atzr|..."}'
    asyncio.run(main(json.loads(os.environ["SPAPI_REFRESH_TOKENS"])))
