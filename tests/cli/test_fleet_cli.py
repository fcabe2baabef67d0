"""``spapi-services fleet``: its commands on a real Redis and PostgreSQL, the emulator's
sellers, real worker and scheduler processes, the status page in headless Chromium,
and the demo.  Without redis-server, PostgreSQL or Chromium the tests that need them
skip (fail under SPAPI_REQUIRE_SERVERS=1)."""

from __future__ import annotations

import asyncio
import html
import http.server
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import _chromium
import asyncpg
import click.testing
import pytest
from _servers import PostgresServer, RedisServer, require_program, running
from redis import Redis
from standardwebhooks import Webhook

from spapi_services.cli import cli
from spapi_services.emulator import ServicesEmulator
from spapi_services.emulator.catalog import MARKETPLACES
from spapi_services.fleet import DirectoryKey, Fleet

from .conftest import EmulatorThread

ALL = [m.marketplace_id for m in MARKETPLACES]
SELLERS = 3

Invoke = Callable[..., click.testing.Result]


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    with running(PostgresServer) as server:
        yield server


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    with running(RedisServer) as server:
        yield server


@pytest.fixture(scope="module")
def sellers() -> Iterator[ServicesEmulator]:
    """Three sellers whose worlds were built an hour ago (every job there before a sync)."""
    reference = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    with EmulatorThread(
        jobs=40, seed=3, sellers=SELLERS, enforce_limits=False, reference_time=reference
    ) as emu:
        yield emu


@pytest.fixture
def env(
    postgres: PostgresServer, redis_server: RedisServer, sellers: ServicesEmulator
) -> dict[str, str]:
    """A fleet of its own (schema, Redis prefix and queue), named as a user would."""
    tag = uuid.uuid4().hex[:10]
    return {
        "SPAPI_REDIS_URL": redis_server.url,
        "SPAPI_DATABASE_URL": postgres.dsn,
        "SPAPI_FLEET_DIRECTORY_KEY": DirectoryKey.generate(),
        "SPAPI_CLIENT_ID": sellers.credentials.client_id,
        "SPAPI_CLIENT_SECRET": sellers.credentials.client_secret,
        # The client's own variables (as `spapi-services emulator` writes them) reach
        # the fleet too.
        "SPAPI_ENDPOINT": sellers.url,
        "SPAPI_TOKEN_URL": sellers.token_url,
        "SPAPI_FLEET_HISTORY_DAYS": "92",
        "SPAPI_FLEET_SCHEMA": f"f_{tag}",
        "SPAPI_FLEET_KEY_PREFIX": f"t{tag}",
        "SPAPI_FLEET_QUEUE": f"t{tag}:tasks",
        "SPAPI_FLEET_LEASE_SECONDS": "3",
        "SPAPI_FLEET_RECLAIM_INTERVAL_SECONDS": "0.5",
        "SPAPI_FLEET_POOL_SIZE": "3",
    }


@pytest.fixture
def invoke(env: dict[str, str]) -> Invoke:
    runner = click.testing.CliRunner()

    def run(*args: str, input: str | None = None, **changes: str | None) -> click.testing.Result:
        merged: dict[str, str | None] = {**env, **changes}
        return runner.invoke(cli, list(args), env=merged, input=input, catch_exceptions=False)

    return run


def add_all(invoke: Invoke, emu: ServicesEmulator) -> list[str]:
    ids = []
    for seller in emu.sellers:
        seller_id = f"S{seller.index + 1}"
        result = invoke(
            "fleet", "add-seller", seller_id, *(f"--marketplace={m}" for m in ALL),
            "--token-env", "SELLER_TOKEN", SELLER_TOKEN=seller.refresh_token,
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        ids.append(seller_id)
    return ids


def statuses(invoke: Invoke) -> dict[str, dict[str, Any]]:
    result = invoke("fleet", "status", "--json")
    assert result.exit_code == 0, result.output
    return {s["sellerId"]: s for s in json.loads(result.stdout)["sellers"]}


def start(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    """``spapi-services fleet ARGS`` as a process of its own session."""
    return subprocess.Popen(
        [sys.executable, "-m", "spapi_services.cli", "fleet", *args],
        env={**os.environ, **env},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def stop(process: subprocess.Popen[str]) -> tuple[int, str]:
    """SIGTERM, as a process manager stops it; its exit status and output."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
    try:
        output, _ = process.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        raise AssertionError(f"still running 20 s after SIGTERM:\n{output[-3000:]}") from None
    return process.returncode, output


def until(what: str, check: Callable[[], Any], timeout: float = 45.0) -> Any:
    give_up = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > give_up:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


# --- settings ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "missing"),
    [
        (["status", "--json"], "SPAPI_REDIS_URL"),
        (["status", "--json"], "SPAPI_DATABASE_URL"),
        (["enqueue", "--json"], "SPAPI_FLEET_DIRECTORY_KEY"),
        (["schedule"], "SPAPI_FLEET_DIRECTORY_KEY"),
        (["worker"], "SPAPI_FLEET_DIRECTORY_KEY"),
        (["worker"], "SPAPI_CLIENT_SECRET"),
    ],
)
def test_a_missing_setting_is_named_before_anything_connects(
    command: list[str], missing: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("SPAPI_FLEET_REDIS_URL", "SPAPI_FLEET_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    env: dict[str, str | None] = {
        "SPAPI_REDIS_URL": "redis://127.0.0.1:1/0",
        "SPAPI_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
        "SPAPI_FLEET_DIRECTORY_KEY": DirectoryKey.generate(),
        "SPAPI_CLIENT_ID": "amzn1.application-oa2-client.x",
        "SPAPI_CLIENT_SECRET": "secret",
        missing: None,
    }
    result = click.testing.CliRunner().invoke(cli, ["--json", "fleet", *command], env=env)
    assert result.exit_code == 2, result.output
    error = json.loads(result.stderr)["error"]
    assert error["kind"] == "setup"
    assert error["variable"] == missing
    assert missing in error["message"]


def test_a_new_key_is_one_the_directory_takes() -> None:
    result = click.testing.CliRunner().invoke(cli, ["fleet", "new-key"])
    assert result.exit_code == 0
    key = result.stdout.strip()
    DirectoryKey(key).open("S1", DirectoryKey(key).seal("S1", "Atzr|token"))
    assert key != click.testing.CliRunner().invoke(cli, ["fleet", "new-key"]).stdout.strip()


# --- sellers -------------------------------------------------------------------------------


def test_a_seller_is_added_with_its_token_from_a_variable_or_standard_input(
    invoke: Invoke, env: dict[str, str], sellers: ServicesEmulator, postgres: PostgresServer
) -> None:
    first, second = sellers.sellers[0].refresh_token, sellers.sellers[1].refresh_token
    by_variable = invoke(
        "fleet", "add-seller", "S1", "--marketplace", "ATVPDKIKX0DER",
        "--token-env", "S1_TOKEN", S1_TOKEN=first,
    )  # fmt: skip
    assert by_variable.exit_code == 0, by_variable.output
    assert "S1" in by_variable.stdout
    by_stdin = invoke(
        "--json", "fleet", "add-seller", "S2", "--marketplace", "ATVPDKIKX0DER",
        "--marketplace", "A2EUQ1WTGCTBG2", "--seller-region", "eu", input=second + "\n",
    )  # fmt: skip
    assert by_stdin.exit_code == 0, by_stdin.output
    assert json.loads(by_stdin.stdout)["ok"] is True
    for result in (by_variable, by_stdin):
        assert first not in result.output
        assert second not in result.output

    assert {k: v["state"] for k, v in statuses(invoke).items()} == {"S1": "new", "S2": "new"}

    async def stored() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(postgres.dsn)
        try:
            return await conn.fetch(
                f"SELECT seller_id, refresh_token, marketplace_ids, region"
                f" FROM {env['SPAPI_FLEET_SCHEMA']}.fleet_sellers ORDER BY seller_id"
            )
        finally:
            await conn.close()

    rows = asyncio.run(stored())
    assert [(r[0], r[2], r[3]) for r in rows] == [
        ("S1", ["ATVPDKIKX0DER"], "NA"),
        ("S2", ["ATVPDKIKX0DER", "A2EUQ1WTGCTBG2"], "EU"),
    ]
    assert first not in rows[0][1]
    assert second not in rows[1][1]


@pytest.mark.parametrize(
    ("args", "changes", "named"),
    [
        (["S1", "--marketplace", "ATVPDKIKX0DER", "--token-env", "NOT_SET"], {}, "NOT_SET"),
        (["S1", "--marketplace", "ATVPDKIKX0DER", "--marketplace", "ATVPDKIKX0DER"], {},
         "marketplace_ids"),
        (["", "--marketplace", "ATVPDKIKX0DER"], {}, "seller_id"),
        (["S1", "--marketplace", "ATVPDKIKX0DER"], {"SPAPI_DATABASE_URL": None},
         "SPAPI_DATABASE_URL"),
    ],
)  # fmt: skip
def test_a_seller_refused_names_what_is_wrong_and_asks_no_token(
    invoke: Invoke, args: list[str], changes: dict[str, str | None], named: str
) -> None:
    result = invoke("fleet", "add-seller", *args, input="", NOT_SET=None, **changes)
    assert result.exit_code == 2, result.output
    assert named in result.stderr
    assert "Refresh token" not in result.output


def test_status_needs_no_secret_and_says_when_redis_is_unreachable(
    invoke: Invoke, sellers: ServicesEmulator
) -> None:
    ids = add_all(invoke, sellers)
    secretless = {"SPAPI_FLEET_DIRECTORY_KEY": None, "SPAPI_CLIENT_ID": None,
                  "SPAPI_CLIENT_SECRET": None}  # fmt: skip
    shown = invoke("--json", "fleet", "status", **secretless)
    assert shown.exit_code == 0, shown.output
    figures = json.loads(shown.stdout)
    assert [s["sellerId"] for s in figures["sellers"]] == ids
    assert figures["redis"] == "ok"
    cleared = invoke("--json", "fleet", "clear-refusal", "S1", **secretless)
    assert cleared.exit_code == 0, cleared.output

    # Nothing listens there: the status comes from PostgreSQL, and says so.
    away = invoke("fleet", "status", SPAPI_REDIS_URL="redis://127.0.0.1:9/0", **secretless)
    assert away.exit_code == 0, away.output
    assert "Redis unreachable" in away.stdout
    assert "S1" in away.stdout
    as_json = invoke("--json", "fleet", "status", SPAPI_REDIS_URL="redis://127.0.0.1:9/0")
    assert json.loads(as_json.stdout)["redis"] == "unreachable"


# --- workers, the schedule -------------------------------------------------------------------


def test_a_worker_syncs_the_sellers_sent_and_stops_on_sigterm(
    invoke: Invoke, env: dict[str, str], sellers: ServicesEmulator
) -> None:
    ids = add_all(invoke, sellers)
    worker = start(env, "worker", "--workers", "2", "--log-level", "WARNING")
    try:
        sent = invoke("fleet", "enqueue", "--json")
        assert sent.exit_code == 0, sent.output
        assert sorted(json.loads(sent.stdout)["sent"]) == ids
        again = json.loads(invoke("fleet", "enqueue", "S1", "--json").stdout)
        unknown = invoke("fleet", "enqueue", "S1", "NOPE")
        assert unknown.exit_code == 2
        assert "NOPE" in unknown.stderr
        assert again in ({"sent": [], "skipped": ["S1"]}, {"sent": ["S1"], "skipped": []})

        done = until(
            "every seller synced",
            lambda: (
                (s := statuses(invoke))
                and all(x["state"] == "ok" and not x["queued"] for x in s.values())
                and s
            ),
        )
    finally:
        code, output = stop(worker)
    assert code == 0, output
    assert "Traceback" not in output, output
    for seller in sellers.sellers:
        status = done[f"S{seller.index + 1}"]
        assert status["jobsTotal"] >= len(seller.store.jobs)
        assert status["throttledTotal"] == 0
        assert status["lastSuccessAt"] is not None
    table = invoke("fleet", "status")
    assert table.exit_code == 0
    assert re.search(r"S1\s*│\s*ok", table.stdout), table.stdout
    assert f"{SELLERS} sellers: {SELLERS} ok" in " ".join(table.stdout.split())


def test_the_scheduler_sends_each_seller_once_a_round_and_stops_on_sigterm(
    invoke: Invoke, env: dict[str, str], sellers: ServicesEmulator, redis_server: RedisServer
) -> None:
    ids = add_all(invoke, sellers)
    redis = Redis.from_url(redis_server.url)
    scheduler = start(env, "schedule", "--every", "60", "--log-level", "WARNING")
    try:
        # No worker: the tasks wait in the stream, each seller marked queued.
        until("every seller's task sent", lambda: redis.xlen(env["SPAPI_FLEET_QUEUE"]) == SELLERS)
        assert all(s["queued"] for s in statuses(invoke).values())
    finally:
        code, output = stop(scheduler)
        redis.close()
    assert code == 0, output
    assert "every 60 min" in output
    assert len(ids) == SELLERS


# --- the status page ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chromium() -> str:
    return require_program("chromium", "chromium")


def loaded_dom(chromium: str, url: str, *, resolve: str = "") -> str:
    """The page's DOM once loaded in headless Chromium.

    Not the site tests' ``dump_dom``: its virtual-time budget never runs out on a page
    that reloads itself, so this one dumps the DOM when the page has loaded.  ``resolve``
    adds host resolver rules (``MAP name 127.0.0.1``: a name pointed at this machine, as
    a DNS rebinding attack does).
    """
    done = _chromium.run(
        chromium,
        [
            # Nothing but this machine resolves: a load from elsewhere would fail.
            f"--host-resolver-rules={resolve}MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            "--dump-dom",
            url,
        ],
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


class _Hooks(http.server.BaseHTTPRequestHandler):
    """Records each POST (headers and body) on its server, and answers 204."""

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        self.server.received.append((dict(self.headers), body))  # type: ignore[attr-defined]
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def hooks() -> Iterator[http.server.ThreadingHTTPServer]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hooks)
    server.received = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_webhooks_are_set_listed_tested_removed_and_sent_again(
    invoke: Invoke, hooks: http.server.ThreadingHTTPServer
) -> None:
    url = f"http://127.0.0.1:{hooks.server_address[1]}/hooks"
    refused = invoke("fleet", "webhooks", "set", url)
    assert refused.exit_code == 2
    assert "url: 127.0.0.1 is loopback" in refused.stderr
    assert "SPAPI_FLEET_WEBHOOK_ALLOW_NETWORKS" in refused.stderr

    allow = {"SPAPI_FLEET_WEBHOOK_ALLOW_NETWORKS": "127.0.0.0/8"}
    made = invoke("--json", "fleet", "webhooks", "set", url, "--id", "crm", "--seller", "S1",
                  **allow)  # fmt: skip
    assert made.exit_code == 0, made.output
    created = json.loads(made.stdout)
    assert (created["endpointId"], created["url"], created["sellerId"]) == ("crm", url, "S1")
    secret = created["secret"]
    assert secret.startswith("whsec_")

    given = invoke("fleet", "webhooks", "set", url, "--id", "all", "--secret-env", "HOOK_SECRET",
                   HOOK_SECRET=secret, **allow)  # fmt: skip
    assert given.exit_code == 0, given.output
    assert "whsec_" not in given.stdout  # a secret given is not printed back
    missing = invoke("fleet", "webhooks", "set", url, "--secret-env", "NOT_SET", **allow)
    assert missing.exit_code == 2
    assert "--secret-env: the variable NOT_SET is not set" in missing.stderr

    listed = json.loads(invoke("--json", "fleet", "webhooks", "list").stdout)
    assert [e["endpointId"] for e in listed["endpoints"]] == ["all", "crm"]
    assert listed["backlog"] == 0
    status = json.loads(invoke("--json", "fleet", "status").stdout)
    assert [e["endpointId"] for e in status["webhooks"]["endpoints"]] == ["all", "crm"]
    table = invoke("fleet", "webhooks", "list")
    assert "crm" in table.stdout
    assert "S1" in table.stdout

    tested = invoke("--json", "fleet", "webhooks", "test", "crm", **allow)
    assert tested.exit_code == 0, tested.output
    assert json.loads(tested.stdout)["status"] == 204
    ((headers, body),) = hooks.received  # type: ignore[attr-defined]
    Webhook(secret).verify(body, {k.lower(): v for k, v in headers.items()})
    assert json.loads(body)["type"] == "webhook.test"
    unknown = invoke("fleet", "webhooks", "test", "nope", **allow)
    assert unknown.exit_code == 2
    assert "no webhook endpoint 'nope'" in unknown.stderr

    vague = invoke("fleet", "redeliver")
    assert vague.exit_code == 2
    assert "--dead, --message WEBHOOK_ID or --since TIME" in vague.stderr
    none = invoke("--json", "fleet", "redeliver", "--dead", "--endpoint", "crm")
    assert none.exit_code == 0, none.output
    assert json.loads(none.stdout) == {"deliveries": 0}
    bad = invoke("fleet", "redeliver", "--message", "msg_nope")
    assert bad.exit_code == 2
    assert "is not a webhook-id of the fleet" in bad.stderr

    assert invoke("fleet", "webhooks", "remove", "crm").exit_code == 0
    again = invoke("fleet", "webhooks", "remove", "crm")
    assert again.exit_code == 2
    assert "no webhook endpoint 'crm'" in again.stderr


def test_the_status_page_shows_a_row_per_seller_in_a_browser(
    invoke: Invoke,
    env: dict[str, str],
    sellers: ServicesEmulator,
    postgres: PostgresServer,
    chromium: str,
) -> None:
    ids = add_all(invoke, sellers)
    # A fourth seller whose token Amazon (the emulator) refuses.
    refused = invoke(
        "fleet", "add-seller", "S9", "--marketplace", "ATVPDKIKX0DER", input="Atzr|unknown\n"
    )
    assert refused.exit_code == 0
    hostile = '<img src=x onerror="alert(1)"></td><script>alert(2)</script>'

    async def sync_some() -> None:
        fleet = Fleet.from_env(
            {
                **env,
                "SPAPI_FLEET_REDIS_URL": env["SPAPI_REDIS_URL"],
                "SPAPI_FLEET_DATABASE_URL": env["SPAPI_DATABASE_URL"],
                "SPAPI_FLEET_ENDPOINT": env["SPAPI_ENDPOINT"],
                "SPAPI_FLEET_TOKEN_URL": env["SPAPI_TOKEN_URL"],
            }
        )
        try:
            for seller_id in ("S1", "S2", "S9"):
                await fleet.run_seller(seller_id)
        finally:
            await fleet.aclose()
        conn = await asyncpg.connect(postgres.dsn)
        try:  # an error text that must reach the page as text
            await conn.execute(
                f"UPDATE {env['SPAPI_FLEET_SCHEMA']}.fleet_status SET last_error = $1"
                " WHERE seller_id = 'S2'",
                hostile,
            )
        finally:
            await conn.close()

    asyncio.run(sync_some())
    server = start(env, "status", "--serve", "--port", "0", "--refresh", "5")
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert url is not None, line + server.stdout.read()
        dom = loaded_dom(chromium, url.group(0))
        # A page elsewhere whose name resolves to this machine gets nothing.
        rebound = loaded_dom(
            chromium,
            f"http://rebind.test:{url.group(1)}/status.json",
            resolve="MAP rebind.test 127.0.0.1, ",
        )
    finally:
        code, output = stop(server)
    assert code == 0, output

    rows = dict(re.findall(r'<tr data-seller="([^"]+)"[^>]*>(.*?)</tr>', dom, re.S))
    assert sorted(rows) == sorted([*ids, "S9"])

    def cell(seller: str, name: str) -> str:
        found = re.search(rf'<td class="[^"]*\b{name}\b[^"]*">(.*?)</td>', rows[seller], re.S)
        assert found is not None, (seller, name, rows[seller])
        return html.unescape(re.sub(r"<[^>]+>", "", found.group(1))).strip()

    def state(seller: str) -> str:
        found = re.search(r'<span class="state">([^<]+)</span>', rows[seller])
        assert found is not None
        return found.group(1)

    for seller in sellers.sellers[:2]:
        seller_id = f"S{seller.index + 1}"
        assert state(seller_id) == "ok"
        assert cell(seller_id, "total") == f"{len(seller.store.jobs):,}"
        assert cell(seller_id, "throttled") == "0 / 0"
        assert cell(seller_id, "success").endswith("ago")
        assert re.fullmatch(r"\d+ (s|min)", cell(seller_id, "lag"))
    assert state("S3") == "new"
    assert cell("S3", "success") == "-"
    assert state("S9") == "refused"
    refusal = cell("S9", "error")
    assert refusal.count("invalid_grant") == 1  # said once, and what to do next
    assert "spapi-services fleet clear-refusal S9" in refusal
    assert "spapi-services fleet add-seller S9" in refusal
    assert "Jobs written (all runs)" in dom
    assert "Jobs in the mirror counts each job once" in dom
    # The hostile text is shown as text: no element came of it.
    assert cell("S2", "error").startswith(hostile)
    assert "<img" not in dom
    assert "<script" not in dom
    summary = html.unescape(re.sub(r"<[^>]+>", "", dom.split('id="summary">')[1].split("</p>")[0]))
    mirrored = sum(len(s.store.jobs) for s in sellers.sellers[:2])
    assert f"{mirrored:,} jobs in the mirror" in " ".join(summary.split())
    chart = re.search(r'<svg id="growth".*?</svg>', dom, re.S)
    assert chart is not None
    assert f"{mirrored:,} jobs now" in chart.group(0)
    assert "<polyline" in chart.group(0)
    assert '<meta http-equiv="refresh" content="5">' in dom  # it reloads itself
    assert "--allow-host" in rebound
    assert "sellerId" not in rebound
    assert "S1" not in rebound


# --- the demo ----------------------------------------------------------------------------------


def test_the_demo_mirrors_every_job_once_though_a_worker_is_killed_and_stays_up_to_look_at(
    postgres: PostgresServer, redis_server: RedisServer, chromium: str
) -> None:
    # The servers of this module are there only to make the test skip (or fail in CI)
    # when the programs are missing: the demo starts its own.
    demo = subprocess.Popen(
        [sys.executable, "-m", "spapi_services.cli", "--json", "fleet", "demo", "--sellers", "4",
         "--jobs", "200", "--latency", "150", "--serve", "--port", "0"],
        env={k: v for k, v in os.environ.items()
             if k not in ("SPAPI_REDIS_URL", "SPAPI_DATABASE_URL")},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        assert demo.stdout is not None
        first = demo.stdout.readline()
        assert first, demo.communicate(timeout=30)
        summary = json.loads(first)
        served = json.loads(demo.stdout.readline())
        dom = loaded_dom(chromium, served["url"])
    finally:
        code, _ = stop(demo)
    assert code == 0
    assert summary["sellers"] == 4
    assert summary["jobsExpected"] == summary["jobsMirrored"] == 4 * 200
    assert (summary["duplicates"], summary["missing"], summary["unexpected"]) == (0, 0, 0)
    assert summary["throttled"] == 0
    assert summary["states"] == {"ok": 4}
    killed = summary["killed"]
    assert killed is not None, summary
    assert killed["sellers"], summary
    assert summary["boundSeconds"] > 0
    assert summary["elapsedSeconds"] > summary["boundSeconds"]
    # The first seller's changes reached the demo's receiver, every one.
    hooks = summary["webhooks"]
    assert hooks["changes"] == hooks["received"] == 200
    assert (hooks["missing"], hooks["unexpected"], hooks["refused"]) == (0, 0, 0)
    # --serve: the fleet stayed up, its status page there to look at, until stopped.
    assert re.findall(r'<tr data-seller="([^"]+)"', dom) == ["S01", "S02", "S03", "S04"]
    assert "800</span> jobs in the mirror" in dom
    port = int(served["url"].rsplit(":", 1)[1].rstrip("/"))
    with pytest.raises(ConnectionRefusedError):  # and everything went when it was stopped
        socket.create_connection(("127.0.0.1", port), 1).close()
