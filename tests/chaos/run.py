"""The long fault campaign: many seeded schedules, then a summary (``nox -s chaos``).

Run from the repository's root::

    python tests/chaos/run.py                      # 20 schedules from seed 1
    SPAPI_CHAOS_SCHEDULES=50 SPAPI_CHAOS_SEED=100 python tests/chaos/run.py
    SPAPI_CHAOS_SEED=1234 SPAPI_CHAOS_SCHEDULES=1 python tests/chaos/run.py   # a replay

Variables: ``SPAPI_CHAOS_SCHEDULES`` (how many), ``SPAPI_CHAOS_SEED`` (the first seed;
each schedule's seed is the next), ``SPAPI_CHAOS_SIZE`` (``long``, the default: more
sellers, workers and faults, the world turning through :data:`WORLDS` by seed; or
``short``: the test's), ``SPAPI_CHAOS_KEEP`` (a folder
to keep every campaign's logs and timeline in; default: a temporary one, kept only for
the schedules that failed).  Prints each schedule's timeline when it fails, and at the
end a summary: schedules, faults by kind, each invariant's result.  Exits 1 if any
invariant was violated.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import attrs

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for `chaos`

from chaos._campaign import CampaignResult, Programs, run_campaign
from chaos._invariants import INVARIANTS
from chaos._world import Settings
from spapi_services.fleet._local import PostgresServer, RedisServer, find_program

#: The campaign sizes: the test's short one, and the long one's.
SIZES = {
    "short": Settings(),
    "long": Settings(sellers=8, jobs=40, workers=4, chaos=60.0, faults=18, final_deadline=60.0),
}

#: The worlds the long run turns through, one per seed in turn: offset page tokens with
#: the emulator's activity; the same with tokens that expire after 3 s (a sync slowed by
#: a fault finds its next page's token refused); keyset tokens and only the campaign's
#: own changes.
WORLDS: tuple[dict[str, Any], ...] = (
    {},
    {"page_token_ttl": 3.0},
    {"page_tokens": "keyset", "activity": None},
)


def settings_for(seed: int, size: str) -> Settings:
    """The campaign's settings for ``seed``: the size's, in the seed's world of
    :data:`WORLDS` (the short size keeps the test's own)."""
    base = SIZES[size]
    return base if size == "short" else attrs.evolve(base, **WORLDS[seed % len(WORLDS)])


def summary(results: list[CampaignResult]) -> str:
    """Schedules run, faults by kind, and each invariant's result over all of them."""
    faults: Counter[str] = Counter()
    by_invariant: Counter[str] = Counter()
    failed_seeds: dict[str, list[int]] = {}
    for result in results:
        faults.update(result.faults)
        for name, count in result.by_invariant().items():
            by_invariant[name] += count
            if count:
                failed_seeds.setdefault(name, []).append(result.seed)
    lines = [
        f"schedules: {len(results)} (seeds {', '.join(str(r.seed) for r in results)})",
        f"faults: {sum(faults.values())} in all",
    ]
    lines += [f"  {kind:<22} {count}" for kind, count in sorted(faults.items())]
    changed = sum(r.jobs_changed for r in results)
    added = sum(r.jobs_added for r in results)
    moved = sum(r.activity_moved for r in results)
    created = sum(r.activity_created for r in results)
    lines.append(
        f"jobs changed during the chaos: {changed}, added: {added}; by the emulator's "
        f"activity: {moved} moved, {created} created"
    )
    finals = [r.final_round for r in results if r.final_round is not None]
    if finals:
        lines.append(f"final round: {min(finals):.1f}-{max(finals):.1f} s")
    lines.append(
        "what the fleet did, by fault (in how many of its events each reaction was logged, "
        "and how many times):"
    )
    lines += [f"  {line}" for line in what_the_fleet_did(results)]
    moving: Counter[str] = Counter()
    for result in results:
        moving.update(result.world_reactions)
    lines.append("what the fleet did about the moving world (every schedule, faults or not):")
    lines += [f"  x{count:<5d} {name}" for name, count in moving.most_common()]
    lines.append("invariants:")
    for name in INVARIANTS:
        count = by_invariant.get(name, 0)
        seeds = failed_seeds.get(name, [])
        shown = "0 violations" if not count else f"{count} violations (seeds {seeds})"
        lines.append(f"  {'ok  ' if not count else 'FAIL'} {name:<22} {shown}")
    return "\n".join(lines)


def what_the_fleet_did(results: list[CampaignResult]) -> list[str]:
    """For each kind of fault: its events, and each reaction's share of them."""
    events: Counter[str] = Counter()
    syncing: Counter[str] = Counter()
    seen_in: dict[str, Counter[str]] = {}
    times: dict[str, Counter[str]] = {}
    for result in results:
        for kind, _target, _at, held, seen in result.reactions:
            events[kind] += 1
            syncing[kind] += bool(held)
            seen_in.setdefault(kind, Counter()).update(seen.keys())
            times.setdefault(kind, Counter()).update(seen)
    lines = []
    for kind in sorted(events):
        during = f", {syncing[kind]} on a worker in the middle of syncs" if syncing[kind] else ""
        lines.append(f"{kind} ({events[kind]} events{during})")
        for name, count in seen_in[kind].most_common():
            lines.append(f"    {count:3d}/{events[kind]:<3d} x{times[kind][name]:<5d} {name}")
    return lines


async def main() -> int:
    schedules = int(os.environ.get("SPAPI_CHAOS_SCHEDULES", "20"))
    first = int(os.environ.get("SPAPI_CHAOS_SEED", "1"))
    size = os.environ.get("SPAPI_CHAOS_SIZE", "long")
    keep = os.environ.get("SPAPI_CHAOS_KEEP")
    programs = Programs(
        redis=find_program(RedisServer.program, RedisServer.package),
        postgres=find_program(
            PostgresServer.program, PostgresServer.package, elsewhere=PostgresServer.elsewhere
        ),
    )
    base = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="spapi-chaos-"))
    results = []
    for seed in range(first, first + schedules):
        folder = base / f"seed-{seed}"
        shutil.rmtree(folder, ignore_errors=True)  # a campaign starts from nothing
        folder.mkdir(parents=True)
        settings = settings_for(seed, size)
        result = await run_campaign(seed=seed, settings=settings, folder=folder, programs=programs)
        results.append(result)
        verdict = "ok" if result.ok else f"{len(result.findings)} violations"
        print(f"seed {seed}: {verdict} ({result.seconds:.0f} s)", flush=True)
        if not result.ok:
            print(result.report(), flush=True)
        elif not keep:
            shutil.rmtree(folder, ignore_errors=True)
    print()
    print(summary(results))
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
