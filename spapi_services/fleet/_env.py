"""A fleet's options from environment variables (for taskiq's commands and containers)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

__all__ = ["ENVIRONMENT", "options_from_env"]

#: Each variable, the option it sets, and how its text is read.
ENVIRONMENT: dict[str, tuple[str, str]] = {
    "SPAPI_FLEET_REDIS_URL": ("redis_url", "text"),
    "SPAPI_FLEET_DATABASE_URL": ("database_url", "text"),
    "SPAPI_FLEET_DIRECTORY_KEY": ("directory_key", "text"),
    "SPAPI_FLEET_TOKEN_KEY": ("token_key", "base64"),
    "SPAPI_FLEET_INTERVAL_MINUTES": ("interval", "minutes"),
    "SPAPI_FLEET_HISTORY_DAYS": ("history", "days"),
    "SPAPI_FLEET_LEASE_SECONDS": ("lease", "number"),
    "SPAPI_FLEET_IDLE_TIMEOUT_SECONDS": ("idle_timeout", "number"),
    "SPAPI_FLEET_RECLAIM_INTERVAL_SECONDS": ("reclaim_interval", "number"),
    "SPAPI_FLEET_WINDOWS": ("windows", "integer"),
    "SPAPI_FLEET_BUYER_DATA": ("buyer_data", "text"),
    "SPAPI_FLEET_BUYER_KEY": ("buyer_key", "text"),
    "SPAPI_FLEET_ENDPOINT": ("endpoint", "text"),
    "SPAPI_FLEET_TOKEN_URL": ("token_url", "text"),
    "SPAPI_FLEET_SCHEMA": ("schema", "text"),
    "SPAPI_FLEET_KEY_PREFIX": ("key_prefix", "text"),
    "SPAPI_FLEET_QUEUE": ("queue", "text"),
    "SPAPI_FLEET_POOL_SIZE": ("pool_size", "integer"),
    "SPAPI_FLEET_REDIS_TIMEOUT_SECONDS": ("redis_timeout", "number"),
    "SPAPI_FLEET_RECONNECT_TIMEOUT_SECONDS": ("reconnect_timeout", "number"),
    "SPAPI_FLEET_WEBHOOK_ALLOW_NETWORKS": ("webhook_allow_networks", "list"),
    "SPAPI_FLEET_WEBHOOK_TIMEOUT_SECONDS": ("webhook_timeout", "number"),
    "SPAPI_FLEET_WEBHOOK_DELAYS": ("webhook_schedule", "delays"),
    "SPAPI_FLEET_WEBHOOK_LEASE_SECONDS": ("webhook_lease", "number"),
    "SPAPI_FLEET_WEBHOOK_POLL_SECONDS": ("webhook_poll_interval", "number"),
    "SPAPI_FLEET_OUTBOX_RETENTION_DAYS": ("outbox_retention", "days"),
    "SPAPI_FLEET_RELAY_WEBHOOKS": ("relay_webhooks", "switch"),
}


def options_from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    """The :class:`Fleet` options the set variables give; a ValueError names a bad one.

    The app's ``SPAPI_CLIENT_ID`` and ``SPAPI_CLIENT_SECRET`` are read by the fleet
    itself.  The two URLs are required.
    """
    options: dict[str, Any] = {}
    for name, (option, kind) in ENVIRONMENT.items():
        text = environ.get(name, "").strip()
        if text:
            options[option] = _read(name, text, kind)
    missing = [n for n in ("SPAPI_FLEET_REDIS_URL", "SPAPI_FLEET_DATABASE_URL") if n not in environ]
    if missing:
        raise ValueError(f"set {' and '.join(missing)} to configure the fleet")
    for name in ("SPAPI_CLIENT_ID", "SPAPI_CLIENT_SECRET"):
        if environ.get(name, "").strip():
            options[name.removeprefix("SPAPI_").lower()] = environ[name].strip()
    return options


def _read(name: str, text: str, kind: str) -> Any:
    if kind == "list":
        return [part for part in text.replace(",", " ").split() if part]
    if kind == "switch":
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"{name}: must be 1 or 0 (true or false), got {text!r}")
    if kind == "delays":
        from ..webhooks import RetrySchedule

        try:
            return RetrySchedule(delays=[float(p) for p in text.replace(",", " ").split()])
        except ValueError:
            raise ValueError(
                f"{name}: give the seconds before each attempt, e.g. 0,5,300,1800"
            ) from None
    try:
        if kind == "base64":
            return base64.b64decode(text, validate=True)
        if kind == "minutes":
            return timedelta(minutes=float(text))
        if kind == "days":
            return timedelta(days=float(text))
        if kind == "number":
            return float(text)
        if kind == "integer":
            return int(text)
    except (ValueError, binascii.Error):
        raise ValueError(f"{name}: not a valid {kind} value") from None
    return text
