"""Looking for buyers' personal data in a mirror's files, in every form it could take.

The personal fields are listed here on their own, not taken from the SDK, so a field the
SDK forgot to protect is still looked for.  A value is searched for in the raw bytes of
every file of the mirror (the SQLite file, its ``-wal``, ``-shm`` and journal, the JSON
Lines log and its checkpoint, any temporary file beside them):

* as text (UTF-8) and as JSON would escape it, with its field name around it;
* if it is long enough not to turn up by chance, on its own, base64-encoded, and as an
  unkeyed SHA-256 digest (hex and base64): a hash without a key is no protection.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import attrs

#: Values shorter than this are looked for only with their field name around them: a
#: state or country code can occur by chance inside random bytes (a nonce, a checksum).
MIN_BARE_LENGTH = 6


@attrs.frozen
class Personal:
    """One personal value of a job: the JSON field that holds it and the value."""

    field: str
    value: str


def personal_values(record: dict[str, Any]) -> Iterator[Personal]:
    """The buyer's data in a job's JSON record (the API's camelCase names)."""
    buyer = record.get("buyer") or {}
    for name in ("buyerId", "name", "phone"):
        if buyer.get(name):
            yield Personal(name, buyer[name])
    address = (record.get("serviceLocation") or {}).get("address") or {}
    for name, value in address.items():
        if value:
            yield Personal(name, value)
    for item in record.get("associatedItems") or ():
        for asset in item.get("linkedAssets") or ():
            if asset.get("assetName"):
                yield Personal("assetName", asset["assetName"])
            for name, value in (asset.get("additionalAttributes") or {}).items():
                if value:
                    yield Personal(name, value)


def without_personal(record: dict[str, Any]) -> dict[str, Any]:
    """The record with its personal fields taken out (by this module's own list)."""
    out = json.loads(json.dumps(record))
    buyer = out.get("buyer") or {}
    for name in ("buyerId", "name", "phone"):
        buyer.pop(name, None)
    (out.get("serviceLocation") or {}).pop("address", None)
    for item in out.get("associatedItems") or ():
        for asset in item.get("linkedAssets") or ():
            asset.pop("assetName", None)
            asset.pop("additionalAttributes", None)
    return out


def forms(found: Personal) -> list[bytes]:
    """The byte strings that would show ``found`` stored unprotected."""
    value = found.value
    escaped = json.dumps(value)[1:-1]
    shown = [
        f'"{found.field}":"{value}"'.encode(),
        f'"{found.field}": "{value}"'.encode(),
        f'"{found.field}":"{escaped}"'.encode(),
    ]
    if len(value) >= MIN_BARE_LENGTH:
        raw = value.encode()
        digest = hashlib.sha256(raw).digest()
        shown += [
            raw,
            escaped.encode(),
            base64.b64encode(raw).rstrip(b"="),
            base64.urlsafe_b64encode(raw).rstrip(b"="),
            digest.hex().encode(),
            base64.b64encode(digest).rstrip(b"="),
            base64.urlsafe_b64encode(digest).rstrip(b"="),
        ]
    return shown


def mirror_files(path: Path) -> list[Path]:
    """Every file beside ``path`` whose name starts with its name (companions, temporaries)."""
    return sorted(p for p in path.parent.glob(path.name + "*") if p.is_file())


def leaks(files: Iterable[Path], values: Iterable[Personal]) -> list[str]:
    """``"file: field"`` for each personal value found in a file, in any form."""
    contents = {f: f.read_bytes() for f in files}
    found = []
    for value in values:
        patterns = forms(value)
        for file, data in contents.items():
            if any(pattern in data for pattern in patterns):
                found.append(f"{file.name}: {value.field}")
    return found


def buyers_data(records: Iterable[dict[str, Any]]) -> list[Personal]:
    """The personal values of ``records`` whose forms appear nowhere else in them.

    The emulator draws technicians' names from the same list as buyers', and a shop's
    name is its address's name: such a value is in the mirror as business, not as the
    buyer's, and a search for it would find the business.
    """
    records = list(records)
    stripped = [without_personal(r) for r in records]
    public = b"\n".join(
        json.dumps(stripped, separators=separators, ensure_ascii=ascii_only).encode()
        for separators in ((",", ":"), (", ", ": "))
        for ascii_only in (True, False)
    )
    values = {v for r in records for v in personal_values(r)}
    kept = (v for v in values if not any(form in public for form in forms(v)))
    return sorted(kept, key=lambda v: (v.field, v.value))


def mode_of(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)
