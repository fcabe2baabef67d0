"""The headline's verdicts, and what RESULTS.md says about each target a run missed.

A missed target stays in the headline as measured ("**missed**"), with a link to a
section below the table that says what limits the figure and what is being done about
it.  The explanations are written here, one per headline row that has a target; a row
with none written yet says so rather than say nothing.  The section headings are plain
words, so that a repository host and the documentation site (which includes RESULTS.md
in its Benchmarks page) give them the same anchor.

Kept apart from run_all.py, which imports every benchmark, so that the tests can render
a headline without running one.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass


@dataclass(frozen=True)
class Miss:
    """What RESULTS.md says when one row's target is missed."""

    heading: str
    """The section's heading: plain words (its anchor is the same everywhere)."""
    limit: str
    """What limits the figure (Markdown; may link to a section of RESULTS.md)."""
    next: str
    """What is being done about it."""


#: Headline row -> what RESULTS.md says when its target is missed.
MISSES: dict[str, Miss] = {
    "overhead": Miss(
        heading="Why the overhead target is missed",
        limit=(
            "A call through the SDK does more than the floor's bare aiohttp request and "
            "`json.loads`: it builds typed, frozen models from the JSON (with the "
            "speedups extra, in msgspec's C code: the body parsed by orjson, checked "
            "against a msgspec mirror of the model, then made into the attrs models, two "
            "passes), and its transport adds the access token, the deadline, retries, "
            "logs and traces. Counted in instructions, which the machine's load does not "
            "move, a call costs about 1.25x the floor's at both latencies; its CPU time "
            "reads higher at 0 ms on a loaded machine, with the same system calls per "
            "call as the floor (strace), so the rest is likely the larger working set's "
            "cache misses, and the load's noise. "
            "[Section 1](#1-overhead-against-a-hand-written-aiohttp-loop) splits a call "
            "between floor, transport, decoding and instrumentation and profiles it."
        ),
        next=(
            "Decoding a typed call's body in one msgspec pass from its bytes instead of "
            "orjson and a first conversion (measured at 62k fewer instructions a call, "
            "about 9%): the transport then hands typed calls their body undecoded and "
            "reads errors, warnings and page tokens from the same pass. Each idea is "
            "measured by this benchmark before it is kept. The SDK already spends less "
            "CPU per call than any other Python client measured "
            "([section 2](#2-against-the-peers))."
        ),
    ),
    "redis": Miss(
        heading="Why the Redis target is missed",
        limit=(
            "The target asks for no 429 in any run at any process count, not in the "
            "median. Redis meters the plan exactly: each process books its slots by one "
            "script on Redis's own clock. What it cannot meter is a process that went on "
            "without Redis: every Redis command is bounded by the plan's timeout (0.25 s), "
            "and a process whose command did not come back in time (Redis or the process "
            "itself descheduled that long, on 2 cores shared by 8 client processes, the "
            "emulator, Redis and other work) uses its own adaptive bucket until it tries "
            "Redis again (5 s), drawing 429s as any process without a shared store does. "
            "The table of [section 8](#8-one-sellers-plan-several-processes-"
            "bench_processespy) gives each run's range; the benchmark counts those outages "
            "(a second token exchange is the token cache's)."
        ),
        next=(
            "A fallback that starts from the share of the plan the process had through "
            "Redis, drained, instead of a cold bucket, and a retry sooner after a timeout "
            "than after a refused connection; the target stays zero 429s in every run."
        ),
    ),
    "pacing": Miss(
        heading="Why the pacing target is missed",
        limit=(
            "Through Redis a paced call's token costs a round trip to Redis (the bucket's "
            "script): redis-py builds the command, and the kernel's loopback send and "
            "receive, charged to the client process, are most of it. A process books "
            "slots for all its waiting calls in one round trip and, while its calls keep "
            "up with the plan, up to 8 ahead, so a steady stream of calls asks Redis once "
            "every few calls; a process whose calls come slower than the plan gains "
            "nothing from booking ahead (the slots would go unused) and still asks once a "
            "call. [Section 9](#9-what-pacing-costs-bench_pacingpy) measures both buckets."
        ),
        next=(
            "A cheaper round trip (the hiredis parser, a connection kept out of the "
            "pool), measured by this benchmark before it is kept."
        ),
    ),
    "default": Miss(
        heading="Why the default plan's target is missed",
        limit=(
            "Without a shared store, processes of one seller find their shares of the plan "
            "from the 429s they draw: each process's bucket cuts its rate on a 429 it did "
            "not expect and then probes for more along a CUBIC curve, so each process draws "
            "a 429 every couple of seconds in steady state, and more processes draw more. "
            "The curve's steepness trades 429s against time: at AWS's (0.02 of the "
            "ceiling per s³) 8 processes drew 117–174 × 429 in 5 runs, at 1.04–1.09x the "
            "bound; at half that (0.01, the default) 80–119 × 429 in 9 runs, at 1.02–1.13x; at a "
            "quarter 70–105 × 429, but 4 processes took 1.12–1.16x. The elapsed time "
            "includes each process's cold start (its token exchange and connection) on 2 "
            "cores shared by 8 client processes, the emulator and other work, and moves "
            "with the machine's load; "
            "[section 8](#8-one-sellers-plan-several-processes-bench_processespy) gives "
            "each run's range."
        ),
        next=(
            "Probing less often once a bucket's cuts come at about the same rate (its "
            "share has settled), without slowing the climb back when the others stop; "
            "each idea measured by this benchmark. For no 429 at all, Redis "
            "(`RedisRateLimits`) meters the one budget exactly."
        ),
    ),
    "alone": Miss(
        heading="Why the single-process target is missed",
        limit=(
            "The slow start holds part of the burst back while it ramps up; it is paced to "
            "lose no token to a full bucket, so a miss here is the machine's load on one "
            "run ([section 8](#8-one-sellers-plan-several-processes-bench_processespy))."
        ),
        next="Re-run when the machine is quiet; the ramp's pace is tested on a fake clock.",
    ),
}


#: What a missed row without a written explanation says (its key names it: plain words).
NOT_YET = (
    "No analysis of this miss is written yet; its section below has this run's figures.",
    "It is looked into before the next release, and the explanation added here.",
)


def anchor(heading: str) -> str:
    """The anchor a heading gets, from MkDocs (Python-Markdown's toc) and on GitHub alike.

    Both lowercase the text, drop what is not a letter, digit, space, hyphen or
    underscore, and join words with hyphens; they differ only on runs of spaces or
    hyphens, which the headings here do not have.
    """
    text = unicodedata.normalize("NFKD", heading).encode("ascii", "ignore").decode()
    text = re.sub(r"[^\w\s-]", "", text).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


class Verdicts:
    """The verdict cells of one headline, and the misses it found, in row order."""

    def __init__(self) -> None:
        self.missed: list[str] = []
        """The key of each row whose target was missed."""

    def __call__(self, ok: bool | None, key: str = "") -> str:
        """``–`` without a target, ``met``, or ``**missed**`` with a link to why."""
        if ok is None:
            return "–"
        if ok:
            return "met"
        self.missed.append(key)
        return f"**missed**: [why, and what next](#{anchor(miss(key).heading)})"

    def section(self) -> list[str]:
        """The Markdown lines of the section on the missed targets (none if all were met)."""
        if not self.missed:
            return []
        lines = [
            "## Missed targets",
            "",
            "The figures above are as measured. For each target this run missed: what "
            "limits the figure, and what is being done about it.",
        ]
        for key in self.missed:
            explained = miss(key)
            lines += [
                "",
                f"### {explained.heading}",
                "",
                f"**What limits it.** {explained.limit}",
                "",
                f"**What is being done.** {explained.next}",
            ]
        return lines


def miss(key: str) -> Miss:
    """The explanation of a row's miss (or a note that none is written yet)."""
    if key in MISSES:
        return MISSES[key]
    return Miss(heading=f"Why the {key} target is missed", limit=NOT_YET[0], next=NOT_YET[1])
