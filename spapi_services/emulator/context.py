"""What every operation handler works with: the store, the document vault, the clock,
the page-token codec and how tokens page, and a few behaviour switches."""

from __future__ import annotations

from collections.abc import Callable

import attrs

from .clock import Clock
from .documents import DocumentVault
from .replies import Reply
from .store import Store
from .tokens import PageTokens
from .validation import Call

__all__ = ["Handler", "ServiceContext"]

#: An operation's handler: a checked call in, a reply out (or an ApiError raised).
Handler = Callable[[Call], Reply]


@attrs.define(eq=False)
class ServiceContext:
    store: Store
    vault: DocumentVault
    clock: Clock
    page_tokens: PageTokens
    strict_slots: bool = False
    """Refuse appointments that do not start on a free hourly slot of the store."""
    base_url: str = ""
    """The emulator's own URL, once it listens (upload URLs point at it)."""
    paging: str = "keyset"
    """What a page token holds: the sort key of the page's edge (``"keyset"``) or a
    position in the result set (``"offset"``)."""
    page_token_ttl: float | None = None
    """Seconds a page token is accepted after it was issued (``None``: for ever)."""
