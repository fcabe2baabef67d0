"""Errors and warnings found in any body shape; secrets kept out of reprs; the models package."""

from __future__ import annotations

import importlib
from typing import Any

import attrs
import pytest

from spapi_services import _serde
from spapi_services import models as m
from spapi_services.models import (
    EncryptionDetails,
    EncryptionStandard,
    Error,
    ErrorLevel,
    ServiceDocumentUploadDestination,
    Warning,
)

INVALID = {
    "code": "InvalidInput",
    "message": "Missing or invalid request parameters",
    "details": "",
}
DENIED = {"code": "UnauthorizedAction", "message": "Not authorized"}


def test_a_bare_array_of_errors() -> None:
    assert _serde.parse_errors([INVALID, DENIED]) == (
        Error(code="InvalidInput", message="Missing or invalid request parameters", details=""),
        Error(code="UnauthorizedAction", message="Not authorized"),
    )


def test_wrapped_errors() -> None:
    errors = _serde.parse_errors({"errors": [INVALID], "payload": {"ignored": True}})
    assert [e.code for e in errors] == ["InvalidInput"]


def test_error_level_and_new_keys() -> None:
    (error,) = _serde.parse_errors(
        [{"code": "X", "message": "m", "errorLevel": "WARNING", "traceId": "abc"}]
    )
    assert error.error_level is ErrorLevel.WARNING
    (error,) = _serde.parse_errors([{"code": "X", "message": "m", "errorLevel": "FATAL"}])
    assert error.error_level == "FATAL"
    assert error.error_level is not None
    assert not error.error_level.is_known


@pytest.mark.parametrize(
    "body",
    [
        None,
        "",
        "Internal Server Error",
        500,
        {},
        {"errors": None},
        {"errors": "bad"},
        [],
        [1, "x", None],
    ],
)
def test_garbage_gives_no_errors(body: Any) -> None:
    assert _serde.parse_errors(body) == ()


def test_entries_missing_fields_are_kept_with_what_they_have() -> None:
    errors = _serde.parse_errors([{"code": "OnlyCode"}, {"message": "only a message"}, "junk"])
    assert errors == (
        Error(code="OnlyCode", message=""),
        Error(code="", message="only a message"),
    )


def test_an_entry_with_a_wrong_kind_of_field_is_kept() -> None:
    (error,) = _serde.parse_errors([{"code": "X", "message": "m", "details": {"deep": 1}}])
    assert (error.code, error.message) == ("X", "m")


def test_warnings_at_the_top_level() -> None:
    body = {"appointmentId": "a-1", "warnings": [{"code": "RESOURCES_UNASSIGNED", "message": "m"}]}
    assert _serde.parse_warnings(body) == (Warning(code="RESOURCES_UNASSIGNED", message="m"),)


def test_warnings_under_payload() -> None:
    body = {
        "payload": {"warnings": [{"code": "RESOURCES_OVERBOOKED", "message": "m", "details": "d"}]}
    }
    assert _serde.parse_warnings(body) == (
        Warning(code="RESOURCES_OVERBOOKED", message="m", details="d"),
    )


@pytest.mark.parametrize(
    "body",
    [
        None,
        [],
        "text",
        {},
        {"payload": []},
        {"payload": {"warnings": "x"}},
        {"warnings": [1, None, "x"]},
        {"warnings": [{"code": "NoMessage"}]},
        {"warnings": [{"code": {"nested": 1}, "message": "m"}]},
    ],
)
def test_garbage_gives_no_warnings(body: Any) -> None:
    assert _serde.parse_warnings(body) == ()


def test_bad_warnings_are_dropped_and_good_ones_kept() -> None:
    body = {"warnings": [{"code": ["x"], "message": "m"}, {"code": "OK", "message": "kept"}]}
    assert _serde.parse_warnings(body) == (Warning(code="OK", message="kept"),)


# --- secrets stay out of reprs ----------------------------------------------------------------

KEY = "PDuDJm2l+0ydObrRpS48tB+t2qbtOmWhSEOiFWKnH2k="
IV = "paPlpo1iBBLmyOhU0mIo5g=="
URL = "https://bucket.s3.amazonaws.com/doc?X-Amz-Signature=dd2fefe6c6102aba14bab1481b33cf07"


def _destination() -> ServiceDocumentUploadDestination:
    return ServiceDocumentUploadDestination(
        upload_destination_id="amzn1.tortuga.3.abc<->token",
        url=URL,
        encryption_details=EncryptionDetails(
            standard=EncryptionStandard.AES, initialization_vector=IV, key=KEY
        ),
    )


def test_encryption_details_repr_hides_key_and_iv() -> None:
    details = _destination().encryption_details
    for text in (repr(details), str(details), f"{details!r}"):
        assert KEY not in text
        assert IV not in text
        assert "AES" in text
    # The values are still there for the code that needs them.
    assert details.key == KEY
    assert details.initialization_vector == IV


def test_encryption_details_repr_never_raises() -> None:
    # Built by hand with a plain string (as a test or the emulator might), not the enum.
    details = EncryptionDetails(standard="AES", initialization_vector=IV, key=KEY)  # type: ignore[arg-type]
    assert repr(details) == (
        "EncryptionDetails(standard='AES', initialization_vector='<redacted>', key='<redacted>')"
    )


def test_upload_destination_repr_hides_the_url_and_the_key() -> None:
    destination = _destination()
    text = repr(destination)
    assert "X-Amz-Signature" not in text
    assert URL not in text
    assert KEY not in text
    assert IV not in text
    assert "amzn1.tortuga.3.abc<->token" in text
    assert destination.url == URL


def test_unstructure_still_carries_the_secrets() -> None:
    # Redaction is for display only; the wire form (used by the emulator) is complete.
    data = _serde.unstructure(_destination())
    assert data["url"] == URL
    assert data["encryptionDetails"]["key"] == KEY


# --- the models package ---------------------------------------------------------------------

AREAS = ("appointments", "common", "documents", "enums", "jobs", "scheduling")


def test_the_package_re_exports_every_public_name_of_every_area() -> None:
    expected = {"ApiEnum", "ApiModel"}
    for area in AREAS:
        module = importlib.import_module(f"spapi_services.models.{area}")
        for name in module.__all__:
            assert getattr(m, name) is getattr(module, name), name
        expected.update(module.__all__)
    assert set(m.__all__) == expected
    assert len(m.__all__) == len(expected)  # no duplicates
    assert m.__doc__


def test_every_model_is_frozen_and_keyword_only() -> None:
    for name in m.__all__:
        cls = getattr(m, name)
        if not attrs.has(cls):
            continue
        params = attrs.fields(cls)
        assert all(a.kw_only for a in params), name
        assert cls.__setattr__ is not object.__setattr__, name  # frozen


def test_models_are_immutable() -> None:
    warning = Warning(code="c", message="m")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        warning.code = "other"  # type: ignore[misc]
