"""Making text from a server safe to put in a log line or an exception message.

Error and warning messages come from Amazon (or whatever answers in its place).  Printed
raw, a message holding a newline forges a second log line, and ANSI escapes repaint the
reader's terminal.  Every server-supplied string goes through :func:`printable` before it
reaches a log record or a message.
"""

from __future__ import annotations

import re

__all__ = ["printable"]

# C0 and C1 controls, DEL, and the Unicode line and paragraph separators.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    return _NAMED.get(char) or f"\\u{ord(char):04x}"


def printable(text: object, limit: int | None = None) -> str:
    """``text`` as one line of printable characters, cut to ``limit`` characters.

    Control characters become visible escapes (``\\n``, ``\\u001b``); nothing is dropped
    silently, so what the server said can still be read.
    """
    value = text if isinstance(text, str) else str(text)
    if limit is not None and len(value) > limit:
        value = value[:limit] + "..."
    return _CONTROL.sub(_escape, value)
