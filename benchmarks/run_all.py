"""Run every benchmark and rewrite ``benchmarks/RESULTS.md`` (and ``bound.png``).

``python benchmarks/run_all.py [--quick] [--only overhead,peers,...] [--server lean]``

Sections, in order: start-up, the pytest plugin's share of a pytest start, parsing
(``bench_parse.py``, then against pydantic v2), overhead, against the peers,
at the bound (with the chart), paging at the plan, bulk sync (``bench_sync.py``), memory,
one seller's plan spent by several processes (``bench_processes.py``), what pacing costs
(``bench_pacing.py``), what tracing and metrics cost (``bench_otel.py``), the fleet of
sellers on 1, 2 and 4 worker processes (``bench_fleet.py``), a sync while jobs move
under keyset and offset page tokens (``bench_page_tokens.py``), the change feed
(``bench_feed.py``), webhooks from the fleet (``bench_webhooks.py``), and the
emulator's own speed (``bench_emulator.py``).  The modules
written by other people are imported from this folder and their ``run()`` called as they
are; a section that fails is reported as failed and the others still run.  ``--quick``
is a smoke run (small counts, one repetition): its figures are not the ones to quote, so
it writes ``RESULTS.quick.md`` into a temporary folder unless ``--out`` says otherwise.
The raw figures go to ``results.json`` (or ``results.quick.json``) beside the markdown.
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import json
import os
import platform
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import _common  # noqa: E402  (installs the loopback guard)
import _headline  # noqa: E402
import bench_bound  # noqa: E402
import bench_feed  # noqa: E402
import bench_fleet  # noqa: E402
import bench_memory  # noqa: E402
import bench_otel  # noqa: E402
import bench_overhead  # noqa: E402
import bench_pacing  # noqa: E402
import bench_pages  # noqa: E402
import bench_parse_pydantic  # noqa: E402
import bench_peers  # noqa: E402
import bench_plugin_startup  # noqa: E402
import bench_processes  # noqa: E402
import bench_startup  # noqa: E402
import bench_webhooks  # noqa: E402

SECTIONS = (
    "startup",
    "plugin",
    "parse",
    "pydantic",
    "overhead",
    "peers",
    "bound",
    "pages",
    "sync",
    "memory",
    "processes",
    "pacing",
    "otel",
    "fleet",
    "tokens",
    "feed",
    "webhooks",
    "emulator",
)
FOREIGN = {"parse": "bench_parse.py", "sync": "bench_sync.py", "emulator": "bench_emulator.py"}
FOREIGN["tokens"] = "bench_page_tokens.py"


def _load(filename: str) -> ModuleType | None:
    path = HERE / filename
    if not path.exists():
        return None
    spec = importlib.util.spec_from_file_location(path.stem, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


def _call_run(module: ModuleType, quick: bool) -> dict[str, Any]:
    run: Callable[..., dict[str, Any]] = module.run
    params = inspect.signature(run).parameters
    kwargs: dict[str, Any] = {}
    if "quick" in params:
        kwargs["quick"] = quick
    elif quick and module.__name__ == "bench_emulator":
        kwargs = {"requests": 1000, "runs": 1}
    return run(**kwargs)


def _generic_markdown(results: Any, depth: int = 0) -> str:
    """A nested dict of figures as a bullet list (for modules without ``markdown()``)."""
    lines = []
    pad = "  " * depth
    if isinstance(results, dict):
        for key, value in results.items():
            if isinstance(value, dict | list) and value and depth < 3:
                lines.append(f"{pad}- {key}:")
                lines.append(_generic_markdown(value, depth + 1))
            else:
                shown = f"{value:.4g}" if isinstance(value, float) else value
                lines.append(f"{pad}- {key}: {shown}")
    elif isinstance(results, list):
        lines += [f"{pad}- {item}" for item in results[:20]]
    return "\n".join(lines)


def run_sections(names: list[str], quick: bool, server: str) -> dict[str, Any]:
    """Run the named sections; returns {name: {"results", "markdown", "seconds"} or "error"}."""
    ours: dict[str, tuple[Callable[[], dict[str, Any]], Callable[[dict[str, Any]], str]]] = {
        "startup": (lambda: bench_startup.run(quick), bench_startup.markdown),
        "plugin": (lambda: bench_plugin_startup.run(quick), bench_plugin_startup.markdown),
        "pydantic": (bench_parse_pydantic.run, bench_parse_pydantic.markdown),
        "overhead": (lambda: bench_overhead.run(quick), bench_overhead.markdown),
        "peers": (lambda: bench_peers.run(quick, server), bench_peers.markdown),
        "bound": (lambda: bench_bound.run(quick, server), bench_bound.markdown),
        "pages": (lambda: bench_pages.run(quick, server), bench_pages.markdown),
        "memory": (lambda: bench_memory.run(quick), bench_memory.markdown),
        "processes": (lambda: bench_processes.run(quick), bench_processes.markdown),
        "pacing": (lambda: bench_pacing.run(quick), bench_pacing.markdown),
        "otel": (lambda: bench_otel.run(quick), bench_otel.markdown),
        "fleet": (lambda: bench_fleet.run(quick), bench_fleet.markdown),
        "feed": (lambda: bench_feed.run(quick), bench_feed.markdown),
        "webhooks": (lambda: bench_webhooks.run(quick), bench_webhooks.markdown),
    }
    out: dict[str, Any] = {}
    for name in names:
        started = time.monotonic()
        print(f"== {name} ...", flush=True)
        try:
            if name in FOREIGN:
                module = _load(FOREIGN[name])
                if module is None:
                    out[name] = {"missing": f"benchmarks/{FOREIGN[name]} is not there yet"}
                    continue
                results = _call_run(module, quick)
                render = getattr(module, "markdown", _generic_markdown)
            else:
                measure, render = ours[name]
                results = measure()
            out[name] = {"results": results, "markdown": render(results)}
        except Exception:
            out[name] = {"error": traceback.format_exc(limit=6)}
        out[name]["seconds"] = time.monotonic() - started
        print(f"   {name}: {out[name]['seconds']:.0f} s", flush=True)
    return out


# --- the report ----------------------------------------------------------------------


def _machine() -> str:
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    versions = ", ".join(
        f"{_common.CLIENTS[c][1]} {_common.version(c)}" for c in ("ours", "raw", *_common.PEERS)
    )
    return (
        f"{os.cpu_count()} cores ({cpu}), {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}; {versions}"
    )


def _get(sections: dict[str, Any], *path: str) -> Any:
    node: Any = sections
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def headline(sections: dict[str, Any], verdict: _headline.Verdicts) -> list[list[str]]:
    """One row per figure the issue asks for: the figure, the target, met or not.

    ``verdict`` writes each verdict cell (a miss links to why) and notes the misses.
    """
    rows: list[list[str]] = []

    ratio = _get(sections, "overhead", "results", "ratio")
    if ratio:
        rows.append(
            [
                "1. overhead: CPU per call, ours / raw aiohttp + json",
                _common.fmt_spread(ratio, 2, "x"),
                "≤ 1.3x",
                verdict(ratio["median"] <= bench_overhead.TARGET, "overhead"),
            ]
        )
    peers = _get(sections, "peers", "results")
    if peers and peers.get("versus_best_peer"):
        v = peers["versus_best_peer"]
        ours = peers["clients"]["ours"]
        rows.append(
            [
                "2. vs peers (20 ms latency): calls/s, CPU ms/call",
                f"{ours['calls_per_s']['median']:.0f}/s, {ours['cpu_ms_per_call']['median']:.2f} ms"
                f" = {v['rps_ratio']:.1f}x the fastest peer's rate, "
                f"{v['cpu_ratio']:.2f}x the leanest peer's CPU",
                "ahead of every peer",
                verdict(v["rps_ratio"] > 1 and v["cpu_ratio"] < 1, "peers"),
            ]
        )
    bound = _get(sections, "bound", "results")
    if bound and bound.get("ours"):
        o = bound["ours"]
        peer_bits = [
            f"{_common.label(x['client'])} {x['elapsed_over_bound']:.2f}x / {x['throttled']} 429s"
            for x in bound["runs"]
            if x["client"] != "ours" and "failed" not in x
        ]
        ok = (
            o["elapsed_over_bound"]["median"] <= bench_bound.TARGET
            and o["throttled"]["max"] == 0
            and o["failed_calls"] == 0
        )
        rows.append(
            [
                f"3. at the bound ({bound['n']} calls): elapsed / bound, 429s",
                f"ours {_common.fmt_spread(o['elapsed_over_bound'], 3, 'x')}, "
                f"{o['throttled']['max']:.0f} 429s at most per run; " + "; ".join(peer_bits),
                "≤ 1.03x, zero 429s",
                verdict(ok, "bound"),
            ]
        )
    pages = _get(sections, "pages", "results")
    if pages and pages.get("ours"):
        bits = [
            f"{bench_pages.name_of(x['client'])} {x['elapsed_over_bound']:.2f}x, "
            f"{x['throttled']} 429s"
            + (f", {_common.fmt_errors(x['errors'])}" if x.get("errors") else "")
            for x in pages["runs"]
            if "failed" not in x and x.get("elapsed_over_bound") is not None
        ]
        rows.append(
            [
                f"4. paging one page at a time ({pages['pages']} US pages): elapsed / bound",
                "; ".join(bits),
                "(no target)",
                "–",
            ]
        )
    sync = sections.get("sync", {})
    rows.append(
        [
            "4. bulk sync (bench_sync.py)",
            "see below" if "results" in sync else sync.get("missing", "failed: see below"),
            "(its own)",
            "–",
        ]
    )
    memory = _get(sections, "memory", "results")
    if memory:
        growth = memory["growth_middle_to_last_mib"]["median"]
        rows.append(
            [
                f"5. memory: peak RSS growth, page {memory['marks'][1]:,} → {memory['marks'][2]:,}",
                f"{growth:+.2f} MiB",
                "flat",
                verdict(abs(growth) < 1.0, "memory"),
            ]
        )
    rows += _plan_rows(sections, verdict)
    otel = _get(sections, "otel", "results")
    if otel:
        share = otel["added_share_of_a_call"]
        rows.append(
            [
                "10. tracing: CPU the no-op instrumentation adds to a call (SDK in memory)",
                f"{otel['added_us_per_call']['noop']:.1f} µs = {share['noop']:.1%} "
                f"({otel['added_us_per_call']['sdk']:.0f} µs = {share['sdk']:.0%})",
                f"≤ {otel['target'] - 1:.0%} (no-op)",
                verdict(1 + share["noop"] <= otel["target"], "tracing"),
            ]
        )
    rows += _fleet_rows(sections, verdict)
    parse = _get(sections, "parse", "results", "us_per_job")
    if parse:
        figures = ", ".join(f"{k} {v['median']:.1f}" for k, v in parse.items())
        rows.append(["6. parsing: µs per job", figures, "(bench_parse's own)", "–"])
    versus = _get(sections, "pydantic", "results", "ratio_to_pydantic")
    if versus:
        rows.append(
            [
                "6. parsing: ours / pydantic v2 on the same page",
                _common.fmt_spread(versus, 2, "x"),
                "≤ 1.5x (DESIGN.md)",
                verdict(versus["median"] <= bench_parse_pydantic.TARGET, "parsing"),
            ]
        )
    startup = _get(sections, "startup", "results", "import_ms", "ours")
    if startup:
        rows.append(
            [
                "7. start-up: `import spapi_services`",
                f"{_common.fmt_spread(startup, 0, ' ms')}",
                "(no target)",
                "–",
            ]
        )
    plugin = _get(sections, "plugin", "results")
    if plugin:
        rows.append(
            [
                "7b. start-up: the pytest plugin's imports in every pytest run",
                _common.fmt_spread(plugin["plugin_ms"]["imports"], 1, " ms"),
                f"≤ {plugin['target_ms']:.0f} ms, no aiohttp or cryptography",
                verdict(bench_plugin_startup.target_met(plugin), "plugin"),
            ]
        )
    return rows


def _plan_rows(sections: dict[str, Any], verdict: _headline.Verdicts) -> list[list[str]]:
    """Headline rows of bench_processes and bench_pacing."""
    rows: list[list[str]] = []
    procs = _get(sections, "processes", "results", "processes")
    if procs:
        cells, n = procs["cells"], procs["n"]
        target = bench_processes.DEFAULT_TARGET
        shared = [
            (c, cells[f"{c} default"])
            for c in target["processes"]
            if "elapsed_over_bound" in cells.get(f"{c} default", {})
        ]
        if shared:
            rows.append(
                [
                    f"8. default plan, {'/'.join(str(c) for c, _ in shared)} processes × "
                    f"{n} calls in all, no shared store: elapsed / bound (worst), 429s (worst), "
                    "lost",
                    "; ".join(
                        f"{c}: {cell['elapsed_over_bound']['max']:.3f}x, "
                        f"{cell['throttled']['max']:.0f} × 429, {cell['lost']['max']:.0f} lost"
                        for c, cell in shared
                    ),
                    f"0 lost, ≤ {target['throttled_share'] * n:.0f} × 429, "
                    f"≤ {target['elapsed']}x, in every run",
                    verdict(procs["verdicts"].get("default"), "default"),
                ]
            )
        alone = cells.get("1 default", {})
        if "elapsed_over_bound" in alone:
            exact = cells.get("8 exact", {})
            rows.append(
                [
                    "8. default plan, one process alone: elapsed / bound (worst), 429s (worst)",
                    f"{alone['elapsed_over_bound']['max']:.3f}x, "
                    f"{alone['throttled']['max']:.0f} × 429"
                    + (
                        f" (the exact bucket at 8 processes: "
                        f"{exact['throttled']['median']:.0f} × 429)"
                        if "throttled" in exact
                        else ""
                    ),
                    f"0 × 429, ≤ {bench_processes.ALONE_TARGET}x",
                    verdict(procs["verdicts"].get("alone"), "alone"),
                ]
            )
        redis = [(c, cells.get(f"{c} redis", {})) for c in procs["counts"]]
        if any("elapsed_over_bound" in cell for _, cell in redis):
            rows.append(
                [
                    "8. Redis plan and token cache, 1–8 processes: elapsed / bound, 429s",
                    "; ".join(
                        f"{c}: {cell['elapsed_over_bound']['median']:.3f}x, "
                        f"{cell['throttled']['max']:.0f} × 429, "
                        f"{cell['exchanges']['max']:.0f} exchange(s)"
                        for c, cell in redis
                        if "elapsed_over_bound" in cell
                    ),
                    f"≤ {bench_processes.REDIS_TARGET}x, 0 × 429, 0 lost, 1 exchange",
                    verdict(procs["verdicts"].get("redis"), "redis"),
                ]
            )
    pacing = _get(sections, "pacing", "results", "spacing", "rows")
    if pacing:
        shares = {k: v["bucket_share"]["median"] for k, v in pacing.items() if "bucket_share" in v}
        if shares:
            rows.append(
                [
                    "9. pacing: the bucket's own share of a paced call's CPU (inside the plan)",
                    "; ".join(f"{k.split(' by the ')[-1]} {v:.1%}" for k, v in shares.items()),
                    f"≤ {bench_pacing.TARGET_SHARE:.0%}",
                    verdict(all(v <= bench_pacing.TARGET_SHARE for v in shares.values()), "pacing"),
                ]
            )
    return rows


def _fleet_rows(sections: dict[str, Any], verdict: _headline.Verdicts) -> list[list[str]]:
    """The headline row of bench_fleet."""
    fleet = _get(sections, "fleet", "results")
    if not fleet or "cells" not in fleet:
        return []
    cells = [(n, fleet["cells"][str(n)]) for n in fleet["counts"]]
    figures = "; ".join(
        f"{n}: {c['elapsed']['median']:.1f} s = {c['elapsed_over_bound']['median']:.2f}x, "
        f"{c['jobs_per_s']['median']:.0f} jobs/s, {c['cpu_ms_per_job']['median']:.2f} ms CPU/job, "
        f"{c['throttled']} × 429"
        for n, c in cells
    )
    sound = all(c["throttled"] == 0 and not c["sellers_wrong"] for _, c in cells)
    return [
        [
            f"11. fleet: {fleet['sellers']} sellers × {fleet['jobs_per_seller']} jobs on N worker "
            "processes: wall time / bound, jobs/s, CPU per job, 429s",
            figures,
            "0 × 429, every job once",
            verdict(sound, "fleet"),
        ]
    ]


TITLES = {
    "startup": "7. Start-up",
    "plugin": "7b. The pytest plugin at pytest's start-up (bench_plugin_startup.py)",
    "parse": "6. Parsing (bench_parse.py)",
    "pydantic": "6b. Parsing against pydantic v2",
    "overhead": "1. Overhead against a hand-written aiohttp loop",
    "peers": "2. Against the peers",
    "bound": "3. At the usage plan's bound",
    "pages": "4a. Paging one page at a time, each client's documented way",
    "sync": "4b. Bulk sync (bench_sync.py)",
    "memory": "5. Memory while paging",
    "processes": "8. One seller's plan, several processes (bench_processes.py)",
    "pacing": "9. What pacing costs (bench_pacing.py)",
    "otel": "10. What tracing and metrics cost (bench_otel.py)",
    "fleet": "11. The fleet: many sellers on 1, 2 and 4 worker processes (bench_fleet.py)",
    "tokens": "12. A sync while jobs move, keyset and offset page tokens (bench_page_tokens.py)",
    "feed": "13. The change feed: latency at 1, 100 and 1,000 sellers (bench_feed.py)",
    "webhooks": "14. Webhooks: change to 2xx, a worker killed and a receiver down "
    "(bench_webhooks.py)",
    "emulator": "The emulator's own speed (bench_emulator.py)",
}
ORDER = (
    "overhead",
    "peers",
    "bound",
    "pages",
    "sync",
    "memory",
    "processes",
    "pacing",
    "otel",
    "fleet",
    "tokens",
    "feed",
    "webhooks",
    "parse",
    "pydantic",
    "startup",
    "plugin",
    "emulator",
)


#: The fault campaign's results (``python tests/chaos/run.py``, what ``nox -s chaos``
#: runs): it checks invariants, not speed, and takes about half an hour, so it is kept in
#: a file of its own and carried into every RESULTS.md as its last section.
CHAOS = HERE / "CHAOS.md"


def report(sections: dict[str, Any], quick: bool, chart: Path | None, wall: float) -> str:
    """RESULTS.md."""
    verdict = _headline.Verdicts()
    lines = [
        "# Benchmark results" + (" (quick smoke run: not the figures to quote)" if quick else ""),
        "",
        "Written by `nox -s bench` (`python benchmarks/run_all.py`"
        + (" --quick" if quick else "")
        + f"); do not edit by hand. Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"{wall / 60:.1f} minutes in all.",
        "",
        f"Machine: {_machine()}.",
        "",
        "Every figure is a ratio or a count from this one run on this one machine. Each "
        "server runs in a process of its own and each client run in a fresh process; "
        "client CPU is `time.process_time()` in the client process. Medians of the "
        "repetitions, with (min–max); absolute times are context only. `benchmarks/README.md`"
        " says what each benchmark does.",
        "",
        "## Headline",
        "",
        _common.table(["figure", "this run", "target", ""], headline(sections, verdict)),
    ]
    # Under the table: what limits each figure that missed, and what is being done.
    if verdict.missed:
        lines += ["", *verdict.section()]
    for name in ORDER:
        if name not in sections:
            continue
        section = sections[name]
        lines += ["", f"## {TITLES[name]}", ""]
        if "markdown" in section:
            lines.append(section["markdown"])
        elif "missing" in section:
            lines.append(f"Not run: {section['missing']}.")
        else:
            lines += ["Failed:", "", "```", section.get("error", "?").strip(), "```"]
        if name == "bound" and chart is not None:
            lines += ["", f"![accepted requests over time against the bound]({chart.name})"]
    if CHAOS.exists() and not quick:
        lines += ["", CHAOS.read_text(encoding="utf-8").rstrip("\n")]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small counts: a smoke run")
    parser.add_argument("--only", help=f"comma-separated sections of: {', '.join(SECTIONS)}")
    parser.add_argument("--server", choices=["emulator", "lean"], default="emulator")
    parser.add_argument("--out", type=Path, help="the markdown file to write")
    args = parser.parse_args()
    names = [s.strip() for s in args.only.split(",")] if args.only else list(SECTIONS)
    unknown = set(names) - set(SECTIONS)
    if unknown:
        raise SystemExit(f"unknown sections: {', '.join(sorted(unknown))}")
    suffix = ".quick" if args.quick else ""
    default_dir = Path(tempfile.gettempdir()) / "spapi-services-bench" if args.quick else HERE
    default_dir.mkdir(parents=True, exist_ok=True)
    out = args.out or default_dir / f"RESULTS{suffix}.md"
    started = time.monotonic()
    sections = run_sections(names, args.quick, args.server)
    chart = None
    if "results" in sections.get("bound", {}):
        chart = bench_bound.chart(sections["bound"]["results"], out.parent / f"bound{suffix}.png")
    out.write_text(report(sections, args.quick, chart, time.monotonic() - started))
    raw = {k: {kk: vv for kk, vv in v.items() if kk != "markdown"} for k, v in sections.items()}
    (out.parent / f"results{suffix}.json").write_text(json.dumps(raw, indent=1, default=str))
    print(f"wrote {out}" + (f" and {chart}" if chart else ""))
    failed = [k for k, v in sections.items() if "error" in v]
    if failed:
        print(f"sections that failed: {', '.join(failed)}", file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
