"""Parsing against pydantic v2: the same page bytes through amzn-selling-partner's models.

DESIGN.md sets the parse target at or under 1.5x pydantic v2 on the same bytes.  This
takes ``bench_parse.page_bytes()`` (20 fully populated jobs) and times, in a fresh
process, ``json.loads``, our path (``_serde.loads`` + ``structure(..., JobListing)``) and
amzn-selling-partner's generated pydantic v2 model
(``GetServiceJobsResponse.model_validate_json``), interleaved, median of 9 repetitions,
µs per job.  Skipped when amzn-selling-partner is not installed.
``python benchmarks/bench_parse_pydantic.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from _common import fmt_spread, installed, spread, table  # noqa: E402

TARGET = 1.5
REPETITIONS = 9
JOBS = 20


def _measure() -> dict[str, Any]:
    # The pydantic models are built (and their forward references resolved) before our
    # models are imported: a same-named class in scope would otherwise be picked up.
    import bench_parse
    from amzn_selling_partner.sdk.models import services_v1

    body = bench_parse.page_bytes()
    model = services_v1.GetServiceJobsResponse
    if len(model.model_validate_json(body).payload.jobs) != JOBS:
        raise RuntimeError("pydantic did not decode 20 jobs")

    import spapi_services.models as ours_models
    from spapi_services import _serde

    paths: dict[str, Callable[[], object]] = {
        "json.loads": lambda: json.loads(body),
        "spapi-services (_serde.loads + structure)": lambda: _serde.structure(
            _serde.loads(body)["payload"], ours_models.JobListing
        ),
        "pydantic v2 (amzn-selling-partner, model_validate_json)": lambda: (
            model.model_validate_json(body)
        ),
    }
    for fn in paths.values():
        fn()
    loops = 50
    samples: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(REPETITIONS):
        for name, fn in paths.items():
            start = time.perf_counter()
            for _ in range(loops):
                fn()
            samples[name].append((time.perf_counter() - start) / loops / JOBS * 1e6)
    ours = samples["spapi-services (_serde.loads + structure)"]
    theirs = samples["pydantic v2 (amzn-selling-partner, model_validate_json)"]
    return {
        "page_bytes": len(body),
        "us_per_job": {name: spread(values) for name, values in samples.items()},
        "ratio_to_pydantic": spread([o / p for o, p in zip(ours, theirs, strict=True)]),
        "target": TARGET,
    }


def run() -> dict[str, Any]:
    """Measure in a fresh process; ``{"skipped": ...}`` without amzn-selling-partner."""
    if not installed("asp"):
        return {"skipped": "amzn-selling-partner (pydantic v2 models) is not installed"}
    done = subprocess.run(
        [sys.executable, __file__, "--child"], capture_output=True, text=True, check=True
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def markdown(r: dict[str, Any]) -> str:
    """The figures as markdown."""
    if "skipped" in r:
        return f"Skipped: {r['skipped']}."
    ratio = r["ratio_to_pydantic"]
    verdict = "met" if ratio["median"] <= r["target"] else "**missed**"
    return "\n".join(
        [
            f"bench_parse's page ({JOBS} jobs, {r['page_bytes']:,} bytes), the three paths "
            f"interleaved, {REPETITIONS} repetitions, median (min–max).",
            "",
            table(
                ["path", "µs per job"],
                [[f"`{k}`", fmt_spread(v, 1)] for k, v in r["us_per_job"].items()],
            ),
            "",
            f"**Ours / pydantic v2: {fmt_spread(ratio, 2, 'x')}** (DESIGN.md target "
            f"≤ {r['target']}x: {verdict}).",
        ]
    )


def main() -> None:
    if "--child" in sys.argv:
        print(json.dumps(_measure()))
        return
    print(markdown(run()))


if __name__ == "__main__":
    main()
