"""Memory while paging: 100,000 jobs (5,000 pages of 20) through ``service_jobs.list``.

The lean server (its own process) synthesises each page from its token, so the server
holds nothing per page; the client iterates ``async for job in client.service_jobs.list(...)``
with limits off and keeps nothing.  The client reads its own peak resident set (VmHWM in
``/proc/self/status``) after 10 pages (the baseline, every code path warm), after 1,000
and after 5,000.  Flat means the growth from 1,000 to 5,000 pages is about zero: a
paginator that kept pages or tokens would grow with every page.
``python benchmarks/bench_memory.py [--quick]``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import lean_server, run_client, spread, table

JOBS_PER_PAGE = 20


def run(quick: bool = False) -> dict[str, Any]:
    """Iterate every page a few times; returns peak RSS at each checkpoint and the growth."""
    pages, reps = (500, 1) if quick else (5000, 3)
    marks = [10, pages // 5, pages]
    runs = []
    with lean_server(pages=pages) as srv:
        for _ in range(reps):
            outcome = run_client("ours", "pages", srv, checkpoints=marks, timeout=900)
            if "failed" in outcome:
                raise RuntimeError(f"memory: {outcome['failed']}")
            runs.append(outcome)
    first, middle, last = (str(m) for m in marks)
    return {
        "pages": pages,
        "jobs": runs[0]["jobs"],
        "marks": marks,
        "reps": reps,
        "peak_rss_mib": {
            m: spread([r["peak_rss_kib"][m] / 1024 for r in runs]) for m in (first, middle, last)
        },
        "growth_warm_to_middle_mib": spread(
            [(r["peak_rss_kib"][middle] - r["peak_rss_kib"][first]) / 1024 for r in runs]
        ),
        "growth_middle_to_last_mib": spread(
            [(r["peak_rss_kib"][last] - r["peak_rss_kib"][middle]) / 1024 for r in runs]
        ),
        "pages_per_s": spread([r["calls_per_s"] for r in runs]),
        "cpu_ms_per_page": spread([r["cpu_ms_per_call"] for r in runs]),
    }


def markdown(r: dict[str, Any]) -> str:
    """The figures as markdown."""
    first, middle, last = r["marks"]
    peak = r["peak_rss_mib"]
    growth = r["growth_middle_to_last_mib"]["median"]
    lines = [
        f"{r['jobs']:,} jobs in {r['pages']:,} pages of {JOBS_PER_PAGE}, limits off, lean server "
        f"in its own process; {r['reps']} run(s), median.",
        "",
        table(
            ["after page", "peak RSS (VmHWM), MiB"],
            [[f"{m:,}", f"{peak[str(m)]['median']:.1f}"] for m in (first, middle, last)],
        ),
        "",
        f"**Growth from page {middle:,} to page {last:,}: {growth:+.2f} MiB** "
        f"(from page {first} to {middle:,}: "
        f"{r['growth_warm_to_middle_mib']['median']:+.2f} MiB); "
        f"{'flat' if abs(growth) < 1.0 else '**not flat**'}. "
        f"Context: {r['pages_per_s']['median']:.0f} pages/s, "
        f"{r['cpu_ms_per_page']['median']:.2f} ms CPU per page.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    print(markdown(run(parser.parse_args().quick)))


if __name__ == "__main__":
    main()
