"""``spapi-services fleet``: run and watch a fleet of sellers (:mod:`spapi_services.fleet`).

``worker`` runs taskiq worker processes, ``schedule`` the scheduler, ``add-seller`` puts a
seller in the directory (its refresh token from an environment variable or typed at a
hidden prompt, never an argument that shells and ``ps`` keep), ``enqueue`` sends syncs
now, ``status`` tells how every seller is doing (a table, ``--json``, or ``--serve``: a
page that refreshes itself), ``webhooks set|list|test|remove`` manages where the
mirror's changes are posted, ``redeliver`` sends changes again, ``new-key`` makes a
directory key and ``demo`` runs it all on this machine.

Every process of a fleet reads the same environment: the Redis from ``--redis`` or
``SPAPI_REDIS_URL``, the PostgreSQL from ``fleet --database`` or ``SPAPI_DATABASE_URL``
(``SPAPI_FLEET_REDIS_URL`` and ``SPAPI_FLEET_DATABASE_URL`` too), the directory key
``SPAPI_FLEET_DIRECTORY_KEY``, the app's ``SPAPI_CLIENT_ID`` and ``SPAPI_CLIENT_SECRET``,
and the other ``SPAPI_FLEET_*`` options :meth:`Fleet.from_env` reads.  Each command asks
only for what it uses (``status`` and ``clear-refusal`` need no secret), and a missing
one is named before anything connects.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import click
from rich.markup import escape
from yarl import URL

from .._client import Region
from ._app import Group, json_option, run, settings
from ._failures import EXIT_USAGE, Failure
from ._output import Output, fmt_time, plural
from ._times import TIME

if TYPE_CHECKING:
    from ..fleet import Fleet, SellerStatus, WebhookStatus

__all__ = ["fleet"]

T = TypeVar("T")

_DATABASE = "spapi_services.cli.fleet.database"
_LOG_LEVELS = ["DEBUG", "INFO", "WARNING", "ERROR"]


def _setup_failure(message: str, **data: Any) -> Failure:
    return Failure(message, kind="setup", exit_code=EXIT_USAGE, data=data)


def _fleet_package() -> Any:
    """:mod:`spapi_services.fleet`, or a message naming the extra it needs."""
    try:
        from .. import fleet as package
    except ImportError as exc:
        raise _setup_failure(str(exc)) from None
    return package


#: What a command needs beside the two servers: the directory key, the app's credentials.
KEY = "directory key"
APP = "app credentials"


def fleet_environment(
    environ: Mapping[str, str],
    *,
    redis_url: str | None,
    database_url: str | None,
    needs: tuple[str, ...] = (KEY, APP),
) -> dict[str, str]:
    """The ``SPAPI_FLEET_*`` environment a fleet is built from, or a failure naming the
    first variable missing (checked before anything connects).  ``needs`` says which of
    the secrets the command uses: reading the status needs none."""
    env = dict(environ)
    redis_url = redis_url or env.get("SPAPI_FLEET_REDIS_URL", "").strip()
    if not redis_url:
        raise _setup_failure(
            "set SPAPI_REDIS_URL (or --redis) to the fleet's Redis, e.g. redis://localhost:6379/0",
            variable="SPAPI_REDIS_URL",
        )
    database_url = database_url or env.get("SPAPI_FLEET_DATABASE_URL", "").strip()
    if not database_url:
        raise _setup_failure(
            "set SPAPI_DATABASE_URL (or fleet --database) to the fleet's PostgreSQL, e.g. "
            "postgresql://sync@localhost/mirror",
            variable="SPAPI_DATABASE_URL",
        )
    if KEY in needs and not env.get("SPAPI_FLEET_DIRECTORY_KEY", "").strip():
        raise _setup_failure(
            "set SPAPI_FLEET_DIRECTORY_KEY to the key that seals the sellers' refresh "
            "tokens (the same in every process; make one with `spapi-services fleet "
            "new-key`)",
            variable="SPAPI_FLEET_DIRECTORY_KEY",
        )
    for name in ("SPAPI_CLIENT_ID", "SPAPI_CLIENT_SECRET"):
        if APP in needs and not env.get(name, "").strip():
            raise _setup_failure(
                f"set {name}: the fleet's workers sign in as your LWA app "
                "(SPAPI_CLIENT_ID and SPAPI_CLIENT_SECRET)",
                variable=name,
            )
    env["SPAPI_FLEET_REDIS_URL"] = redis_url
    env["SPAPI_FLEET_DATABASE_URL"] = database_url
    return env


def build_fleet(*, needs: tuple[str, ...] = (KEY, APP), **overrides: Any) -> Fleet:
    """The fleet the command line's options and environment describe."""
    package = _fleet_package()
    opts = settings()
    ctx = click.get_current_context()
    env = fleet_environment(
        os.environ, redis_url=opts.redis, database_url=ctx.meta.get(_DATABASE), needs=needs
    )
    # The client's own options reach the fleet unless its SPAPI_FLEET_* variables say
    # otherwise: `source emu.env` points both at the emulator.
    if opts.endpoint and not env.get("SPAPI_FLEET_ENDPOINT"):
        overrides.setdefault("endpoint", opts.endpoint)
    if opts.token_url and not env.get("SPAPI_FLEET_TOKEN_URL"):
        overrides.setdefault("token_url", opts.token_url)
    if opts.sandbox:
        overrides.setdefault("sandbox", True)
    try:
        built: Fleet = package.Fleet.from_env(env, **overrides)
    except (ValueError, TypeError) as exc:
        raise _setup_failure(str(exc)) from None
    return built


def _shown(url: str) -> str:
    """A server URL without its password, for messages."""
    try:
        return str(URL(url).with_password(None))
    except (ValueError, TypeError):
        return "(unparsable URL)"


def with_fleet(work: Callable[[Fleet], Awaitable[T]], fleet: Fleet | None = None) -> T:
    """Run ``work`` with the fleet in a fresh event loop; the fleet closed after, and its
    servers' errors told as such."""
    built = fleet or build_fleet()

    async def main() -> T:
        try:
            return await work(built)
        finally:
            with contextlib.suppress(Exception):
                await built.aclose()

    return run(lambda: _explained(main(), built))


async def _explained(work: Coroutine[Any, Any, T], fleet: Fleet) -> T:
    from asyncpg import InterfaceError, PostgresError
    from redis.exceptions import RedisError

    try:
        return await work
    except RedisError as exc:
        raise Failure(
            f"the fleet's Redis ({_shown(fleet.redis_url)}): {exc}", kind="redis"
        ) from None
    except (PostgresError, InterfaceError, OSError) as exc:
        raise Failure(
            f"the fleet's PostgreSQL ({_shown(fleet.database_url)}): {exc}", kind="postgres"
        ) from None


# --- the group ---------------------------------------------------------------------------


@click.group(cls=Group)
@click.option(
    "--database",
    "database_url",
    envvar="SPAPI_DATABASE_URL",
    metavar="URL",
    help="The fleet's PostgreSQL (mirror, sellers, status), e.g. postgresql://sync@db/mirror "
    "[env: SPAPI_DATABASE_URL or SPAPI_FLEET_DATABASE_URL].",
)
@click.pass_context
def fleet(ctx: click.Context, database_url: str | None) -> None:
    """Many sellers synced into PostgreSQL by worker processes (needs the fleet extra).

    Every command reads the fleet from the environment: the Redis (--redis,
    SPAPI_REDIS_URL), the PostgreSQL (--database, SPAPI_DATABASE_URL), the directory key
    (SPAPI_FLEET_DIRECTORY_KEY), your LWA app (SPAPI_CLIENT_ID, SPAPI_CLIENT_SECRET) and
    any other SPAPI_FLEET_* option.  Try it all locally first: `spapi-services fleet demo`.
    """
    ctx.meta[_DATABASE] = database_url or None


# --- worker and scheduler ----------------------------------------------------------------


@fleet.command()
@click.option(
    "--workers",
    type=click.IntRange(1, 256),
    default=1,
    show_default=True,
    help="Worker processes (each syncs many sellers at once; one per core is a start).",
)
@click.option(
    "--max-async-tasks",
    type=click.IntRange(1, 10_000),
    default=50,
    show_default=True,
    help="Sellers one process syncs at the same time.",
)
@click.option(
    "--wait-tasks-timeout",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    help="On SIGTERM, how long running syncs may finish before the worker exits (default: "
    "as long as they take); one cut short is resumed by another worker.",
)
@click.option(
    "--log-level",
    type=click.Choice(_LOG_LEVELS, case_sensitive=False),
    default="INFO",
    show_default=True,
)
def worker(
    workers: int, max_async_tasks: int, wait_tasks_timeout: float | None, log_level: str
) -> None:
    """Run taskiq worker processes that sync sellers as their tasks arrive.

    SIGTERM (or Ctrl-C) stops them gracefully: no new task is taken, running syncs
    finish (see --wait-tasks-timeout).  A worker killed outright loses nothing: its
    tasks go to another worker once its lease runs out, and resume from the checkpoint.
    """
    built = build_fleet()
    Output(as_json=False).note(
        f"[dim]fleet worker: {plural(workers, 'process', 'processes')}, up to "
        f"{max_async_tasks} sellers each, queue {escape(built.broker.queue_name)} on "
        f"{escape(_shown(built.redis_url))}[/dim]"
    )
    status = built.run_worker(
        workers=workers,
        max_async_tasks=max_async_tasks,
        log_level=log_level.upper(),
        wait_tasks_timeout=wait_tasks_timeout,
    )
    if status:
        raise SystemExit(1)


@fleet.command()
@click.option(
    "--every",
    type=click.FloatRange(min=1 / 60),
    metavar="MINUTES",
    help="Sync each seller every this many minutes [default: SPAPI_FLEET_INTERVAL_MINUTES, "
    "else 15].",
)
@click.option(
    "--update-interval",
    type=click.IntRange(1, 86_400),
    default=60,
    show_default=True,
    metavar="SECONDS",
    help="How often the list of sellers is read again (new sellers join then).",
)
@click.option(
    "--log-level",
    type=click.Choice(_LOG_LEVELS, case_sensitive=False),
    default="INFO",
    show_default=True,
)
def schedule(every: float | None, update_interval: int, log_level: str) -> None:
    """Run the scheduler: every seller's sync sent every interval (run one per fleet).

    A seller still running, or whose last task still waits, is skipped that round; a
    seller whose refresh token Amazon refused is left out until its token changes.
    SIGTERM or Ctrl-C stops it.
    """
    overrides = {} if every is None else {"interval": timedelta(minutes=every)}
    built = build_fleet(needs=(KEY,), **overrides)
    minutes = built.interval.total_seconds() / 60
    Output(as_json=False).note(
        f"[dim]fleet scheduler: every seller every {minutes:g} min; sellers re-read "
        f"every {update_interval} s[/dim]"
    )
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        built.run_scheduler(log_level=log_level.upper(), update_interval=update_interval)
    except KeyboardInterrupt:
        Output(as_json=False).note("[dim]fleet scheduler stopped[/dim]")
    finally:
        signal.signal(signal.SIGTERM, previous)


# --- sellers -----------------------------------------------------------------------------


def _refresh_token(variable: str | None) -> str:
    """The refresh token: from the named variable, else a hidden prompt on a terminal,
    else the first line of standard input."""
    if variable is not None:
        token = os.environ.get(variable, "").strip()
        if not token:
            raise _setup_failure(
                f"--token-env: the variable {variable} is not set (or empty)",
                option="--token-env",
                variable=variable,
            )
        return token
    stdin = sys.stdin
    if stdin.isatty():
        token = str(click.prompt("Refresh token", hide_input=True, err=True)).strip()
    else:
        token = stdin.readline().strip()
    if not token:
        raise _setup_failure(
            "no refresh token: give --token-env NAME, or type it at the prompt (or pipe it "
            "on standard input)",
            option="--token-env",
        )
    return token


@fleet.command("add-seller")
@click.argument("seller_id")
@click.option(
    "--marketplace",
    "marketplace_ids",
    multiple=True,
    required=True,
    metavar="ID",
    help="A marketplace to sync (repeat for several), e.g. ATVPDKIKX0DER.",
)
@click.option(
    "--token-env",
    metavar="NAME",
    help="Read the seller's refresh token from this environment variable.  Without it "
    "the token is asked for at a hidden prompt (or read from standard input's first "
    "line); it is never an argument, which shell history and ps would keep.",
)
@click.option(
    "--seller-region",
    "seller_region",
    type=click.Choice([r.name for r in Region], case_sensitive=False),
    help="The seller's SP-API region [default: the global --region].",
)
@click.option("--disabled", is_flag=True, help="Keep the seller but do not sync it.")
@json_option
def add_seller(
    seller_id: str,
    marketplace_ids: tuple[str, ...],
    token_env: str | None,
    seller_region: str | None,
    disabled: bool,
) -> None:
    """Add a seller to the fleet's directory, or update it (its token sealed there).

    A new refresh token also clears a refusal: the seller is synced again.
    """
    package = _fleet_package()
    region = (seller_region or settings().region).upper()
    # The seller's fields are checked before its token is asked for.
    try:
        package.Seller(
            seller_id=seller_id,
            refresh_token="-",
            marketplace_ids=marketplace_ids,
            region=region,
            enabled=not disabled,
        )
    except (ValueError, TypeError) as exc:
        raise Failure(str(exc), kind="invalid_argument", exit_code=EXIT_USAGE) from None
    built = build_fleet(needs=(KEY,))
    token = _refresh_token(token_env)

    async def add(f: Fleet) -> None:
        await f.add_seller(
            seller_id, token, list(marketplace_ids), region=region, enabled=not disabled
        )

    with_fleet(add, built)
    state = "kept, not synced" if disabled else "synced from the next round on"
    settings().output.done(
        f"seller {seller_id}: {', '.join(marketplace_ids)} ({region}), refresh token sealed "
        f"in the directory; {state}"
    )


@fleet.command()
@click.argument("seller_ids", nargs=-1)
@json_option
def enqueue(seller_ids: tuple[str, ...]) -> None:
    """Send sellers' syncs now (default: every due seller), unless running or queued."""

    async def send(f: Fleet) -> tuple[list[str], list[str]]:
        if seller_ids:
            known = set(await f.directory.seller_ids())
            unknown = [s for s in seller_ids if s not in known]
            if unknown:
                raise Failure(
                    f"no such seller in the directory (or it is disabled): {', '.join(unknown)}",
                    kind="invalid_argument",
                    exit_code=EXIT_USAGE,
                    data={"sellers": unknown},
                )
        wanted = list(seller_ids) or await f.due_seller_ids()
        sent = [s for s in wanted if await f.enqueue(s)]
        return sent, [s for s in wanted if s not in sent]

    sent, skipped = with_fleet(send, build_fleet(needs=(KEY,)))
    out = settings().output
    if out.as_json:
        out.json({"sent": sent, "skipped": skipped})
        return
    out.say(f"[green]✓[/green] sent {plural(len(sent), 'sync')}: {escape(', '.join(sent))}")
    if skipped:
        out.say(f"skipped (running or queued): {escape(', '.join(skipped))}")


@fleet.command("clear-refusal")
@click.argument("seller_id")
@json_option
def clear_refusal(seller_id: str) -> None:
    """Sync a seller again although Amazon refused its current refresh token."""
    cleared = with_fleet(lambda f: f.clear_refusal(seller_id), build_fleet(needs=()))
    out = settings().output
    if out.as_json:
        out.json({"sellerId": seller_id, "cleared": cleared})
    elif cleared:
        out.done(f"seller {seller_id}: refusal cleared; the next round syncs it")
    else:
        out.say(f"seller {escape(seller_id)} was not marked refused: nothing to clear")


@fleet.command("new-key")
@json_option
def new_key() -> None:
    """Print a new random directory key (for SPAPI_FLEET_DIRECTORY_KEY)."""
    key = _fleet_package().DirectoryKey.generate()
    out = settings().output
    if out.as_json:
        out.json({"key": key})
    else:
        click.echo(key)


# --- status ------------------------------------------------------------------------------


@fleet.command()
@click.option("--serve", is_flag=True, help="Serve a status page that refreshes itself.")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="The address the page listens on.  It has no login: keep it on loopback, or "
    "behind a proxy that has one.",
)
@click.option(
    "--allow-host",
    "allow_hosts",
    multiple=True,
    metavar="NAME",
    help="A name the page is reached by (a proxy's, the machine's); repeat for several.  "
    "Requests naming any other host are refused, so a web page elsewhere cannot read "
    "the status through DNS rebinding (IP addresses and, on loopback, localhost are "
    "always answered).",
)
@click.option(
    "--port", type=click.IntRange(0, 65535), default=8765, show_default=True, help="0: any."
)
@click.option(
    "--refresh",
    type=click.FloatRange(min=1),
    default=5.0,
    show_default=True,
    metavar="SECONDS",
    help="How often the page reloads itself.",
)
@click.option(
    "--chart-hours",
    type=click.FloatRange(min=0.01),
    default=24.0,
    show_default=True,
    help="How far back the page's chart of the mirror reaches.",
)
@json_option
def status(
    serve: bool,
    host: str,
    allow_hosts: tuple[str, ...],
    port: int,
    refresh: float,
    chart_hours: float,
) -> None:
    """Every seller: state, last success, lag, jobs, 429s, last error (--json, --serve).

    The lag is how far behind now the seller's mirror is (its oldest marketplace's
    checkpoint).  --serve keeps running, serving the same as a page on
    http://HOST:PORT/ (and /status.json) until Ctrl-C.  Needs the servers only: no
    directory key, no app credentials.
    """
    from ..fleet._page import allowed_hosts, status_json

    if serve:
        names = allowed_hosts(host, allow_hosts)
        _serve(build_fleet(needs=()), host, port, refresh, timedelta(hours=chart_hours), names)
        return

    async def read(f: Fleet) -> tuple[list[SellerStatus], list[WebhookStatus], int]:
        return await f.status(), await f.webhooks(), await f.outbox_backlog()

    statuses, webhooks, backlog = with_fleet(read, build_fleet(needs=()))
    out = settings().output
    if out.as_json:
        out.json(status_json(statuses, webhooks=webhooks, backlog=backlog))
    else:
        show_statuses(out, statuses)
        if webhooks or backlog:
            show_webhooks(out, webhooks, backlog)


def show_statuses(out: Output, statuses: list[SellerStatus]) -> None:
    """The sellers' status as a table, and a line counting them by state."""
    from ..fleet._page import REFUSED_HINT, duration

    rows = []
    for s in statuses:
        state = "running" if s.running else s.state
        if s.queued:
            state += " (queued)"
        jobs = "-" if s.jobs is None else f"{s.jobs:,} ({s.jobs_total:,})"
        throttled = "-" if s.throttled is None else f"{s.throttled} ({s.throttled_total})"
        rows.append(
            [
                s.seller_id,
                state,
                fmt_time(s.last_success_at),
                duration(s.lag),
                jobs,
                throttled,
                s.last_error or "-",
            ]
        )
    out.table(
        None,
        [
            "seller",
            "state",
            "last success",
            "lag",
            "jobs written (all)",
            "429s (all)",
            "last error",
        ],
        rows,
        caption="jobs written and 429s: the last run's (every run's); a job stored again "
        "counts again, the mirror holds it once",
    )
    counted: dict[str, int] = {}
    for s in statuses:
        counted[s.state] = counted.get(s.state, 0) + 1
    parts = ", ".join(f"{n} {state}" for state, n in sorted(counted.items()))
    out.say(f"{plural(len(statuses), 'seller')}" + (f": {escape(parts)}" if parts else ""))
    for s in statuses:
        if s.state == "refused":
            out.say(f"{escape(s.seller_id)}: " + escape(REFUSED_HINT.format(seller=s.seller_id)))
    if any(s.redis_unreachable for s in statuses):
        out.say(
            "[yellow]Redis unreachable:[/yellow] which sellers are running or queued right "
            "now is unknown; the rest comes from PostgreSQL."
        )


def show_webhooks(out: Output, webhooks: list[WebhookStatus], backlog: int | None) -> None:
    """The webhook endpoints as a table, and the changes not yet handed to them."""
    rows = []
    for w in webhooks:
        state = "enabled" if w.enabled else f"disabled ({w.disabled_reason or 'by hand'})"
        if w.enabled and w.paused_until is not None:
            state = "held back"
        failure = w.last_error or "-"
        if w.last_error and w.last_error_at is not None:
            failure += f" ({fmt_time(w.last_error_at)})"
        rows.append(
            [
                w.endpoint_id,
                w.url,
                w.seller_id or "all",
                state,
                f"{w.delivered:,}",
                f"{w.pending:,}",
                f"{w.dead:,}",
                failure,
            ]
        )
    out.table(
        None,
        ["endpoint", "url", "sellers", "state", "delivered", "pending", "dead", "last failure"],
        rows,
        caption="dead: given up after the last retry (fleet redeliver --dead sends them again)",
    )
    if backlog:
        out.say(f"{plural(backlog, 'change')} not yet handed to the endpoints")


def _serve(
    built: Fleet,
    host: str,
    port: int,
    refresh: float,
    window: timedelta,
    names: frozenset[str] = frozenset({"localhost"}),
) -> None:
    from aiohttp import web

    from ..fleet._page import status_app

    out = settings().output

    async def serve() -> None:
        await built.status()  # a wrong URL fails here, not at the first visit
        runner = web.AppRunner(
            status_app(built, refresh=refresh, window=window, hosts=names),
            access_log=None,
            handle_signals=False,
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, host, port)
            await site.start()
            bound = runner.addresses[0]
            shown_host = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
            url = f"http://{shown_host}:{bound[1]}/"
            if out.as_json:
                out.json({"url": url})
            else:
                out.say(f"Serving the fleet's status on [cyan]{url}[/cyan] (Ctrl-C stops)")
                sys.stdout.flush()
            if host not in ("127.0.0.1", "localhost", "::1"):
                out.note(f"[yellow]The page has no login: anyone reaching {url} sees it.")
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            loop.add_signal_handler(signal.SIGTERM, stop.set)
            try:
                await stop.wait()
            finally:
                loop.remove_signal_handler(signal.SIGTERM)
        finally:
            await runner.cleanup()

    try:
        with_fleet(lambda _: serve(), built)
    except Failure as failure:
        if failure.kind != "interrupted":
            raise
    if not out.as_json:
        out.note("[dim]status page stopped[/dim]")


# --- webhooks ----------------------------------------------------------------------------


@fleet.group(cls=Group)
def webhooks() -> None:
    """Where the mirror's changes are posted: set, list, test and remove endpoints.

    Every change a sync stores (a job new to the mirror, or changed) is posted by the
    workers to each endpoint that takes it, signed as Standard Webhooks; a failed
    delivery is tried again over about three days, then dead-lettered (see `fleet
    redeliver`).  Receivers on private or loopback addresses are refused unless
    SPAPI_FLEET_WEBHOOK_ALLOW_NETWORKS lists their network (the same in every process).
    """


def _secret_from(variable: str | None) -> str | None:
    if variable is None:
        return None
    text = os.environ.get(variable, "").strip()
    if not text:
        raise _setup_failure(
            f"--secret-env: the variable {variable} is not set (or empty)",
            option="--secret-env",
            variable=variable,
        )
    return text


@webhooks.command("set")
@click.argument("url")
@click.option("--id", "endpoint_id", metavar="ID", help="The endpoint's id (new: random).")
@click.option("--seller", "seller_id", metavar="SELLER", help="Only this seller's changes.")
@click.option(
    "--event-type",
    "event_types",
    multiple=True,
    type=click.Choice(["service_job.created", "service_job.updated"]),
    help="Only these event types (repeat for both; default: both).",
)
@click.option(
    "--buyer-data",
    type=click.Choice(["keep", "hash", "drop"]),
    default="keep",
    show_default=True,
    help="What the endpoint gets of the buyer's name, phone and address (hash: keyed "
    "hashes made with SPAPI_FLEET_BUYER_KEY).",
)
@click.option(
    "--secret-env",
    metavar="NAME",
    help="Sign with the secret (whsec_...; several, space-separated, while rotating) in "
    "this environment variable.  Without it a new secret is made and shown once.",
)
@json_option
def webhooks_set(
    url: str,
    endpoint_id: str | None,
    seller_id: str | None,
    event_types: tuple[str, ...],
    buyer_data: str,
    secret_env: str | None,
) -> None:
    """Post the mirror's changes to URL from now on (or change endpoint --id).

    The secret is sealed with the directory key before it is stored; a new one is
    printed once, for the receiver.
    """
    secret = _secret_from(secret_env)
    built = build_fleet(needs=(KEY,))

    async def put(f: Fleet) -> Any:
        try:
            return await f.set_webhook(
                url,
                secret=secret,
                endpoint_id=endpoint_id,
                seller_id=seller_id,
                event_types=event_types or None,
                buyer_data=buyer_data,
            )
        except ValueError as exc:
            raise Failure(str(exc), kind="invalid_argument", exit_code=EXIT_USAGE) from None

    endpoint = with_fleet(put, built)
    made = secret is None
    shown_secret = endpoint.secrets[0].export() if made else None
    out = settings().output
    if out.as_json:
        out.json(
            {
                "endpointId": endpoint.id,
                "url": endpoint.origin,
                "sellerId": endpoint.seller_id,
                "secret": shown_secret,
            }
        )
        return
    scope = f"seller {seller_id}'s" if seller_id else "every seller's"
    out.done(f"endpoint {endpoint.id}: {scope} changes go to {endpoint.origin}")
    if shown_secret is not None:
        out.say(
            "Its signing secret (give it to the receiver; it is not shown again):\n"
            f"{escape(shown_secret)}"
        )


@webhooks.command("list")
@json_option
def webhooks_list() -> None:
    """Every endpoint, and how its deliveries go (needs no secret)."""

    async def read(f: Fleet) -> tuple[list[WebhookStatus], int]:
        return await f.webhooks(), await f.outbox_backlog()

    found, backlog = with_fleet(read, build_fleet(needs=()))
    out = settings().output
    if out.as_json:
        out.json({"backlog": backlog, "endpoints": [w.as_json() for w in found]})
    elif not found:
        out.say("No webhook endpoints: add one with `spapi-services fleet webhooks set URL`.")
    else:
        show_webhooks(out, found, backlog)


@webhooks.command("test")
@click.argument("endpoint_id")
@json_option
def webhooks_test(endpoint_id: str) -> None:
    """Post a signed test message (type webhook.test) to an endpoint now, from here.

    Exits 1 unless the receiver answers 2xx.  Nothing is recorded or retried.
    """

    async def attempt(f: Fleet) -> Any:
        try:
            return await f.test_webhook(endpoint_id)
        except ValueError as exc:
            raise Failure(str(exc), kind="invalid_argument", exit_code=EXIT_USAGE) from None

    result = with_fleet(attempt, build_fleet(needs=(KEY,)))
    out = settings().output
    delivered = result.outcome.value == "delivered"
    if out.as_json:
        out.json(
            {
                "endpointId": endpoint_id,
                "outcome": result.outcome.value,
                "status": result.status,
                "error": result.error,
                "elapsedSeconds": round(result.elapsed, 3),
            }
        )
    elif delivered:
        out.done(f"endpoint {endpoint_id}: HTTP {result.status} in {result.elapsed:.2f} s")
    if not delivered:
        raise Failure(
            f"endpoint {endpoint_id}: {result.error or result.outcome.value}",
            kind="webhook",
            data={"status": result.status},
        )


@webhooks.command("remove")
@click.argument("endpoint_id")
@json_option
def webhooks_remove(endpoint_id: str) -> None:
    """Stop posting to an endpoint (its pending deliveries and dead letters go too)."""
    removed = with_fleet(lambda f: f.remove_webhook(endpoint_id), build_fleet(needs=()))
    out = settings().output
    if out.as_json:
        out.json({"endpointId": endpoint_id, "removed": removed})
    elif removed:
        out.done(f"endpoint {endpoint_id} removed")
    else:
        raise Failure(
            f"no webhook endpoint {endpoint_id!r}", kind="invalid_argument", exit_code=EXIT_USAGE
        )


@fleet.command()
@click.option("--dead", is_flag=True, help="Send the dead letters again.")
@click.option(
    "--message",
    "message_ids",
    multiple=True,
    metavar="WEBHOOK_ID",
    help="Send this change again (its webhook-id, msg_...); repeat for several.",
)
@click.option("--since", type=TIME, help="Send every change recorded from this time on.")
@click.option("--until", type=TIME, help="With --since: up to this time.")
@click.option("--endpoint", "endpoint_id", metavar="ID", help="To this endpoint only.")
@click.option("--seller", "seller_id", metavar="SELLER", help="This seller's changes only.")
@json_option
def redeliver(
    dead: bool,
    message_ids: tuple[str, ...],
    since: Any,
    until: Any,
    endpoint_id: str | None,
    seller_id: str | None,
) -> None:
    """Send changes to the webhook endpoints again, each with its webhook-id.

    Give --dead (the dead letters), --message (changes by webhook-id, delivered or not)
    or --since (every change recorded since then that the outbox still keeps: 7 days by
    default).  An endpoint gets what it takes, even one set after the change was
    recorded; one disabled by a 410 is enabled again.  Receivers de-duplicate by
    webhook-id, so sending again is safe.
    """
    if not (dead or message_ids or since is not None):
        raise Failure(
            "say what to send again: --dead, --message WEBHOOK_ID or --since TIME",
            kind="invalid_argument",
            exit_code=EXIT_USAGE,
            data={"option": "--dead"},
        )
    if until is not None and since is None:
        raise Failure("--until: give --since too", kind="invalid_argument", exit_code=EXIT_USAGE)

    async def again(f: Fleet) -> int:
        try:
            return await f.redeliver(
                endpoint_id=endpoint_id,
                dead=dead,
                message_ids=message_ids,
                since=since,
                until=until,
                seller_id=seller_id,
            )
        except ValueError as exc:
            raise Failure(str(exc), kind="invalid_argument", exit_code=EXIT_USAGE) from None

    count = with_fleet(again, build_fleet(needs=()))
    out = settings().output
    if out.as_json:
        out.json({"deliveries": count})
    else:
        out.done(f"{plural(count, 'delivery', 'deliveries')} sent again by the workers")


def _register_demo() -> None:
    from ._fleet_demo import demo

    fleet.add_command(demo)


_register_demo()
