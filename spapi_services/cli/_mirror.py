"""``spapi-services mirror``: look after a sync's mirror and the buyers' data in it.

``prune`` removes closed jobs kept longer than you need them, ``forget-buyer`` erases a
buyer's personal data, ``rewrite`` stores the buyer data again under another policy or
a new key, and ``new-key`` makes a key.  None of them talks to the API.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click

from ..models.enums import ServiceJobStatus
from ..sync import (
    BUYER_DATA_CHOICES,
    CLOSED_STATUSES,
    BuyerData,
    BuyerKey,
    BuyerKeyError,
    BuyerKeys,
)
from ..sync._files import create_private, replace_private
from ._app import Group, json_option, run, settings
from ._output import fmt_time, plural
from ._sync import (
    BUYER_KEYS_ENV,
    Target,
    buyer_key_option,
    read_buyer_keys,
    require_keys,
    target_options,
)

__all__ = ["DURATION", "DurationParam", "mirror"]

_DURATION = re.compile(r"^(\d+)\s*([hdw])$")
_UNITS = {"h": "hours", "d": "days", "w": "weeks"}
_STATUSES = [s.value for s in ServiceJobStatus]


class DurationParam(click.ParamType):  # type: ignore[type-arg]
    """A length of time typed as ``90d``, ``12w`` or ``36h``."""

    name = "duration"

    def get_metavar(self, param: click.Parameter, ctx: click.Context) -> str:
        return "DURATION"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, timedelta):
            return value
        match = _DURATION.match(str(value).strip().lower())
        if match is None:
            self.fail(
                f"{value!r} is not a duration: use days, weeks or hours, e.g. 90d", param, ctx
            )
        return timedelta(**{_UNITS[match[2]]: int(match[1])})


DURATION = DurationParam()


@click.group(cls=Group)
def mirror() -> None:
    """Look after a sync's mirror: prune old jobs, forget a buyer, rotate keys.

    The mirror is --db (default ./service_jobs.sqlite) or --jsonl, as for `sync`.  Keys
    come from --buyer-key-file or $SPAPI_BUYER_KEYS, the first protecting new data.
    """


def _existing(target: Target) -> Target:
    if not target.path.exists():
        raise click.UsageError(f"{target.where}: no mirror there (give --db or --jsonl)")
    return target


@mirror.command()
@click.option(
    "--older-than",
    "older_than",
    type=DURATION,
    required=True,
    help="Remove closed jobs whose last date is longer ago than this, e.g. 90d, 52w.",
)
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice(_STATUSES, case_sensitive=False),
    help=f"Statuses that count as closed (repeat; default: {', '.join(sorted(CLOSED_STATUSES))}).",
)
@target_options
@json_option
def prune(
    older_than: timedelta,
    statuses: Sequence[str],
    db_path: Path | None,
    jsonl_path: Path | None,
) -> None:
    """Remove closed jobs kept longer than you need them, and compact the files.

    A job's last date is the latest time it records (its appointments, its proof of
    appointment, its creation).  Nothing of a removed job is left in the files: SQLite is
    vacuumed and its log emptied, JSON Lines is rewritten.
    """
    target = _existing(Target.of(db_path, jsonl_path))
    chosen = [s.upper() for s in statuses] or sorted(CLOSED_STATUSES)
    now = datetime.now(UTC)
    cutoff = now - older_than
    removed = run(lambda: target.sink().prune(older_than, statuses=chosen, now=now))
    out = settings().output
    if out.as_json:
        out.json({"store": target.where, "removed": removed, "cutoff": cutoff, "statuses": chosen})
    else:
        out.done(
            f"Removed {plural(removed, 'job')} ({', '.join(chosen)}) last active before "
            f"{fmt_time(cutoff)} from {target.where}."
        )


@mirror.command("forget-buyer")
@click.argument("buyer_id", metavar="BUYER_ID")
@target_options
@buyer_key_option
@json_option
def forget_buyer(
    buyer_id: str,
    db_path: Path | None,
    jsonl_path: Path | None,
    buyer_key_file: Path | None,
) -> None:
    """Erase a buyer's personal data from the mirror (their jobs stay).

    Their id, name, phone, the service address and any vehicle go from every job of
    theirs; the jobs' status, times, items and payments stay.  Later syncs store none of
    their data again.  Where buyer ids are stored encrypted or hashed, give the key.
    """
    target = _existing(Target.of(db_path, jsonl_path))
    keys = read_buyer_keys(buyer_key_file)
    erased = run(lambda: target.sink(keys).forget_buyer(buyer_id))
    out = settings().output
    if out.as_json:
        out.json({"store": target.where, "jobs": erased})
    else:
        # The buyer's id is not repeated: it is the user's input, and output is often kept.
        out.done(
            f"Erased the buyer's data from {plural(erased, 'job')} in {target.where}; "
            "later syncs will not store it again."
        )


@mirror.command()
@click.option(
    "--buyer-data",
    "buyer_data",
    type=click.Choice(BUYER_DATA_CHOICES),
    required=True,
    help="How to store buyers' data from now on: keep, encrypt, hash or drop.",
)
@target_options
@buyer_key_option
@json_option
def rewrite(
    buyer_data: BuyerData,
    db_path: Path | None,
    jsonl_path: Path | None,
    buyer_key_file: Path | None,
) -> None:
    """Store every job's buyer data again: encrypt a clear mirror, rotate keys.

    Encrypted data is decrypted with any key given, then stored under --buyer-data with
    the first key.  To rotate: `mirror new-key --key-file KEYS` (the new key goes first),
    then `mirror rewrite --buyer-data encrypt --buyer-key-file KEYS`, then remove the
    old key from the file.  Keyed hashes cannot be undone, and stay as they are.
    """
    target = _existing(Target.of(db_path, jsonl_path))
    keys = read_buyer_keys(buyer_key_file)
    require_keys(buyer_data, keys)
    report = run(lambda: target.sink(keys).rewrite_buyer_data(buyer_data))
    out = settings().output
    if out.as_json:
        out.json({"store": target.where, "jobs": report.jobs, "staleHashes": report.stale_hashes})
        return
    message = f"Rewrote the buyer data of {plural(report.jobs, 'job')} in {target.where}"
    if buyer_data == "encrypt" and keys is not None:
        message += f" (key {keys.current.key_id})"
    out.done(message + ".")
    if report.stale_hashes:
        out.note(
            f"{plural(report.stale_hashes, 'job')} still hold hashes made with an older key: "
            "keep that key in the ring until a `sync --full` has rewritten them."
        )


@mirror.command("new-key")
@click.option(
    "--key-file",
    "key_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Put the new key first in this file (written readable by you only), "
    "keeping the keys already there for reading.",
)
@json_option
def new_key(key_file: Path | None) -> None:
    """Make a buyer key (AES-256), printed or put first in a key file.

    Keep it with your other secrets: without it, encrypted buyer data cannot be read.
    """
    key = BuyerKey.generate()
    out = settings().output
    if key_file is None:
        if out.as_json:
            out.json({"keyId": key.key_id, "key": key.export()})
        else:
            click.echo(key.export())
            out.note(
                f"[dim]Key {key.key_id}. Give it to `sync --buyer-data encrypt` in "
                f"${BUYER_KEYS_ENV} (or a --buyer-key-file).[/dim]"
            )
        return
    ring = _add_key(key_file, key)
    if out.as_json:
        out.json({"keyId": key.key_id, "keyFile": str(key_file), "keys": len(ring)})
    elif len(ring) == 1:
        out.done(f"Key {key.key_id} is in {key_file}, readable by you only.")
    else:
        out.done(
            f"Key {key.key_id} is now first in {key_file}: it protects new data, and the "
            f"{plural(len(ring) - 1, 'older key')} there still read older data."
        )


def _add_key(key_file: Path, key: BuyerKey) -> BuyerKeys:
    # The file is replaced whole by a private one, whatever the old one's mode was.
    create_private(key_file)
    old = key_file.read_text(encoding="utf-8")
    try:
        ring = BuyerKeys([key, *(BuyerKeys.from_text(old) if old.strip() else ())])
    except BuyerKeyError as exc:
        rule = str(exc).partition(": ")[2] or str(exc)
        raise click.UsageError(f"{key_file}: {rule}") from None
    stamp = datetime.now(UTC).strftime("%Y-%m-%d")
    text = f"# key {key.key_id}, made {stamp}: protects new data\n{key.export()}\n{old}"
    replace_private(key_file, text.encode("utf-8"), durable=True)
    return ring
