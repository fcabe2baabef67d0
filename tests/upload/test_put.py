"""The PUT to the presigned URL: headers, retries within the URL's life, S3 errors, secrets."""

from __future__ import annotations

import base64
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from aioresponses import CallbackResult, aioresponses

from spapi_services import (
    ApiConnectionError,
    ApiTimeoutError,
    RetryPolicy,
    ServicesClient,
    UploadError,
    _serde,
    _upload,
)
from spapi_services._crypto import decrypt_cbc, digests
from spapi_services._sender import AiohttpSender
from spapi_services.models.appointments import FulfillmentDocument
from spapi_services.models.documents import ServiceDocumentUploadDestination

from .conftest import (
    ACCESS_TOKEN,
    DESTINATION_ID,
    IV,
    KEY,
    OBJECT_PATH,
    SIGNATURE,
    SIGNED_QUERY,
    STORE,
    STORE_PATTERN,
    UPLOAD_URL,
    ClientFactory,
    FakeClock,
    b64,
    callback_ok,
    destination_body,
    destination_requests,
    offer_destination,
    puts,
    s3_error,
    store_answers,
)

PDF = b"%PDF-1.4\n% proof of appointment\n" + bytes(range(256)) * 4
SECRETS = (SIGNATURE, "X-Amz-Signature", "X-Amz-Credential", b64(KEY), b64(IV), ACCESS_TOKEN)


def assert_no_secrets(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, secret


# --- headers and body --------------------------------------------------------------------


async def test_put_sends_the_destination_headers_and_the_ciphertext(
    mock_api: aioresponses, client: ServicesClient
) -> None:
    given = {"x-amz-server-side-encryption": "AES256", "x-amz-meta-origin": "services"}
    offer_destination(mock_api, headers=given)
    captured: list[dict[str, Any]] = []
    mock_api.put(STORE_PATTERN, callback=callback_ok(captured))

    document = await client.documents.upload(PDF)

    assert document == FulfillmentDocument(
        upload_destination_id=DESTINATION_ID, content_sha256=digests(PDF).sha256
    )
    (sent,) = captured
    assert sent["headers"] == {**given, "Content-Type": "application/pdf"}
    assert "x-amz-access-token" not in {k.lower() for k in sent["headers"]}
    assert {"User-Agent", "Accept", "Accept-Encoding"} <= set(sent["skip_auto_headers"])
    assert sent["allow_redirects"] is False
    assert decrypt_cbc(sent["data"], KEY, IV) == PDF
    assert len(sent["data"]) == (len(PDF) // 16 + 1) * 16


@pytest.mark.parametrize(
    ("content_type", "mime"),
    [
        ("PDF", "application/pdf"),
        ("PNG", "image/png"),
        ("JPG", "image/jpeg"),
        ("JPEG", "image/jpeg"),
        ("GIF", "image/gif"),
        ("TIFF", "image/tiff"),
    ],
)
async def test_content_type_header_follows_the_declared_type(
    mock_api: aioresponses, client: ServicesClient, content_type: str, mime: str
) -> None:
    offer_destination(mock_api)
    captured: list[dict[str, Any]] = []
    mock_api.put(STORE_PATTERN, callback=callback_ok(captured))
    await client.documents.upload(PDF, content_type=content_type)
    assert captured[0]["headers"] == {"Content-Type": mime}
    (asked,) = destination_requests(mock_api)
    assert b'"contentType":"' + content_type.encode() + b'"' in asked.kwargs["data"].replace(
        b" ", b""
    )


async def test_content_type_from_the_destination_wins(
    mock_api: aioresponses, client: ServicesClient
) -> None:
    # Whatever Amazon signed is what must be sent, even the model's own "image/jpg".
    offer_destination(mock_api, headers={"content-type": "image/jpg"})
    captured: list[dict[str, Any]] = []
    mock_api.put(STORE_PATTERN, callback=callback_ok(captured))
    await client.documents.upload(b"\xff\xd8\xff\xe0 jpeg", content_type="JPG")
    assert captured[0]["headers"] == {"content-type": "image/jpg"}


async def test_encrypt_false_sends_the_bytes_as_they_are(
    mock_api: aioresponses, client: ServicesClient
) -> None:
    offer_destination(mock_api)
    captured: list[dict[str, Any]] = []
    mock_api.put(STORE_PATTERN, callback=callback_ok(captured))
    document = await client.documents.upload(PDF, encrypt=False)
    assert captured[0]["data"] == PDF
    assert document.content_sha256 == digests(PDF).sha256


@pytest.mark.parametrize(
    ("key", "iv", "message"),
    [
        (bytes(16), IV, "key decodes to 16 bytes"),
        (KEY, bytes(12), "initialization vector decodes to 12 bytes"),
    ],
)
async def test_unusable_key_or_iv_stops_before_the_put(
    mock_api: aioresponses, client: ServicesClient, key: bytes, iv: bytes, message: str
) -> None:
    offer_destination(mock_api, key=key, iv=iv)
    with pytest.raises(UploadError, match=message) as caught:
        await client.documents.upload(PDF)
    assert caught.value.code == "InvalidEncryptionDetails"
    assert puts(mock_api) == []
    assert b64(key) not in str(caught.value)


async def test_unusable_key_does_not_matter_without_encryption(
    mock_api: aioresponses, client: ServicesClient
) -> None:
    offer_destination(mock_api, key=bytes(5))
    store_answers(mock_api, 200)
    await client.documents.upload(PDF, encrypt=False)
    assert len(puts(mock_api)) == 1


# --- on the wire, to a real local server --------------------------------------------------


@pytest.fixture
async def wire() -> AsyncIterator[dict[str, Any]]:
    """A local server playing both the API and the store; it keeps what the PUT carried."""
    seen: dict[str, Any] = {"puts": [], "api": []}

    async def create(request: web.Request) -> web.Response:
        seen["api"].append(dict(request.headers))
        base = str(request.url.origin())
        return web.json_response(
            destination_body(
                url=f"{base}{OBJECT_PATH}?{SIGNED_QUERY}",
                headers={"x-amz-server-side-encryption": "AES256"},
            )
        )

    async def store(request: web.Request) -> web.Response:
        seen["puts"].append(
            {
                "headers": list(request.raw_headers),
                "query_string": request.query_string,
                "raw_path": request.raw_path,
                "body": await request.read(),
            }
        )
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/service/v1/documents", create)
    app.router.add_put(OBJECT_PATH, store)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    seen["url"] = str(server.make_url("")).rstrip("/")
    try:
        yield seen
    finally:
        await server.close()


async def test_wire_headers_and_untouched_query(
    wire: dict[str, Any], make_client: ClientFactory
) -> None:
    client = make_client(endpoint=wire["url"])
    await client.documents.upload(PDF)

    (put,) = wire["puts"]
    names = [name.decode().lower() for name, _ in put["headers"]]
    headers = {name.decode().lower(): value.decode() for name, value in put["headers"]}
    # Exactly: what the destination gave, the signed content type, and what HTTP needs.
    assert sorted(names) == sorted(
        ["host", "content-type", "content-length", "x-amz-server-side-encryption"]
    )
    assert headers["content-type"] == "application/pdf"
    assert headers["content-length"] == str(len(put["body"]))
    assert headers["x-amz-server-side-encryption"] == "AES256"
    # The signed query string arrives byte for byte as Amazon wrote it.
    assert put["raw_path"] == f"{OBJECT_PATH}?{SIGNED_QUERY}"
    assert decrypt_cbc(put["body"], KEY, IV) == PDF
    # The API call itself did carry the token; the store never saw it.
    assert wire["api"][0]["x-amz-access-token"] == ACCESS_TOKEN


# --- S3 errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "message"),
    [
        (403, "AccessDenied", "Request has expired"),
        (403, "SignatureDoesNotMatch", "The request signature we calculated does not match"),
        (400, "InvalidDigest", "The Content-MD5 you specified was invalid."),
        (400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size"),
        (404, "NoSuchBucket", "The specified bucket does not exist"),
    ],
)
async def test_store_refusals_raise_upload_error(
    mock_api: aioresponses, client: ServicesClient, status: int, code: str, message: str
) -> None:
    offer_destination(mock_api)
    # A signature error echoes what was signed; none of it may surface.
    body = s3_error(
        code,
        message,
        SignatureProvided=SIGNATURE,
        StringToSign=f"AWS4-HMAC-SHA256 X-Amz-Signature={SIGNATURE}",
        AWSAccessKeyId="AKIAEXAMPLE",
    )
    store_answers(mock_api, (status, body))
    with pytest.raises(UploadError) as caught:
        await client.documents.upload(PDF)
    error = caught.value
    assert error.status_code == status
    assert error.code == code
    assert message in str(error)
    assert "4442587FB7D0A2F9" in str(error)  # the store's request id, for support
    assert f"{STORE}{OBJECT_PATH}" in str(error)
    assert_no_secrets(str(error))
    assert "AKIAEXAMPLE" not in str(error)
    assert error.__cause__ is None
    assert len(puts(mock_api)) == 1  # a 4xx is not retried


async def test_namespaced_error_document(mock_api: aioresponses, client: ServicesClient) -> None:
    offer_destination(mock_api)
    body = (
        b'<Error xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        b"<Code>AccessDenied</Code><Message>Access Denied</Message></Error>"
    )
    store_answers(mock_api, (403, body))
    with pytest.raises(UploadError, match="AccessDenied: Access Denied") as caught:
        await client.documents.upload(PDF)
    assert caught.value.code == "AccessDenied"


async def test_error_without_xml_body(mock_api: aioresponses, client: ServicesClient) -> None:
    offer_destination(mock_api)
    store_answers(mock_api, (400, b"<html>Bad Request</html>"))
    with pytest.raises(UploadError, match="HTTP 400: no S3 error document") as caught:
        await client.documents.upload(PDF)
    assert caught.value.code is None
    assert caught.value.status_code == 400


async def test_error_document_in_a_200_is_still_an_error(
    mock_api: aioresponses, client: ServicesClient
) -> None:
    offer_destination(mock_api)
    store_answers(mock_api, (200, s3_error("InternalError", "We encountered an internal error.")))
    with pytest.raises(UploadError, match="InternalError") as caught:
        await client.documents.upload(PDF)
    assert caught.value.status_code == 200


async def test_redirect_is_not_followed(mock_api: aioresponses, client: ServicesClient) -> None:
    offer_destination(mock_api)
    store_answers(mock_api, (307, s3_error("TemporaryRedirect", "Please re-send this request")))
    with pytest.raises(UploadError, match="HTTP 307: TemporaryRedirect") as caught:
        await client.documents.upload(PDF)
    assert caught.value.code == "TemporaryRedirect"
    assert len(puts(mock_api)) == 1


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            s3_error("SlowDown", "Reduce your request rate."),
            ("SlowDown", "Reduce your request rate."),
        ),
        (b"<Error><Code>A &amp; B</Code></Error>", ("A & B", None)),
        (b"<Error><Code/><Message>only a message</Message></Error>", (None, "only a message")),
        (b"<NotAnError><Code>X</Code></NotAnError>", None),
        (b"<Error><Code>unclosed", None),
        (b"plain text", None),
        (b"", None),
        (b'{"errors": []}', None),
    ],
)
def test_parse_s3_error(body: bytes, expected: tuple[str | None, str | None] | None) -> None:
    parsed = _upload.parse_s3_error(body)
    if expected is None:
        assert parsed is None
    else:
        assert parsed is not None
        assert (parsed.code, parsed.message) == expected


# --- retries -----------------------------------------------------------------------------


async def test_server_errors_are_retried_with_backoff(
    mock_api: aioresponses, client: ServicesClient, fake_time: FakeClock
) -> None:
    offer_destination(mock_api)
    store_answers(
        mock_api,
        (503, s3_error("SlowDown", "Please reduce your request rate.")),
        (500, s3_error("InternalError", "We encountered an internal error.")),
        200,
    )
    document = await client.documents.upload(PDF)
    assert document.upload_destination_id == DESTINATION_ID
    sent = puts(mock_api)
    assert len(sent) == 3
    assert len({bytes(call.kwargs["data"]) for call in sent}) == 1  # the same ciphertext
    assert fake_time.sleeps == [0.5, 1.0]  # the client's RetryPolicy, no jitter here
    assert len(destination_requests(mock_api)) == 1  # one destination for all attempts


async def test_connection_errors_are_retried(
    mock_api: aioresponses, client: ServicesClient, fake_time: FakeClock
) -> None:
    offer_destination(mock_api)
    store_answers(
        mock_api,
        aiohttp.ServerDisconnectedError(),
        aiohttp.ClientOSError(104, "Connection reset by peer"),
        200,
    )
    await client.documents.upload(PDF)
    assert len(puts(mock_api)) == 3


async def test_retries_end_with_the_last_store_error(
    mock_api: aioresponses, client: ServicesClient, fake_time: FakeClock
) -> None:
    offer_destination(mock_api)
    store_answers(mock_api, *[(503, s3_error("SlowDown", "Reduce your request rate."))] * 4)
    with pytest.raises(UploadError, match=r"(?s)SlowDown.*Gave up after 4 attempts") as caught:
        await client.documents.upload(PDF)
    assert caught.value.status_code == 503
    assert caught.value.code == "SlowDown"
    assert len(puts(mock_api)) == 4  # max_retries=3


async def test_retries_follow_the_clients_policy(
    mock_api: aioresponses, make_client: ClientFactory, fake_time: FakeClock
) -> None:
    client = make_client(retry=RetryPolicy(max_retries=0))
    offer_destination(mock_api)
    store_answers(mock_api, 503)
    with pytest.raises(UploadError, match="HTTP 503"):
        await client.documents.upload(PDF)
    assert len(puts(mock_api)) == 1
    assert fake_time.sleeps == []


async def test_connection_failures_end_as_connection_errors(
    mock_api: aioresponses, client: ServicesClient, fake_time: FakeClock
) -> None:
    offer_destination(mock_api)
    store_answers(mock_api, *[aiohttp.ServerDisconnectedError()] * 4)
    with pytest.raises(ApiConnectionError, match="connection lost") as caught:
        await client.documents.upload(PDF)
    assert not isinstance(caught.value, UploadError)
    assert_no_secrets(str(caught.value))
    assert len(puts(mock_api)) == 4


async def test_timeouts_end_as_timeout_errors(
    mock_api: aioresponses, client: ServicesClient, fake_time: FakeClock
) -> None:
    offer_destination(mock_api)
    store_answers(mock_api, *[TimeoutError()] * 4)
    with pytest.raises(ApiTimeoutError, match="timed out"):
        await client.documents.upload(PDF)


async def test_no_retry_once_the_url_is_about_to_expire(
    mock_api: aioresponses, client: ServicesClient, fake_time: FakeClock
) -> None:
    # The URL says 300 s.  Each failing attempt costs 150 s here.
    offer_destination(mock_api)

    def slow_failure(url: Any, **kwargs: Any) -> Any:
        fake_time.current += 150
        return CallbackResult(status=503, body=s3_error("SlowDown", "Reduce your rate."))

    mock_api.put(STORE_PATTERN, callback=slow_failure, repeat=True)
    with pytest.raises(
        UploadError, match="Not retried: the upload URL's expiry would pass before the next attempt"
    ):
        await client.documents.upload(PDF)
    # Fails at t=150 and waits 0.5 s; fails again at t=300.5, past the 299 s line.
    assert len(puts(mock_api)) == 2
    assert fake_time.sleeps == [0.5]


async def test_lifetime_comes_from_x_amz_expires(
    mock_api: aioresponses, client: ServicesClient, fake_time: FakeClock
) -> None:
    offer_destination(mock_api, url=UPLOAD_URL.replace("X-Amz-Expires=300", "X-Amz-Expires=2"))
    store_answers(mock_api, 503, 503, 200)
    # A 2 s URL: the first retry (after 0.5 s) fits, the second (1 s more) would start
    # past the safety line one second before expiry.
    with pytest.raises(UploadError, match="upload URL's expiry would pass"):
        await client.documents.upload(PDF)
    assert len(puts(mock_api)) == 2
    assert fake_time.sleeps == [0.5]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (UPLOAD_URL, 300.0),
        (UPLOAD_URL.replace("X-Amz-Expires=300", "X-Amz-Expires=60"), 60.0),
        (f"{STORE}{OBJECT_PATH}", 300.0),
        (f"{STORE}{OBJECT_PATH}?X-Amz-Expires=soon", 300.0),
        (f"{STORE}{OBJECT_PATH}?X-Amz-Expires=-5", 300.0),
    ],
)
def test_url_lifetime(url: str, expected: float) -> None:
    assert _upload.url_lifetime(url) == expected


async def test_expired_before_the_first_attempt(fake_time: FakeClock) -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(UploadError, match="expired before the document could be sent") as c:
            await _upload.put_document(
                AiohttpSender(_session_of(session)),
                fake_time,
                UPLOAD_URL,
                b"x",
                {},
                policy=RetryPolicy(),
                attempt_seconds=1.0,
                expires_at=fake_time.now(),
            )
    assert c.value.code == "ExpiredUploadUrl"
    assert_no_secrets(str(c.value))


async def test_url_that_is_not_http_is_refused_without_echo(fake_time: FakeClock) -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(UploadError, match="not an http") as caught:
            await _upload.put_document(
                AiohttpSender(_session_of(session)),
                fake_time,
                f"ftp://host/x?X-Amz-Signature={SIGNATURE}",
                b"x",
                {},
                policy=RetryPolicy(),
                attempt_seconds=1.0,
                expires_at=1e12,
            )
    assert_no_secrets(str(caught.value))


def _session_of(session: aiohttp.ClientSession) -> Callable[[], Awaitable[aiohttp.ClientSession]]:
    async def get() -> aiohttp.ClientSession:
        return session

    return get


# --- what is logged ----------------------------------------------------------------------


async def test_logs_show_the_path_but_never_the_signature(
    mock_api: aioresponses,
    client: ServicesClient,
    fake_time: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="spapi_services")
    offer_destination(mock_api)
    store_answers(mock_api, 503, aiohttp.ServerDisconnectedError(), 200)
    await client.documents.upload(PDF)
    put_lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("PUT ")]
    assert len(put_lines) == 3
    assert all(f"PUT {STORE}{OBJECT_PATH} ->" in line for line in put_lines)
    assert f"upload_destination_id={DESTINATION_ID}" in put_lines[0]
    assert_no_secrets("\n".join(r.getMessage() for r in caplog.records))


def test_safe_url_drops_query_and_fragment() -> None:
    assert _upload.safe_url(UPLOAD_URL) == f"{STORE}{OBJECT_PATH}"
    assert (
        _upload.safe_url("http://127.0.0.1:8080/b/k?X-Amz-Signature=s#frag")
        == "http://127.0.0.1:8080/b/k"
    )


def test_destination_repr_hides_url_and_key() -> None:
    destination = _serde.structure(
        destination_body()["payload"], ServiceDocumentUploadDestination, operation="test"
    )
    assert_no_secrets(repr(destination))


async def test_document_repr_does_not_dump_the_bytes() -> None:
    document = await _upload.read_document(PDF)
    assert (
        repr(document)
        == f"Document(data=<{len(PDF)} bytes>, content_type=<ContentType.PDF: 'PDF'>)"
    )
    assert base64.b64encode(PDF[:30]).decode() not in repr(document)
