"""A FastAPI backend with one ServicesClient for the whole application.

GET /jobs/{job_id} answers with the service job as the API's JSON.
Needs the web extra (FastAPI, uvicorn); serve it with: uvicorn fastapi_app:app
"""

from contextlib import asynccontextmanager

from fastapi import FastAPI, HTTPException, Request, Response

from spapi_services import NotFoundError, ServicesClient


@asynccontextmanager
async def lifespan(app: FastAPI):
    # Every setting from the SPAPI_* variables (the emulator's export lines, or yours).
    async with ServicesClient() as client:
        app.state.services = client
        yield
    # Leaving the block at shutdown closed the client and its connections.


app = FastAPI(lifespan=lifespan)


@app.get("/jobs/{job_id}")
async def get_job(job_id: str, request: Request) -> Response:
    client: ServicesClient = request.app.state.services
    try:
        job = await client.service_jobs.get(job_id)
    except NotFoundError:
        raise HTTPException(
            status_code=404, detail=f"no service job {job_id}"
        ) from None
    # The job as Amazon's API writes it (camelCase keys, times in UTC, amounts exact).
    return Response(job.to_api_json(), media_type="application/json")
