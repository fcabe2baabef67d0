"""Run the emulator in the foreground: ``spapi-services emulator --port 8080`` (or
``python -m spapi_services.emulator``, the same without the ``cli`` extra).

It prints where it listens and the credentials it accepts, as ``export SPAPI_...=`` lines
that point ``spapi-services`` and ``ServicesClient()`` at it, and some of its technicians'
resource ids, then serves until Ctrl+C (or SIGTERM).  ``--env-file PATH`` writes those
lines to a file to ``source`` in another shell; the file holds a client secret, so it is
only ever readable by its owner.  ``--json`` prints the same facts as one JSON line, for
scripts, every technician included.

``--page-tokens offset`` pages as an offset API would, ``--page-token-ttl 30s`` lets page
tokens expire, and ``--activity created=6,updated=30`` keeps the world moving (new jobs
and status moves a minute); the banner says which of these are on.

The options are one table (:data:`SETTINGS`), from which both command lines are made:
argparse's here, for ``python -m`` without the ``cli`` extra, and click's for
``spapi-services emulator`` (in ``spapi_services.cli``).  An option's text is read as the
command line is parsed, so a bad value is a usage error naming the option in both.
Durations are milliseconds in both, as in ``spapi-services demo``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import json
import logging
import os
import re
import shlex
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs

from .._pipes import EXIT_PIPE_CLOSED, silence_stdout
from .activity import Activity
from .catalog import MARKETPLACES
from .faults import Fault, parse_fault_spec
from .server import LOOPBACK_HOSTS, ServicesEmulator

__all__ = [
    "SETTINGS",
    "Duration",
    "Setting",
    "build_parser",
    "environment",
    "main",
    "parse_duration",
    "roster",
    "serve",
    "write_env_file",
]

#: How the ``spapi-services`` command line names this program.
CLI_PROG = "spapi-services emulator"

DESCRIPTION = (
    "A local, stateful emulator of Amazon's Selling Partner API, Services API v1, serving "
    "until Ctrl+C.  It prints export SPAPI_...= lines: `source` them (or --env-file) in "
    "another shell, and `spapi-services` and ServicesClient() talk to the emulator."
)

FAULTS_HELP = (
    "Faults (--latency to --fault) trouble every operation; --fault OP:key=value,... "
    "troubles one (an operationId, or token, upload, *), e.g. "
    "getServiceJobs:latency=250,error_rate=0.05,error_status=503,html=true; "
    "mangle=lose|reset|truncate|html|empty spoils the answer after the operation ran.  "
    "Durations are milliseconds: 250, or 250ms, 0.25s; a range 50-150 draws one per request."
)


@attrs.frozen
class Setting:
    """One option of the emulator's command line, for both of its parsers.

    ``kind`` is ``int``, ``float``, ``text``, ``flag`` (on when given), ``many`` (may be
    repeated), ``choice`` (one of ``choices``) or ``duration`` (milliseconds, see
    :func:`parse_duration`).  ``read``, when given, turns the option's text into its
    value as the command line is parsed (the default's text too), so a bad value is a
    usage error in both parsers; it raises ``ValueError`` with a message that starts
    with the option (``--latency: ...``).
    """

    #: The option as typed (``--page-tokens``).
    flag: str
    #: How its text is taken: ``int``, ``float``, ``text``, ``flag``, ``many``, ``choice`` or
    #: ``duration``.
    kind: str
    #: Its value when not given, as the command line would write it.
    default: Any
    #: What ``--help`` says of it.
    help: str
    #: How ``--help`` shows its value (``None``: from its kind).
    metavar: str | None = None
    #: The values a ``choice`` may take.
    choices: tuple[str, ...] = ()
    #: Reads its text into the value the emulator is built with, raising ``ValueError`` naming the
    #: option (``None``: the text is the value).
    read: Callable[[str], Any] | None = None

    @property
    def dest(self) -> str:
        """The option's name as a Python identifier (``--env-file`` → ``env_file``)."""
        return self.flag.lstrip("-").replace("-", "_")


@attrs.frozen
class Duration:
    """A duration read from the command line: a base and a random extra, in seconds."""

    #: Seconds always waited.
    base: float
    #: Up to this many more seconds, drawn per request.
    jitter: float = 0.0
    note: str | None = None
    """Set when the text was read as seconds although it had no unit (see
    :func:`parse_duration`): what to tell the person."""


_DURATION = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s)?\s*", re.IGNORECASE)


def _one(text: str, option: str) -> tuple[float, bool]:
    """Seconds from one duration (``250``, ``250ms``, ``0.25s``), and whether a number
    without a unit was read as seconds because it looks like seconds (a fraction under
    10, such as ``0.25``)."""
    match = _DURATION.fullmatch(text)
    if match is None:
        raise ValueError(
            f"{option}: {text!r} is not a duration: milliseconds as 250 (or 250ms, 0.25s)"
        )
    number, unit = float(match[1]), (match[2] or "").lower()
    if unit == "s":
        return number, False
    if unit == "ms" or "." not in match[1] or number >= 10 or number == 0:
        return number / 1000, False
    return number, True


def _ms(seconds: float) -> str:
    return f"{round(seconds * 1000, 6):g}"


def parse_duration(text: str, option: str = "--latency") -> Duration:
    """A duration in milliseconds, or a range ``MIN-MAX`` drawn from per request.

    ``"100"`` → 0.1 s; ``"50-150"`` → 0.05 s plus up to 0.1 s; units may be written
    (``"250ms"``, ``"0.25s"``).  A number without a unit is milliseconds, except a
    fraction under 10 (``"0.25"``), which looks like seconds and is read as seconds
    with a :attr:`Duration.note` saying so.  Raises ``ValueError`` naming ``option``.
    """
    low, sep, high = text.partition("-")
    lo, lo_seconds = _one(low, option)
    hi, hi_seconds = _one(high, option) if sep else (lo, False)
    if hi < lo:
        raise ValueError(f"{option}: {text!r}: the range must be MIN-MAX, with MIN <= MAX")
    note = None
    if lo_seconds or hi_seconds:
        ms = f"{_ms(lo)}-{_ms(hi)}" if sep else _ms(lo)
        note = (
            f"{option} {text.strip()}: read as seconds ({ms} ms); durations are milliseconds, "
            f"so write {ms} (or {ms.replace('-', 'ms-')}ms)"
        )
    return Duration(lo, round(hi - lo, 9), note)


#: The words that turn an option off (``--page-token-ttl never``, ``--activity off``).
_OFF = frozenset({"never", "off", "none"})


def _reads_duration(option: str) -> Callable[[str], Duration]:
    return lambda text: parse_duration(text, option)


def read_page_token_ttl(text: str) -> Duration | None:
    """``--page-token-ttl``: how long a page token lives, or ``None`` for ``never``.

    A duration as the other options take it (milliseconds: ``30000``, or ``30s``): one
    value, more than zero.  A bare number under a second is taken as written, with a
    note saying what it means, since tokens that die that young are rarely meant.
    """
    if text.strip().lower() in _OFF:
        return None
    read = parse_duration(text, "--page-token-ttl")
    if read.jitter:
        raise ValueError(f"--page-token-ttl: {text!r}: give one lifetime, not a range")
    if read.base <= 0:
        raise ValueError(f"--page-token-ttl: {text!r}: must be more than 0 (or never)")
    if read.note is None and read.base < 1 and not re.search(r"[a-z]", text, re.IGNORECASE):
        ms = _ms(read.base)
        note = (
            f"--page-token-ttl {text.strip()}: a page token expires {ms} ms after it is "
            f"issued; durations are milliseconds: for seconds write {ms}s"
        )
        return attrs.evolve(read, note=note)
    return read


def read_activity(text: str) -> Activity | None:
    """``--activity``: ``created=N,updated=N`` (changes a minute; either part may be left
    out) as an :class:`~spapi_services.emulator.Activity`, or ``None`` for ``off``."""
    if text.strip().lower() in _OFF:
        return None
    try:
        return Activity.parse(text)
    except ValueError as exc:
        # Activity's own checks name its arguments; the option's parts are created=N and
        # updated=N.
        rule = re.sub(r"^activity: ", "", str(exc), flags=re.IGNORECASE)
        rule = rule.replace("_per_minute:", ":").replace("_per_minute", "=N")
        raise ValueError(f"--activity: {rule}") from None


def _number(text: Any, option: str, kind: type[int] | type[float]) -> float:
    """``text`` as an int or a float (click hands over a number already; argparse, text)."""
    if isinstance(text, kind) and not isinstance(text, bool):
        return text
    try:
        return kind(str(text).strip())
    except ValueError:
        noun = "integer" if kind is int else "number"
        raise ValueError(f"{option}: {text!r} is not a valid {noun}.") from None


def reads_range(
    option: str,
    kind: type[int] | type[float],
    low: float | None = None,
    high: float | None = None,
    *,
    above: bool = False,
) -> Callable[[Any], Any]:
    """A reader of a number from ``low`` (or more than it, with ``above``) to ``high``,
    refused in click's words (``99999 is not in the range 0<=x<=65535.``)."""

    def read(text: Any) -> Any:
        value = _number(text, option, kind)
        too_low = low is not None and (value <= low if above else value < low)
        too_high = high is not None and value > high
        if too_low or too_high:
            raise ValueError(f"{option}: {value:g} is not in the range {_span(low, high, above)}.")
        return value

    return read


def _span(low: float | None, high: float | None, above: bool) -> str:
    """A range as click writes one: ``0<=x<=1``, ``x>=0``, ``x>0``."""
    if high is None:
        return f"x{'>' if above else '>='}{low:g}"
    left = "" if low is None else f"{low:g}{'<' if above else '<='}"
    return f"{left}x<={high:g}"


def read_error_status(text: Any) -> int:
    """``--error-status``: the status of injected errors, 429 or a 5xx."""
    status = int(_number(text, "--error-status", int))
    if not (500 <= status <= 599 or status == 429):
        raise ValueError(f"--error-status: {status} is not 429 or a 5xx status (500 to 599).")
    return status


def read_host(text: str) -> str:
    """``--host``: a loopback address: the emulator never listens beyond this machine."""
    if text not in LOOPBACK_HOSTS:
        raise ValueError(
            f"--host: {text!r} is not a loopback address; the emulator listens only on "
            f"{', '.join(LOOPBACK_HOSTS)}."
        )
    return text


def read_fault(text: str) -> str:
    """``--fault OP:K=V,...``: checked as the command line is read (the operation, each
    key and value), and kept as text for :func:`_emulator` to build."""
    try:
        _fault_spec(text, [])
    except ValueError as exc:
        raise ValueError(f"--fault: {exc}") from None
    return text


#: Every option, in the order ``--help`` lists them.
SETTINGS: tuple[Setting, ...] = (
    Setting("--host", "text", "127.0.0.1", "Loopback address to listen on.", read=read_host),
    Setting(
        "--port",
        "int",
        8080,
        "Port to listen on; 0 picks a free one.",
        read=reads_range("--port", int, 0, 65535),
    ),
    Setting("--jobs", "int", 200, "Service jobs to seed.", read=reads_range("--jobs", int, 0)),
    Setting("--seed", "int", 0, "Seed of the emulated world."),
    Setting(
        "--token-ttl",
        "int",
        3600,
        "Lifetime of an access token, in seconds.",
        read=reads_range("--token-ttl", int, 1),
    ),
    Setting(
        "--upload-ttl",
        "int",
        300,
        "Lifetime of an upload URL, in seconds.",
        read=reads_range("--upload-ttl", int, 1),
    ),
    Setting("--no-limits", "flag", False, "Do not throttle requests (no 429s)."),
    Setting(
        "--rate-scale",
        "float",
        1.0,
        "Multiply every usage plan's rate.",
        read=reads_range("--rate-scale", float, 0, above=True),
    ),
    Setting("--static", "text", None, "Replay the sandbox cases of this model file.", "PATH"),
    Setting("--strict-slots", "flag", False, "Appointments must start on a free hourly slot."),
    Setting(
        "--page-tokens",
        "choice",
        "keyset",
        "What page tokens hold: keyset (the sort key of the page's edge: stable while "
        "jobs change) or offset (a position in the result set: jobs that change between "
        "pages shift the later pages, as on many list APIs).",
        choices=("keyset", "offset"),
    ),
    Setting(
        "--page-token-ttl",
        "duration",
        "never",
        "How long a page token is accepted, in ms or with a unit (30s); later it is "
        "refused as an altered one is (400 InvalidInput).  never: no expiry.",
        "MS|never",
        read=read_page_token_ttl,
    ),
    Setting(
        "--activity",
        "text",
        "off",
        "New jobs and status moves a minute in every seller's world, e.g. "
        "created=6,updated=30 (either part may be left out).  off: the world stands still.",
        "created=N,updated=N",
        read=read_activity,
    ),
    Setting(
        "--latency",
        "duration",
        "0",
        "Added to every answer, in ms.",
        "MS|MIN-MAX",
        read=_reads_duration("--latency"),
    ),
    Setting(
        "--error-rate",
        "float",
        0.0,
        "Share of answers that are errors (0 to 1).",
        read=reads_range("--error-rate", float, 0, 1),
    ),
    Setting(
        "--error-status",
        "int",
        503,
        "Status of those errors (a 5xx, or 429).",
        read=read_error_status,
    ),
    Setting("--html-errors", "flag", False, "Errors as HTML pages, as a load balancer sends."),
    Setting(
        "--drop-rate",
        "float",
        0.0,
        "Share of requests dropped without an answer (0 to 1).",
        read=reads_range("--drop-rate", float, 0, 1),
    ),
    Setting(
        "--slow-body",
        "duration",
        "0",
        "Time over which bodies trickle out, in ms.",
        "MS",
        read=_reads_duration("--slow-body"),
    ),
    Setting(
        "--fault",
        "many",
        (),
        "A fault for one operation (repeat for more).",
        "OP:K=V,...",
        read=read_fault,
    ),
    Setting(
        "--env-file",
        "text",
        None,
        "Also write the export lines to PATH, readable by you only, to source.",
        "PATH",
    ),
    Setting("--json", "flag", False, "Print the connection facts as one JSON line."),
    Setting("--log-level", "text", "WARNING", "Logging level of the emulator's own log."),
)


_SPEC_DURATIONS = ("latency", "jitter", "slow_body")


def _fault_spec(spec: str, notes: list[str]) -> tuple[str, Fault]:
    """``--fault OP:key=value,...`` with its durations in milliseconds, like the options."""
    operation, sep, options = spec.partition(":")
    items = []
    for item in filter(None, (part.strip() for part in options.split(","))):
        key, eq, raw = item.partition("=")
        if eq and key.strip() in _SPEC_DURATIONS:
            option = f"--fault {key.strip()}"
            try:
                read = parse_duration(raw, option)
            except ValueError as exc:
                rule = str(exc).removeprefix(f"{option}: ")
                raise ValueError(f"{spec!r}: {key.strip()}={rule}") from None
            notes.extend([read.note] if read.note else [])
            item = f"{key.strip()}={read.base!r}"
        items.append(item)
    rewritten = f"{operation}{sep}{','.join(items)}"
    try:
        return parse_fault_spec(rewritten)
    except ValueError as exc:
        # Said of the spec as typed, not as its durations were rewritten in seconds.
        rule = str(exc).removeprefix(f"fault spec {rewritten!r}: ")
        raise ValueError(f"{spec!r}: {rule}") from None


def _argparse_type(setting: Setting) -> Callable[[str], Any]:
    """``setting.read`` as argparse's ``type``: its rule said after argparse's
    ``argument --option:``."""
    read = setting.read
    assert read is not None

    def convert(text: str) -> Any:
        try:
            return read(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(option_rule(exc, setting.flag)) from None

    return convert


def option_rule(exc: ValueError, flag: str) -> str:
    """A reader's message without the option it starts with, for a parser that names the
    option itself (``--latency: 'soon' is not...`` → ``'soon' is not...``)."""
    return str(exc).removeprefix(f"{flag}: ")


def build_parser(prog: str = "python -m spapi_services.emulator") -> argparse.ArgumentParser:
    """The emulator's command line for ``python -m``, from :data:`SETTINGS` (defaults shown)."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description=f"{DESCRIPTION}  The same as `{CLI_PROG}` (with the cli extra).",
        epilog=FAULTS_HELP,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    for setting in SETTINGS:
        options: dict[str, Any] = {"help": setting.help, "default": setting.default}
        if setting.kind == "flag":
            options["action"] = "store_true"
        elif setting.kind == "many":
            options.update(action="append", default=[])
        elif setting.kind in ("int", "float"):
            options["type"] = int if setting.kind == "int" else float
        elif setting.kind == "choice":
            options["choices"] = setting.choices
        if setting.read is not None:
            # A string default is read as given text is: "never" becomes None.
            options["type"] = _argparse_type(setting)
        if setting.metavar:
            options["metavar"] = setting.metavar
        parser.add_argument(setting.flag, **options)
    return parser


_BY_DEST = {setting.dest: setting for setting in SETTINGS}


def _option(args: Any, dest: str, notes: list[str]) -> Any:
    """The value of an option: as the parser read it, or read now when it is still text
    (an ``args`` made by hand); what to tell about how a duration was read goes to
    ``notes``."""
    value = getattr(args, dest)
    read = _BY_DEST[dest].read
    if isinstance(value, str) and read is not None:
        value = read(value)
    if isinstance(value, Duration) and value.note:
        notes.append(value.note)
    return value


def _emulator(args: Any, notes: list[str] | None = None) -> ServicesEmulator:
    """The emulator the options describe (``args`` has an attribute per setting);
    ``notes`` collects what to tell the person about how durations were read."""
    notes = [] if notes is None else notes
    latency: Duration = _option(args, "latency", notes)
    slow_body: Duration = _option(args, "slow_body", notes)
    ttl: Duration | None = _option(args, "page_token_ttl", notes)
    activity: Activity | None = _option(args, "activity", notes)
    if activity is not None and args.static is not None:
        raise ValueError(
            "--activity: a static emulator (--static) replays fixed cases: it has no world "
            "to change"
        )
    emu = ServicesEmulator(
        jobs=args.jobs,
        seed=args.seed,
        host=args.host,
        port=args.port,
        token_ttl=args.token_ttl,
        enforce_limits=not args.no_limits,
        rate_scale=args.rate_scale,
        static_spec=args.static,
        upload_url_ttl=args.upload_ttl,
        strict_slots=args.strict_slots,
        page_tokens=args.page_tokens,
        page_token_ttl=None if ttl is None else ttl.base,
        activity=activity,
    )
    general = Fault(
        latency=latency.base,
        jitter=latency.jitter,
        error_rate=args.error_rate,
        error_status=args.error_status,
        html=args.html_errors,
        drop_rate=args.drop_rate,
        slow_body=slow_body.base,
    )
    if general != Fault():
        emu.faults.set("*", general)
    for spec in args.fault:
        operation, fault = _fault_spec(spec, notes)
        emu.faults.set(operation, fault)
    return emu


def environment(emu: ServicesEmulator) -> dict[str, str]:
    """The ``SPAPI_*`` variables that point ``spapi-services`` at ``emu``."""
    creds = emu.credentials
    return {
        "SPAPI_CLIENT_ID": creds.client_id,
        "SPAPI_CLIENT_SECRET": creds.client_secret,
        "SPAPI_REFRESH_TOKEN": creds.refresh_token,
        "SPAPI_ENDPOINT": emu.url,
        "SPAPI_TOKEN_URL": emu.token_url,
        "SPAPI_MARKETPLACE_ID": MARKETPLACES[0].marketplace_id,
    }


def _exports(env: dict[str, str]) -> str:
    # Quoted for the shell: a refresh token holds "|".
    return "".join(f"export {name}={shlex.quote(value)}\n" for name, value in env.items())


def write_env_file(path: str | os.PathLike[str], env: dict[str, str]) -> None:
    """Write ``env`` as export lines to ``path``, readable and writable by its owner only.

    The lines hold a client secret: the file is made with mode 0600 from the start (a
    new file beside the target, then renamed over it), so it is never readable by
    others, not even for a moment, and an existing file or symlink there is replaced,
    not written through.
    """
    target = Path(path)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(_exports(env))
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def roster(emu: ServicesEmulator, marketplace_id: str | None = None) -> list[dict[str, Any]]:
    """The emulator's technicians (of one marketplace, if given), as the API would name
    their fields: ``resourceId``, ``name``, ``storeId``, ``marketplaceId``, ``skills``.

    The API has no call that lists them; in the emulator, whose world this is, they are
    known, and ``spapi-services emulator`` prints them so that a person trying the API
    has resource ids to assign.
    """
    store = emu.store
    found = []
    for shop in store.stores.values():
        if marketplace_id is not None and shop.marketplace_id != marketplace_id:
            continue
        for tech_id in shop.technicians:
            tech = store.resources[tech_id]
            found.append(
                {
                    "resourceId": tech.resource_id,
                    "name": tech.name,
                    "storeId": shop.store_id,
                    "marketplaceId": shop.marketplace_id,
                    "skills": sorted(tech.skills),
                }
            )
    return found


#: How many technicians of each store the banner shows (``--json`` lists them all).
_SHOWN_PER_STORE = 3


def _roster_lines(technicians: list[dict[str, Any]], marketplace_id: str) -> list[str]:
    lines = [
        f"Technicians in {marketplace_id}, by store (resource ids, for `appointments "
        "assign`; `spapi-services technicians JOB_ID` says who can take a job):"
    ]
    stores: dict[str, list[dict[str, Any]]] = {}
    for tech in technicians:
        stores.setdefault(tech["storeId"], []).append(tech)
    for store_id, techs in stores.items():
        lines.append(f"  store {store_id}")
        for tech in techs[:_SHOWN_PER_STORE]:
            lines.append(f"    {tech['resourceId']}  {', '.join(tech['skills'])}")
        if len(techs) > _SHOWN_PER_STORE:
            lines.append(f"    and {len(techs) - _SHOWN_PER_STORE} more (--json lists them all)")
    return lines


def _activity_facts(activity: Activity | None) -> dict[str, Any] | None:
    """The activity's rates for ``--json`` (``None``: the world stands still)."""
    if activity is None:
        return None
    return {
        "created_per_minute": activity.created_per_minute,
        "updated_per_minute": activity.updated_per_minute,
        "marketplace_id": activity.marketplace_id,
    }


def _rate(count: float, noun: str) -> str:
    return f"{count:g} {noun if count == 1 else noun + 's'}"


def _lifetime(seconds: float) -> str:
    """``30 s``, or ``500 ms`` under a second."""
    return f"{seconds:g} s" if seconds >= 1 else f"{_ms(seconds)} ms"


def _world_lines(emu: ServicesEmulator) -> list[str]:
    """What the banner says of how the world moves and pages, when not the defaults."""
    lines = []
    activity = emu.activity
    if activity is not None:
        rates = [
            _rate(activity.created_per_minute, "new job"),
            _rate(activity.updated_per_minute, "status move"),
        ]
        lines.append(f"Activity on: {' and '.join(rates)} a minute, in every seller's world.")
    ttl = emu.context.page_token_ttl
    if emu.context.paging != "keyset" or ttl is not None:
        kind = {"keyset": "keyset", "offset": "offset (positions in the result set)"}
        said = kind.get(emu.context.paging, emu.context.paging)
        expiry = "never expire" if ttl is None else f"expire {_lifetime(ttl)} after they are issued"
        lines.append(f"Page tokens: {said}; they {expiry}.")
    return lines


def _announce(emu: ServicesEmulator, as_json: bool, env_file: str | None = None) -> None:
    env = environment(emu)
    if env_file is not None:
        write_env_file(env_file, env)
    creds = emu.credentials
    marketplace_id = env["SPAPI_MARKETPLACE_ID"]
    facts = {
        "url": emu.url,
        "token_url": emu.token_url,
        "client_id": creds.client_id,
        "client_secret": creds.client_secret,
        "refresh_token": creds.refresh_token,
        "marketplace_id": marketplace_id,
        "mode": "static" if emu.static is not None else "live",
        "jobs": len(emu.store.jobs),
        "page_tokens": emu.context.paging,
        "page_token_ttl": emu.context.page_token_ttl,
        "activity": _activity_facts(emu.activity),
        "env": env,
        "technicians": roster(emu),
    }
    if env_file is not None:
        facts["env_file"] = str(env_file)
    if as_json:
        print(json.dumps(facts), flush=True)
        return
    print(f"Services API emulator ({facts['mode']}, {facts['jobs']} jobs) on {emu.url}")
    for line in _world_lines(emu):
        print(line)
    print("Point spapi-services (or ServicesClient()) at it in another shell with these lines:")
    print()
    print(_exports(env))
    if env_file is not None:
        print(f"(also written to {env_file}: run `source {shlex.quote(str(env_file))}` there)")
        print()
    local = roster(emu, marketplace_id)
    if local:
        print("\n".join(_roster_lines(local, marketplace_id)))
        print()
    print("Press Ctrl+C to stop.", flush=True)


async def _serve(emu: ServicesEmulator, as_json: bool, env_file: str | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        # Windows has no signal handlers in asyncio; Ctrl+C still ends asyncio.run there.
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    async with emu:
        _announce(emu, as_json, env_file)
        await stop.wait()


def serve(args: Any) -> int:
    """Build the emulator the options describe and serve it until stopped; the exit
    status.  ``args`` has an attribute per :data:`SETTINGS` entry (both parsers' result)."""
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    notes: list[str] = []
    try:
        emu = _emulator(args, notes)
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    try:
        asyncio.run(_serve(emu, args.json, args.env_file))
    except BrokenPipeError:
        silence_stdout()  # the reader of the banner went away (| head -1): stop quietly
        return EXIT_PIPE_CLOSED
    except OSError as exc:
        print(f"error: {_start_failure(exc, emu)}", file=sys.stderr)
        return 1
    return 0


def _start_failure(exc: OSError, emu: ServicesEmulator) -> str:
    """What to say when the emulator cannot start: for a port in use, one line with the
    way out, not the socket layer's wording."""
    if exc.errno == errno.EADDRINUSE:
        return (
            f"--port {emu.port}: the port is already in use on {emu.host}; "
            "give another, or --port 0 for a free one (the banner says which)"
        )
    return str(exc)


def main(argv: Sequence[str] | None = None, *, prog: str | None = None) -> int:
    """Run the emulator until stopped; ``prog`` is the name ``--help`` shows."""
    parser = build_parser(prog) if prog else build_parser()
    return serve(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
