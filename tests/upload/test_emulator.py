"""upload() against the local emulator over real sockets: the whole proof-of-work flow,
and each way the emulator (after the sandbox) refuses a document."""

from __future__ import annotations

import io
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from spapi_services import ServicesClient, UnprocessableEntityError, UploadError
from spapi_services import _crypto as crypto_module
from spapi_services._crypto import decrypt_cbc, digests, encrypt_cbc, key_and_iv
from spapi_services.emulator import FakeClock, ServicesEmulator
from spapi_services.emulator import documents as vault_module
from spapi_services.models.appointments import FulfillmentDocument
from spapi_services.models.enums import ContentType

from .conftest import FakeClock as UploadClock

NOW = datetime(2026, 6, 17, 12, 0, tzinfo=UTC)
US = "ATVPDKIKX0DER"

SAMPLES = {
    "PDF": b"%PDF-1.7\n" + os.urandom(3000) + b"\n%%EOF\n",
    "PNG": b"\x89PNG\r\n\x1a\n" + os.urandom(500),
    "JPG": b"\xff\xd8\xff\xe0" + os.urandom(777),
    "JPEG": b"\xff\xd8\xff\xe1" + os.urandom(64),
    "GIF": b"GIF89a" + os.urandom(15),  # 21 bytes: padding of 11
    "TIFF": b"MM\x00*" + os.urandom(12),  # 16 bytes: a whole block of padding
}


@pytest.fixture
def emu_clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
async def emu(emu_clock: FakeClock) -> AsyncIterator[ServicesEmulator]:
    # A token that outlives the day the document-expiry test skips forward.
    async with ServicesEmulator(
        jobs=60, seed=11, clock=emu_clock, enforce_limits=False, token_ttl=10**7
    ) as server:
        yield server


@pytest.fixture
async def client(
    emu: ServicesEmulator, request: pytest.FixtureRequest
) -> AsyncIterator[ServicesClient]:
    # A test that asks for ``fake_time`` gets a client whose back-offs are recorded there.
    timer = request.getfixturevalue("fake_time") if "fake_time" in request.fixturenames else None
    async with ServicesClient(
        emu.credentials, endpoint=emu.url, token_url=emu.token_url, marketplace_id=US, timer=timer
    ) as made:
        yield made


def open_appointments(emu: ServicesEmulator) -> list[tuple[str, str]]:
    """(job id, appointment id) of every job that can still be fulfilled and completed."""
    found = []
    for job in emu.store.find_jobs(status="NOT_SERVICED"):
        appointment = job.active_appointment()
        if appointment is not None:
            found.append((job.service_job_id, appointment.appointment_id))
    return found


def stored(emu: ServicesEmulator, document: FulfillmentDocument) -> Any:
    return emu.vault.destinations[document.upload_destination_id or ""]


def uploads(emu: ServicesEmulator) -> list[Any]:
    return [r for r in emu.requests if r.operation == "upload"]


async def refusal(
    client: ServicesClient, job: tuple[str, str], document: FulfillmentDocument
) -> UnprocessableEntityError:
    with pytest.raises(UnprocessableEntityError) as caught:
        await client.appointments.set_fulfillment_data(*job, documents=[document])
    return caught.value


# --- the flow ----------------------------------------------------------------------------


@pytest.mark.parametrize("content_type", list(SAMPLES))
async def test_upload_fulfil_complete(
    emu: ServicesEmulator, client: ServicesClient, content_type: str
) -> None:
    job_id, appointment_id = open_appointments(emu)[0]
    plain = SAMPLES[content_type]

    document = await client.documents.upload(plain, content_type=content_type)

    assert document.content_sha256 == digests(plain).sha256
    record = stored(emu, document)
    assert record.content_type == content_type
    assert record.content_length == len(plain)
    assert record.content_md5 == digests(plain).md5
    assert record.data != plain
    assert len(record.data) == (len(plain) // 16 + 1) * 16
    assert decrypt_cbc(record.data, record.aes_key, record.iv) == plain

    await client.appointments.set_fulfillment_data(job_id, appointment_id, documents=[document])
    await client.service_jobs.complete(job_id)
    job = await client.service_jobs.get(job_id)
    assert job.service_job_status == "COMPLETED"


async def test_type_from_magic_bytes_and_suffix(
    emu: ServicesEmulator, client: ServicesClient, tmp_path: Path
) -> None:
    jobs = open_appointments(emu)
    path = tmp_path / "receipt.tiff"
    path.write_bytes(SAMPLES["TIFF"])
    by_magic = await client.documents.upload(SAMPLES["GIF"])
    by_suffix = await client.documents.upload(path)
    assert stored(emu, by_magic).content_type == "GIF"
    assert stored(emu, by_suffix).content_type == "TIFF"
    await client.appointments.set_fulfillment_data(*jobs[0], documents=[by_magic])
    await client.appointments.set_fulfillment_data(*jobs[1], documents=[by_suffix])


async def test_sources_give_the_same_document(
    emu: ServicesEmulator, client: ServicesClient, tmp_path: Path
) -> None:
    plain = SAMPLES["PDF"]
    path = tmp_path / "proof.pdf"
    path.write_bytes(plain)
    with path.open("rb") as file:
        sources: list[Any] = [plain, path, str(path), file, io.BytesIO(plain), memoryview(plain)]
        documents = [await client.documents.upload(source) for source in sources]

    assert {d.content_sha256 for d in documents} == {digests(plain).sha256}
    records = [stored(emu, d) for d in documents]
    # A fresh key per destination: different ciphertexts, one plaintext.
    assert len({r.data for r in records}) == len(records)
    assert {decrypt_cbc(r.data, r.aes_key, r.iv) for r in records} == {plain}
    job = open_appointments(emu)[0]
    await client.appointments.set_fulfillment_data(*job, documents=documents)


# --- refusals ----------------------------------------------------------------------------


async def test_tampered_sha256(emu: ServicesEmulator, client: ServicesClient) -> None:
    document = await client.documents.upload(SAMPLES["PNG"])
    tampered = FulfillmentDocument(
        upload_destination_id=document.upload_destination_id,
        content_sha256=digests(b"something else").sha256,
    )
    error = await refusal(client, open_appointments(emu)[0], tampered)
    assert [e.message for e in error.errors] == [vault_module.BAD_DIGEST]
    assert error.body is not None
    assert error.body.lstrip().startswith("[")  # this operation's errors are a bare array


async def test_document_encrypted_with_another_key(
    emu: ServicesEmulator, client: ServicesClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = SAMPLES["PDF"]
    used: list[bytes] = []

    def wrong_key(data: bytes, key: bytes, iv: bytes) -> bytes:
        # Another key, chosen so that the right key meets bad padding (not a 1-in-256 fluke).
        for n in range(1, 1000):
            other = bytes((b + n) % 256 for b in key)
            ciphertext = encrypt_cbc(data, other, iv)
            try:
                decrypt_cbc(ciphertext, key, iv)
            except ValueError:
                used.append(other)
                return ciphertext
        raise AssertionError("no key found")

    monkeypatch.setattr(crypto_module, "encrypt_cbc", wrong_key)
    document = await client.documents.upload(plain)
    assert used
    error = await refusal(client, open_appointments(emu)[0], document)
    assert [e.message for e in error.errors] == [vault_module.UNDECIPHERABLE]


async def test_plaintext_upload_is_refused_when_encryption_is_required(
    emu: ServicesEmulator, client: ServicesClient
) -> None:
    document = await client.documents.upload(SAMPLES["TIFF"], encrypt=False)
    record = stored(emu, document)
    # The plain bytes "decrypted" with the destination's random key end in bad padding,
    # except once in about 256 keys, when they end in what reads as padding and leave
    # bytes of the wrong length: refused either way, and for the reason that applies.
    try:
        decrypt_cbc(SAMPLES["TIFF"], record.aes_key, record.iv)
    except ValueError:
        expected = vault_module.UNDECIPHERABLE
    else:
        expected = vault_module.WRONG_LENGTH
    error = await refusal(client, open_appointments(emu)[0], document)
    assert [e.message for e in error.errors] == [expected]


async def test_expired_upload_url(
    emu: ServicesEmulator, client: ServicesClient, emu_clock: FakeClock
) -> None:
    plain = SAMPLES["JPEG"]
    sums = digests(plain)
    destination = await client.documents.create_upload_destination(
        content_type="JPEG", content_length=len(plain), content_md5=sums.md5
    )
    emu_clock.advance(301)
    key, iv = key_and_iv(destination.encryption_details)
    with pytest.raises(UploadError) as caught:
        # Our URL-expiry bookkeeping is skipped (asked "now"): the emulator's clock decides.
        await client._put_document(
            destination.url,
            encrypt_cbc(plain, key, iv),
            ContentType.JPEG,
            destination.headers,
            asked_at=client._now(),
            destination_id=destination.upload_destination_id,
        )
    assert caught.value.status_code == 403
    assert caught.value.code == "AccessDenied"
    assert "Request has expired" in str(caught.value)
    assert "X-Amz-Signature" not in str(caught.value)
    assert len(uploads(emu)) == 1  # a 403 is final

    # Nothing was stored, so citing it fails as a missing upload.
    document = FulfillmentDocument(
        upload_destination_id=destination.upload_destination_id, content_sha256=sums.sha256
    )
    error = await refusal(client, open_appointments(emu)[0], document)
    assert [e.message for e in error.errors] == [vault_module.NOT_UPLOADED]


async def test_expired_document(
    emu: ServicesEmulator, client: ServicesClient, emu_clock: FakeClock
) -> None:
    document = await client.documents.upload(SAMPLES["PDF"])
    emu_clock.advance(emu.vault.document_ttl + 1)
    error = await refusal(client, open_appointments(emu)[0], document)
    assert [e.message for e in error.errors] == [vault_module.EXPIRED]


async def test_missing_upload(emu: ServicesEmulator, client: ServicesClient) -> None:
    plain = SAMPLES["GIF"]
    destination = await client.documents.create_upload_destination(
        content_type="GIF", content_length=len(plain)
    )
    document = FulfillmentDocument(
        upload_destination_id=destination.upload_destination_id,
        content_sha256=digests(plain).sha256,
    )
    job = open_appointments(emu)[0]
    error = await refusal(client, job, document)
    assert [e.message for e in error.errors] == [vault_module.NOT_UPLOADED]

    unknown = FulfillmentDocument(upload_destination_id="amzn1.nope", content_sha256="x")
    error = await refusal(client, job, unknown)
    assert [e.message for e in error.errors] == [vault_module.NOT_FOUND]


# --- retries and what reaches the store ----------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    [
        {"error_rate": 1.0, "error_status": 503, "count": 2},
        {"error_rate": 1.0, "error_status": 500, "html": True, "count": 1},
        {"drop_rate": 1.0, "count": 2},
    ],
)
async def test_store_failures_are_retried(
    emu: ServicesEmulator, client: ServicesClient, fake_time: UploadClock, fault: dict[str, Any]
) -> None:
    emu.faults.set("upload", **fault)
    document = await client.documents.upload(SAMPLES["PNG"])
    attempts = uploads(emu)
    assert len(attempts) == fault["count"] + 1
    assert attempts[-1].status == 200
    if "drop_rate" in fault:
        # aiohttp itself re-sends an idempotent request (PUT is) once when a reused
        # keep-alive connection turns out closed, so not every drop costs us a retry.
        assert 1 <= len(fake_time.sleeps) <= fault["count"]
    else:
        assert len(fake_time.sleeps) == fault["count"]
    await client.appointments.set_fulfillment_data(*open_appointments(emu)[0], documents=[document])


async def test_store_never_sees_the_access_token(
    emu: ServicesEmulator, client: ServicesClient
) -> None:
    document = await client.documents.upload(SAMPLES["PDF"])
    await client.appointments.set_fulfillment_data(*open_appointments(emu)[0], documents=[document])
    (put,) = uploads(emu)
    assert put.method == "PUT"
    assert "x-amz-access-token" not in put.headers
    assert "authorization" not in put.headers
    assert "user-agent" not in put.headers
    assert put.headers["content-type"] == "application/pdf"
    assert int(put.headers["content-length"]) == put.body_size
    # The API calls around it did carry the token (redacted in the log).
    api_calls = [r for r in emu.requests if r.operation not in ("upload", "token")]
    assert api_calls
    assert all(r.headers.get("x-amz-access-token") == "<redacted>" for r in api_calls)
    assert stored(emu, document).upload_headers.get("x-amz-access-token") is None
