"""Buyers' personal data in the mirror: kept, encrypted, replaced by keyed hashes, or left out.

Which fields are the buyer's (see :data:`PERSONAL_FIELDS`): the buyer's id, name and
phone; every line of the service location's address (the buyer's home for an in-home
job); and the vehicle a ship-to-store item is tied to (its name and its free-form
attributes, which may hold a plate or a VIN).  Everything else (statuses, times, the
scope of work, items, payments, order ids, the technicians) is the job's business and is
stored as the API sent it.

The protection is a transform of the job's JSON record, made before any sink sees the
job, so every sink (SQLite, JSON Lines, or one of your own) stores the same thing.  A
protected value stays where it was, as a string of its own format::

    spapi:enc:v1:<key id>:<base64url(nonce ‖ AES-256-GCM ciphertext ‖ tag)>
    spapi:hmac:v1:<key id>:<base64url(HMAC-SHA256)>

An encrypted value is padded to a multiple of 16 bytes (so its length says little) and
bound to its job and field: a ciphertext copied to another row or field fails to
decrypt.  A keyed hash is the same for the same value under the same key, in any row, so
one buyer's jobs can still be grouped, and cannot be reversed or recomputed without the
key.  The key id says which key of a :class:`BuyerKeys` ring made it, so keys can be
rotated: the first key of the ring protects new data, every key of it reads old data.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any, Literal, TypeAlias

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .._serde import parse_datetime

__all__ = [
    "BUYER_DATA_CHOICES",
    "CLOSED_STATUSES",
    "PERSONAL_FIELDS",
    "BuyerData",
    "BuyerDataPolicy",
    "BuyerKey",
    "BuyerKeyError",
    "BuyerKeyLike",
    "BuyerKeys",
    "ErasedBuyers",
    "as_keys",
    "buyer_matches",
    "erase_record",
    "last_activity",
    "prunable",
    "reveal_record",
    "stale_hashes",
]

#: What the mirror does with buyers' personal data (see :class:`BuyerDataPolicy`).
BuyerData: TypeAlias = Literal["keep", "encrypt", "hash", "drop"]
#: Every value ``buyer_data`` accepts, in the order the command line offers them.
BUYER_DATA_CHOICES: tuple[BuyerData, ...] = ("keep", "encrypt", "hash", "drop")

#: The statuses after which a job no longer changes: what ``prune`` may remove.
#: ``PAYMENT_DECLINED`` is not among them: the buyer can still pay, and the job go on.
CLOSED_STATUSES = frozenset({"COMPLETED", "CANCELLED", "NOT_FULFILLABLE"})

#: The buyer's fields in a job's JSON (``*`` is every field of the object).
PERSONAL_FIELDS = (
    "buyer.buyerId",
    "buyer.name",
    "buyer.phone",
    "serviceLocation.address.*",
    "associatedItems[].linkedAssets[].assetName",
    "associatedItems[].linkedAssets[].additionalAttributes.*",
)

_KEY_BYTES = 32
_NONCE_BYTES = 12
_PAD_BLOCK = 16
_VERSION = "v1"
_TOKEN = re.compile(r"\Aspapi:(enc|hmac):v1:([0-9a-f]{12}):([A-Za-z0-9_-]+)\Z")
_CONTEXT = b"spapi-services buyer data v1"


class BuyerKeyError(ValueError):
    """A buyer key is malformed, missing, or not the one some stored data needs.

    Messages name key ids and job ids, never key material or a buyer's data.
    """


class BuyerKey:
    """A 256-bit secret that encrypts and hashes buyers' data in a mirror.

    Make one with :meth:`generate` (or ``openssl rand -base64 32``), keep its
    :meth:`export` text where you keep other secrets, and read it back with
    :meth:`from_text`.  Its ``key_id`` is derived from it, so a key cannot be mislabelled;
    the id is stored with the data it protects and reveals nothing about the key.
    """

    __slots__ = ("_aead", "_mac_key", "_secret", "key_id")

    def __init__(self, secret: bytes) -> None:
        if not isinstance(secret, bytes) or len(secret) != _KEY_BYTES:
            got = len(secret) if isinstance(secret, bytes) else type(secret).__name__
            raise BuyerKeyError(f"buyer_key: must be {_KEY_BYTES} bytes, got {got}")
        self._secret = secret
        self._aead = AESGCM(_derive(secret, b"encrypt"))
        self._mac_key = _derive(secret, b"hash")
        #: A short id derived from the key, stored beside what it protects; it names the key without
        #: revealing it.
        self.key_id = _derive(secret, b"key id", 6).hex()

    @classmethod
    def generate(cls) -> BuyerKey:
        """A new random key."""
        return cls(secrets.token_bytes(_KEY_BYTES))

    @classmethod
    def from_text(cls, text: str) -> BuyerKey:
        """A key from its base64 text (standard or URL-safe alphabet, padded or not)."""
        if not isinstance(text, str):
            raise BuyerKeyError(f"buyer_key: expected base64 text, got {type(text).__name__}")
        compact = text.strip()
        try:
            unpadded = compact.replace("+", "-").replace("/", "_").rstrip("=")
            raw = base64.b64decode(
                unpadded + "=" * (-len(unpadded) % 4), altchars=b"-_", validate=True
            )
        except (binascii.Error, ValueError):
            raise BuyerKeyError("buyer_key: not base64 text") from None
        if len(raw) != _KEY_BYTES:
            raise BuyerKeyError(
                f"buyer_key: must decode to {_KEY_BYTES} bytes, got {len(raw)} "
                "(make one with `spapi-services mirror new-key`)"
            )
        return cls(raw)

    def export(self) -> str:
        """The key as URL-safe base64 text, for :meth:`from_text`.  Keep it secret."""
        return base64.urlsafe_b64encode(self._secret).decode("ascii").rstrip("=")

    def __repr__(self) -> str:
        return f"BuyerKey(key_id={self.key_id!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BuyerKey) and hmac.compare_digest(self._secret, other._secret)

    def __hash__(self) -> int:
        return hash(self.key_id)

    def encrypt(self, value: str, context: bytes) -> str:
        """``value`` as an ``spapi:enc`` token bound to ``context``."""
        data = value.encode("utf-8") + b"\x80"
        data += b"\x00" * (-len(data) % _PAD_BLOCK)
        nonce = secrets.token_bytes(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, data, _CONTEXT + b"\x00" + context)
        return _token("enc", self.key_id, nonce + sealed)

    def decrypt(self, blob: bytes, context: bytes) -> str:
        """The value an ``spapi:enc`` token's payload holds; ``InvalidTag`` if altered."""
        nonce, sealed = blob[:_NONCE_BYTES], blob[_NONCE_BYTES:]
        data = self._aead.decrypt(nonce, sealed, _CONTEXT + b"\x00" + context)
        return data[: data.rindex(b"\x80")].decode("utf-8")

    def hash(self, value: str) -> str:
        """``value`` as an ``spapi:hmac`` token: equal values, equal tokens."""
        digest = hmac.new(self._mac_key, value.encode("utf-8"), hashlib.sha256).digest()
        return _token("hmac", self.key_id, digest)


def _derive(secret: bytes, purpose: bytes, length: int = _KEY_BYTES) -> bytes:
    # One key per purpose: the cipher's key never doubles as the hash's.
    info = _CONTEXT + b": " + purpose
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(secret)


def _token(kind: str, key_id: str, payload: bytes) -> str:
    text = base64.urlsafe_b64encode(payload).decode("ascii").rstrip("=")
    return f"spapi:{kind}:{_VERSION}:{key_id}:{text}"


def _parse_token(value: str) -> tuple[str, str, bytes] | None:
    match = _TOKEN.match(value) if value.startswith("spapi:") else None
    if match is None:
        return None
    payload = match[3]
    try:
        blob = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    except (binascii.Error, ValueError):
        return None
    return match[1], match[2], blob


class BuyerKeys:
    """A ring of buyer keys: the first protects new data, every one reads old data.

    To rotate, put a new key first and keep the old ones after it until no stored data
    needs them (``rewrite_buyer_data`` on a sink re-encrypts everything with the first).
    """

    __slots__ = ("_by_id", "keys")

    def __init__(self, keys: Iterable[BuyerKey]) -> None:
        #: The keys, the first protecting new data.
        self.keys = tuple(keys)
        if not self.keys:
            raise BuyerKeyError("buyer_key: give at least one key")
        self._by_id: dict[str, BuyerKey] = {}
        for index, key in enumerate(self.keys):
            if not isinstance(key, BuyerKey):
                raise BuyerKeyError(
                    f"buyer_key[{index}]: expected a BuyerKey, got {type(key).__name__}"
                )
            if key.key_id in self._by_id:
                raise BuyerKeyError(f"buyer_key[{index}]: key {key.key_id} is listed twice")
            self._by_id[key.key_id] = key

    @classmethod
    def from_text(cls, text: str) -> BuyerKeys:
        """A ring from keys' base64 texts, separated by commas, spaces or new lines.

        A line starting with ``#`` is a comment (a key file may label its keys).
        """
        lines = (line for line in text.splitlines() if not line.lstrip().startswith("#"))
        parts = [part for part in re.split(r"[\s,]+", "\n".join(lines)) if part]
        if not parts:
            raise BuyerKeyError("buyer_key: no key in the text")
        return cls(BuyerKey.from_text(part) for part in parts)

    @property
    def current(self) -> BuyerKey:
        """The key that protects new data."""
        return self.keys[0]

    def get(self, key_id: str) -> BuyerKey | None:
        """The ring's key with this id, if it holds one."""
        return self._by_id.get(key_id)

    def __iter__(self) -> Iterator[BuyerKey]:
        return iter(self.keys)

    def __len__(self) -> int:
        return len(self.keys)

    def __repr__(self) -> str:
        return f"BuyerKeys({', '.join(k.key_id for k in self.keys)})"


#: What ``buyer_key=`` accepts: a key, a ring, a key's text (or several, comma-separated),
#: a key's 32 raw bytes, or a list of any of these (the first protects new data).
BuyerKeyLike: TypeAlias = BuyerKey | BuyerKeys | str | bytes | Sequence[BuyerKey | str | bytes]


def as_keys(value: BuyerKeyLike | None) -> BuyerKeys | None:
    """``buyer_key=`` as a ring (``None`` stays ``None``)."""
    if value is None or isinstance(value, BuyerKeys):
        return value
    if isinstance(value, str):
        return BuyerKeys.from_text(value)
    if isinstance(value, BuyerKey | bytes):
        return BuyerKeys([_one_key(value)])
    if isinstance(value, Sequence):
        return BuyerKeys(_one_key(item, f"buyer_key[{i}]") for i, item in enumerate(value))
    raise BuyerKeyError(
        f"buyer_key: expected a BuyerKey, its text or a list of keys, got {type(value).__name__}"
    )


def _one_key(value: object, name: str = "buyer_key") -> BuyerKey:
    if isinstance(value, BuyerKey):
        return value
    if isinstance(value, str):
        return BuyerKey.from_text(value)
    if isinstance(value, bytes):
        return BuyerKey(value)
    raise BuyerKeyError(f"{name}: expected a BuyerKey or its text, got {type(value).__name__}")


# --- walking a record's personal fields ---------------------------------------------------

#: ``(path, value) -> new value``; ``None`` leaves the field out.
FieldMap = Callable[[str, str], str | None]
_BUYER_FIELDS = ("buyerId", "name", "phone")
_REQUIRED_ADDRESS = ("name", "addressLine1")


def map_personal(record: dict[str, Any], fn: FieldMap) -> dict[str, Any]:
    """A copy of a job record with ``fn`` applied to each personal value it holds.

    Only the objects on the way to a personal field are copied; the rest is shared.
    An address whose required lines are left out goes whole, as does an emptied buyer.
    """
    out = dict(record)
    buyer = record.get("buyer")
    if isinstance(buyer, dict):
        new_buyer = _map_fields(buyer, _BUYER_FIELDS, "buyer.", fn)
        _set_or_remove(out, "buyer", new_buyer)
    location = record.get("serviceLocation")
    if isinstance(location, dict) and isinstance(location.get("address"), dict):
        address = location["address"]
        new_address = _map_fields(address, tuple(address), "serviceLocation.address.", fn)
        if any(name not in new_address for name in _REQUIRED_ADDRESS):
            new_address = {}
        new_location = dict(location)
        _set_or_remove(new_location, "address", new_address)
        out["serviceLocation"] = new_location
    items = record.get("associatedItems")
    if isinstance(items, list) and any(_has_assets(item) for item in items):
        out["associatedItems"] = [_map_item(item, fn) for item in items]
    return out


def _map_fields(
    obj: dict[str, Any], names: Sequence[str], prefix: str, fn: FieldMap
) -> dict[str, Any]:
    new = dict(obj)
    for name in names:
        value = obj.get(name)
        if isinstance(value, str):
            _set_or_remove(new, name, fn(prefix + name, value))
    return new


def _has_assets(item: Any) -> bool:
    return isinstance(item, dict) and bool(item.get("linkedAssets"))


def _map_item(item: Any, fn: FieldMap) -> Any:
    if not isinstance(item, dict) or not isinstance(item.get("linkedAssets"), list):
        return item
    assets = []
    for asset in item["linkedAssets"]:
        if not isinstance(asset, dict):
            assets.append(asset)
            continue
        new = _map_fields(asset, ("assetName",), "associatedItems.linkedAssets.", fn)
        attributes = asset.get("additionalAttributes")
        if isinstance(attributes, dict):
            prefix = "associatedItems.linkedAssets.additionalAttributes."
            _set_or_remove(
                new, "additionalAttributes", _map_fields(attributes, tuple(attributes), prefix, fn)
            )
        assets.append(new)
    return {**item, "linkedAssets": assets}


def _set_or_remove(obj: dict[str, Any], name: str, value: Any) -> None:
    if value is None or value == {}:
        obj.pop(name, None)
    else:
        obj[name] = value


def _context(record: dict[str, Any], path: str) -> bytes:
    job_id = record.get("serviceJobId")
    return f"{job_id if isinstance(job_id, str) else ''}\x00{path}".encode()


def _job_label(record: dict[str, Any]) -> str:
    job_id = record.get("serviceJobId")
    return f"job {job_id}" if isinstance(job_id, str) else "a job without an id"


# --- the transforms ---------------------------------------------------------------------


class BuyerDataPolicy:
    """What a sync does with buyers' personal data before a sink stores a job.

    ``keep``
        Stored as the API sent it (the default).
    ``encrypt``
        Each personal value encrypted with the ring's first key (AES-256-GCM, a random
        nonce each time); the sinks' readers decrypt with the ring.
    ``hash``
        Each personal value replaced by its keyed hash (HMAC-SHA256): one buyer's jobs
        still match one another, but the values cannot be read back.
    ``drop``
        Left out: the mirror holds the jobs' business and no buyer.
    """

    __slots__ = ("keys", "mode")

    def __init__(self, mode: BuyerData = "keep", keys: BuyerKeys | None = None) -> None:
        if mode not in BUYER_DATA_CHOICES:
            raise ValueError(
                f"buyer_data: must be one of {', '.join(BUYER_DATA_CHOICES)}, got {mode!r}"
            )
        if mode in ("encrypt", "hash") and keys is None:
            raise BuyerKeyError(
                f"buyer_key: required with buyer_data={mode!r} "
                "(make one with `spapi-services mirror new-key`)"
            )
        self.mode: BuyerData = mode
        self.keys = keys

    @classmethod
    def of(cls, buyer_data: BuyerData, buyer_key: BuyerKeyLike | None) -> BuyerDataPolicy:
        """The policy for ``sync_jobs``' arguments, checked."""
        return cls(buyer_data, as_keys(buyer_key))

    def __repr__(self) -> str:
        return f"BuyerDataPolicy({self.mode!r}, keys={self.keys!r})"

    def protect(self, record: dict[str, Any]) -> dict[str, Any]:
        """The record as this policy stores it.

        Values already hashed stay as they are (a hash cannot be undone); encrypted ones
        must be revealed first (:func:`reveal_record`).
        """
        if self.mode == "keep":
            return record
        if self.mode == "drop":
            return erase_record(record)
        assert self.keys is not None
        key = self.keys.current

        def transform(path: str, value: str) -> str:
            parsed = _parse_token(value)
            if parsed is not None and parsed[0] == "hmac":
                return value
            if self.mode == "hash":
                return key.hash(value)
            return key.encrypt(value, _context(record, path))

        return map_personal(record, transform)


def erase_record(record: dict[str, Any]) -> dict[str, Any]:
    """The record without any of the buyer's personal data."""
    return map_personal(record, lambda _path, _value: None)


def reveal_record(record: dict[str, Any], keys: BuyerKeys | None) -> dict[str, Any]:
    """The record with its encrypted values decrypted by ``keys``.

    Without keys, encrypted values are returned as stored.  Keyed hashes stay.  Raises
    :class:`BuyerKeyError` if a value was encrypted with a key the ring lacks, or does
    not decrypt (it was altered).
    """
    if keys is None:
        return record

    def transform(path: str, value: str) -> str:
        parsed = _parse_token(value)
        if parsed is None or parsed[0] != "enc":
            return value
        return _decrypt(record, path, parsed[1], parsed[2], keys)

    return map_personal(record, transform)


def _decrypt(record: dict[str, Any], path: str, key_id: str, blob: bytes, keys: BuyerKeys) -> str:
    key = keys.get(key_id)
    if key is None:
        raise BuyerKeyError(
            f"{_job_label(record)}: its buyer data was encrypted with key {key_id}, "
            f"which buyer_key does not hold (it holds {', '.join(k.key_id for k in keys)})"
        )
    try:
        return key.decrypt(blob, _context(record, path))
    except (InvalidTag, ValueError):
        raise BuyerKeyError(
            f"{_job_label(record)}: {path} does not decrypt with key {key_id}: "
            "the stored value was altered or moved from another job"
        ) from None


def buyer_matches(record: dict[str, Any], buyer_id: str, keys: BuyerKeys | None) -> bool:
    """Whether the record is a job of buyer ``buyer_id``, however its id is stored.

    An encrypted or hashed id needs the key that protected it: without it,
    :class:`BuyerKeyError` says which key is missing.
    """
    buyer = record.get("buyer")
    stored = buyer.get("buyerId") if isinstance(buyer, dict) else None
    if not isinstance(stored, str):
        return False
    parsed = _parse_token(stored)
    if parsed is None:
        return hmac.compare_digest(stored.encode(), buyer_id.encode())
    kind, key_id, blob = parsed
    if keys is None or keys.get(key_id) is None:
        raise BuyerKeyError(
            f"buyer_key: {_job_label(record)} stores its buyer id "
            f"{'encrypted' if kind == 'enc' else 'hashed'} with key {key_id}; "
            "give that key to find the buyer's jobs"
        )
    if kind == "enc":
        return _decrypt(record, "buyer.buyerId", key_id, blob, keys) == buyer_id
    key = keys.get(key_id)
    assert key is not None
    return hmac.compare_digest(stored, key.hash(buyer_id))


def stale_hashes(record: dict[str, Any], keys: BuyerKeys | None) -> bool:
    """Whether the record holds a keyed hash made with a key other than the current one.

    Such values cannot be re-keyed (a hash cannot be undone); they change only when the
    job is synced again, or when its buyer is forgotten.
    """
    current = keys.current.key_id if keys is not None else None
    found = False

    def look(_path: str, value: str) -> str:
        nonlocal found
        parsed = _parse_token(value)
        if parsed is not None and parsed[0] == "hmac" and parsed[1] != current:
            found = True
        return value

    map_personal(record, look)
    return found


# --- when a job was last active ------------------------------------------------------------


def last_activity(record: dict[str, Any]) -> datetime | None:
    """The latest time a job records, or ``None`` if it records none.

    The API gives no time of closing or of last change, so this is the best the job
    itself tells: the latest of its creation, its appointments' ends, proofs of
    appointment uploaded, its preferred times and its items' deliveries.
    """
    return max(_times(record), default=None)


def prunable(
    record: dict[str, Any], cutoff: datetime, statuses: frozenset[str] = CLOSED_STATUSES
) -> bool:
    """Whether a job is closed (its status is in ``statuses``) and last active before
    ``cutoff``.  A job that records no time is never prunable by this rule."""
    if record.get("serviceJobStatus") not in statuses:
        return False
    last = last_activity(record)
    return last is not None and last < cutoff


def _times(record: dict[str, Any]) -> Iterator[datetime]:
    yield from _instant(record.get("createTime"))
    for slot in _objects(record.get("preferredAppointmentTimes")):
        yield from _slot_end(slot)
    for appointment in _objects(record.get("appointments")):
        yield from _slot_end(appointment.get("appointmentTime"))
        poa = appointment.get("poa")
        if isinstance(poa, dict):
            yield from _instant(poa.get("uploadTime"))
            yield from _slot_end(poa.get("appointmentTime"))
    for item in _objects(record.get("associatedItems")):
        delivery = item.get("itemDelivery")
        if isinstance(delivery, dict):
            yield from _instant(delivery.get("estimatedDeliveryDate"))
            promise = delivery.get("itemDeliveryPromise")
            if isinstance(promise, dict):
                yield from _instant(promise.get("endTime"))


def _objects(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, list):
        yield from (item for item in value if isinstance(item, dict))


def _instant(value: Any) -> Iterator[datetime]:
    if isinstance(value, str):
        try:
            yield parse_datetime(value)
        except ValueError:
            return


def _slot_end(slot: Any) -> Iterator[datetime]:
    if not isinstance(slot, dict):
        return
    minutes = slot.get("durationInMinutes")
    for start in _instant(slot.get("startTime")):
        yield start + timedelta(minutes=minutes) if isinstance(minutes, int) else start


# --- buyers who asked to be forgotten ---------------------------------------------------------


class ErasedBuyers:
    """The buyers a mirror has forgotten, so that later syncs store none of their data.

    Kept as salted SHA-256 digests of their ids (the salt is the mirror's own), not as
    the ids themselves.
    """

    __slots__ = ("digests", "salt")

    def __init__(self, salt: bytes | None = None, digests: Iterable[str] = ()) -> None:
        self.salt = salt if salt is not None else secrets.token_bytes(16)
        self.digests = set(digests)

    def digest(self, buyer_id: str) -> str:
        """The digest stored for ``buyer_id``."""
        return hashlib.sha256(self.salt + buyer_id.encode("utf-8")).hexdigest()

    def add(self, buyer_id: str) -> str:
        """Remember ``buyer_id``; its digest."""
        digest = self.digest(buyer_id)
        self.digests.add(digest)
        return digest

    def __contains__(self, buyer_id: object) -> bool:
        return isinstance(buyer_id, str) and self.digest(buyer_id) in self.digests

    def __len__(self) -> int:
        return len(self.digests)

    def __repr__(self) -> str:
        return f"ErasedBuyers({len(self.digests)} buyers)"

    def guard(self, record: dict[str, Any]) -> dict[str, Any] | None:
        """The record erased if its buyer was forgotten, else ``None``."""
        if not self.digests:
            return None
        buyer = record.get("buyer")
        buyer_id = buyer.get("buyerId") if isinstance(buyer, dict) else None
        return erase_record(record) if buyer_id in self else None
