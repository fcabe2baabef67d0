"""What tracing and metrics cost per call.

spapi-services three ways: its OpenTelemetry instrumentation off (``instrument=False``);
on, with OpenTelemetry's API installed and no SDK configured (the global providers, which
do nothing: what every user with the API installed pays); and on, with the SDK recording
every span (``SimpleSpanProcessor`` into an ``InMemorySpanExporter``) and every metric
(``InMemoryMetricReader``).  The method is bench_overhead's: getServiceJobByServiceJobId
against the lean server in another process, no latency, no limits, 50 in flight, 5,000
timed calls after 200 untimed ones, each variant in a fresh process, the three
alternating from one repetition to the next.  The figure is client CPU seconds per call
(``time.process_time()`` in the client's process, every thread of it) and each variant
over "off" within a repetition.  The target: no-op at most 3 % over off.

On a shared machine the socket runs scatter by more than the cost measured, so the same
three clients also run in one process against an in-memory sender (no sockets: the
pipeline alone), in interleaved rounds of 500 calls: the microseconds each variant adds
to a call, read against the socket run's CPU per call.

``python benchmarks/bench_otel.py [--quick]``
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import fmt_spread, lean_server, spread, table

#: The most the no-op instrumentation may add to a call's CPU, as a ratio to "off".
TARGET = 1.03
VARIANTS = ("off", "noop", "sdk")
_SHOWN = {
    "off": "instrumentation off (instrument=False)",
    "noop": "on, API only (no-op global providers)",
    "sdk": "on, SDK in memory (every span and metric kept)",
}


def run(quick: bool = False) -> dict[str, Any]:
    """Measure; returns CPU ms per call by variant, and the ratios to "off"."""
    n, reps, warmup = (500, 2, 50) if quick else (5000, 5, 200)
    runs: dict[str, list[dict[str, Any]]] = {v: [] for v in VARIANTS}
    with lean_server() as server:
        for rep in range(reps):
            # Each variant goes first, second and last in turn.
            order = VARIANTS[rep % 3 :] + VARIANTS[: rep % 3]
            for variant in order:
                outcome = _child(variant, server.url, n=n, warmup=warmup)
                runs[variant].append(outcome)
    ratios = {
        v: [r["cpu_s"] / o["cpu_s"] for r, o in zip(runs[v], runs["off"], strict=True)]
        for v in VARIANTS
        if v != "off"
    }
    pipeline = _child("pipeline", "", n=2000 if quick else 20000, warmup=warmup)
    off_ms = statistics.median(r["cpu_ms_per_call"] for r in runs["off"])
    added = {v: pipeline["us_per_call"][v] - pipeline["us_per_call"]["off"] for v in VARIANTS}
    return {
        "pipeline_us_per_call": pipeline["us_per_call"],
        "added_us_per_call": {v: added[v] for v in VARIANTS if v != "off"},
        "added_share_of_a_call": {v: added[v] / 1e3 / off_ms for v in VARIANTS if v != "off"},
        "n": n,
        "reps": reps,
        "concurrency": 50,
        "cpu_ms_per_call": {
            v: spread([r["cpu_ms_per_call"] for r in rs]) for v, rs in runs.items()
        },
        "calls_per_s": {v: spread([r["calls_per_s"] for r in rs]) for v, rs in runs.items()},
        "ratio_to_off": {v: spread(rs) for v, rs in ratios.items()},
        "spans_kept": runs["sdk"][0]["spans"],
        "pipeline_n": pipeline["n"],
        "target": TARGET,
    }


def _child(variant: str, base_url: str, *, n: int, warmup: int) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", variant, "--base-url", base_url or "-"]
    command += ["--n", str(n), "--warmup", str(warmup)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    for line in reversed(done.stdout.splitlines()):
        if line.startswith("RESULT "):
            outcome: dict[str, Any] = json.loads(line[len("RESULT ") :])
            return outcome
    tail = (done.stderr or done.stdout).strip().splitlines()[-6:]
    raise RuntimeError(f"otel: the {variant} client failed: " + " | ".join(tail))


def markdown(r: dict[str, Any]) -> str:
    """The figures as markdown."""
    cpu, rps, ratio = r["cpu_ms_per_call"], r["calls_per_s"], r["ratio_to_off"]
    added, share = r["added_us_per_call"], r["added_share_of_a_call"]
    # The verdict goes by the precise figure: the pipeline's added CPU over a socket call's.
    verdict = "met" if 1 + share["noop"] <= r["target"] else "**missed**"
    rows = []
    for variant in VARIANTS:
        over = "1 (the base)" if variant == "off" else fmt_spread(ratio[variant], 3, "x")
        rows.append(
            [_SHOWN[variant], fmt_spread(cpu[variant], 3), over, fmt_spread(rps[variant], 0)]
        )
    return "\n".join(
        [
            f"{r['n']:,} getServiceJobByServiceJobId calls against the lean server, "
            f"{r['concurrency']} in flight, no latency, limits off; {r['reps']} repetitions, "
            "the variants alternating; median (min–max).",
            "",
            table(["instrumentation", "client CPU ms / call", "/ off", "calls / s"], rows),
            "",
            f"The pipeline alone (an in-memory sender, {r['pipeline_n']:,} calls per variant "
            "in interleaved rounds): "
            + ", ".join(f"{_SHOWN[v]} {us:.1f} µs" for v, us in r["pipeline_us_per_call"].items())
            + " per call.",
            "",
            f"**No-op instrumentation adds {added['noop']:.1f} µs per call: "
            f"{share['noop']:.1%} of a call's CPU over a socket** "
            f"(target ≤ {r['target'] - 1:.0%}: {verdict}; over sockets the ratio was "
            f"{fmt_spread(ratio['noop'], 3, 'x')}).  With the SDK "
            f"keeping every span and metric in memory: {added['sdk']:.0f} µs per call, "
            f"{share['sdk']:.0%} ({fmt_spread(ratio['sdk'], 2, 'x')} over sockets; "
            f"{r['spans_kept']:,} spans kept in one run).",
        ]
    )


# --- one client, in a process of its own ------------------------------------------------


def _options(variant: str) -> tuple[dict[str, Any], Any]:
    """The client's keyword arguments for a variant, and its span exporter (sdk only)."""
    options: dict[str, Any] = {}
    exporter: Any = None
    if variant == "off":
        options["instrument"] = False
    elif variant == "sdk":
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        exporter = InMemorySpanExporter()
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
        options["tracer_provider"] = tracer_provider
        options["meter_provider"] = MeterProvider(metric_readers=[InMemoryMetricReader()])
    return options, exporter


def _client(variant: str, base_url: str, **extra: Any) -> tuple[Any, Any]:
    from spapi_services import LwaCredentials, ServicesClient

    options, exporter = _options(variant)
    client = ServicesClient(
        LwaCredentials("amzn1.application-oa2-client.bench", "bench-secret", "Atzr|bench"),
        endpoint=base_url,
        token_url=base_url + "/auth/o2/token",
        marketplace_id="ATVPDKIKX0DER",
        rate_limits=False,
        **options,
        **extra,
    )
    if (client._core.otel is None) != (variant == "off"):
        raise RuntimeError(f"{variant}: the instrumentation is not what the variant says")
    return client, exporter


async def _measure(variant: str, base_url: str, n: int, warmup: int) -> dict[str, Any]:
    client, exporter = _client(variant, base_url)
    failed = 0
    async with client:
        for i in range(warmup):
            await client.service_jobs.get(f"job-{i}")
        counter = itertools.count()

        async def worker() -> None:
            nonlocal failed
            for i in counter:
                if i >= n:
                    return
                try:
                    await client.service_jobs.get(f"job-{i}")
                except Exception:
                    failed += 1

        wall, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(worker() for _ in range(50)))
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return {
        "variant": variant,
        "n": n,
        "failed": failed,
        "cpu_s": cpu,
        "cpu_ms_per_call": cpu / n * 1e3,
        "calls_per_s": n / wall,
        "spans": len(exporter.get_finished_spans()) if exporter is not None else 0,
    }


async def _pipeline(n: int, warmup: int) -> dict[str, Any]:
    """CPU per call of each variant through an in-memory sender, in interleaved rounds."""
    from multidict import CIMultiDict, CIMultiDictProxy

    from spapi_services import RawResponse

    headers = CIMultiDictProxy(CIMultiDict({"x-amzn-RequestId": "r-1"}))
    token = RawResponse(200, headers, b'{"access_token": "Atza|bench", "expires_in": 3600}')
    job = RawResponse(200, headers, b'{"payload": {"serviceJobId": "job-1"}}')

    async def sender(method: str, url: Any, *_: Any) -> RawResponse:
        return token if url.path.endswith("/token") else job

    clients = {v: _client(v, "https://api.bench", sender=sender)[0] for v in VARIANTS}
    spent = dict.fromkeys(VARIANTS, 0.0)
    for client in clients.values():
        await client.__aenter__()
        for _ in range(warmup):
            await client.service_jobs.get("job-1")
    for _ in range(n // 500):
        for variant, client in clients.items():
            started = time.process_time()
            for _ in range(500):
                await client.service_jobs.get("job-1")
            spent[variant] += time.process_time() - started
    for client in clients.values():
        await client.aclose()
    rounds = n // 500 * 500
    return {"n": rounds, "us_per_call": {v: s / rounds * 1e6 for v, s in spent.items()}}


def _child_main(args: argparse.Namespace) -> None:
    import _guard

    _guard.install()
    if args.child == "pipeline":
        print("RESULT " + json.dumps(asyncio.run(_pipeline(args.n, args.warmup))))
        return
    outcome = asyncio.run(_measure(args.child, args.base_url, args.n, args.warmup))
    if outcome["failed"]:
        raise SystemExit(f"{outcome['failed']} calls failed")
    print("RESULT " + json.dumps(outcome))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--child", choices=(*VARIANTS, "pipeline"), help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, default=5000, help=argparse.SUPPRESS)
    parser.add_argument("--warmup", type=int, default=200, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child_main(args)
    else:
        print(markdown(run(args.quick)))


if __name__ == "__main__":
    main()
