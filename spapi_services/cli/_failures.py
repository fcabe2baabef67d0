"""What went wrong, told to a person, or with ``--json`` to a program, and the exit status.

A :class:`Failure` is printed as a few lines on stderr, or as one JSON object
``{"error": {"kind": ..., "message": ..., ...}}`` on stderr with ``--json``; the exit
status is the same either way: 1 for what the API or the network reported, 2 for
arguments refused before anything was sent, 130 after Ctrl-C.

:func:`explain` turns the SDK's exceptions into failures.  The SDK names its own
arguments in its messages (``content_type=``, ``query.slot_duration``); :func:`translate`
renames them after the options of the command being run (``--content-type``,
``--slot-duration``), from the command's click parameters.
"""

from __future__ import annotations

import json
import re
import sqlite3
import sys
from collections.abc import Iterator, Mapping, Sequence
from typing import IO, Any

import attrs
import click
from rich.markup import escape
from yarl import URL

from .._extras import corrected
from ..errors import (
    ApiConnectionError,
    ApiStatusError,
    ApiTimeoutError,
    AuthenticationError,
    OperationFailedError,
    ResponseDecodeError,
    SpApiError,
    TokenEndpointUnreachableError,
)
from ..models.common import Error
from ._output import error_console
from ._suggest import better_suggestion

__all__ = [
    "EXIT_API",
    "EXIT_INTERRUPTED",
    "EXIT_USAGE",
    "Failure",
    "Names",
    "Reach",
    "explain",
    "option_names",
    "translate",
]

#: Exit status for an error the API (or the network) reported.
EXIT_API = 1
#: Exit status for arguments refused before anything was sent (click uses it too).
EXIT_USAGE = 2
#: Exit status after Ctrl-C.
EXIT_INTERRUPTED = 130

_LOOPBACK = frozenset({"localhost", "::1"})


class Failure(click.ClickException):
    """A problem to report: a headline, detail lines, and the same facts as JSON.

    ``kind`` says what sort of problem it is (``api_error``, ``unreachable``,
    ``invalid_argument``...); ``data`` holds the facts a program needs (status, codes,
    request id, the option and its rule).  ``as_json`` picks the form :meth:`show` prints.
    """

    def __init__(
        self,
        message: str,
        *,
        kind: str,
        exit_code: int = EXIT_API,
        lines: Sequence[str] = (),
        data: Mapping[str, Any] | None = None,
        label: str = "Error",
        usage: click.ClickException | None = None,
    ) -> None:
        super().__init__(corrected(message))
        self.kind = kind
        self.exit_code = exit_code  # type: ignore[misc]  # click's is per class; ours varies
        self.lines = tuple(lines)
        """Further lines of text (rich markup, already escaped)."""
        self.data = dict(data or {})
        self.label = label
        self.usage = usage
        """The click error this one stands for, whose own text (usage line) is kept."""
        self.as_json = False

    def to_json(self) -> dict[str, Any]:
        """``{"error": {...}}``: the kind, the message, then the facts."""
        return {"error": {"kind": self.kind, "message": self.message, **self.data}}

    def show(self, file: IO[Any] | None = None) -> None:
        """Print to stderr, as text or (``as_json``) as one line of JSON."""
        if self.as_json:
            sys.stderr.write(json.dumps(self.to_json(), default=str) + "\n")
            sys.stderr.flush()
            return
        if self.usage is not None:
            self.usage.show(file)
            return
        err = error_console()
        # Not wrapped: a headline may end in a command or a path to copy whole.
        err.print(f"[bold red]{self.label}:[/bold red] {escape(self.message)}", soft_wrap=True)
        for line in self.lines:
            err.print(line)


def from_click(exc: click.ClickException) -> Failure:
    """A failure standing for one of click's own errors (a bad option, a missing one)."""
    if isinstance(exc, click.NoSuchOption):
        better = better_suggestion(exc)
        if better is not None:
            exc = click.NoSuchOption(exc.option_name, better, ctx=exc.ctx)
    data: dict[str, Any] = {}
    if isinstance(exc, click.BadParameter) and exc.param is not None:
        data["option"] = _display(exc.param)
        data["rule"] = exc.message
    elif isinstance(exc, click.BadParameter) and exc.param_hint:
        data["option"] = str(exc.param_hint).strip("'\"")
        data["rule"] = exc.message
    kind = "usage" if isinstance(exc, click.UsageError) else "error"
    return Failure(exc.format_message(), kind=kind, exit_code=exc.exit_code, data=data, usage=exc)


class Reach:
    """Where the command sends its requests, for messages about hosts it cannot reach.

    ``api_url`` is the API's base URL and ``token_url`` Login with Amazon's token URL, as
    the command uses them; ``token_url_given`` says whether the token URL was chosen
    (``--token-url``, ``SPAPI_TOKEN_URL``) or is Amazon's by default.
    """

    def __init__(self, api_url: str, token_url: str, *, token_url_given: bool) -> None:
        self.api_url = api_url
        self.token_url = token_url
        self.token_url_given = token_url_given

    @property
    def api_host(self) -> str:
        """The API's host name."""
        return URL(self.api_url).host or self.api_url

    def local_api_hint(self) -> str | None:
        """Advice when the API is on this machine but tokens would come from Amazon."""
        if not is_local(self.api_host) or self.token_url_given:
            return None
        return (
            f"--endpoint is on this machine but the token URL is still Amazon's "
            f"({self.token_url}).  For the emulator give its token URL too "
            "(--token-url or SPAPI_TOKEN_URL): `spapi-services emulator` prints both, "
            "and --env-file writes them to a file to source."
        )


def is_local(host: str | None) -> bool:
    """Whether ``host`` is this machine (a loopback name or address)."""
    if not host:
        return False
    name = host.strip("[]").lower()
    return name in _LOOPBACK or name.startswith("127.")


def is_amazon(host: str | None) -> bool:
    """Whether ``host`` is one of Amazon's (whose support can look up a request id)."""
    name = (host or "").lower().rstrip(".")
    return name == "amazon.com" or name.endswith(".amazon.com")


def host_and_port(url: str) -> str:
    """``host:port`` of a URL (the port written or the scheme's), for messages."""
    parsed = URL(url)
    if not parsed.host:
        return url
    host = f"[{parsed.host}]" if ":" in parsed.host else parsed.host
    return f"{host}:{parsed.port}" if parsed.port else host


def explain(
    exc: BaseException, *, reach: Reach | None = None, ctx: click.Context | None = None
) -> Failure | None:
    """The failure to report for ``exc``, or ``None`` if it is not one the CLI expects."""
    if isinstance(exc, ApiStatusError | OperationFailedError):
        return _api_failure(exc)
    if isinstance(exc, TokenEndpointUnreachableError):
        return _unreachable(exc, "token", reach)
    if isinstance(exc, AuthenticationError):
        return _refused(exc, reach)
    if isinstance(exc, ApiConnectionError):
        return _unreachable(exc, "api", reach)
    if isinstance(exc, SpApiError):
        data: dict[str, Any] = {"detail": str(exc)}
        request_id = getattr(exc, "request_id", None)
        if request_id:
            data["requestId"] = request_id
        if isinstance(exc, ResponseDecodeError):
            data["problems"] = list(exc.problems)
        return Failure(str(exc), kind=_kind(exc), data=data)
    if isinstance(exc, sqlite3.Error):
        return Failure(f"the SQLite file: {exc}", kind="sqlite")
    if isinstance(exc, OSError) and not isinstance(exc, FileNotFoundError | IsADirectoryError):
        return Failure(str(exc), kind="os")
    if isinstance(exc, ValueError | TypeError | FileNotFoundError | IsADirectoryError):
        return _bad_argument(str(exc), ctx)
    return None


def _kind(exc: SpApiError) -> str:
    name = type(exc).__name__.removesuffix("Error")
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower() + "_error"


def _api_failure(exc: ApiStatusError | OperationFailedError) -> Failure:
    where = f" from {exc.operation}" if exc.operation else ""
    headline = f"the API answered HTTP {exc.status_code}{where}"
    if isinstance(exc, OperationFailedError):
        headline += " but reported errors"
    body: str = getattr(exc, "body", "")
    lines = list(_error_lines(exc.errors, body))
    support = exc.support_info()
    amazon = is_amazon(exc.host)
    if exc.request_id:
        line = f"  request id: {escape(exc.request_id)} at {support['time']}"
        if amazon:
            line += "  [dim](quote both to Amazon support)[/dim]"
        lines.append(line)
    if exc.status_code == 429:
        who = "Amazon" if amazon else f"the API ({escape(exc.host or 'its host')})"
        lines.append(f"{who} kept answering 429 until the call's deadline; try later.")
    data: dict[str, Any] = {
        "status": exc.status_code,
        "operation": exc.operation,
        "codes": list(exc.codes),
        "errors": [
            {"code": e.code, "message": e.message, "details": e.details} for e in exc.errors
        ],
        "requestId": exc.request_id,
        "support": support,
    }
    if not exc.errors and body.strip():
        data["body"] = " ".join(body.split())[:300]
    kind = "api_errors" if isinstance(exc, OperationFailedError) else "api_error"
    return Failure(headline, kind=kind, lines=lines, data=data)


def _error_lines(errors: Sequence[Error], body: str) -> Iterator[str]:
    if not errors:
        text = " ".join(body.split())[:300]
        yield f"  {escape(text) if text else '(no error details in the answer)'}"
        return
    for error in errors:
        line = f"  [bold]{escape(error.code)}[/bold]: {escape(error.message)}"
        if error.details:
            line += f" [dim]({escape(error.details)})[/dim]"
        yield line


def _unreachable(exc: ApiConnectionError, what: str, reach: Reach | None) -> Failure:
    """No answer from the API (``what="api"``) or the token endpoint (``"token"``)."""
    timed_out = isinstance(exc, ApiTimeoutError)
    url = None if reach is None else (reach.token_url if what == "token" else reach.api_url)
    where = host_and_port(url) if url else None
    if where is None or (exc.host and exc.host != URL(url or "").host):
        # Another host than the settings' (a document store's upload URL): its name only.
        where = exc.host or ("the token endpoint" if what == "token" else "the API")
    service = "Login with Amazon's token URL" if what == "token" else "the API"
    headline = f"no answer from {where} in time" if timed_out else f"cannot reach {where}"
    lines = [f"  {escape(str(exc))}"]
    option = "--token-url (SPAPI_TOKEN_URL)" if what == "token" else "--endpoint (SPAPI_ENDPOINT)"
    hint = reach.local_api_hint() if reach and what == "token" else None
    host = exc.host or (URL(url).host if url else None)
    if hint:
        lines.append(escape(hint))
    elif is_local(host):
        port = URL(url).port if url else None
        start = f"spapi-services emulator --port {port}" if port else "spapi-services emulator"
        lines.append(
            f"{where} is this machine: is the emulator running there?  Start it with "
            f"`{escape(start)}` and source the lines it prints; or check {option}."
        )
    elif what == "token":
        lines.append(f"Check the network, and {option} if you set it.")
    else:
        lines.append(f"Check the network, and {option} / --region.")
    data: dict[str, Any] = {"host": where, "service": what, "detail": str(exc)}
    if hint:
        data["hint"] = hint
    return Failure(
        f"{headline} ({service})",
        kind="timeout" if timed_out else "unreachable",
        lines=lines,
        data=data,
    )


def _refused(exc: AuthenticationError, reach: Reach | None) -> Failure:
    detail = ": ".join(x for x in (exc.error, exc.error_description) if x) or str(exc)
    lines = [f"  {escape(detail)}"]
    hint = reach.local_api_hint() if reach else None
    local = reach is not None and is_local(URL(reach.token_url).host)
    who = "Login with Amazon"
    if hint:
        lines.append(escape(hint))
    elif local and reach is not None:
        who = f"the emulator's Login with Amazon ({host_and_port(reach.token_url)})"
        lines.append(
            "The emulator takes the credentials it printed when it started: source its "
            "export lines (or its --env-file) in this shell again."
        )
    else:
        lines.append("Check SPAPI_CLIENT_ID, SPAPI_CLIENT_SECRET and SPAPI_REFRESH_TOKEN.")
    data: dict[str, Any] = {
        "error": exc.error,
        "errorDescription": exc.error_description,
        "status": exc.status_code,
    }
    if hint:
        data["hint"] = hint
    return Failure(f"{who} refused the credentials", kind="authentication", lines=lines, data=data)


# --- naming options, not SDK arguments --------------------------------------------------

# A Python string literal as repr() writes it: the user's own values, never renamed.
_QUOTED = re.compile(r"""(?<!\w)(?:'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*")(?!\w)""")
# A name or a path of names, as the SDK writes them: reason_code, query.slot_duration,
# schedules[2].recurrence.days_of_month[0], or content_type= (an argument to pass).
_PATH = re.compile(
    r"(?<![\w.\-/$^])((?:[A-Za-z_]\w*(?:\[\d+\])*)(?:\.[A-Za-z_]\w*(?:\[\d+\])*)*)(=?)"
)
# SDK advice about Python code (``set ServicesClient(marketplace_id=...)``).
_PYTHON_CALL = re.compile(r"\b[A-Z][A-Za-z]+\(")


def _display(param: click.Parameter) -> str:
    if isinstance(param, click.Option):
        longs = [o for o in param.opts if o.startswith("--")]
        return (longs or param.opts)[0]
    return param.human_readable_name


@attrs.frozen
class Names:
    """SDK argument names → the parameters of a command (and its groups) that feed them.

    A parameter feeds the SDK argument of its own name (an option's destination is
    named after the argument it is passed to), and any ``sdk_names`` it declares.
    ``given`` holds the parameters that have a value in this run.
    """

    params: Mapping[str, Sequence[click.Parameter]] = attrs.Factory(dict)
    given: frozenset[click.Parameter] = frozenset()


def option_names(ctx: click.Context) -> Names:
    """The :class:`Names` of the command being run."""
    names: dict[str, list[click.Parameter]] = {}
    given: set[click.Parameter] = set()
    current: click.Context | None = ctx
    while current is not None:
        for param in current.command.params:
            if param.name and current.params.get(param.name) not in (None, (), [], False):
                given.add(param)
            for name in (param.name, *getattr(param, "sdk_names", ())):
                if name and param not in names.setdefault(name, []):
                    names[name].append(param)
        current = current.parent
    return Names(names, frozenset(given))


def translate(message: str, names: Names) -> str:
    """``message`` with the SDK's argument names replaced by the options that set them."""
    parts: list[str] = []
    last = 0
    for quoted in _QUOTED.finditer(message):
        parts.append(_rename(message[last : quoted.start()], names, at_start=last == 0))
        parts.append(quoted.group())
        last = quoted.end()
    parts.append(_rename(message[last:], names, at_start=last == 0))
    clauses = "".join(parts).split("; ")
    kept = [clauses[0], *(c for c in clauses[1:] if not _PYTHON_CALL.search(c))]
    return "; ".join(kept)


def _rename(text: str, names: Names, *, at_start: bool) -> str:
    def replace(match: re.Match[str]) -> str:
        path, equals = match.group(1), match.group(2)
        following = text[match.end() : match.end() + 1]
        plain = "." not in path and "[" not in path and "_" not in path
        leading = at_start and match.start() == len(text) - len(text.lstrip())
        # A lone word is an argument's name only where it stands as one: at the head
        # of the message, before ":", or as "name=".  Elsewhere it is English.
        if plain and not (equals or following in (":", "[") or leading):
            return match.group()
        found = _lookup(path, names)
        return match.group() if found is None else found

    return _PATH.sub(replace, text)


def _lookup(path: str, names: Names) -> str | None:
    """How to name a path: its most specific known part as the option, an item number,
    and what of the path is left after it; a part some given option feeds comes first."""
    segments = path.split(".")
    bare = [re.sub(r"\[\d+\]", "", s) for s in segments]
    found: list[tuple[Sequence[click.Parameter], int]] = []
    for end in reversed(range(len(bare))):
        for start in range(end + 1):
            params = names.params.get(".".join(bare[start : end + 1]))
            if params:
                found.append((params, end))
    if not found:
        return None
    params, end = next(((p, e) for p, e in found if names.given & set(p)), found[0])
    shown = "/".join(_display(p) for p in params)
    indexes = re.findall(r"\[(\d+)\]", segments[end])
    if indexes:
        shown += f" #{int(indexes[0]) + 1}"
    rest = ".".join(segments[end + 1 :])
    return f"{shown} ({rest})" if rest else shown


def _bad_argument(message: str, ctx: click.Context | None) -> Failure:
    names = option_names(ctx) if ctx is not None else Names()
    text = translate(message, names)
    head, sep, rule = text.partition(": ")
    data: dict[str, Any] = {"rule": rule if sep else text}
    param = _leading_param(message, names) if sep else None
    if sep and (head.startswith("-") or head.isupper()):
        data["option"] = head
    variable = getattr(param, "variable", None) or getattr(param, "envvar", None)
    if isinstance(param, click.Option) and isinstance(variable, str) and "required" in rule:
        metavar = param.metavar or "VALUE"
        text += f"  (give {_display(param)} {metavar} or set {variable})"
    data["sent"] = False
    return Failure(
        text,
        kind="invalid_argument",
        exit_code=EXIT_USAGE,
        lines=["[dim]Nothing was sent.[/dim]"],
        data=data,
        label="Invalid argument",
    )


def _leading_param(message: str, names: Names) -> click.Parameter | None:
    match = _PATH.match(message)
    params = names.params.get(re.sub(r"\[\d+\]", "", match.group(1))) if match else None
    return params[0] if params and len(params) == 1 else None
