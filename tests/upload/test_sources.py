"""What upload() accepts: sources, content types, sizes; refusals cost no request."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from aioresponses import aioresponses

from spapi_services import ServicesClient
from spapi_services._crypto import decrypt_cbc, digests
from spapi_services._upload import (
    content_type_from_bytes,
    content_type_from_name,
    read_document,
)
from spapi_services.models.documents import MAX_DOCUMENT_BYTES
from spapi_services.models.enums import ContentType

from .conftest import (
    DESTINATION_ID,
    IV,
    KEY,
    STORE_PATTERN,
    callback_ok,
    destination_requests,
    offer_destination,
)

PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(20)
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(20)
GIF87 = b"GIF87a" + bytes(20)
GIF89 = b"GIF89a" + bytes(20)
TIFF_LE = b"II*\x00\x08\x00\x00\x00" + bytes(20)
TIFF_BE = b"MM\x00*\x00\x00\x00\x08" + bytes(20)
UNKNOWN = b"PK\x03\x04 a zip file, not a document"


# --- content type ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (PDF, ContentType.PDF),
        (PNG, ContentType.PNG),
        (JPEG, ContentType.JPEG),
        (GIF87, ContentType.GIF),
        (GIF89, ContentType.GIF),
        (TIFF_LE, ContentType.TIFF),
        (TIFF_BE, ContentType.TIFF),
        (UNKNOWN, None),
        (b"%PD", None),
        (b"GIF88a", None),
        (b"II*\x01", None),
        (b"\xff\xd8", None),
    ],
)
def test_magic_bytes(data: bytes, expected: ContentType | None) -> None:
    assert content_type_from_bytes(data) is expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("proof.pdf", ContentType.PDF),
        ("PROOF.PDF", ContentType.PDF),
        ("photo.png", ContentType.PNG),
        ("photo.jpg", ContentType.JPG),
        ("photo.JPEG", ContentType.JPEG),
        ("anim.gif", ContentType.GIF),
        ("scan.tif", ContentType.TIFF),
        ("scan.tiff", ContentType.TIFF),
        ("archive.tar.pdf", ContentType.PDF),
        ("notes.txt", None),
        ("pdf", None),
        ("", None),
        (None, None),
    ],
)
def test_suffixes(name: str | None, expected: ContentType | None) -> None:
    assert content_type_from_name(name) is expected


@pytest.mark.parametrize(
    ("argument", "name", "data", "expected"),
    [
        # The argument beats the suffix and the bytes.
        (ContentType.PNG, "x.pdf", PDF, ContentType.PNG),
        ("TIFF", "x.pdf", PDF, ContentType.TIFF),
        ("JPG", None, JPEG, ContentType.JPG),
        # The suffix beats the bytes.
        (None, "x.jpg", PNG, ContentType.JPG),
        (None, "x.gif", PDF, ContentType.GIF),
        # An unknown suffix falls through to the bytes.
        (None, "x.bin", PDF, ContentType.PDF),
        (None, "x.txt", TIFF_BE, ContentType.TIFF),
        (None, None, GIF89, ContentType.GIF),
    ],
)
async def test_resolution_order(
    tmp_path: Path, argument: Any, name: str | None, data: bytes, expected: ContentType
) -> None:
    source: Any = data
    if name is not None:
        source = tmp_path / name
        source.write_bytes(data)
    document = await read_document(source, argument)
    assert document.content_type is expected
    assert document.data == data


async def test_unknown_type_is_refused_with_the_allowed_list() -> None:
    with pytest.raises(ValueError, match="content_type") as caught:
        await read_document(UNKNOWN)
    message = str(caught.value)
    for allowed in ("TIFF", "JPG", "PNG", "JPEG", "GIF", "PDF"):
        assert allowed in message


async def test_unknown_type_argument_is_refused() -> None:
    with pytest.raises(ValueError, match=r"'DOCX' is not one of TIFF, JPG, PNG, JPEG, GIF, PDF"):
        await read_document(PDF, "DOCX")
    with pytest.raises(TypeError, match="content_type"):
        await read_document(PDF, 3)  # type: ignore[arg-type]


# --- sources -----------------------------------------------------------------------------


async def test_every_kind_of_source_reads_the_same(tmp_path: Path) -> None:
    path = tmp_path / "proof.pdf"
    path.write_bytes(PDF)
    with path.open("rb") as file:
        from_file = await read_document(file)
    sources: list[Any] = [
        PDF,
        bytearray(PDF),
        memoryview(PDF),
        str(path),
        path,
        io.BytesIO(PDF),
    ]
    documents = [await read_document(source) for source in sources] + [from_file]
    assert {d.data for d in documents} == {PDF}
    assert {d.content_type for d in documents} == {ContentType.PDF}


async def test_file_object_is_read_from_its_position() -> None:
    buffer = io.BytesIO(b"header!" + PNG)
    buffer.seek(7)
    document = await read_document(buffer)
    assert document.data == PNG
    assert document.content_type is ContentType.PNG


async def test_file_object_name_gives_the_suffix(tmp_path: Path) -> None:
    path = tmp_path / "scan.tif"
    path.write_bytes(PDF)  # the name wins over the bytes, as for a path
    with path.open("rb") as file:
        assert (await read_document(file)).content_type is ContentType.TIFF


async def test_async_file_object_is_awaited() -> None:
    class AsyncReader:
        def __init__(self, data: bytes) -> None:
            self._stream = io.BytesIO(data)

        async def read(self, size: int = -1) -> bytes:
            return self._stream.read(size)

    document = await read_document(AsyncReader(GIF89))
    assert document.data == GIF89


async def test_short_reads_are_read_to_the_end() -> None:
    class Trickle:
        """A raw stream handing out three bytes per read, as a pipe may."""

        def __init__(self, data: bytes) -> None:
            self._stream = io.BytesIO(data)

        def read(self, size: int = -1) -> bytes:
            return self._stream.read(min(size, 3))

    assert (await read_document(Trickle(PDF))).data == PDF


async def test_unbuffered_file_is_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    data = b"%PDF" + bytes(range(256)) * 4000
    path.write_bytes(data)
    with path.open("rb", buffering=0) as raw:
        assert isinstance(raw, io.FileIO)
        assert (await read_document(raw)).data == data


async def test_non_blocking_stream_with_nothing_ready_is_refused() -> None:
    class NothingYet:
        def read(self, size: int = -1) -> bytes | None:
            return None

    with pytest.raises(ValueError, match="returned None"):
        await read_document(NothingYet())  # type: ignore[arg-type]


async def test_text_mode_file_is_a_type_error(tmp_path: Path) -> None:
    path = tmp_path / "proof.pdf"
    path.write_bytes(PDF)
    with path.open("r", encoding="latin-1") as file, pytest.raises(TypeError, match="text mode"):
        await read_document(file)
    with pytest.raises(TypeError, match="text mode"):
        await read_document(io.StringIO("%PDF-1.7"))


async def test_reader_returning_text_is_a_type_error() -> None:
    class TextReader:
        def read(self, size: int = -1) -> str:
            return "%PDF-1.7"

    with pytest.raises(TypeError, match="returned text"):
        await read_document(TextReader())  # type: ignore[arg-type]


@pytest.mark.parametrize("source", [12, 1.5, None, ["%PDF"], object()])
async def test_other_objects_are_type_errors(source: Any) -> None:
    with pytest.raises(TypeError, match="expected bytes, a path or a binary file object"):
        await read_document(source)


# --- size and readability ----------------------------------------------------------------


async def test_largest_allowed_document_is_accepted() -> None:
    data = b"%PDF" + bytes(MAX_DOCUMENT_BYTES - 4)
    assert len((await read_document(data)).data) == MAX_DOCUMENT_BYTES


def _too_big() -> bytes:
    return b"%PDF" + bytes(MAX_DOCUMENT_BYTES - 3)


def _sources_of(data: bytes, tmp_path: Path) -> list[Any]:
    path = tmp_path / "doc.pdf"
    path.write_bytes(data)
    return [data, bytearray(data), memoryview(data), path, str(path), io.BytesIO(data)]


@pytest.mark.parametrize("kind", range(6))
async def test_empty_documents_are_refused(tmp_path: Path, kind: int) -> None:
    source = _sources_of(b"", tmp_path)[kind]
    with pytest.raises(ValueError, match=r"empty \(0 bytes\)"):
        await read_document(source, ContentType.PDF)


@pytest.mark.parametrize("kind", range(6))
async def test_oversized_documents_are_refused_with_their_size(tmp_path: Path, kind: int) -> None:
    source = _sources_of(_too_big(), tmp_path)[kind]
    with pytest.raises(ValueError, match=r"5,242,881 bytes is too large.*at most 5,242,880"):
        await read_document(source)


async def test_oversized_stream_that_cannot_seek_reports_a_lower_bound() -> None:
    class Pipe:
        def __init__(self) -> None:
            self._stream = io.BytesIO(_too_big() + bytes(100))

        def read(self, size: int = -1) -> bytes:
            return self._stream.read(size)

    with pytest.raises(ValueError, match=r"at least 5,242,881 bytes is too large"):
        await read_document(Pipe())


async def test_oversized_file_object_is_left_where_it_was() -> None:
    buffer = io.BytesIO(b"xx" + _too_big())
    buffer.seek(2)
    with pytest.raises(ValueError, match="5,242,881 bytes"):
        await read_document(buffer)
    assert buffer.tell() == 2


async def test_missing_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "proof.pdf"
    with pytest.raises(FileNotFoundError, match="no such file") as caught:
        await read_document(missing)
    assert caught.value.filename == str(missing)
    assert str(missing) in str(caught.value)


async def test_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="is a directory"):
        await read_document(tmp_path)


async def test_unreadable_file_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "secret.pdf"
    path.write_bytes(PDF)

    def refuse(self: Path, *args: Any, **kwargs: Any) -> Any:
        raise PermissionError(13, "Permission denied", str(self))

    # Simulated: the tests may run as root, who can read a file whatever its mode.
    monkeypatch.setattr(Path, "open", refuse)
    with pytest.raises(PermissionError, match="not allowed to read") as caught:
        await read_document(path)
    assert caught.value.filename == str(path)


async def test_nul_in_path_is_refused() -> None:
    with pytest.raises(ValueError, match="NUL"):
        await read_document("proof\x00.pdf")


async def test_long_string_mistaken_for_a_path_is_not_echoed_whole() -> None:
    text = "%PDF-1.7 " + "x" * 5000
    with pytest.raises((FileNotFoundError, OSError)) as caught:
        await read_document(text)
    assert len(str(caught.value)) < 400


# --- through the client: refusals send nothing ------------------------------------------


def _bad_sources(tmp_path: Path) -> list[tuple[Any, dict[str, Any], type[Exception]]]:
    return [
        (b"", {}, ValueError),
        (_too_big(), {}, ValueError),
        (tmp_path / "missing.pdf", {}, FileNotFoundError),
        (tmp_path, {}, ValueError),
        (UNKNOWN, {}, ValueError),
        (PDF, {"content_type": "DOCX"}, ValueError),
        (io.StringIO("%PDF"), {}, TypeError),
        (42, {}, TypeError),
        (PDF, {"encrypt": "yes"}, TypeError),
    ]


@pytest.mark.parametrize("case", range(9))
async def test_refusals_send_no_request(
    mock_api: aioresponses, client: ServicesClient, tmp_path: Path, case: int
) -> None:
    source, kwargs, error = _bad_sources(tmp_path)[case]
    with pytest.raises(error):
        await client.documents.upload(source, **kwargs)
    assert mock_api.requests == {}


# --- through the client: the same document whatever its source -------------------------


async def test_sources_upload_identically(
    mock_api: aioresponses, client: ServicesClient, tmp_path: Path
) -> None:
    path = tmp_path / "proof.pdf"
    path.write_bytes(PDF)
    captured: list[dict[str, Any]] = []
    mock_api.put(STORE_PATTERN, callback=callback_ok(captured), repeat=True)
    results = []
    with path.open("rb") as file:
        for source in (PDF, bytearray(PDF), memoryview(PDF), path, str(path), file):
            offer_destination(mock_api)
            results.append(await client.documents.upload(source))

    expected_sha = digests(PDF).sha256
    assert {r.content_sha256 for r in results} == {expected_sha}
    assert {r.upload_destination_id for r in results} == {DESTINATION_ID}
    # Same key and IV for each destination here, so the same ciphertext each time.
    bodies = {bytes(kwargs["data"]) for kwargs in captured}
    assert len(captured) == 6
    assert len(bodies) == 1
    (ciphertext,) = bodies
    assert ciphertext != PDF
    assert decrypt_cbc(ciphertext, KEY, IV) == PDF

    sums = digests(PDF)
    for call in destination_requests(mock_api):
        assert json.loads(call.kwargs["data"]) == {
            "contentType": "PDF",
            "contentLength": len(PDF),
            "contentMD5": sums.md5,
        }
