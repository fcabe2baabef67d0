"""Amazon's marketplace ids, as data, and the check every marketplace id passes before it
is sent.

A marketplace id is an opaque code of upper-case letters and digits (``ATVPDKIKX0DER`` is
the United States).  The API answers a request for a marketplace it does not know with
an empty result or a 400, neither of which says "that id is wrong", so ids are checked
here first:

* not upper-case letters and digits of a marketplace id's length: refused, with the
  right spelling when the id is a known one in lower case, or the id when a country
  code (``US``, ``de``) was given instead;
* well formed but not in :data:`MARKETPLACES`: sent, with an
  :class:`~spapi_services.errors.UnknownMarketplaceWarning` once per id and process
  (Amazon opens marketplaces now and then, and this table can lag behind);
* known, but served by another region than the client's Amazon host: refused, naming the
  region to use (:func:`check_region`).
"""

from __future__ import annotations

import re
import threading
import warnings
from typing import Any

import attrs

from .errors import UnknownMarketplaceWarning

__all__ = [
    "MARKETPLACES",
    "Marketplace",
    "check_marketplace_id",
    "check_region",
    "marketplace",
]

# Every id Amazon publishes is 12 to 14 characters; a little room either side.
_FORM = re.compile(r"[A-Z0-9]{10,20}")


@attrs.frozen
class Marketplace:
    """One of Amazon's marketplaces: its id, country and the SP-API region serving it."""

    marketplace_id: str
    country_code: str
    country: str
    region: str  # "NA", "EU" or "FE", the names of spapi_services.Region


#: Amazon's published marketplace ids, by region (North America, Europe, Far East).
MARKETPLACES: tuple[Marketplace, ...] = (
    Marketplace("A2EUQ1WTGCTBG2", "CA", "Canada", "NA"),
    Marketplace("ATVPDKIKX0DER", "US", "United States", "NA"),
    Marketplace("A1AM78C64UM0Y8", "MX", "Mexico", "NA"),
    Marketplace("A2Q3Y263D00KWC", "BR", "Brazil", "NA"),
    Marketplace("A28R8C7NBKEWEA", "IE", "Ireland", "EU"),
    Marketplace("A1RKKUPIHCS9HS", "ES", "Spain", "EU"),
    Marketplace("A1F83G8C2ARO7P", "GB", "United Kingdom", "EU"),
    Marketplace("A13V1IB3VIYZZH", "FR", "France", "EU"),
    Marketplace("AMEN7PMS3EDWL", "BE", "Belgium", "EU"),
    Marketplace("A1805IZSGTT6HS", "NL", "Netherlands", "EU"),
    Marketplace("A1PA6795UKMFR9", "DE", "Germany", "EU"),
    Marketplace("APJ6JRA9NG5V4", "IT", "Italy", "EU"),
    Marketplace("A2NODRKZP88ZB9", "SE", "Sweden", "EU"),
    Marketplace("AE08WJ6YKNBMC", "ZA", "South Africa", "EU"),
    Marketplace("A1C3SOZRARQ6R3", "PL", "Poland", "EU"),
    Marketplace("ARBP9OOSHTCHU", "EG", "Egypt", "EU"),
    Marketplace("A33AVAJ2PDY3EV", "TR", "Turkey", "EU"),
    Marketplace("A17E79C6D8DWNP", "SA", "Saudi Arabia", "EU"),
    Marketplace("A2VIGQ35RCS4UG", "AE", "United Arab Emirates", "EU"),
    Marketplace("A21TJRUUN4KGV", "IN", "India", "EU"),
    Marketplace("A19VAU5U5O7RUS", "SG", "Singapore", "FE"),
    Marketplace("A39IBJ37TRP1C6", "AU", "Australia", "FE"),
    Marketplace("A1VC38T7YXB528", "JP", "Japan", "FE"),
)

_BY_ID = {m.marketplace_id: m for m in MARKETPLACES}
# Amazon's own tables write the United Kingdom as UK; ISO says GB.  Both are understood.
_BY_COUNTRY = {m.country_code: m for m in MARKETPLACES} | {"UK": _BY_ID["A1F83G8C2ARO7P"]}

_warned: set[str] = set()
_warned_lock = threading.Lock()


def marketplace(marketplace_id: str) -> Marketplace | None:
    """The known marketplace with this id, or ``None``."""
    return _BY_ID.get(marketplace_id)


def _shown(m: Marketplace) -> str:
    return f"{m.marketplace_id} ({m.country_code}, {m.country})"


def check_marketplace_id(name: str, value: Any, *, warn: bool = True) -> str:
    """``value`` if it is a marketplace id, else a ``ValueError``/``TypeError`` naming
    ``name`` and the rule (see the module's docstring).  A well-formed id this table
    does not know is returned, after a warning when ``warn``."""
    if not isinstance(value, str):
        raise TypeError(f"{name}: expected a marketplace id (a string), got {type(value).__name__}")
    if not value.strip():
        raise ValueError(f"{name}: must not be empty; the US marketplace is ATVPDKIKX0DER")
    if value != value.strip():
        raise ValueError(f"{name}: {value!r} has spaces around it; give {value.strip()!r}")
    if value in _BY_ID:
        return value
    upper = value.upper()
    if upper in _BY_ID:
        raise ValueError(
            f"{name}: {value!r} is not a marketplace id: they are upper case; "
            f"did you mean {_shown(_BY_ID[upper])}?"
        )
    if upper in _BY_COUNTRY:
        raise ValueError(
            f"{name}: {value!r} is a country code, not a marketplace id; the marketplace of "
            f"{_BY_COUNTRY[upper].country} is {_BY_COUNTRY[upper].marketplace_id}"
        )
    if value != upper and _FORM.fullmatch(upper):
        raise ValueError(
            f"{name}: {value!r} is not a marketplace id: they are upper case; "
            f"did you mean {upper!r}?"
        )
    if not _FORM.fullmatch(value):
        raise ValueError(
            f"{name}: {value!r} is not a marketplace id: those are 10 to 20 upper-case "
            "letters and digits, such as ATVPDKIKX0DER for the United States "
            "(the configuration guide lists Amazon's)"
        )
    if warn:
        _warn_unknown(value)
    return value


def _warn_unknown(value: str) -> None:
    with _warned_lock:
        if value in _warned:
            return
        _warned.add(value)
    warnings.warn(
        UnknownMarketplaceWarning(
            f"marketplace id {value} is not one of Amazon's marketplaces this release knows; "
            "it is sent as given (if Amazon has opened a new marketplace, all is well; "
            "otherwise check the id)"
        ),
        stacklevel=4,
    )


def check_region(name: str, marketplace_id: str, region: str) -> None:
    """Refuse a known marketplace that ``region``'s Amazon host does not serve."""
    known = _BY_ID.get(marketplace_id)
    if known is None or known.region == region:
        return
    raise ValueError(
        f"{name}: {_shown(known)} is served by Amazon's {known.region} region, not "
        f"{region}: choose region {known.region} (Region.{known.region}, or "
        f"SPAPI_REGION={known.region})"
    )
