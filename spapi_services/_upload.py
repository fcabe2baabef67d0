"""Getting a fulfilment document from the caller to Amazon's document store.

Three steps live here, each usable on its own:

* :func:`read_document` turns what the caller passed (bytes, a path, a binary file) into
  bytes and a :class:`~spapi_services.models.enums.ContentType`, refusing anything the
  API would refuse (empty, over 5 MiB, an unknown type) before a request is made;
* :func:`upload_headers` builds the headers of the PUT from those the destination gave;
* :func:`put_document` sends the PUT to the presigned URL through the client's sender,
  retrying server errors and lost connections (through the client's one retry loop)
  only while the URL is still valid, and turns a refusal from the store (S3-style XML)
  into :class:`~spapi_services.errors.UploadError`.

The presigned URL carries a signature in its query string: it is never logged or put into
an error message.  Only ``scheme://host/path`` is shown.
"""

from __future__ import annotations

import asyncio
import inspect
import io
import logging
import os
import stat
import xml.etree.ElementTree as ElementTree
from collections.abc import Awaitable, Mapping
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import attrs
from yarl import URL

from ._retry import (
    AttemptFailed,
    Deadline,
    Failure,
    RetryPolicy,
    classify,
    classify_exception,
    parse_retry_after,
    run_attempts,
)
from ._sender import BodyTooLarge, Sender
from ._text import printable
from ._timing import Timer
from ._validation import check_enum, did_you_mean
from .errors import UploadError
from .models.documents import MAX_DOCUMENT_BYTES
from .models.enums import ContentType

__all__ = [
    "CONTENT_TYPES_HELP",
    "DEFAULT_URL_LIFETIME",
    "Document",
    "DocumentSource",
    "S3Error",
    "SupportsReadBytes",
    "check_content_type",
    "content_type_from_bytes",
    "content_type_from_name",
    "parse_s3_error",
    "put_document",
    "read_document",
    "safe_url",
    "upload_headers",
    "url_lifetime",
]

_log = logging.getLogger("spapi_services")

#: How long a presigned upload URL lasts when it does not say (Amazon's samples: 300 s).
DEFAULT_URL_LIFETIME = 300.0
# A retry is not started this close to the URL's expiry: the request needs time to arrive.
_EXPIRY_MARGIN = 1.0
# The store's answers are small XML documents; anything longer is cut, not buffered.
_MAX_ANSWER_BYTES = 64 * 1024
_MAX_SHOWN = 200
# aiohttp adds these on its own; the store needs none of them.
_SKIPPED_AUTO_HEADERS = ("User-Agent", "Accept", "Accept-Encoding")

_SUFFIXES = {
    ".pdf": ContentType.PDF,
    ".png": ContentType.PNG,
    ".jpg": ContentType.JPG,
    ".jpeg": ContentType.JPEG,
    ".gif": ContentType.GIF,
    ".tif": ContentType.TIFF,
    ".tiff": ContentType.TIFF,
}

_SIGNATURES = (
    (b"%PDF", ContentType.PDF),
    (b"\x89PNG\r\n\x1a\n", ContentType.PNG),
    (b"\xff\xd8\xff", ContentType.JPEG),
    (b"GIF87a", ContentType.GIF),
    (b"GIF89a", ContentType.GIF),
    (b"II*\x00", ContentType.TIFF),
    (b"MM\x00*", ContentType.TIFF),
)


class SupportsReadBytes(Protocol):
    """A binary file object: ``read(n)`` returns up to ``n`` bytes."""

    def read(self, size: int = ..., /) -> bytes | Awaitable[bytes]: ...


DocumentSource = bytes | bytearray | memoryview | str | os.PathLike[str] | SupportsReadBytes
"""What :meth:`Documents.upload` accepts: the bytes, a path to them, or a binary file."""


@attrs.frozen(kw_only=True)
class Document:
    """A document ready to upload: its bytes and its type."""

    data: bytes = attrs.field(repr=lambda data: f"<{len(data)} bytes>")
    content_type: ContentType


# --- reading the source ----------------------------------------------------------------


async def read_document(
    source: DocumentSource, content_type: ContentType | str | None = None
) -> Document:
    """The bytes and type of a document, checked against the API's rules.

    The type is ``content_type`` when given, else the one the file name's suffix names,
    else the one the first bytes reveal.  Raises ``TypeError`` for a source of the wrong
    kind (a text-mode file included), ``FileNotFoundError`` for a missing file, and
    ``ValueError`` for an empty document, one over 5 MiB, or one of no supported type.
    A file object is read from its current position.
    """
    chosen = check_content_type("content_type", content_type) if content_type is not None else None
    name: str | None = None
    if isinstance(source, bytes | bytearray):
        _check_size(len(source))
        data = bytes(source)
    elif isinstance(source, memoryview):
        _check_size(source.nbytes)
        data = source.tobytes()
    elif isinstance(source, str | os.PathLike):
        path = _as_path(source)
        name = path.name
        data = await asyncio.to_thread(_read_path, path, from_str=isinstance(source, str))
    elif hasattr(source, "read"):
        raw_name = getattr(source, "name", None)
        name = raw_name if isinstance(raw_name, str) else None
        data = await _read_file_object(source)
    else:
        raise TypeError(
            "document source: expected bytes, a path or a binary file object, "
            f"got {type(source).__name__}"
        )
    resolved = chosen or content_type_from_name(name) or content_type_from_bytes(data)
    if resolved is None:
        suffixes = " ".join(_SUFFIXES)
        raise ValueError(
            "content_type: cannot tell the document's type from its name or its first bytes; "
            f"pass content_type= one of {CONTENT_TYPES_HELP} (or name the file {suffixes})"
        )
    return Document(data=data, content_type=resolved)


# What a caller may write for each type: the API's name, any case, or a MIME type; in
# the model's order, which every list of them (help, messages, docstrings) follows.
_MIME_NAMES = {
    "image/tiff": ContentType.TIFF,
    "image/jpg": ContentType.JPG,
    "image/png": ContentType.PNG,
    "image/jpeg": ContentType.JPEG,
    "image/gif": ContentType.GIF,
    "application/pdf": ContentType.PDF,
}

#: The values ``content_type`` takes, as the help and the messages list them.
CONTENT_TYPES_HELP = (
    f"{', '.join(ContentType.__members__)} in any case, or a MIME type: {', '.join(_MIME_NAMES)}"
)


def check_content_type(name: str, value: ContentType | str) -> ContentType:
    """A document type from a :class:`ContentType`, its name in any case (``"png"``), or
    a MIME type (``"image/png"``); anything else is refused naming ``name`` and the values.

    A :class:`ContentType` made on purpose for a value this release does not know
    (``ContentType("WEBP")``) is taken as it is.
    """
    if isinstance(value, ContentType):
        return value
    if isinstance(value, str):
        text = value.strip()
        mime = _MIME_NAMES.get(text.split(";")[0].strip().lower())
        if mime is not None:
            return mime
        if text.upper() in ContentType.__members__:
            return ContentType(text.upper())
        hint = did_you_mean(text, [*ContentType.__members__, *_MIME_NAMES])
        raise ValueError(f"{name}: {value!r} is not one of {CONTENT_TYPES_HELP}{hint}")
    return check_enum(name, value, ContentType)  # the right message for any other kind


def content_type_from_name(name: str | None) -> ContentType | None:
    """The type a file name's suffix names (``.pdf``, ``.png``, ``.jpg``, ``.tif``...)."""
    if not name:
        return None
    return _SUFFIXES.get(Path(name).suffix.lower())


def content_type_from_bytes(data: bytes) -> ContentType | None:
    """The type a document's first bytes reveal, or ``None`` if they match none."""
    for signature, kind in _SIGNATURES:
        if data.startswith(signature):
            return kind
    return None


def _check_size(size: int, *, at_least: bool = False) -> None:
    if size == 0:
        raise ValueError("document: empty (0 bytes); the API needs at least 1 byte")
    if size > MAX_DOCUMENT_BYTES:
        more = "at least " if at_least else ""
        raise ValueError(
            f"document: {more}{size:,} bytes is too large; the API accepts at most "
            f"{MAX_DOCUMENT_BYTES:,} bytes (5 MiB)"
        )


def _shown(text: str) -> str:
    return text if len(text) <= _MAX_SHOWN else text[:_MAX_SHOWN] + "..."


def _as_path(source: str | os.PathLike[str]) -> Path:
    path = Path(source)
    if "\x00" in str(path):
        raise ValueError("document source: a path cannot contain a NUL character")
    return path


def _read_path(path: Path, *, from_str: bool = False) -> bytes:
    shown = _shown(str(path))
    # A str is always a path: say so when it plainly was meant as the document itself.
    hint = "; a str is read as a path, pass bytes to upload content" if from_str else ""
    try:
        with path.open("rb") as file:
            info = os.fstat(file.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise ValueError(f"document source: {shown!r} is not a regular file")
            _check_size(info.st_size)
            data = file.read(MAX_DOCUMENT_BYTES + 1)
    except IsADirectoryError:
        raise ValueError(f"document source: {shown!r} is a directory, not a file") from None
    except FileNotFoundError:
        raise FileNotFoundError(2, f"document source: no such file{hint}", shown) from None
    except PermissionError as exc:
        raise PermissionError(exc.errno, "document source: not allowed to read", shown) from None
    except OSError as exc:
        # Rebuilt so that an over-long "path" is not echoed whole.
        reason = exc.strerror or "cannot be read"
        raise type(exc)(exc.errno, f"document source: {reason}{hint}", shown) from None
    # The file may have changed since it was measured.
    _check_size(len(data), at_least=len(data) > MAX_DOCUMENT_BYTES)
    return data


async def _read_file_object(source: SupportsReadBytes) -> bytes:
    if isinstance(source, io.TextIOBase):
        raise TypeError("document source: the file is open in text mode; open it with 'rb'")
    start = _tell(source)
    # A raw stream (a pipe, an unbuffered file) may return less than asked: read on to EOF.
    chunks: list[bytes] = []
    size = 0
    while size <= MAX_DOCUMENT_BYTES:
        chunk = await _read_some(source, MAX_DOCUMENT_BYTES + 1 - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    data = b"".join(chunks)
    if len(data) > MAX_DOCUMENT_BYTES:
        total = _remaining_size(source, start)
        _check_size(total if total is not None else len(data), at_least=total is None)
    _check_size(len(data))
    return data


async def _read_some(source: SupportsReadBytes, limit: int) -> bytes:
    result: Any
    if isinstance(source, io.BufferedReader | io.FileIO):
        # A file on disk: up to 5 MiB of blocking reads stay off the event loop.
        result = await asyncio.to_thread(source.read, limit)
    else:
        result = source.read(limit)
    if inspect.isawaitable(result):
        result = await result
    if result is None:  # a non-blocking raw stream with nothing ready
        raise ValueError("document source: read() returned None; pass a blocking binary file")
    if isinstance(result, str):
        raise TypeError("document source: read() returned text; open the file in binary mode")
    if not isinstance(result, bytes | bytearray | memoryview):
        raise TypeError(f"document source: read() returned {type(result).__name__}, expected bytes")
    return bytes(result)


def _tell(source: object) -> int | None:
    try:
        seekable = getattr(source, "seekable", None)
        if callable(seekable) and seekable():
            position = source.tell()  # type: ignore[attr-defined]
            return position if isinstance(position, int) else None
    except (OSError, ValueError, AttributeError):
        pass
    return None


def _remaining_size(source: object, start: int | None) -> int | None:
    """How many bytes the file had from where reading began (its position is put back)."""
    if start is None:
        return None
    try:
        end = source.seek(0, io.SEEK_END)  # type: ignore[attr-defined]
        source.seek(start)  # type: ignore[attr-defined]
    except (OSError, ValueError, AttributeError):
        return None
    return end - start if isinstance(end, int) else None


# --- the PUT ---------------------------------------------------------------------------


def upload_headers(given: Mapping[str, str] | None, content_type: ContentType) -> dict[str, str]:
    """The PUT's headers: exactly those the destination gave, plus a ``Content-Type``.

    The URL is signed for a content type, so the one sent has to match: the destination's
    own ``Content-Type`` wins when it gives one, otherwise the type's MIME type is added.
    Nothing of ours is added, the access token least of all.
    """
    headers = dict(given or {})
    if not any(name.lower() == "content-type" for name in headers):
        headers["Content-Type"] = content_type.mime_type
    return headers


def safe_url(url: str | URL) -> str:
    """``scheme://host[:port]/path`` of a URL: what may be logged of a presigned one."""
    parsed = url if isinstance(url, URL) else URL(url, encoded=True)
    origin = f"{parsed.scheme}://{parsed.raw_host or ''}"
    if parsed.explicit_port is not None:
        origin += f":{parsed.explicit_port}"
    return origin + parsed.raw_path


def url_lifetime(url: str) -> float:
    """Seconds a presigned URL lasts: its ``X-Amz-Expires``, else 300."""
    value = URL(url, encoded=True).query.get("X-Amz-Expires")
    try:
        seconds = float(value) if value is not None else DEFAULT_URL_LIFETIME
    except ValueError:
        return DEFAULT_URL_LIFETIME
    return seconds if seconds > 0 else DEFAULT_URL_LIFETIME


@attrs.frozen(kw_only=True)
class S3Error:
    """The parts of an S3-style ``<Error>`` answer that are safe to show."""

    code: str | None
    message: str | None
    request_id: str | None = None


def parse_s3_error(body: bytes) -> S3Error | None:
    """``Code``, ``Message`` and ``RequestId`` of an ``<Error>`` document, if ``body`` is one.

    Other elements are ignored on purpose: a signature error echoes the string that was
    signed and the signature itself, which must not travel any further.
    """
    if b"<Error" not in body[:1024]:
        return None
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError:
        return None
    if root.tag.rpartition("}")[2] != "Error":
        return None

    def text(tag: str) -> str | None:
        element = root.find(f"{{*}}{tag}")
        value = element.text.strip() if element is not None and element.text else ""
        return _shown(value) if value else None

    return S3Error(code=text("Code"), message=text("Message"), request_id=text("RequestId"))


async def put_document(
    sender: Sender,
    timer: Timer,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    policy: RetryPolicy,
    attempt_seconds: float,
    expires_at: float,
    destination_id: str = "",
) -> None:
    """PUT ``body`` to a presigned ``url`` with exactly ``headers``; raise if it is refused.

    Server errors (500, 502, 503, 504), 429 and lost connections are retried as ``policy``
    allows, through the same retry loop as API calls, but never once the URL expires:
    ``expires_at`` is a reading of ``timer.now()``.  A PUT replaces the object, so sending
    it twice is harmless.  Raises :class:`UploadError` with the store's ``Code`` and
    ``Message`` when it refuses, and :class:`ApiConnectionError` when it cannot be reached.
    """
    target = URL(url, encoded=True)
    if target.scheme not in ("http", "https") or not target.raw_host:
        raise UploadError(f"upload destination {destination_id}: the URL is not an http(s) URL")
    shown = safe_url(target)
    sent = dict(headers)
    attempts = 0

    async def attempt() -> None:
        nonlocal attempts
        if timer.now() >= expires_at:
            raise UploadError(
                f"PUT {shown}: the upload URL expired before the document could be sent",
                code="ExpiredUploadUrl",
            )
        attempts += 1
        started = timer.now()
        try:
            raw = await sender("PUT", target, sent, body, attempt_seconds)
        except (aiohttp.ClientError, TimeoutError) as exc:
            _log_attempt(shown, destination_id, type(exc).__name__, timer.now() - started, attempts)
            failure, what, error_class = classify_exception(exc)
            error = error_class(f"PUT {shown}: {what}", host=target.host)
            # Some aiohttp errors print the whole URL, signature included: not chained.
            error.__cause__ = exc if _safe_to_chain(exc) else None
            raise AttemptFailed(failure, error, reason=what) from None
        except BodyTooLarge:
            raise AttemptFailed(
                Failure.FINAL,
                UploadError(f"PUT {shown}: the store's answer is too large"),
                reason="oversized answer",
            ) from None
        _log_attempt(shown, destination_id, str(raw.status), timer.now() - started, attempts)
        answer = raw.body[:_MAX_ANSWER_BYTES]
        s3_error = parse_s3_error(answer)
        if 200 <= raw.status < 300 and s3_error is None:
            return
        raise AttemptFailed(
            classify(raw.status) if raw.status >= 400 else Failure.FINAL,
            _refusal(shown, raw.status, s3_error),
            reason=f"HTTP {raw.status}",
            retry_after=parse_retry_after(raw.headers.get("Retry-After")),
        )

    # A retry is not started this close to expiry: the request needs time to arrive.
    until_expiry = Deadline(
        max(expires_at - _EXPIRY_MARGIN - timer.now(), 1e-3),
        timer,
        what="the upload URL's expiry",
    )
    await run_attempts(attempt, policy=policy, idempotent=True, timer=timer, deadline=until_expiry)


def _log_attempt(
    shown: str, destination_id: str, outcome: str, elapsed: float, attempt: int
) -> None:
    _log.debug(
        "PUT %s -> %s upload_destination_id=%s elapsed=%.3fs attempt=%d",
        shown,
        outcome,
        destination_id,
        elapsed,
        attempt,
    )


def _refusal(shown: str, status: int, error: S3Error | None) -> UploadError:
    if error is not None:
        detail = ": ".join(part for part in (error.code, error.message) if part) or "no code"
        if error.request_id:
            detail += f" (request id {error.request_id})"
    else:
        detail = "no S3 error document in the answer"
    return UploadError(
        f"PUT {shown} -> HTTP {status}: {printable(detail, 500)}",
        status_code=status,
        code=error.code if error is not None else None,
    )


def _safe_to_chain(exc: BaseException) -> bool:
    return not isinstance(exc, aiohttp.ClientResponseError | aiohttp.InvalidURL)
