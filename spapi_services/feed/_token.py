"""A feed's resume token: where each marketplace's polling stands, in an opaque string.

Per marketplace the token holds the start of the next poll's window (the watermark less
the overlap, to the millisecond the API keeps), the start of the window before (which
tells created from updated), and the feed's memory at that point: a 16-byte entry (job
key, content fingerprint; see :mod:`._detect`) for each job it may see again.  That is
enough to resume without missing or repeating a change.

The format is ``sjf1.`` and URL-safe base64 of: a version byte; for each marketplace
its id, the two window starts (milliseconds since the epoch) and its entries; and a 4-byte
checksum, so a token cut short or edited is refused rather than misread.  The memory is
bounded: past :data:`EDGE_LIMIT` jobs per marketplace the oldest entries are left out,
and a resume may then yield those jobs again (never fewer changes).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

import attrs

from ._detect import FINGERPRINT_BYTES

__all__ = ["EDGE_LIMIT", "MarketState", "decode_token", "encode_token"]

_PREFIX = "sjf1."
_VERSION = 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ENTRY = 2 * FINGERPRINT_BYTES
_HEAD = struct.Struct(">qqH")  # window start and created-from in ms, entry count
_CHECK = 4
#: Jobs remembered per marketplace in a token (16 bytes each: about 43 KB of text at most).
EDGE_LIMIT = 2000
_MAX_MARKETPLACES = 50


@attrs.frozen
class MarketState:
    """Where one marketplace's polling stands: the next window's start and the memory.

    ``memory`` maps a job key to its content fingerprint, oldest entry first; ``window``
    holds the keys of the jobs the last poll found (and any yielded since): those that
    may come back unchanged, the only ones a resume token needs.  Neither is changed
    once the state is made (a feed makes a new state instead).
    """

    marketplace_id: str
    window_start: datetime
    created_from: datetime
    """A job new to the feed is ``created`` if it was created at or after this: the
    previous window's start (see :func:`~spapi_services.feed.classify`)."""
    memory: Mapping[bytes, bytes] = attrs.field(eq=False)
    window: frozenset[bytes] = attrs.field(eq=False, factory=frozenset)


def _milliseconds(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def encode_token(states: Sequence[MarketState]) -> str:
    """The resume token of these states: each one's window, at most :data:`EDGE_LIMIT`
    entries of it (the most recently written)."""
    parts = [bytes([_VERSION, len(states)])]
    for state in states:
        name = state.marketplace_id.encode()
        window, memory = state.window, state.memory
        entries = [(k, v) for k, v in memory.items() if k in window][-EDGE_LIMIT:]
        parts += [bytes([len(name)]), name]
        start, created = _milliseconds(state.window_start), _milliseconds(state.created_from)
        parts.append(_HEAD.pack(start, created, len(entries)))
        parts += [key + value for key, value in entries]
    body = b"".join(parts)
    check = hashlib.blake2b(body, digest_size=_CHECK).digest()
    return _PREFIX + base64.urlsafe_b64encode(body + check).decode().rstrip("=")


def decode_token(token: object) -> list[MarketState]:
    """The states a token holds; a ``ValueError`` naming ``resume_token`` if it is not one."""
    if not isinstance(token, str) or not token.startswith(_PREFIX):
        raise _malformed("it does not start with 'sjf1.'")
    text = token[len(_PREFIX) :]
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise _malformed("it is not URL-safe base64") from None
    body, check = raw[:-_CHECK], raw[-_CHECK:]
    if len(raw) < 2 + _CHECK or hashlib.blake2b(body, digest_size=_CHECK).digest() != check:
        raise _malformed("it is cut short or was changed (its checksum does not match)")
    if body[0] != _VERSION:
        raise _malformed(f"version {body[0]} is not one this SDK reads")
    try:
        return _read_states(body)
    except (IndexError, struct.error, UnicodeDecodeError, OverflowError):
        raise _malformed("its contents do not parse") from None


def _read_states(body: bytes) -> list[MarketState]:
    count, at = body[1], 2
    if not 1 <= count <= _MAX_MARKETPLACES:
        raise _malformed(f"it names {count} marketplaces")
    states: list[MarketState] = []
    for _ in range(count):
        size = body[at]
        name = body[at + 1 : at + 1 + size].decode()
        at += 1 + size
        millis, created, entries = _HEAD.unpack_from(body, at)
        at += _HEAD.size
        memory: dict[bytes, bytes] = {}
        for _ in range(entries):
            entry = body[at : at + _ENTRY]
            if len(entry) != _ENTRY:
                raise IndexError
            memory[entry[:FINGERPRINT_BYTES]] = entry[FINGERPRINT_BYTES:]
            at += _ENTRY
        if not name or any(s.marketplace_id == name for s in states):
            raise _malformed("its marketplaces are empty or repeated")
        start = _EPOCH + timedelta(milliseconds=millis)
        since = _EPOCH + timedelta(milliseconds=created)
        states.append(MarketState(name, start, since, memory, frozenset(memory)))
    if at != len(body):
        raise _malformed("it has bytes left over")
    return states


def _malformed(why: str) -> ValueError:
    return ValueError(
        f"resume_token: not a resume token of a service-job change feed ({why}); pass "
        "the resume_token of a JobChange, or the feed's resume_token, as it was given"
    )
