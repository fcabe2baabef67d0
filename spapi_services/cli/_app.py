"""The ``spapi-services`` command group: global options, the client, and error reporting.

Every command body is a coroutine run with :func:`asyncio.run` by :func:`run`, which
also turns the SDK's exceptions into messages a person can act on: what the API said
(status, each error's code and message, the request id), which argument broke which
rule, or which environment variables are missing.  No tracebacks unless ``--debug``.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, NoReturn, TypeVar

import attrs
import click
from rich.console import Console
from rich.markup import escape

from .. import __version__
from .._auth import LwaCredentials
from .._client import Region, ServicesClient
from ..errors import (
    ApiConnectionError,
    ApiStatusError,
    AuthenticationError,
    OperationFailedError,
    ResponseDecodeError,
    SpApiError,
    UploadError,
)
from ..models.common import Error
from ._output import Output

__all__ = [
    "CliError",
    "Settings",
    "SetupError",
    "cli",
    "json_option",
    "open_client",
    "run",
    "settings",
]

T = TypeVar("T")

#: Exit status for an error the API (or the network) reported.
EXIT_API = 1
#: Exit status for arguments refused before anything was sent (click uses it too).
EXIT_USAGE = 2
#: Exit status after Ctrl-C.
EXIT_INTERRUPTED = 130


class CliError(click.ClickException):
    """A problem to report in one line; exits with :data:`EXIT_API` (1)."""

    def show(self, file: Any = None) -> None:
        """Print the message to stderr, in red, without click's usage text."""
        Console(stderr=True).print(f"[bold red]Error:[/bold red] {escape(self.message)}")


class SetupError(CliError):
    """Something to fix before anything can be sent (credentials, options); exits 2."""

    exit_code = EXIT_USAGE


@attrs.define
class Settings:
    """The global options, shared by every command through the click context."""

    region: str = "NA"
    sandbox: bool = False
    endpoint: str | None = None
    token_url: str | None = None
    marketplace: str | None = None
    as_json: bool = False
    debug: bool = False
    _output: Output | None = None

    @property
    def output(self) -> Output:
        if self._output is None:
            self._output = Output(as_json=self.as_json)
        return self._output


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
        help="Print the result as JSON (the API's field names) instead of a table.",
    )(fn)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="spapi-services")
@click.option(
    "--region",
    type=click.Choice([r.name for r in Region], case_sensitive=False),
    default="NA",
    show_default=True,
    envvar="SPAPI_REGION",
    help="SP-API region (its production or sandbox host).",
)
@click.option("--sandbox", is_flag=True, envvar="SPAPI_SANDBOX", help="Use the region's sandbox.")
@click.option(
    "--endpoint",
    envvar="SPAPI_ENDPOINT",
    metavar="URL",
    help="Another API base URL (a proxy, the local emulator).",
)
@click.option("--token-url", envvar="SPAPI_TOKEN_URL", metavar="URL", help="Another LWA token URL.")
@click.option(
    "--marketplace",
    envvar="SPAPI_MARKETPLACE_ID",
    metavar="ID",
    help="Marketplace id for operations that take one (e.g. ATVPDKIKX0DER).",
)
@click.option("--json", "as_json", is_flag=True, help="JSON output for every command.")
@click.option("--debug", is_flag=True, help="Log each request (no secrets) and show tracebacks.")
@click.pass_context
def cli(
    ctx: click.Context,
    region: str,
    sandbox: bool,
    endpoint: str | None,
    token_url: str | None,
    marketplace: str | None,
    as_json: bool,
    debug: bool,
) -> None:
    """Amazon SP-API Services API from the shell, plus a bulk sync and a local demo.

    Credentials come from SPAPI_CLIENT_ID, SPAPI_CLIENT_SECRET and SPAPI_REFRESH_TOKEN.
    Try it without any: `spapi-services demo`.
    """
    ctx.obj = Settings(
        region=region.upper(),
        sandbox=sandbox,
        endpoint=endpoint,
        token_url=token_url,
        marketplace=marketplace,
        as_json=as_json,
        debug=debug,
    )
    if debug:
        logging.basicConfig(format="%(asctime)s %(name)s %(message)s")
        logging.getLogger("spapi_services").setLevel(logging.DEBUG)


def credentials_from_env() -> LwaCredentials:
    """The LWA credentials from the environment, or a message naming what is missing."""
    try:
        return LwaCredentials.from_env()
    except ValueError as exc:
        raise SetupError(
            f"{exc}.  They are your LWA app's client id and secret and the selling "
            "partner's refresh token.  To try the tool without them: spapi-services demo"
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
        "token_url": opts.token_url,
        "marketplace_id": opts.marketplace,
    }
    kwargs.update(overrides)
    if "credentials" not in kwargs and "access_token_provider" not in kwargs:
        kwargs["credentials"] = credentials_from_env()
    async with ServicesClient(**kwargs) as client:
        yield client


def run(main: Callable[[], Awaitable[T]]) -> T:
    """Run a command's coroutine in a fresh event loop and report failures readably."""
    debug = settings().debug
    try:
        return asyncio.run(_call(main))
    except click.ClickException:
        raise
    except KeyboardInterrupt:
        Console(stderr=True).print("[yellow]Interrupted.[/yellow]")
        sys.exit(EXIT_INTERRUPTED)
    except Exception as exc:
        if debug:
            raise
        fail(exc)


async def _call(main: Callable[[], Awaitable[T]]) -> T:
    return await main()


def fail(exc: BaseException) -> NoReturn:
    """Print what went wrong and exit with the status that fits it."""
    err = Console(stderr=True)
    if isinstance(exc, ApiStatusError):
        where = f" from {exc.operation}" if exc.operation else ""
        err.print(f"[bold red]Error:[/bold red] the API answered HTTP {exc.status_code}{where}")
        _print_errors(err, exc.errors, exc.body)
        _print_request_id(err, exc.request_id)
        if exc.status_code == 429:
            err.print("The usage plan's bucket stayed empty through every retry; try later.")
        sys.exit(EXIT_API)
    if isinstance(exc, OperationFailedError):
        where = f" from {exc.operation}" if exc.operation else ""
        err.print(
            f"[bold red]Error:[/bold red] the API answered HTTP {exc.status_code}{where} "
            "but reported errors"
        )
        _print_errors(err, exc.errors, "")
        _print_request_id(err, exc.request_id)
        sys.exit(EXIT_API)
    if isinstance(exc, AuthenticationError):
        detail = ": ".join(x for x in (exc.error, exc.error_description) if x)
        err.print("[bold red]Error:[/bold red] Login with Amazon refused the credentials")
        err.print(f"  {escape(detail or str(exc))}")
        err.print("Check SPAPI_CLIENT_ID, SPAPI_CLIENT_SECRET and SPAPI_REFRESH_TOKEN.")
        sys.exit(EXIT_API)
    if isinstance(exc, ApiConnectionError):
        err.print(f"[bold red]Error:[/bold red] no answer from the API: {escape(str(exc))}")
        err.print("Check the network, and --endpoint / --region if you set them.")
        sys.exit(EXIT_API)
    if isinstance(exc, UploadError | ResponseDecodeError | SpApiError):
        err.print(f"[bold red]Error:[/bold red] {escape(str(exc))}")
        sys.exit(EXIT_API)
    if isinstance(exc, sqlite3.Error):
        err.print(f"[bold red]Error:[/bold red] the SQLite file: {escape(str(exc))}")
        sys.exit(EXIT_API)
    if isinstance(exc, OSError) and not isinstance(exc, FileNotFoundError | IsADirectoryError):
        err.print(f"[bold red]Error:[/bold red] {escape(str(exc))}")
        sys.exit(EXIT_API)
    if isinstance(exc, ValueError | TypeError | FileNotFoundError | IsADirectoryError):
        message = str(exc)
        if message.startswith("marketplace_id:"):
            message += "  (give --marketplace ID or set SPAPI_MARKETPLACE_ID)"
        err.print(f"[bold red]Invalid argument:[/bold red] {escape(message)}")
        err.print("Nothing was sent.", style="dim")
        sys.exit(EXIT_USAGE)
    raise exc


def _print_errors(err: Console, errors: tuple[Error, ...], body: str) -> None:
    if not errors:
        text = " ".join(body.split())[:300]
        err.print(f"  {escape(text) if text else '(no error details in the answer)'}")
        return
    for error in errors:
        line = f"  [bold]{escape(error.code)}[/bold]: {escape(error.message)}"
        if error.details:
            line += f" [dim]({escape(error.details)})[/dim]"
        err.print(line)


def _print_request_id(err: Console, request_id: str | None) -> None:
    if request_id:
        err.print(f"  request id: {escape(request_id)}  [dim](quote it to Amazon support)[/dim]")
