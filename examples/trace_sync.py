"""Sync the last 90 days of jobs and print the trace on the console.

Needs the otel extra and the OpenTelemetry SDK; from a clone of the repository:

    pip install -e ".[otel]" opentelemetry-sdk
"""

import asyncio
from datetime import UTC, datetime, timedelta

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

from spapi_services import ServicesClient
from spapi_services.sync import SqliteSink, sync_jobs

provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
trace.set_tracer_provider(provider)
tracer = trace.get_tracer("nightly-sync")


async def main() -> None:
    async with ServicesClient() as client:
        with tracer.start_as_current_span("nightly sync"):
            report = await sync_jobs(
                client,
                SqliteSink("service_jobs.sqlite"),
                since=datetime.now(UTC) - timedelta(days=90),
            )
    print(f"{report.jobs} jobs in {report.requests} requests")


if __name__ == "__main__":
    asyncio.run(main())
