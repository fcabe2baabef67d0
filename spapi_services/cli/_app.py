"""The ``spapi-services`` command group: global options, the client, and error reporting.

A command parses its options, then makes one call of :func:`call_api` with the coroutine
that uses the client and the function that shows the result.  :func:`call_api` opens a
client configured from the global options, runs the coroutine in a fresh event loop, and
turns the SDK's exceptions into messages a person can act on (see :mod:`._failures`):
what the API said, which option broke which rule, which host could not be reached.  No
tracebacks unless ``--debug``.  With ``--json``, errors are JSON on stderr too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import warnings
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Iterator,
    Sequence,
)
from contextlib import asynccontextmanager
from typing import Any, NoReturn, TypeVar

import attrs
import click
from rich.logging import RichHandler
from rich.markup import escape

from .. import __version__, _serde
from .._auth import DEFAULT_TOKEN_URL, LwaCredentials
from .._client import Region, ServicesClient
from .._env import ConnectionSettings, connection_settings
from .._extras import extra_for, missing_extra_message
from .._pipes import EXIT_PIPE_CLOSED, silence_stdout
from ..errors import UnknownMarketplaceWarning
from ._failures import EXIT_INTERRUPTED, EXIT_USAGE, Failure, Reach, explain, from_click
from ._output import Output, fmt_time
from ._times import TIME_HELP, TimeParam, readings

__all__ = [
    "Argument",
    "Command",
    "Group",
    "Option",
    "Settings",
    "Show",
    "call_api",
    "cli",
    "collect",
    "confirm",
    "json_option",
    "json_or",
    "open_client",
    "run",
    "settings",
]

T = TypeVar("T")
Show = Callable[[Output, T], None]

_JSON_FLAG = "spapi_services.cli.json"


class Option(click.Option):
    """An option that may also name the SDK arguments its value ends up in.

    An option's destination is named after the SDK argument it is passed to, so messages
    about that argument can name the option instead; ``sdk_names`` lists any other names
    the SDK uses for the same value (a model field, a path in a request body).
    """

    def __init__(
        self,
        *args: Any,
        sdk_names: Sequence[str] = (),
        variable: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.sdk_names = tuple(sdk_names)
        self.variable = variable
        """The environment variable that stands in for the option (read by the SDK's
        own reader, not by click), for messages."""


class Argument(click.Argument):
    """An argument that may also name the SDK arguments its value ends up in (see
    :class:`Option`)."""

    def __init__(self, *args: Any, sdk_names: Sequence[str] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sdk_names = tuple(sdk_names)


class Command(click.Command):
    """A command whose help explains how times are read, if it takes any."""

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        super().format_epilog(ctx, formatter)
        if any(isinstance(p.type, TimeParam) for p in self.params):
            formatter.write_paragraph()
            with formatter.indentation():
                formatter.write_text(TIME_HELP)


class Group(click.Group):
    """A group whose commands and subgroups are :class:`Command` and :class:`Group`."""

    command_class = Command
    group_class = type


class _Root(Group):
    """The top group: click's own errors (a bad option...) become JSON with ``--json``."""

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        flagged = "--json" in (args[: args.index("--")] if "--" in args else args)
        try:
            ctx = super().make_context(info_name, args, parent, **extra)
        except click.ClickException as exc:
            raise _as_failure(exc, flagged) from None
        ctx.meta[_JSON_FLAG] = flagged
        return ctx

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            reader_gone()
        except click.ClickException as exc:
            opts = ctx.find_object(Settings)
            wanted = bool(ctx.meta.get(_JSON_FLAG)) or (opts is not None and opts.as_json)
            raise _as_failure(exc, wanted) from None


def reader_gone() -> NoReturn:
    """Stop quietly: whoever read the output (``head``, a pager) has closed the pipe (see
    :mod:`spapi_services._pipes` for the status, 141, and why)."""
    silence_stdout()
    raise SystemExit(EXIT_PIPE_CLOSED)


def _as_failure(exc: click.ClickException, as_json: bool) -> Failure:
    failure = exc if isinstance(exc, Failure) else from_click(exc)
    failure.as_json = failure.as_json or as_json
    return failure


@attrs.define
class Settings:
    """The global options, shared by every command through the click context.

    ``region``, ``sandbox``, ``endpoint``, ``token_url`` and ``marketplace`` are the
    options as given (``None`` when not), resolved with the ``SPAPI_*`` variables by the
    SDK's own reader on first use, so the command line and ``ServicesClient()`` agree.
    """

    _region: str | None = attrs.field(default=None, alias="region")
    _sandbox: bool | None = attrs.field(default=None, alias="sandbox")
    _endpoint: str | None = attrs.field(default=None, alias="endpoint")
    _token_url: str | None = attrs.field(default=None, alias="token_url")
    _marketplace: str | None = attrs.field(default=None, alias="marketplace")
    as_json: bool = False
    debug: bool = False
    otel_console: bool = False
    redis: str | None = None
    _output: Output | None = None
    _resolved: ConnectionSettings | None = None

    @property
    def output(self) -> Output:
        if self._output is None:
            self._output = Output(as_json=self.as_json)
        return self._output

    @property
    def connection(self) -> ConnectionSettings:
        """The options with the environment's values where none was given (checked)."""
        if self._resolved is None:
            try:
                self._resolved = connection_settings(
                    region=Region[self._region.upper()] if self._region else None,
                    sandbox=self._sandbox,
                    endpoint=self._endpoint,
                    token_url=self._token_url,
                    marketplace_id=self._marketplace,
                )
            except (ValueError, TypeError) as exc:
                failure = explain(exc, ctx=click.get_current_context(silent=True))
                if failure is None:  # pragma: no cover - explain takes every ValueError
                    raise
                failure.as_json = self.as_json
                raise failure from None
        return self._resolved

    @property
    def region(self) -> str:
        """The region's name (NA, EU or FE)."""
        return self.connection.region

    @property
    def sandbox(self) -> bool:
        """Whether the region's sandbox host is used."""
        return self.connection.sandbox

    @property
    def endpoint(self) -> str | None:
        """The API base URL given (``--endpoint``, ``SPAPI_ENDPOINT``), if any."""
        return self.connection.endpoint

    @property
    def token_url(self) -> str | None:
        """The LWA token URL given (``--token-url``, ``SPAPI_TOKEN_URL``), if any."""
        return self.connection.token_url

    @property
    def marketplace(self) -> str | None:
        """The default marketplace (``--marketplace``, ``SPAPI_MARKETPLACE_ID``), if any."""
        return self.connection.marketplace_id

    def api_base_url(self) -> str:
        """The API's base URL these settings choose (what the client will use)."""
        if self.endpoint:
            return self.endpoint
        region = Region[self.region]
        return region.sandbox_endpoint if self.sandbox else region.endpoint

    def reach(self) -> Reach:
        """Where requests go, for messages about hosts that cannot be reached."""
        return Reach(
            self.api_base_url(),
            self.token_url or DEFAULT_TOKEN_URL,
            token_url_given=self.token_url is not None,
        )


def settings() -> Settings:
    """The settings of the command being run."""
    obj = click.get_current_context().find_object(Settings)
    if obj is None:  # a command invoked outside the group (tests)
        obj = Settings()
    return obj


def json_option(fn: Callable[..., T]) -> Callable[..., T]:
    """``--json`` on a command, the same as the global ``--json``."""

    def mark(ctx: click.Context, _: click.Parameter, value: bool) -> None:
        if value:
            ctx.ensure_object(Settings).as_json = True
            ctx.ensure_object(Settings)._output = None

    return click.option(
        "--json",
        "as_json",
        is_flag=True,
        expose_value=False,
        callback=mark,
        help="Print the result as JSON (the API's field names) instead of a table; "
        "errors as JSON on stderr.",
    )(fn)


@click.group(
    cls=_Root,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="spapi-services")
@click.option(
    "--region",
    type=click.Choice([r.name for r in Region], case_sensitive=False),
    help="SP-API region (its production or sandbox host) [default: NA; env: SPAPI_REGION].",
)
@click.option(
    "--sandbox",
    is_flag=True,
    default=None,
    help="Use the region's sandbox [env: SPAPI_SANDBOX=1].",
)
@click.option(
    "--endpoint",
    metavar="URL",
    help="Another API base URL (a proxy, the local emulator) [env: SPAPI_ENDPOINT].",
)
@click.option(
    "--token-url",
    metavar="URL",
    help="Another LWA token URL (the emulator's) [env: SPAPI_TOKEN_URL].",
)
@click.option(
    "--marketplace",
    "marketplace_id",
    cls=Option,
    variable="SPAPI_MARKETPLACE_ID",
    metavar="ID",
    help="Marketplace id for operations that take one, e.g. ATVPDKIKX0DER "
    "[env: SPAPI_MARKETPLACE_ID].",
)
@click.option("--json", "as_json", is_flag=True, help="JSON output (and errors) for every command.")
@click.option("--debug", is_flag=True, help="Log each request (no secrets) and show tracebacks.")
@click.option(
    "--otel-console",
    is_flag=True,
    envvar="SPAPI_OTEL_CONSOLE",
    help="Print each call's OpenTelemetry span on stderr, and the metrics at the end "
    "(needs opentelemetry-sdk) [env: SPAPI_OTEL_CONSOLE].",
)
@click.option(
    "--redis",
    "redis_url",
    envvar="SPAPI_REDIS_URL",
    metavar="URL",
    help="Share the seller's usage plans and access token through this Redis with every "
    "other process using it, e.g. redis://localhost:6379/0 (needs the redis extra) "
    "[env: SPAPI_REDIS_URL].",
)
@click.pass_context
def cli(
    ctx: click.Context,
    region: str | None,
    sandbox: bool | None,
    endpoint: str | None,
    token_url: str | None,
    marketplace_id: str | None,
    as_json: bool,
    debug: bool,
    otel_console: bool,
    redis_url: str | None,
) -> None:
    """Amazon SP-API Services API from the shell, plus a bulk sync and a local demo.

    Credentials come from SPAPI_CLIENT_ID, SPAPI_CLIENT_SECRET and SPAPI_REFRESH_TOKEN.
    Try it without any: `spapi-services demo`.  Against the local emulator: run
    `spapi-services emulator --env-file emu.env` and, in another shell, `source emu.env`.
    """
    ctx.obj = Settings(
        region=region,
        sandbox=sandbox,
        endpoint=endpoint,
        token_url=token_url,
        marketplace=marketplace_id,
        as_json=as_json,
        debug=debug,
        otel_console=otel_console,
        redis=redis_url or None,
    )
    ctx.with_resource(_warnings_as_notes(ctx.obj))
    if debug:
        ctx.call_on_close(_log_requests())
    if otel_console:
        from ._telemetry import console_telemetry

        ctx.call_on_close(console_telemetry(sys.stderr))


@contextlib.contextmanager
def _warnings_as_notes(opts: Settings) -> Iterator[None]:
    """While a command runs, the SDK's warnings (an unknown marketplace id) are shown as
    one line each on stderr, or as JSON notes with --json, not in Python's file-and-line
    form, and shown whatever the process's warning filters say."""

    def show(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: Any = None,
        line: str | None = None,
    ) -> None:
        if not issubclass(category, UnknownMarketplaceWarning):
            shown(message, category, filename, lineno, file, line)
        elif opts.as_json:
            opts.output.note_json({"warning": "unknown_marketplace", "message": str(message)})
        else:
            opts.output.note(f"[yellow]warning[/yellow] {escape(str(message))}")

    with warnings.catch_warnings():
        shown = warnings.showwarning
        warnings.simplefilter("always", UnknownMarketplaceWarning)
        warnings.showwarning = show
        yield


class _NotShownTwice(logging.Filter):
    """Drops the SDK's record of an answer's warnings: the command prints them itself."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(record, "spapi_warnings", 0)


def _log_requests() -> Callable[[], None]:
    """Log the SDK's records to stderr; returns what undoes it."""
    # Only the SDK's own logger, on stderr: stdout stays the command's result.
    handler = RichHandler(
        console=Output(as_json=False).err, show_path=False, markup=False, rich_tracebacks=False
    )
    handler.addFilter(_NotShownTwice())
    logger = logging.getLogger("spapi_services")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)

    def undo() -> None:
        logger.removeHandler(handler)
        logger.setLevel(level)

    return undo


def credentials_from_env() -> LwaCredentials:
    """The LWA credentials from the environment, or a message naming what is missing."""
    try:
        return LwaCredentials.from_env()
    except ValueError as exc:
        raise Failure(
            f"{exc}.  They are your LWA app's client id and secret and the selling "
            "partner's refresh token.  To try the tool without them: spapi-services demo",
            kind="setup",
            exit_code=EXIT_USAGE,
        ) from None


@asynccontextmanager
async def open_client(
    opts: Settings | None = None, **overrides: Any
) -> AsyncIterator[ServicesClient]:
    """A client configured from the global options (closed on the way out)."""
    opts = opts or settings()
    kwargs: dict[str, Any] = {
        "region": Region[opts.region],
        "sandbox": opts.sandbox,
        "endpoint": opts.endpoint,
        "token_url": opts.token_url or DEFAULT_TOKEN_URL,
        "marketplace_id": opts.marketplace,
    }
    kwargs.update(overrides)
    if "credentials" not in kwargs and "access_token_provider" not in kwargs:
        kwargs["credentials"] = credentials_from_env()
    async with contextlib.AsyncExitStack() as stack:
        if opts.redis and "rate_limits" not in kwargs:
            plans, tokens = _shared_through(opts.redis)
            kwargs.update(rate_limits=plans, token_cache=tokens)
            stack.push_async_callback(plans.aclose)
            stack.push_async_callback(tokens.aclose)
        client = await stack.enter_async_context(ServicesClient(**kwargs))
        yield client


def _shared_through(url: str) -> tuple[Any, Any]:
    """The Redis-shared usage plans and token cache, or a message saying what is missing."""
    try:
        from ..redis import RedisRateLimits, RedisTokenCache
    except ImportError as exc:
        if extra_for(exc) != "redis":
            raise
        message = missing_extra_message("redis", "--redis")
        raise Failure(message, kind="setup", exit_code=EXIT_USAGE) from None
    try:
        return RedisRateLimits(url), RedisTokenCache(url)
    except ValueError as exc:
        raise Failure(f"--redis: {exc}", kind="setup", exit_code=EXIT_USAGE) from None


def json_or(show: Show[T]) -> Show[T]:
    """A renderer that prints the result itself as JSON with ``--json``, else ``show``s it."""

    def render(out: Output, result: T) -> None:
        if out.as_json:
            out.json(result)
        else:
            show(out, result)

    return render


def confirm(message: str) -> Show[object]:
    """A renderer that confirms a change (``{"ok": true, "message": ...}`` with --json)."""
    return lambda out, _: out.done(message)


async def collect(items: AsyncIterable[T]) -> list[T]:
    """Every item (or page) of an async iterator, in a list."""
    return [item async for item in items]


def call_api(work: Callable[[ServicesClient], Awaitable[T]], show: Show[T]) -> None:
    """Run ``work`` with a client made from the global options, then ``show`` its result.

    Says first how any local times among the options were read.  ``show`` gets the
    command's :class:`Output`, and prints a table or, with ``--json``, JSON
    (:func:`json_or` does both for the common case).
    """
    opts = settings()
    out = opts.output
    _say_how_times_were_read(out)

    async def main() -> T:
        async with open_client(opts) as client:
            return await work(client)

    show(out, run(main, opts))


def _say_how_times_were_read(out: Output) -> None:
    for option, reading in readings():
        if out.as_json:
            out.note_json(
                {
                    "note": "local time",
                    "option": option,
                    "input": reading.text,
                    "zone": reading.zone,
                    "instant": _serde.format_datetime(reading.instant),
                }
            )
        else:
            out.note(
                f"[dim]{escape(option)} {escape(reading.text)} is local time "
                f"({escape(reading.zone or '')}): {fmt_time(reading.instant)}[/dim]"
            )


def run(main: Callable[[], Coroutine[Any, Any, T]], opts: Settings | None = None) -> T:
    """Run a command's coroutine in a fresh event loop and report failures readably."""
    opts = opts or settings()
    try:
        return asyncio.run(main())
    except (click.ClickException, BrokenPipeError):
        raise  # a closed pipe is no failure to report: the command line stops quietly
    except KeyboardInterrupt:
        failure = Failure(
            "stopped by Ctrl-C", kind="interrupted", exit_code=EXIT_INTERRUPTED, label="Interrupted"
        )
        failure.as_json = opts.as_json
        raise failure from None
    except Exception as exc:
        if opts.debug:
            raise
        explained = explain(exc, reach=opts.reach(), ctx=click.get_current_context(silent=True))
        if explained is None:
            raise
        explained.as_json = opts.as_json
        raise explained from None
