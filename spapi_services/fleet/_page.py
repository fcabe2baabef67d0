"""The fleet's status page: one row per seller and a chart of the mirror's growth.

``spapi-services fleet status --serve`` serves :func:`status_app`: an HTML page rendered
here on every request (no script, no external asset: a ``<meta>`` refresh reloads it),
the same figures as JSON at ``/status.json``, and ``/healthz`` for a probe.  Everything
read from the database or Redis is escaped before it reaches the page.

The page answers only requests whose ``Host`` is an IP address or one of the names it
is told it is served as (``localhost`` for a loopback bind): a web page elsewhere that
points its own name at 127.0.0.1 (DNS rebinding) gets 421, not the sellers' status.
"""

from __future__ import annotations

import html
import ipaddress
import json
from collections import Counter
from collections.abc import Awaitable, Callable, Collection, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ._status import SellerStatus
from ._webhooks import WebhookStatus

if TYPE_CHECKING:
    from ._fleet import Fleet

__all__ = ["allowed_hosts", "render_page", "status_app", "status_json"]

#: What the page says a refused seller needs (the seller id is put in).
REFUSED_HINT = (
    "Next: add the seller again with a new refresh token (spapi-services fleet add-seller "
    "{seller}), or sync it with this one again: spapi-services fleet clear-refusal {seller}"
)
#: What the mirror's counts mean (the page's caption; the CLI's too).
COUNTS_NOTE = (
    "Jobs written counts every job a sync stored: one changed and stored again, or a "
    "page stored again after an interruption, counts each time. Jobs in the mirror counts "
    "each job once."
)

_CHART_WIDTH, _CHART_HEIGHT, _MARGIN = 720, 180, 44

_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5rem;color:#1d2430;background:#fafbfc}
h1{font-size:1.4rem;margin:0 0 .2rem}h2{font-size:1.05rem;margin:1.2rem 0 .4rem}
.summary{color:#4a5568;margin:0}
table{border-collapse:collapse;width:100%;background:#fff}
th,td{text-align:left;padding:.35rem .6rem;border-bottom:1px solid #e2e8f0;vertical-align:top}
th{background:#edf2f7;font-weight:600}td.num,th.num{text-align:right}
.state{font-weight:600}.state-ok .state{color:#276749}.state-failed .state,
.state-refused .state{color:#c53030}.state-running .state{color:#2b6cb0}
.state-interrupted .state{color:#b7791f}.state-new .state{color:#718096}
.error{color:#742a2a;max-width:32rem;overflow-wrap:anywhere}
.flag{font-size:.8rem;color:#2b6cb0;margin-left:.3rem}
.hint{display:block;color:#4a5568;margin-top:.2rem}.note{color:#4a5568;font-size:.85rem}
.alert{background:#fff5f5;border:1px solid #feb2b2;color:#742a2a;padding:.4rem .6rem}
svg{background:#fff;border:1px solid #e2e8f0}svg text{font-size:11px;fill:#4a5568}
"""


def status_json(
    statuses: Sequence[SellerStatus],
    now: datetime | None = None,
    *,
    webhooks: Sequence[WebhookStatus] | None = None,
    backlog: int | None = None,
) -> dict[str, Any]:
    """The sellers' status as JSON-ready data (what ``fleet status --json`` prints), and
    the webhook endpoints' when given (``backlog``: changes not yet handed to them)."""
    moment = now or datetime.now(UTC)
    data: dict[str, Any] = {
        "at": moment.isoformat(),
        "redis": "unreachable" if _redis_unreachable(statuses) else "ok",
        "sellers": [_seller_json(s) for s in statuses],
        "states": dict(Counter(_shown_state(s) for s in statuses)),
    }
    if webhooks is not None:
        data["webhooks"] = {
            "backlog": backlog,
            "endpoints": [w.as_json() for w in webhooks],
        }
    return data


def _redis_unreachable(statuses: Sequence[SellerStatus]) -> bool:
    return any(s.redis_unreachable for s in statuses)


def _seller_json(s: SellerStatus) -> dict[str, Any]:
    def when(value: datetime | None) -> str | None:
        return None if value is None else value.isoformat()

    return {
        "sellerId": s.seller_id,
        "state": s.state,
        "running": s.running,
        "queued": s.queued,
        "worker": s.worker,
        "startedAt": when(s.started_at),
        "finishedAt": when(s.finished_at),
        "lastSuccessAt": when(s.last_success_at),
        "syncedUntil": when(s.synced_until),
        "lagSeconds": None if s.lag is None else round(s.lag.total_seconds(), 3),
        "runs": s.runs,
        "failures": s.failures,
        "jobs": s.jobs,
        "requests": s.requests,
        "throttled": s.throttled,
        "jobsTotal": s.jobs_total,
        "throttledTotal": s.throttled_total,
        "lastError": s.last_error,
        "lastErrorAt": when(s.last_error_at),
        "fencingToken": s.fencing_token,
    }


def _shown_state(s: SellerStatus) -> str:
    """The state to show: Redis's word that a sync runs beats a row not yet updated."""
    return "running" if s.running else s.state


def duration(value: timedelta | None) -> str:
    """``42 s``, ``7 min``, ``3 h 5 min``, ``2 d 4 h``; ``-`` for none."""
    if value is None:
        return "-"
    seconds = int(value.total_seconds())
    if seconds < 60:
        return f"{seconds} s"
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86_400
    if minutes < 60:
        return f"{minutes} min"
    if hours < 24:
        return f"{hours} h {minutes % 60} min" if minutes % 60 else f"{hours} h"
    return f"{days} d {hours % 24} h" if hours % 24 else f"{days} d"


def _ago(value: datetime | None, now: datetime) -> str:
    if value is None:
        return "-"
    stamp = html.escape(value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ"))
    return f'<time datetime="{stamp}" title="{stamp}">{duration(now - value)} ago</time>'


def _count(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def render_page(
    statuses: Sequence[SellerStatus],
    growth: Sequence[tuple[datetime, int]],
    *,
    now: datetime | None = None,
    refresh: float = 5.0,
    webhooks: Sequence[WebhookStatus] = (),
    backlog: int | None = None,
) -> str:
    """The page's HTML: a summary, the mirror's growth as SVG, a row per seller, and a
    row per webhook endpoint."""
    moment = now or datetime.now(UTC)
    states = Counter(_shown_state(s) for s in statuses)
    throttled = sum(s.throttled_total for s in statuses)
    mirrored = growth[-1][1] if growth else 0
    summary = ", ".join(f"{n} {html.escape(state)}" for state, n in sorted(states.items()))
    rows = "\n".join(_row(s, moment) for s in statuses)
    if not statuses:
        rows = '<tr><td colspan="8">No sellers yet: add one with fleet add-seller.</td></tr>'
    alert = ""
    if _redis_unreachable(statuses):
        alert = (
            '<p class="alert" id="redis">Redis unreachable: which sellers are running or '
            "queued right now is unknown; the rest comes from PostgreSQL.</p>"
        )
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="refresh" content="{max(1, round(refresh))}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Fleet status: {len(statuses)} sellers</title>
<style>{_STYLE}</style>
</head>
<body>
<header>
<h1>Fleet status</h1>
<p class="summary" id="summary">{len(statuses)} sellers ({summary or "none"}) &middot;
<span id="mirrored">{mirrored:,}</span> jobs in the mirror (each once) &middot;
<span id="throttled">{throttled:,}</span> &times; 429 in all &middot;
updated {html.escape(moment.astimezone(UTC).strftime("%H:%M:%SZ"))},
every {max(1, round(refresh))} s</p>
{alert}
</header>
<h2>Jobs in the mirror</h2>
{_chart(growth)}
<h2>Sellers</h2>
<table id="sellers">
<thead><tr><th>Seller</th><th>State</th><th>Last success</th><th>Lag</th>
<th class="num">Jobs written (last run)</th><th class="num">Jobs written (all runs)</th>
<th class="num">429s (last / all)</th><th>Last error</th></tr></thead>
<tbody>
{rows}
</tbody>
</table>
<p class="note" id="counts">{html.escape(COUNTS_NOTE)}</p>
{_webhooks_section(webhooks, backlog, moment)}
</body>
</html>
"""


def _row(s: SellerStatus, now: datetime) -> str:
    state = _shown_state(s)
    flags = ""
    if s.queued:
        flags += '<span class="flag">queued</span>'
    if s.running and s.worker:
        flags += f'<span class="flag">on {html.escape(s.worker)}</span>'
    error = "-"
    if s.last_error:
        error = html.escape(s.last_error)
        if s.last_error_at is not None:
            error += f" <small>({_ago(s.last_error_at, now)})</small>"
    if s.state == "refused":
        hint = html.escape(REFUSED_HINT.format(seller=s.seller_id))
        error += f'<span class="hint">{hint}</span>'
    throttled = f"{_count(s.throttled)} / {s.throttled_total:,}"
    seller = html.escape(s.seller_id)
    return (
        f'<tr data-seller="{seller}" class="state-{html.escape(state)}">'
        f'<td class="seller">{seller}</td>'
        f'<td><span class="state">{html.escape(state)}</span>{flags}</td>'
        f'<td class="success">{_ago(s.last_success_at, now)}</td>'
        f'<td class="lag">{duration(s.lag)}</td>'
        f'<td class="num jobs">{_count(s.jobs)}</td>'
        f'<td class="num total">{s.jobs_total:,}</td>'
        f'<td class="num throttled">{throttled}</td>'
        f'<td class="error">{error}</td></tr>'
    )


def _webhooks_section(webhooks: Sequence[WebhookStatus], backlog: int | None, now: datetime) -> str:
    if not webhooks and not backlog:
        return ""
    waiting = ""
    if backlog is not None:
        waiting = (
            f'<p class="summary" id="backlog">{backlog:,} changes waiting to be handed to '
            "the endpoints</p>"
        )
    rows = "\n".join(_webhook_row(w, now) for w in webhooks) or (
        '<tr><td colspan="7">No endpoints: set one with fleet webhooks set.</td></tr>'
    )
    return f"""<h2>Webhooks</h2>
{waiting}
<table id="webhooks">
<thead><tr><th>Endpoint</th><th>State</th><th class="num">Delivered</th>
<th class="num">Pending</th><th class="num">Dead letters</th><th>Oldest pending</th>
<th>Last failure</th></tr></thead>
<tbody>
{rows}
</tbody>
</table>"""


def _webhook_row(w: WebhookStatus, now: datetime) -> str:
    if not w.enabled:
        state = f"disabled ({w.disabled_reason or 'by hand'})"
    elif w.paused_until is not None:
        state = "held back (the receiver asked to slow down)"
    else:
        state = "enabled"
    scope = "every seller" if w.seller_id is None else f"seller {w.seller_id}"
    failure = "-"
    if w.last_error:
        failure = html.escape(w.last_error)
        if w.last_error_at is not None:
            failure += f" <small>({_ago(w.last_error_at, now)})</small>"
    flight = f' <span class="flag">{w.in_flight} in flight</span>' if w.in_flight else ""
    endpoint = html.escape(w.endpoint_id)
    return (
        f'<tr data-endpoint="{endpoint}" class="{"state-ok" if w.enabled else "state-failed"}">'
        f'<td>{endpoint}<span class="hint">{html.escape(w.url)} &middot; '
        f"{html.escape(scope)}</span></td>"
        f'<td><span class="state">{html.escape(state)}</span></td>'
        f'<td class="num delivered">{w.delivered:,}</td>'
        f'<td class="num pending">{w.pending:,}{flight}</td>'
        f'<td class="num dead">{w.dead:,}</td>'
        f'<td class="oldest">{_ago(w.oldest_pending_at, now)}</td>'
        f'<td class="error">{failure}</td></tr>'
    )


def _chart(growth: Sequence[tuple[datetime, int]]) -> str:
    width, height, margin = _CHART_WIDTH, _CHART_HEIGHT, _MARGIN
    frame = (
        f'<svg id="growth" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">'
    )
    if len(growth) < 2:
        return (
            f"{frame}<title>No jobs mirrored yet</title>"
            f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle">'
            "No jobs mirrored yet</text></svg>"
        )
    start, end = growth[0][0], growth[-1][0]
    span = max((end - start).total_seconds(), 1e-9)
    top = max(count for _, count in growth) or 1
    plot_w, plot_h = width - 2 * margin, height - 2 * 24

    def x(moment: datetime) -> float:
        return margin + plot_w * (moment - start).total_seconds() / span

    def y(count: int) -> float:
        return 24 + plot_h * (1 - count / top)

    points = " ".join(f"{x(m):.1f},{y(c):.1f}" for m, c in growth)
    area = f"{x(start):.1f},{y(0):.1f} {points} {x(end):.1f},{y(0):.1f}"
    first = html.escape(start.astimezone(UTC).strftime("%H:%M:%SZ"))
    last = html.escape(end.astimezone(UTC).strftime("%H:%M:%SZ"))
    description = f"{growth[-1][1]:,} jobs now; {growth[0][1]:,} at {first}"
    return (
        f"{frame}<title>Jobs in the mirror over time: {description}</title>"
        f'<line x1="{margin}" y1="{y(0):.1f}" x2="{width - margin}" y2="{y(0):.1f}" '
        'stroke="#a0aec0"/>'
        f'<polygon points="{area}" fill="#bee3f8"/>'
        f'<polyline points="{points}" fill="none" stroke="#2b6cb0" stroke-width="2"/>'
        f'<text x="{margin - 4}" y="{y(top) + 4:.1f}" text-anchor="end">{top:,}</text>'
        f'<text x="{margin - 4}" y="{y(0) + 4:.1f}" text-anchor="end">0</text>'
        f'<text x="{margin}" y="{height - 6}">{first}</text>'
        f'<text x="{width - margin}" y="{height - 6}" text-anchor="end">{last} (now)</text>'
        "</svg>"
    )


def allowed_hosts(bind: str, extra: Collection[str] = ()) -> frozenset[str]:
    """The names a page bound to ``bind`` answers to, besides any IP address.

    ``localhost`` for a loopback bind, the bind itself if it is a name, and ``extra``
    (the names a proxy or users reach it by).
    """
    names = {name.lower().rstrip(".") for name in extra}
    if bind.lower() in ("localhost", "") or _is_loopback(bind):
        names.add("localhost")
    if bind and not _is_ip(bind):
        names.add(bind.lower().rstrip("."))
    return frozenset(names)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return False
    return True


def _is_loopback(text: str) -> bool:
    try:
        return ipaddress.ip_address(text.strip("[]")).is_loopback
    except ValueError:
        return False


def _host_name(header: str) -> str:
    """The name of a ``Host`` header, without its port (``[::1]:80`` gives ``::1``)."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _host_guard(names: frozenset[str]) -> Any:
    """A middleware refusing (421) a request whose ``Host`` is a name not in ``names``."""

    @web.middleware
    async def guard(request: web.Request, handler: _Handler) -> web.StreamResponse:
        name = _host_name(request.headers.get("Host", "")).rstrip(".")
        if not (_is_ip(name) or name in names):
            return web.Response(
                status=421,
                text="This status page is not served under that name (--allow-host adds one).\n",
                headers=_NO_STORE,
            )
        return await handler(request)

    return guard


def status_app(
    fleet: Fleet,
    *,
    refresh: float = 5.0,
    window: timedelta = timedelta(hours=24),
    hosts: Collection[str] = ("localhost",),
) -> web.Application:
    """An aiohttp application serving the fleet's status page (``/``), its figures as
    JSON (``/status.json``) and a liveness probe (``/healthz``).

    The chart covers the last ``window`` (less if the mirror is younger).  Requests are
    answered when their ``Host`` is an IP address or one of ``hosts`` (see
    :func:`allowed_hosts`), else refused with 421.  The fleet is the caller's to close.
    """

    async def page(_: web.Request) -> web.Response:
        now = datetime.now(UTC)
        statuses = await fleet.status()
        growth = await fleet.mirror_growth(window=window)
        webhooks = await fleet.webhooks()
        backlog = await fleet.outbox_backlog()
        body = render_page(
            statuses, growth, now=now, refresh=refresh, webhooks=webhooks, backlog=backlog
        )
        return web.Response(
            text=body,
            content_type="text/html",
            headers={"Cache-Control": "no-store", "Content-Security-Policy": _CSP},
        )

    async def figures(_: web.Request) -> web.Response:
        data = status_json(
            await fleet.status(),
            webhooks=await fleet.webhooks(),
            backlog=await fleet.outbox_backlog(),
        )
        return web.Response(
            text=json.dumps(data), content_type="application/json", headers=_NO_STORE
        )

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok\n", headers=_NO_STORE)

    app = web.Application(middlewares=[_host_guard(frozenset(h.lower() for h in hosts))])
    app.router.add_get("/", page)
    app.router.add_get("/status.json", figures)
    app.router.add_get("/healthz", healthz)
    return app


_NO_STORE = {"Cache-Control": "no-store"}
# The page loads nothing and runs nothing: a browser refuses anything a row might smuggle.
_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'"
