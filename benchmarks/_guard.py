"""Loopback only: refuse to resolve any host but this machine, and drop proxy settings.

Every benchmark process (servers, our client, the peers) calls :func:`install` before a
client library is imported, so a client that is pointed at the wrong host fails at once
instead of reaching Amazon.  The same idea as the peer study's ``loopback_guard.py``,
kept here so the repository does not depend on files outside it.
"""

from __future__ import annotations

import os
import socket
from typing import Any

__all__ = ["ALLOWED_HOSTS", "check_url", "install"]

ALLOWED_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")
_original_getaddrinfo = socket.getaddrinfo


def _guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    name = host.decode() if isinstance(host, bytes) else host
    if name not in ALLOWED_HOSTS:
        raise OSError(f"benchmarks guard: refusing to resolve {name!r} (loopback only)")
    return _original_getaddrinfo(host, *args, **kwargs)


def install() -> None:
    """Patch name resolution and the proxy environment for this process (idempotent)."""
    socket.getaddrinfo = _guarded_getaddrinfo
    for name in _PROXY_VARS:
        os.environ.pop(name, None)
    os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"


def check_url(url: str) -> str:
    """``url`` itself if it points at loopback; otherwise a ValueError."""
    if not url.startswith(("http://127.0.0.1:", "http://localhost:")):
        raise ValueError(f"benchmarks: {url!r} is not a loopback URL")
    return url
