"""Documents: the upload destination, the presigned PUT, and the checks made when a
document is cited in setAppointmentFulfillmentData."""

from __future__ import annotations

import base64
import hashlib
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from spapi_services.emulator import FakeClock, ServicesEmulator
from spapi_services.emulator.store import AppointmentRecord, JobRecord

from ._helpers import Api, StartEmulator

CREATE = "createServiceDocumentUploadDestination"
FULFIL = "setAppointmentFulfillmentData"
GET = "getServiceJobByServiceJobId"
PDF = b"%PDF-1.7\n" + b"proof of appointment " * 40 + b"\n%%EOF\n"
PREFIX = "Failed to process proof of appointment input. Reason: "


def encrypt(plain: bytes, details: dict[str, str]) -> bytes:
    """AES-256-CBC with PKCS#7, as a client must (written here independently of the emulator)."""
    padder = padding.PKCS7(128).padder()
    data = padder.update(plain) + padder.finalize()
    key = base64.b64decode(details["key"])
    iv = base64.b64decode(details["initializationVector"])
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return encryptor.update(data) + encryptor.finalize()


def sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def open_appointment(emu: ServicesEmulator) -> tuple[JobRecord, AppointmentRecord]:
    for job in emu.store.find_jobs(status="NOT_SERVICED"):
        appointment = job.active_appointment()
        if appointment is not None:
            return job, appointment
    raise AssertionError("no open appointment in the seed")


async def destination(
    api: Api, content_type: str = "PDF", length: int = len(PDF)
) -> dict[str, Any]:
    answer = await api.call(CREATE, body={"contentType": content_type, "contentLength": length})
    assert answer.status == 200, answer.text
    payload: dict[str, Any] = answer.json["payload"]
    return payload


async def put(api: Api, dest: dict[str, Any], data: bytes, **headers: str) -> tuple[int, str]:
    sent = {**dest.get("headers", {}), **headers}
    async with api.session.put(dest["url"], data=data, headers=sent) as response:
        return response.status, await response.text()


async def cite(api: Api, emu: ServicesEmulator, dest_id: str, digest: str) -> Any:
    job, appointment = open_appointment(emu)
    path = {"serviceJobId": job.service_job_id, "appointmentId": appointment.appointment_id}
    documents = [{"uploadDestinationId": dest_id, "contentSha256": digest}]
    return await api.call(FULFIL, path, body={"fulfillmentDocuments": documents})


# --- the destination ----------------------------------------------------------------------


async def test_destination_has_a_fresh_key_and_a_url_on_the_emulator(
    api: Api, emu: ServicesEmulator
) -> None:
    one = await destination(api, "PNG", 1386437)
    two = await destination(api, "PNG", 1386437)
    details = one["encryptionDetails"]
    assert details["standard"] == "AES"
    assert len(base64.b64decode(details["key"])) == 32
    assert len(base64.b64decode(details["initializationVector"])) == 16
    assert details["key"] != two["encryptionDetails"]["key"]
    assert "<->" in one["uploadDestinationId"]
    assert one["headers"] == {"Content-Type": "image/png"}
    url = urlsplit(one["url"])
    assert f"{url.scheme}://{url.netloc}" == emu.url
    assert url.path.startswith("/__uploads/")
    query = parse_qs(url.query)
    assert query["X-Amz-Expires"] == ["300"]
    assert query["X-Amz-SignedHeaders"] == ["content-type;host"]
    assert query["X-Amz-Signature"]


@pytest.mark.parametrize(
    ("payload", "status", "message"),
    [
        ({}, 400, "Missing or invalid request parameters: [contentType, contentLength]"),
        ({"contentType": "PNG"}, 400, "Missing or invalid request parameters: [contentLength]"),
        ({"contentLength": 123}, 400, "Missing or invalid request parameters: [contentType]"),
        (
            {"contentType": "PDF", "contentLength": 0},
            400,
            "Missing or invalid request parameters: [contentLength]",
        ),
        (
            {"contentType": "PDF", "contentLength": 5242881},
            400,
            "Missing or invalid request parameters: [contentLength]",
        ),
        (
            {
                "contentType": "PDF",
                "contentLength": 5,
                "contentMD5": "f7b5ab48abfd7df1e40e8a42741df69b",
            },
            400,
            "Missing or invalid request parameters: [contentMD5]",
        ),
        (
            {"contentType": "PNGr", "contentLength": 1386437},
            422,
            "contentType parameter is invalid. "
            "Use one of ['TIFF', 'JPG', 'PNG', 'JPEG', 'GIF', 'PDF']",
        ),
    ],
)
async def test_destination_requests_are_checked(
    api: Api, payload: dict[str, Any], status: int, message: str
) -> None:
    answer = await api.call(CREATE, body=payload)
    assert (answer.status, answer.messages) == (status, [message])


# --- upload and citation -------------------------------------------------------------------


async def test_upload_then_cite_the_document(api: Api, emu: ServicesEmulator) -> None:
    dest = await destination(api)
    status, text = await put(api, dest, encrypt(PDF, dest["encryptionDetails"]))
    assert (status, text) == (200, "")
    upload = emu.requests[-1]
    assert upload.operation == "upload"
    assert "x-amz-access-token" not in upload.headers
    assert upload.headers["content-type"] == "application/pdf"
    assert upload.body is None
    assert upload.body_size == len(PDF) // 16 * 16 + 16
    answer = await cite(api, emu, dest["uploadDestinationId"], sha256(PDF))
    assert (answer.status, answer.text) == (204, ""), answer.text
    assert answer.headers["x-amzn-RateLimit-Limit"] == "5.0"
    job, appointment = open_appointment(emu)
    poa = (await api.call(GET, {"serviceJobId": job.service_job_id})).json["payload"]
    (mine,) = [a for a in poa["appointments"] if a["appointmentId"] == appointment.appointment_id]
    assert mine["poa"]["poaType"] == "POA_RECEIPT"
    assert mine["poa"]["uploadTime"]


async def test_put_with_a_bad_signature_or_content_type_is_refused(api: Api) -> None:
    dest = await destination(api)
    body = encrypt(PDF, dest["encryptionDetails"])
    forged = dict(dest, url=dest["url"].replace("X-Amz-Signature=", "X-Amz-Signature=0"))
    status, text = await put(api, forged, body)
    assert status == 403
    assert text.startswith(
        '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SignatureDoesNotMatch</Code>'
    )
    status, text = await put(api, dest, body, **{"Content-Type": "image/png"})
    assert status == 403
    assert "<Code>SignatureDoesNotMatch</Code>" in text
    longer = dict(dest, url=dest["url"].replace("X-Amz-Expires=300", "X-Amz-Expires=3000"))
    assert (await put(api, longer, body))[0] == 403


async def test_put_after_the_url_expires_is_refused(api: Api, clock: FakeClock) -> None:
    dest = await destination(api)
    clock.advance(301)
    status, text = await put(api, dest, encrypt(PDF, dest["encryptionDetails"]))
    assert status == 403
    assert "<Code>AccessDenied</Code><Message>Request has expired</Message>" in text


async def test_put_checks_content_md5_and_unknown_keys(api: Api, emu: ServicesEmulator) -> None:
    dest = await destination(api)
    body = encrypt(PDF, dest["encryptionDetails"])
    wrong = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    status, text = await put(api, dest, body, **{"Content-MD5": wrong})
    assert status == 400
    assert "<Code>BadDigest</Code>" in text
    right = base64.b64encode(hashlib.md5(body).digest()).decode()
    assert (await put(api, dest, body, **{"Content-MD5": right}))[0] == 200
    async with api.session.put(emu.url + "/__uploads/nope", data=b"x") as response:
        assert response.status == 404


async def test_cited_documents_are_checked(
    api: Api, emu: ServicesEmulator, clock: FakeClock
) -> None:
    async def case(
        plain: bytes,
        *,
        encrypted: bool = True,
        declared: int | None = None,
        digest: str | None = None,
        content_type: str = "PDF",
        upload: bool = True,
        wait: float = 0,
    ) -> list[str]:
        dest = await destination(
            api, content_type, declared if declared is not None else len(plain)
        )
        if upload:
            data = encrypt(plain, dest["encryptionDetails"]) if encrypted else plain
            assert (await put(api, dest, data))[0] == 200
        if wait:
            clock.advance(wait)
            await api.login()  # the access token has expired meanwhile
        answer = await cite(api, emu, dest["uploadDestinationId"], digest or sha256(plain))
        assert answer.status == 422, answer.text
        assert isinstance(answer.json, list), "this operation's errors are a bare array"
        assert "x-amzn-RateLimit-Limit" not in answer.headers
        return answer.messages

    assert await case(PDF, upload=False) == [
        PREFIX + "Document encrypted not found or exist. Please review document uploaded"
    ]
    assert await case(b"plain text, 29 bytes long....", encrypted=False) == [
        PREFIX + "Document failed to decrypt or decipher. Please review the uploaded document"
    ]
    assert await case(PDF, digest=sha256(b"something else")) == [
        PREFIX + "Document failed to meet sanity check. Could not get a Sha256 Message Digest "
        "instance. Please review document uploaded"
    ]
    assert await case(PDF, declared=len(PDF) + 1) == [
        PREFIX
        + "Document failed to meet content length restrictions. Please review document uploaded"
    ]
    assert await case(b"\x89PNG\r\n\x1a\n" + b"pixels" * 10, content_type="PDF") == [
        PREFIX
        + "Document failed to meet content type restrictions. Please review document uploaded"
    ]
    eicar = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
    assert await case(eicar) == [
        PREFIX + "Document failed to meet malware check. Please review document uploaded"
    ]
    assert await case(PDF, wait=86_401) == [
        PREFIX + "Input document parameters are invalid. Please check the input."
    ]
    missing = await cite(api, emu, "amzn1.tortuga.3.nope", sha256(PDF))
    assert missing.messages == [PREFIX + "Input document id does not exist. Please check the input"]


async def test_unencrypted_documents_pass_when_encryption_is_not_required(
    api: Api, start_emulator: StartEmulator
) -> None:
    emu = await start_emulator(require_encryption=False)
    api.emu = emu
    await api.login()
    plain = b"%PDF-1.4 a short plain document"
    dest = await destination(api, "PDF", len(plain))
    assert (await put(api, dest, plain))[0] == 200
    answer = await cite(api, emu, dest["uploadDestinationId"], sha256(plain))
    assert answer.status == 204, answer.text
