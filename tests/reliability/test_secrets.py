"""Secrets and buyers' personal data stay out of logs, reprs, messages and tracebacks.

Every logger is at DEBUG (the SDK's, aiohttp's, asyncio's, the emulator's) while the SDK
runs every operation, pages through every job (each with a buyer's name, phone and
address), uploads a document, and fails in the ways that carry the most context: an LWA
refusal, an LWA outage, API errors, a revoked token, a malformed HTTP answer.  Then every
log record (its message, its arguments, its formatted exception), every exception (its
``str``, its ``repr``, its arguments and attributes, its formatted traceback, along the
whole ``__cause__``/``__context__`` chain) and the repr of every object handed back is
searched for the client secret, the refresh token and every access token issued, and the
logs for every buyer's name, phone and address.

The files a sync's mirror is made of get the same search, and their modes are checked.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import traceback
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from _mirror_scan import buyers_data, leaks, mirror_files, mode_of

from spapi_services import (
    ApiConnectionError,
    AuthenticationError,
    LwaCredentials,
    NotFoundError,
    RetryPolicy,
    ServiceUnavailableError,
    SpApiError,
    UnprocessableEntityError,
)
from spapi_services.emulator import ServicesEmulator
from spapi_services.emulator.__main__ import environment, write_env_file
from spapi_services.emulator.catalog import MARKETPLACES
from spapi_services.sync import BuyerKey, BuyerKeyError, BuyerKeys, JsonlSink, SqliteSink, sync_jobs

from ._scenarios import NOW, SCENARIOS
from .conftest import MakeClient

LOGGERS = ("spapi_services", "aiohttp", "asyncio")
#: Whatever we cannot name in advance: every LWA secret and token starts like this.
PREFIXES = ("Atza|", "Atzr|", "amzn1.oa2-cs.")


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


def record_texts(records: list[logging.LogRecord]) -> Iterator[str]:
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    for record in records:
        yield formatter.format(record)  # the message, and the exception and stack if any
        yield repr(record.args)
        yield repr({k: v for k, v in vars(record).items() if k not in ("args", "msg")})


def exception_texts(exc: BaseException) -> Iterator[str]:
    yield "".join(traceback.format_exception(exc))
    pending, seen = [exc], set()
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield str(current)
        yield repr(current)
        yield repr(current.args)
        yield repr(getattr(current, "__dict__", {}))
        pending.extend(e for e in (current.__cause__, current.__context__) if e is not None)


def personal_data(emu: ServicesEmulator) -> set[str]:
    found: set[str] = set()
    for job in emu.store.jobs.values():
        buyer = job.details.get("buyer", {})
        address = job.details.get("serviceLocation", {}).get("address", {})
        found.update(
            value
            for value in (
                buyer.get("name"),
                buyer.get("phone"),
                address.get("name"),
                address.get("addressLine1"),
                address.get("phone"),
            )
            if value
        )
    return found


def secrets_of(emu: ServicesEmulator, *extra: str) -> set[str]:
    issued = set(emu.auth._tokens)  # every access token the emulator handed out
    assert issued, "no token was ever issued: the test did not run what it says"
    creds = emu.credentials
    return {creds.client_secret, creds.refresh_token, *issued, *extra}


def assert_absent(texts: list[str], forbidden: set[str], what: str) -> None:
    for text in texts:
        for item in forbidden:
            assert item not in text, f"{what} {item[:12]}... found in: {text[:300]}"


@pytest.fixture
async def malformed_api() -> AsyncIterator[str]:
    """A server whose every answer has a broken status line."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 2x0 OK\r\nContent-Length: 2\r\n\r\n{}")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.close()
    await server.wait_closed()


async def test_nothing_secret_or_personal_leaks(
    emu: ServicesEmulator,
    make_client: MakeClient,
    debug_logs: pytest.LogCaptureFixture,
    malformed_api: str,
    sdk_sleeps: list[float],
) -> None:
    client = make_client(emu, retry=RetryPolicy(max_retries=2))
    results: list[Any] = [client]
    failures: list[BaseException] = []

    # A full day's work: every operation, every job paged through, a document uploaded.
    for scenario in SCENARIOS.values():
        results.append(await scenario.call(client, scenario.prepare(emu)))
    jobs = client.service_jobs.list(created_after=NOW - timedelta(days=3650), page_size=20)
    results.extend([job async for job in jobs])
    assert len(results) > len(SCENARIOS) + 20
    results.append(await client.documents.upload(b"%PDF-1.4 proof of appointment"))

    # API errors: a missing job, a closed job, a 503, a revoked token (refreshed once).
    for failing, expected in [
        (client.service_jobs.get("no-such-job"), NotFoundError),
        (client.service_jobs.cancel(_closed_job(emu), reason_code="V1"), UnprocessableEntityError),
    ]:
        with pytest.raises(expected) as caught:
            await failing
        failures.append(caught.value)
    emu.faults.set("createReservation", error_rate=1.0, error_status=503, count=1)
    with pytest.raises(ServiceUnavailableError) as unavailable:
        await SCENARIOS["createReservation"].call(
            client, SCENARIOS["createReservation"].prepare(emu)
        )
    failures.append(unavailable.value)
    emu.auth.revoke_all()
    results.append(await client.service_jobs.get(next(iter(emu.store.jobs))))

    # A malformed answer: aiohttp's error about it holds the request's headers.
    broken = make_client(emu, endpoint=malformed_api, retry=RetryPolicy(max_retries=0))
    with pytest.raises(ApiConnectionError) as malformed:
        await broken.service_jobs.get("job-1")
    failures.append(malformed.value)

    # LWA: a refusal (a wrong secret), and an outage (5xx until the retries run out).
    wrong = LwaCredentials(
        client_id=emu.credentials.client_id,
        client_secret="amzn1.oa2-cs.v1.WRONG-SECRET-0123456789",
        refresh_token=emu.credentials.refresh_token,
    )
    refused = make_client(emu, credentials=wrong)
    with pytest.raises(AuthenticationError) as refusal:
        await refused.service_jobs.get("job-1")
    failures.append(refusal.value)
    emu.faults.set("token", error_rate=1.0, error_status=503)
    outage = make_client(emu)
    with pytest.raises(AuthenticationError) as down:
        await outage.service_jobs.get("job-1")
    failures.append(down.value)
    emu.faults.clear("token")

    forbidden = secrets_of(emu, wrong.client_secret) | set(PREFIXES)
    logs = list(record_texts(debug_logs.records))
    assert any("attempt=" in text for text in logs)  # the SDK did log, at DEBUG
    assert_absent(logs, forbidden, "a secret in the logs:")
    assert_absent(logs, personal_data(emu), "a buyer's data in the logs:")
    for failure in failures:
        assert isinstance(failure, SpApiError)
        texts = list(exception_texts(failure))
        assert_absent(texts, forbidden, f"a secret in {type(failure).__name__}:")
        assert_absent(texts, personal_data(emu), f"a buyer's data in {type(failure).__name__}:")
    reprs = [repr(r) for r in results] + [
        repr(client._core.transport.tokens),
        repr(emu.credentials),
    ]
    assert_absent(reprs, forbidden, "a secret in a repr:")


def _closed_job(emu: ServicesEmulator) -> str:
    return emu.store.find_jobs(status="COMPLETED")[0].service_job_id


async def test_the_search_is_not_blind(
    emu: ServicesEmulator, debug_logs: pytest.LogCaptureFixture
) -> None:
    # The checks above would pass on an empty log: show that they see what they look for.
    secret = emu.credentials.client_secret
    logging.getLogger("aiohttp.client").debug("sent %s", {"client_secret": secret})
    with pytest.raises(AssertionError):
        assert_absent(list(record_texts(debug_logs.records)), {secret}, "a secret")
    try:
        raise ValueError("outer") from KeyError(secret)
    except ValueError as exc:
        with pytest.raises(AssertionError):
            assert_absent(list(exception_texts(exc)), {secret}, "a secret")
    name = next(iter(personal_data(emu)))
    assert name.replace(" ", "").isalnum() or "-" in name or " " in name


# --- the mirror's files ---------------------------------------------------------------------


@pytest.fixture
def open_umask() -> Iterator[None]:
    """Nothing masked: a file is as private as the call that made it asked."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


async def test_the_mirrors_files_are_private_and_hold_no_secret_or_clear_buyer_data(
    emu: ServicesEmulator,
    make_client: MakeClient,
    debug_logs: pytest.LogCaptureFixture,
    tmp_path: Path,
    open_umask: None,
) -> None:
    """Every file the sync, its upkeep and the emulator's --env-file make, under umask 000:
    mode 0600 (folders 0700); no LWA secret or token, no buyer key, and, unless the buyer
    data is kept, no buyer's data in any form.  The logs of all that hold neither."""
    client = make_client(emu)
    key, old_key = BuyerKey.generate(), BuyerKey.generate()
    folder = tmp_path / "mirrors" / "private"
    buyer = next(iter(emu.store.jobs.values())).details["buyer"]["buyerId"]
    records = [json.loads(job.fragment()) for job in emu.store.jobs.values()]
    personal = buyers_data(records)
    assert len(personal) > 60
    failures: list[BaseException] = []

    for mode in ("keep", "encrypt", "hash", "drop"):
        for sink in (
            SqliteSink(folder / f"{mode}.sqlite", buyer_key=[key, old_key]),
            JsonlSink(folder / f"{mode}.jsonl", buyer_key=[key, old_key]),
        ):
            async with sink:
                await sync_jobs(
                    client,
                    sink,
                    since=NOW - timedelta(days=3650),
                    until=emu.clock.now(),
                    marketplace_ids=[m.marketplace_id for m in MARKETPLACES],
                    buyer_data=mode,  # type: ignore[arg-type]
                )
                await sink.rewrite_buyer_data(mode, buyer_key=[old_key, key])  # type: ignore[arg-type]
                await sink.rewrite_buyer_data(mode)  # type: ignore[arg-type]
                await sink.forget_buyer(buyer)
                await sink.prune(timedelta(days=30), now=emu.clock.now())
                files = mirror_files(sink.path)
                assert len(files) >= 2  # the SQLite log and index are there while open
                assert {f.name: mode_of(f) for f in files} == {f.name: 0o600 for f in files}
                if mode != "keep":
                    assert leaks(files, personal) == [], (mode, sink)
            if mode in ("encrypt", "hash"):
                with pytest.raises(BuyerKeyError) as wrong_key:
                    await type(sink)(sink.path, buyer_key=BuyerKey.generate()).forget_buyer(buyer)
                failures.append(wrong_key.value)
    env_file = tmp_path / "emulator.env"
    write_env_file(env_file, environment(emu))
    assert mode_of(env_file) == 0o600
    # The search below finds a secret where one is (the env file holds it, by design).
    assert emu.credentials.client_secret.encode() in env_file.read_bytes()
    assert mode_of(folder) == mode_of(folder.parent) == 0o700

    forbidden = secrets_of(emu) | set(PREFIXES)
    keys = {k.export() for k in (key, old_key)}
    key_bytes = [k._secret for k in (key, old_key)]
    everything = [f for f in folder.iterdir() if f.is_file()]
    assert len(everything) == 16  # a SQLite file, a log, its checkpoint and hash index per mode
    for file in everything:
        data = file.read_bytes()
        for secret in forbidden | keys:
            assert secret.encode() not in data, f"a secret in {file.name}"
        for raw in key_bytes:
            assert raw not in data, f"a key's bytes in {file.name}"
            assert base64.b64encode(raw) not in data, f"a key in {file.name}"
    logs = list(record_texts(debug_logs.records))
    assert any("synced up to" in text for text in logs)  # the sync did log
    assert_absent(logs, forbidden | keys, "a secret in the logs:")
    assert_absent(logs, personal_data(emu), "a buyer's data in the logs:")
    for failure in failures:
        texts = list(exception_texts(failure))
        assert_absent(texts, keys, "a key in a BuyerKeyError:")
        assert_absent(texts, personal_data(emu), "a buyer's data in a BuyerKeyError:")
        assert_absent(texts, {buyer}, "the buyer's id in a BuyerKeyError:")
    assert_absent([repr(key), repr(BuyerKeys([key, old_key]))], keys, "a key in a repr:")
