"""How long decoding a getServiceJobs page takes, per job.

Builds one realistic page of 20 fully populated service jobs (every field of ``ServiceJob``
and of the objects inside it set) as JSON bytes, then times:

* ``json.loads`` alone, the floor;
* ``_serde.loads`` (``json.loads`` keeping fractions as ``Decimal``) plus
  ``structure(payload, JobListing)``, which is what the SDK does with every page.

Each figure is the median of several repetitions, in microseconds per job, with the spread
(fastest and slowest repetition).  Run it as ``python benchmarks/bench_parse.py``; a nox
session can call :func:`run` and collect the returned figures.  Timing never runs as a test.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from spapi_services import _serde
from spapi_services.models import JobListing

JOBS_PER_PAGE = 20
JSON_PATH = "json.loads"
SDK_PATH = "_serde.loads + structure(JobListing)"
REPETITIONS = 9
TARGET_SECONDS = 0.2  # per repetition


def _job(n: int) -> dict[str, Any]:
    """One service job with every field the model knows set, as the API sends it."""
    job_id = f"{n:04d}-9cb9bc29-3d7d-5e49-5709-efb693d34468"
    technicians = [
        {"technicianId": f"AXDKE{n}TECH1", "name": "Jane Ortiz"},
        {"technicianId": f"AXDKE{n}TECH2", "name": "Sam Lee"},
    ]
    appointment_time = {"startTime": "2026-03-02T15:00:00.000Z", "durationInMinutes": 120}
    return {
        "createTime": "2026-02-27T09:14:53.952Z",
        "serviceJobId": job_id,
        "serviceJobStatus": "COMPLETED",
        "scopeOfWork": {
            "asin": "B07BB1RGT5",
            "title": "Wall-mounted TV installation, up to 65 inches",
            "quantity": 1,
            "requiredSkills": ["TV_MOUNTING", "ELECTRICAL_BASIC"],
        },
        "seller": {"sellerId": "A2SELLER0001"},
        "serviceJobProvider": {"serviceJobProviderId": "A3PROVIDER02"},
        "preferredAppointmentTimes": [
            {"startTime": "2026-03-02T15:00:00Z", "durationInMinutes": 120},
            {"startTime": "2026-03-03T09:00:00Z", "durationInMinutes": 120},
        ],
        "appointments": [
            {
                "appointmentId": f"{job_id}_00b9d5f2-839d-c13e-b8cd-dae1c3995b2a",
                "appointmentStatus": "CANCELLED",
                "appointmentTime": {
                    "startTime": "2026-03-01T15:00:00.000Z",
                    "durationInMinutes": 120,
                },
                "assignedTechnicians": technicians[:1],
            },
            {
                "appointmentId": f"{job_id}_new_00b9d5f2-839d-c13e-b8cd-dae1c3995b2b",
                "appointmentStatus": "COMPLETED",
                "appointmentTime": appointment_time,
                "assignedTechnicians": technicians,
                "rescheduledAppointmentId": f"{job_id}_00b9d5f2-839d-c13e-b8cd-dae1c3995b2a",
                "poa": {
                    "appointmentTime": appointment_time,
                    "technicians": technicians,
                    "uploadingTechnician": f"AXDKE{n}TECH1",
                    "uploadTime": "2026-03-02T17:05:12.114Z",
                    "poaType": "CUSTOMER_SIGNATURE",
                },
            },
        ],
        "serviceOrderId": f"112-{n:07d}-4463201",
        "productOrderIds": [f"113-{n:07d}-1111111", f"114-{n:07d}-2222222"],
        "trackingIds": ["TBA301234567890", "1Z999AA10123456784"],
        "marketplaceId": "ATVPDKIKX0DER",
        "storeId": "53694163-6dc8-4f80-b6b1-ec47b7b9747e",
        "buyer": {
            "buyerId": f"A1BUYER{n:05d}",
            "name": "Alex Example",
            "phone": "+1-206-555-0100",
            "isPrimeMember": True,
        },
        "associatedItems": [
            {
                "asin": "B08TVSAMPLE",
                "title": "65-inch 4K television",
                "quantity": 1,
                "orderId": f"113-{n:07d}-1111111",
                "itemStatus": "DELIVERED",
                "brandName": "ExampleBrand",
                "itemDelivery": {
                    "estimatedDeliveryDate": "2026-02-28T20:00:00Z",
                    "itemDeliveryPromise": {
                        "startTime": "2026-02-28T14:00:00Z",
                        "endTime": "2026-02-28T22:00:00Z",
                    },
                },
                "linkedAssets": [
                    {
                        "assetType": "VEHICLE",
                        "assetName": "Delivery van",
                        "additionalAttributes": {
                            "make": "Ford",
                            "model": "Transit",
                            "year": "2024",
                        },
                    }
                ],
            },
            {
                "asin": "B08MOUNT01",
                "title": "Full-motion wall mount",
                "quantity": 1,
                "orderId": f"114-{n:07d}-2222222",
                "itemStatus": "SHIPPED",
                "brandName": "MountCo",
                "itemDelivery": {
                    "estimatedDeliveryDate": "2026-03-01T20:00:00Z",
                    "itemDeliveryPromise": {
                        "startTime": "2026-03-01T14:00:00Z",
                        "endTime": "2026-03-01T22:00:00Z",
                    },
                },
                "linkedAssets": [
                    {
                        "assetType": "BOX",
                        "assetName": "Carton 1",
                        "additionalAttributes": {"w": "3"},
                    },
                    {
                        "assetType": "BOX",
                        "assetName": "Carton 2",
                        "additionalAttributes": {"w": "2"},
                    },
                ],
            },
            {
                "asin": "B08CABLE22",
                "title": "HDMI cable, 2 m",
                "quantity": 2,
                "orderId": f"114-{n:07d}-2222222",
                "itemStatus": "ACTIVE",
                "brandName": "CableWorks",
                "itemDelivery": {
                    "estimatedDeliveryDate": "2026-03-01T20:00:00Z",
                    "itemDeliveryPromise": {
                        "startTime": "2026-03-01T14:00:00Z",
                        "endTime": "2026-03-01T22:00:00Z",
                    },
                },
                "linkedAssets": [],
            },
        ],
        "serviceLocation": {
            "serviceLocationType": "IN_HOME",
            "address": {
                "name": "Alex Example",
                "addressLine1": "410 Terry Ave N",
                "addressLine2": "Apt 5",
                "addressLine3": "Building B",
                "city": "Seattle",
                "county": "King",
                "district": "South Lake Union",
                "stateOrRegion": "WA",
                "postalCode": "98109",
                "countryCode": "US",
                "phone": "+1-206-555-0100",
            },
        },
        "payments": [
            {"amount": {"value": 149.99, "currency": "USD"}, "instrument": "CREDIT_CARD"},
            {"amount": {"value": 20.0, "currency": "USD"}, "instrument": "GIFT_CARD"},
        ],
    }


def page_bytes(jobs: int = JOBS_PER_PAGE) -> bytes:
    """A getServiceJobs response body with ``jobs`` fully populated jobs."""
    body = {
        "payload": {
            "totalResultSize": 347,
            "nextPageToken": "bWVyY2hhbnRTa2xrdG9yZUlkYmNkY2QyYWQtNTg4My00ZTQ4LWIxMTQ=",
            "previousPageToken": "cHJldmlvdXNQYWdlVG9rZW4tMDAwMQ==",
            "jobs": [_job(n) for n in range(jobs)],
        }
    }
    return json.dumps(body).encode()


def _measure(paths: dict[str, Callable[[], object]], jobs: int) -> dict[str, list[float]]:
    """µs per job of each path, one sample per repetition, the paths interleaved.

    Interleaving keeps a slow spell of a shared machine from landing on one path only.
    """
    loops = {}
    for name, fn in paths.items():
        fn()  # warm up: cattrs generates its code on first use
        start = time.perf_counter()
        fn()
        loops[name] = max(1, int(TARGET_SECONDS / max(time.perf_counter() - start, 1e-9)))
    samples: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(REPETITIONS):
        for name, fn in paths.items():
            start = time.perf_counter()
            for _ in range(loops[name]):
                fn()
            samples[name].append((time.perf_counter() - start) / loops[name] / jobs * 1e6)
    return samples


def _summary(samples: list[float]) -> dict[str, float]:
    return {"median": statistics.median(samples), "min": min(samples), "max": max(samples)}


def run() -> dict[str, Any]:
    """Time both paths on one page; returns the figures (µs per job) and the ratio."""
    body = page_bytes()

    def json_only() -> object:
        return json.loads(body)

    def sdk_path() -> object:
        return _serde.structure(_serde.loads(body)["payload"], JobListing)

    listing = sdk_path()
    if not isinstance(listing, JobListing) or len(listing.jobs or ()) != JOBS_PER_PAGE:
        raise RuntimeError("the page did not decode into 20 jobs")
    samples = _measure({JSON_PATH: json_only, SDK_PATH: sdk_path}, JOBS_PER_PAGE)
    ratios = [sdk / floor for sdk, floor in zip(samples[SDK_PATH], samples[JSON_PATH], strict=True)]
    return {
        "jobs_per_page": JOBS_PER_PAGE,
        "page_bytes": len(body),
        "repetitions": REPETITIONS,
        "python": sys.version.split()[0],
        "us_per_job": {name: _summary(values) for name, values in samples.items()},
        "ratio_to_json_loads": statistics.median(ratios),
        "pydantic": "not installed: skipped",
    }


def markdown(results: dict[str, Any]) -> str:
    """The figures as a markdown table."""
    lines = [
        f"getServiceJobs page: {results['jobs_per_page']} fully populated jobs, "
        f"{results['page_bytes']:,} bytes; Python {results['python']}; "
        f"median of {results['repetitions']} repetitions.",
        "",
        "| path | µs per job (median) | fastest | slowest |",
        "|---|---|---|---|",
    ]
    for name, fig in results["us_per_job"].items():
        lines.append(f"| `{name}` | {fig['median']:.1f} | {fig['min']:.1f} | {fig['max']:.1f} |")
    lines.append("")
    lines.append(
        f"Structure path / json.loads: {results['ratio_to_json_loads']:.1f}x "
        "(median of the per-repetition ratios)"
    )
    lines.append(f"pydantic: {results['pydantic']}")
    return "\n".join(lines)


def main() -> None:
    try:
        import pydantic  # noqa: F401
    except ImportError:
        pass
    else:  # pragma: no cover - pydantic is not a dependency; comparing to it is out of scope here
        print("pydantic is importable, but this script does not add or time it.")
    print(markdown(run()))


if __name__ == "__main__":
    main()
