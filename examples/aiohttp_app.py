"""An aiohttp.web backend with one ServicesClient for the whole application.

GET /jobs/{job_id} answers with the service job as the API's JSON.
Run it with: python aiohttp_app.py (serves http://127.0.0.1:8000)
"""

from collections.abc import AsyncIterator

from aiohttp import web

from spapi_services import NotFoundError, ServicesClient

SERVICES = web.AppKey("services", ServicesClient)


async def services_client(app: web.Application) -> AsyncIterator[None]:
    # Every setting from the SPAPI_* variables (the emulator's export lines, or yours).
    async with ServicesClient() as client:
        app[SERVICES] = client
        yield


async def get_job(request: web.Request) -> web.Response:
    client = request.app[SERVICES]
    job_id = request.match_info["job_id"]
    try:
        job = await client.service_jobs.get(job_id)
    except NotFoundError:
        raise web.HTTPNotFound(text=f"no service job {job_id}") from None
    # The job as Amazon's API writes it (camelCase keys, times in UTC, amounts exact).
    return web.json_response(text=job.to_api_json())


def make_app() -> web.Application:
    app = web.Application()
    app.cleanup_ctx.append(services_client)
    app.router.add_get("/jobs/{job_id}", get_job)
    return app


if __name__ == "__main__":
    web.run_app(make_app(), host="127.0.0.1", port=8000)
