"""Opaque page tokens."""

from __future__ import annotations

import pytest

from spapi_services.emulator.tokens import InvalidPageToken, PageTokens


def test_tokens_round_trip_and_are_awkward_on_purpose() -> None:
    codec = PageTokens(b"k" * 32)
    for offset in range(30):
        cursor = {"k": ["2026-06-01T00:00:00+00:00", str(offset) * (offset % 7)], "d": "next"}
        token = codec.encode(cursor)
        assert token.startswith("+/+/")
        assert "/" in token
        assert token.endswith("==")
        assert codec.decode(token) == cursor


def test_the_same_cursor_gives_the_same_token() -> None:
    codec = PageTokens(b"k" * 32)
    assert codec.encode({"a": 1}) == codec.encode({"a": 1})
    assert codec.encode({"a": 1}) != codec.encode({"a": 2})


@pytest.mark.parametrize("token", ["", "abc", "+/+/AAAA", "not base64!", "ä"])
def test_foreign_tokens_are_refused(token: str) -> None:
    with pytest.raises(InvalidPageToken):
        PageTokens(b"k" * 32).decode(token)


def test_tokens_of_another_key_or_altered_are_refused() -> None:
    token = PageTokens(b"k" * 32).encode({"a": 1})
    with pytest.raises(InvalidPageToken):
        PageTokens(b"j" * 32).decode(token)
    altered = token[:8] + ("A" if token[8] != "A" else "B") + token[9:]
    with pytest.raises(InvalidPageToken):
        PageTokens(b"k" * 32).decode(altered)
    with pytest.raises(ValueError, match="32 bytes"):
        PageTokens(b"short")
